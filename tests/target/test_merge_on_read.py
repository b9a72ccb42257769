"""Merge-on-read: position deletes, the key index and compaction, checked against a model.

Random change streams (inserts, updates, deletes, truncates) interleaved with compaction and
writer restarts must leave the table equal to applying the same changes to a dict — as pyiceberg
reads it, as DuckDB reads it (the ``lab.sql`` view), and as a freshly built key index sees it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from zetl_nb.core.changes import ChangeBatch, Column, TableId, TableSchema
from zetl_nb.query.duck import QueryEngine
from zetl_nb.target.catalog import LocalCatalog
from zetl_nb.target.compaction import compact, expire, summary_counts
from zetl_nb.target.deadletters import DeadLetters
from zetl_nb.target.keyindex import KeyIndex
from zetl_nb.target.writer import TableWriter, read_checkpoint

TID = TableId("shop", "public", "kv")
SCHEMA = TableSchema(
    TID, (Column("id", pa.int64(), "bigint"), Column("v", pa.int64(), "bigint")), ("id",)
)

change = st.tuples(st.sampled_from("cud"), st.integers(0, 40), st.integers(0, 999))
step = st.one_of(
    st.lists(change, min_size=1, max_size=25).map(lambda c: ("batch", c)),
    st.just(("compact", None)),
    st.just(("restart", None)),
    st.just(("truncate", None)),
)


class Fixture:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="zetl-mor-"))
        self.lc = LocalCatalog(self.home)
        self.lc.catalog.create_namespace("lake")
        self.table = self.lc.catalog.create_table(("lake", "kv"), SCHEMA.arrow_schema())
        self.dl = DeadLetters(self.lc.catalog, "lake")
        self.writer = TableWriter(self.table, SCHEMA, self.dl, "arn:test")
        self.seq = 0

    def batch(self, changes: list[tuple[str, int, int]], truncate: bool = False) -> ChangeBatch:
        self.seq += 1
        rows = pa.table(
            {"id": [k for _, k, _ in changes], "v": [v for _, _, v in changes]},
            schema=SCHEMA.arrow_schema(),
        )
        return ChangeBatch(
            schema=SCHEMA,
            ops=pa.array([o for o, _, _ in changes], pa.string()),
            rows=rows,
            seq=pa.array([self.seq] * len(changes), pa.int64()),
            position={"lsn": self.seq},
            truncate=truncate,
            truncate_seq=self.seq if truncate else None,
        )

    def restart(self) -> None:
        table = self.lc.catalog.load_table(("lake", "kv"))
        self.writer = TableWriter(table, SCHEMA, self.dl, "arn:test")

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def iceberg_rows(w: TableWriter) -> dict[int, int]:
    rows = w.table.scan().to_arrow().to_pylist()
    assert len({r["id"] for r in rows}) == len(rows), "duplicate primary keys"
    return {r["id"]: r["v"] for r in rows}


def duckdb_rows(lc: LocalCatalog) -> dict[int, int]:
    engine = QueryEngine(lc)
    try:
        rows = engine.sql("SELECT id, v FROM lake.kv").fetchall()
    finally:
        engine.close()
    assert len({r[0] for r in rows}) == len(rows), "duplicate primary keys in DuckDB"
    return dict(rows)


@settings(max_examples=25, deadline=None)
@given(st.lists(step, min_size=1, max_size=12))
def test_random_streams_match_the_model(steps: list[tuple[str, Any]]) -> None:
    fx = Fixture()
    try:
        model: dict[int, int] = {}
        fx.writer.load(iter([]), 0, {"lsn": 0})
        for kind, changes in steps:
            if kind == "batch":
                fx.writer.apply(fx.batch(changes))
                for op, key, value in changes:
                    if op == "d":
                        model.pop(key, None)
                    else:
                        model[key] = value
            elif kind == "truncate":
                fx.writer.apply(fx.batch([("c", 1000, 1)], truncate=True))
                model = {1000: 1}
            elif kind == "compact":
                fx.writer.maintain(max_files=0, max_delete_files=0)
            else:
                fx.restart()
        assert iceberg_rows(fx.writer) == model
        assert duckdb_rows(fx.lc) == model
        fresh = KeyIndex.build(fx.writer.table, ["id"])
        assert sorted(fresh.frame["id"].to_list()) == sorted(model)
        # A batch that changes nothing (deletes of absent keys) commits nothing: the checkpoint
        # may lag, and replaying such a batch is a no-op.
        assert (read_checkpoint(fx.writer.table)[0] or 0) <= fx.seq
    finally:
        fx.close()


def test_updates_do_not_rewrite_existing_files() -> None:
    fx = Fixture()
    try:
        base = fx.batch([("c", k, k) for k in range(5000)])
        fx.writer.apply(base)
        files_before = {t.file.file_path for t in fx.writer.table.scan().plan_files()}
        fx.writer.apply(fx.batch([("u", 7, -7), ("d", 8, 0), ("u", 4999, -1)]))
        tasks = list(fx.writer.table.scan().plan_files())
        assert files_before <= {t.file.file_path for t in tasks}  # nothing rewritten
        assert sum(len(t.delete_files) > 0 for t in tasks) == 1  # one file has deletes
        rows = iceberg_rows(fx.writer)
        assert len(rows) == 4999 and rows[7] == -7 and 8 not in rows and rows[4999] == -1
        assert duckdb_rows(fx.lc) == rows
    finally:
        fx.close()


def test_compaction_merges_files_and_keeps_checkpoint() -> None:
    fx = Fixture()
    try:
        fx.writer.apply(fx.batch([("c", k, k) for k in range(100)]))
        for i in range(10):
            fx.writer.apply(fx.batch([("u", i, 1000 + i), ("d", 50 + i, 0)]))
        data_files, delete_files = summary_counts(fx.writer.table)
        assert data_files == 11 and delete_files == 10
        expected = iceberg_rows(fx.writer)
        props = {"zetl.seq": str(fx.seq), "zetl.position": f'{{"lsn": {fx.seq}}}'}
        assert len(compact(fx.writer.table, props)[0]) == 11
        assert summary_counts(fx.writer.table) == (1, 0)
        assert len(fx.writer.table.current_snapshot().manifests(fx.writer.table.io)) == 1
        assert iceberg_rows(fx.writer) == expected == duckdb_rows(fx.lc)
        assert read_checkpoint(fx.writer.table) == (fx.seq, {"lsn": fx.seq})
        fx.writer.apply(fx.batch([("u", 3, -3)]))  # the index follows the compaction
        assert iceberg_rows(fx.writer)[3] == -3 and len(iceberg_rows(fx.writer)) == 90
    finally:
        fx.close()


def test_expiry_caps_the_number_of_snapshots() -> None:
    fx = Fixture()
    try:
        for i in range(30):
            fx.writer.apply(fx.batch([("c", i, i)]))
        assert expire(fx.writer.table, keep_seconds=3600, keep_last=5, max_snapshots=10) == 20
        fx.writer.table.refresh()
        assert len(fx.writer.table.snapshots()) == 10
        assert len(iceberg_rows(fx.writer)) == 30
    finally:
        fx.close()
