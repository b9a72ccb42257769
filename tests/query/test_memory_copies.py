"""In-memory copies (zetl_nb/query/copies.py, memory.py): a table held in memory reads the same
rows as pyiceberg and as the Parquet view, through CDC, compaction, truncate, schema evolution and
renames; budgets keep tables on their views; read-only Labs and lab.duckdb() see the copies."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from evolved_support import FINAL, build_evolved
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import Model, Tables, by_id, col
from test_sql_reads import Evolving

from zetl_nb import Lab
from zetl_nb.config import default_query_memory_mb, load_config
from zetl_nb.query.duck import QueryEngine
from zetl_nb.target.catalog import LocalCatalog

COLUMNS = ["id", "v", "s"]


class Pair:
    """Two engines over one catalog: copies on (synchronous, so every step is in memory) and off."""

    def __init__(self, home: Path) -> None:
        self.catalog = LocalCatalog(home)
        self.memory = QueryEngine(
            self.catalog, memory_mb=256, copy_min_rows=0, copy_in_background=False
        )
        self.parquet = QueryEngine(self.catalog, memory_mb=0)

    def reads(self, name: str) -> tuple[list[Any], list[Any], list[Any]]:
        """(memory copy, Parquet view, pyiceberg) rows of ``name``, by id."""
        query = f"SELECT * FROM {name}"
        memory = by_id(self.memory.sql(query).to_arrow().to_pylist())
        parquet = by_id(self.parquet.sql(query).to_arrow().to_pylist())
        ns, table = name.split(".")
        iceberg = by_id(self.catalog.load_table(ns, table).scan().to_arrow().to_pylist())
        return memory, parquet, iceberg

    def close(self) -> None:
        self.memory.close()
        self.parquet.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    yield p
    p.close()


def _copy_names(engine: QueryEngine) -> list[str]:
    rows = engine.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'zetl_copies'"
    ).fetchall()
    return sorted(r[0] for r in rows)


def test_cdc_is_applied_incrementally_to_one_copy(pair: Pair) -> None:
    tables, model = Tables(pair.catalog, "m"), Model()
    tables.create("t", [col("id", pa.int64()), col("v", pa.int64()), col("s", pa.string())])

    def step(changes: list[tuple[str, dict[str, Any]]]) -> None:
        tables.apply("t", changes)
        model.apply(changes, COLUMNS)
        memory, parquet, iceberg = pair.reads("m.t")
        assert memory == parquet == iceberg == model.sorted()
        assert pair.memory.read_path("m.t") == "memory"

    step([("c", {"id": i, "v": i, "s": f"s{i}"}) for i in range(100)])
    copies = _copy_names(pair.memory)
    step([("u", {"id": 1, "v": -1, "s": "x"}), ("d", {"id": 2}), ("d", {"id": 50})])
    step([("u", {"id": 1, "v": -2, "s": "y"}), ("c", {"id": 2, "v": 2, "s": "back"})])
    step([("d", {"id": i}) for i in range(0, 100, 3)])
    assert _copy_names(pair.memory) == copies  # the same copy, updated in place
    # TRUNCATE: every data file leaves the snapshot.
    writer = tables.writers["t"]
    truncate = pa.table({c: [] for c in COLUMNS}, schema=writer.schema.arrow_schema())
    from zetl_nb.core.changes import ChangeBatch

    tables.seq += 1
    writer.apply(
        ChangeBatch(
            writer.schema,
            pa.array([], pa.string()),
            truncate,
            pa.array([], pa.int64()),
            {"lsn": tables.seq},
            truncate=True,
            truncate_seq=tables.seq,
        )
    )
    model.rows.clear()
    assert pair.memory.sql("SELECT count(*) FROM m.t").fetchone() == (0,)
    step([("c", {"id": 7, "v": 7, "s": "after"})])


def test_compaction_keeps_the_copy_right(pair: Pair) -> None:
    tables, model = Tables(pair.catalog, "c"), Model()
    tables.create("t", [col("id", pa.int64()), col("v", pa.int64()), col("s", pa.string())])
    for r in range(12):
        changes = [("c", {"id": r * 10 + i, "v": i, "s": "a"}) for i in range(10)]
        changes += [("u", {"id": i, "v": r, "s": f"u{r}"}) for i in range(0, r * 10, 7)]
        changes += [("d", {"id": r * 10 - 1})] if r else []
        tables.apply("t", changes)
        model.apply(changes, COLUMNS)
        memory, parquet, iceberg = pair.reads("c.t")
        assert memory == parquet == iceberg == model.sorted()
    assert tables.writers["t"].maintain(max_files=4, max_delete_files=4)  # compacted
    memory, parquet, iceberg = pair.reads("c.t")
    assert memory == parquet == iceberg == model.sorted()
    assert pair.memory.read_path("c.t") == "memory"
    more = [("u", {"id": 3, "v": 333, "s": "late"}), ("d", {"id": 4})]
    tables.apply("t", more)
    model.apply(more, COLUMNS)
    assert pair.reads("c.t")[0] == model.sorted()


def test_evolved_table_with_renames_and_readds(pair: Pair) -> None:
    evolved = build_evolved(Tables(pair.catalog, "lake"), "items")
    memory, parquet, iceberg = pair.reads("lake.items")
    assert memory == parquet == iceberg == evolved.model.sorted()
    assert pair.memory.sql("SELECT * FROM lake.items").columns == FINAL
    path = pair.memory.read_path("lake.items")
    assert path == "memory by field id: column 'remark' was renamed"


def test_evolution_between_queries_alters_the_copy(pair: Pair) -> None:
    from pyiceberg.types import DoubleType, LongType, StringType

    tables, model = Tables(pair.catalog, "e"), Model()
    cols = [
        col("id", pa.int64()),
        col("n", pa.int32()),
        col("f", pa.float32()),
        col("x", pa.string()),
    ]
    tables.create("t", cols)
    rows = [("c", {"id": i, "n": i, "f": 0.5, "x": "x"}) for i in range(20)]
    tables.apply("t", rows)
    model.apply(rows, ["id", "n", "f", "x"])
    assert pair.reads("e.t")[0] == model.sorted()
    copies = _copy_names(pair.memory)

    def evolve(u: Any) -> None:
        u.update_column("n", LongType())
        u.update_column("f", DoubleType())
        u.delete_column("x")
        u.add_column("later", StringType())
        u.rename_column("n", "big")

    final = [
        col("id", pa.int64()),
        col("big", pa.int64()),
        col("f", pa.float64()),
        col("later", pa.string()),
    ]
    tables.evolve("t", evolve, final)
    model.evolve(["id", "big", "f", "later"], {"n": "big"})
    assert pair.reads("e.t")[0] == model.sorted()
    more = [("u", {"id": 3, "big": 2**40, "f": 0.25, "later": "now"}), ("d", {"id": 4})]
    tables.apply("t", more)
    model.apply(more, ["id", "big", "f", "later"])
    memory, parquet, iceberg = pair.reads("e.t")
    assert memory == parquet == iceberg == model.sorted()
    res = pair.memory.sql("SELECT * FROM e.t")
    assert [d[1] for d in res.description] == ["BIGINT", "BIGINT", "DOUBLE", "VARCHAR"]
    assert _copy_names(pair.memory) == copies  # altered, not rebuilt
    assert pair.memory.read_path("e.t").startswith("memory by field id: column 'big'")


def test_nested_rename_stays_on_pyiceberg_and_dropped_table_drops_its_copy(pair: Pair) -> None:
    tables = Tables(pair.catalog, "n")
    inner = pa.struct([("a", pa.int64()), ("b", pa.string())])
    tables.create("n", [col("id", pa.int64()), col("s", inner)])
    tables.apply("n", [("c", {"id": i, "s": {"a": i, "b": f"b{i}"}}) for i in range(5)])
    assert pair.reads("n.n")[0] == pair.reads("n.n")[2]
    assert pair.memory.read_path("n.n") == "memory"
    renamed = pa.struct([("a", pa.int64()), ("c", pa.string())])
    tables.evolve(
        "n", lambda u: u.rename_column("s.b", "c"), [col("id", pa.int64()), col("s", renamed)]
    )
    memory, parquet, iceberg = pair.reads("n.n")
    assert memory == parquet == iceberg
    assert pair.memory.read_path("n.n").startswith("pyiceberg: nested field 'c'")
    assert _copy_names(pair.memory) == []
    tables.create("gone", [col("id", pa.int64())])
    tables.apply("gone", [("c", {"id": 1})])
    assert pair.memory.sql("SELECT id FROM n.gone").fetchall() == [(1,)]
    assert len(_copy_names(pair.memory)) == 1
    pair.catalog.catalog.drop_table(("n", "gone"))
    pair.memory.refresh()
    assert _copy_names(pair.memory) == []


def test_budget_keeps_tables_on_parquet_views(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path)
    tables = Tables(catalog, "b")
    tables.create("t", [col("id", pa.int64()), col("s", pa.string())])
    tables.apply("t", [("c", {"id": i, "s": "x" * 50}) for i in range(5000)])
    tiny = QueryEngine(catalog, memory_mb=0.01, copy_min_rows=0, copy_in_background=False)
    off = QueryEngine(catalog, memory_mb=0, copy_min_rows=0)
    small_tables = QueryEngine(catalog, memory_mb=100, copy_min_rows=10_000)  # 5,000 rows
    try:
        for engine in (tiny, off, small_tables):
            assert engine.sql("SELECT count(*) FROM b.t").fetchone() == (5000,)
            assert _copy_names(engine) == []
        assert tiny.read_path("b.t").startswith("parquet (not in memory: needs ~")
        assert off.read_path("b.t") == "parquet"
        assert small_tables.read_path("b.t") == "parquet"
    finally:
        for engine in (tiny, off, small_tables):
            engine.close()


def test_memory_setting(tmp_path: Path) -> None:
    assert 0 < default_query_memory_mb() <= 4096
    assert load_config(tmp_path, env={"ZETL_QUERY_MEMORY_MB": "0"}).query_memory_mb == 0
    assert load_config(tmp_path, env={}, query_memory_mb=512).query_memory_mb == 512
    from zetl_nb.core.errors import ConfigError

    with pytest.raises(ConfigError, match="query_memory_mb must be >= 0"):
        load_config(tmp_path, env={"ZETL_QUERY_MEMORY_MB": "-1"})


def test_background_copy_read_only_lab_and_duckdb_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    with Lab(home) as writer:
        tables, model = Tables(writer.catalog, "shop"), Model()
        tables.create("t", [col("id", pa.int64()), col("v", pa.int64()), col("s", pa.string())])
        rows = [("c", {"id": i, "v": i, "s": "a"}) for i in range(20_000)]
        tables.apply("t", rows)
        model.apply(rows, COLUMNS)
        monkeypatch.setenv("ZETL_QUERY_MEMORY_MB", "64")
        with Lab(home, read_only=True) as reader:
            engine = reader._query_engine()
            assert engine.copies.budget == 64_000_000
            con = reader.duckdb()
            count = con.execute("SELECT count(*) FROM shop.t").fetchone()
            assert count == (20_000,)  # answered while the copy is built (or after)
            report = engine.wait_for_copies(timeout=60)
            assert report["shop.t"]["rows"] == 20_000
            assert reader._query_engine().read_path("shop.t") == "memory"
            more = [("u", {"id": 5, "v": -5, "s": "b"}), ("d", {"id": 6})]
            tables.apply("t", more)
            model.apply(more, COLUMNS)
            got = by_id(con.execute("SELECT * FROM shop.t").arrow().to_pylist())
            assert got == model.sorted()
            other = reader.duckdb()
            assert other.execute("SELECT v FROM shop.t WHERE id = 5").fetchall() == [(-5,)]
            assert by_id(reader.sql("SELECT * FROM shop.t").to_arrow().to_pylist()) == got


# -- random CDC, evolution and compaction: copy = Parquet view = pyiceberg = model ---------------

op = st.tuples(st.sampled_from("cud"), st.integers(0, 30), st.integers(-1000, 1000))
step = st.one_of(
    st.lists(op, min_size=1, max_size=20).map(lambda c: ("batch", c)),
    st.sampled_from(
        [("add", None), ("promote", None), ("rename", None), ("drop", None), ("compact", None)]
    ),
)


@settings(max_examples=15, deadline=None)
@given(st.lists(step, min_size=1, max_size=10), st.booleans())
def test_random_changes_read_the_same_from_memory(steps: list[Any], query_each: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="zetl-memcopy-") as home:
        pair = Pair(Path(home))
        try:
            table = Evolving(Tables(pair.catalog, "r"), "t")
            for kind, changes in steps:
                if kind == "batch":
                    table.batch(changes)
                elif kind == "compact":
                    table.tables.writers["t"].maintain(max_files=2, max_delete_files=1)
                else:
                    table.evolve(kind)
                if query_each:  # the copy follows every snapshot, or jumps over several
                    assert pair.reads("r.t")[0] == table.model.sorted()
            memory, parquet, iceberg = pair.reads("r.t")
            assert memory == parquet == iceberg == table.model.sorted()
            assert pair.memory.read_path("r.t").startswith("memory")
        finally:
            pair.close()


def test_the_labs_setting_reaches_the_query_engine(tmp_path: Path) -> None:
    with Lab(tmp_path / "home", query_memory_mb=64) as lab:
        assert lab.config.query_memory_mb == 64
        assert lab._query_engine().copies.budget == 64_000_000
