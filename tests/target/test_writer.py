"""TableWriter against a real pyiceberg SQL catalog on disk."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zetl_nb.core.changes import ChangeBatch, Column, TableId, TableSchema
from zetl_nb.target.catalog import LocalCatalog
from zetl_nb.target.deadletters import DeadLetters
from zetl_nb.target.writer import SchemaIncompatible, TableWriter, coalesce, read_checkpoint

TID = TableId("shop", "public", "orders")
COLS = (
    Column("id", pa.int64(), "bigint"),
    Column("amount", pa.decimal128(10, 2), "numeric"),
    Column("note", pa.string(), "text"),
)
SCHEMA = TableSchema(TID, COLS, ("id",))


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    cat = LocalCatalog(tmp_path)
    cat.catalog.create_namespace("lake")
    return cat.catalog


def writer(catalog: Any, schema: TableSchema = SCHEMA) -> TableWriter:
    table = catalog.create_table_if_not_exists(("lake", "orders"), schema.arrow_schema())
    return TableWriter(table, schema, DeadLetters(catalog, "lake"), "arn:test")


def batch(
    ops: str, rows: list[tuple[Any, ...]], seq: int, schema: TableSchema = SCHEMA, **kw: Any
) -> ChangeBatch:
    names = schema.names
    data = pa.table(
        {n: [r[i] if i < len(r) else None for r in rows] for i, n in enumerate(names)},
        schema=schema.arrow_schema(),
    )
    return ChangeBatch(
        schema=schema,
        ops=pa.array(list(ops)),
        rows=data,
        seq=pa.array([seq] * len(rows), pa.int64()),
        position={"lsn": seq},
        **kw,
    )


def content(w: TableWriter) -> list[dict[str, Any]]:
    w.table.refresh()
    return sorted(w.table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])


def test_load_then_cdc_then_checkpoint(catalog: Any) -> None:
    w = writer(catalog)
    snap = batch("rr", [(1, Decimal("1.50"), "a"), (2, Decimal("2.00"), "b")], 10)
    assert w.load(iter(snap.rows.to_batches()), seq=10, position={"lsn": 10}) == 2
    assert read_checkpoint(w.table) == (10, {"lsn": 10})
    counts = w.apply(batch("cud", [(3, Decimal("3"), "c"), (1, Decimal("9.99"), "a2"), (2,)], 11))
    assert (counts.inserted, counts.updated, counts.deleted) == (1, 1, 1)
    assert [(r["id"], r["note"]) for r in content(w)] == [(1, "a2"), (3, "c")]
    assert read_checkpoint(w.table)[0] == 11


def test_replayed_rows_are_skipped(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), seq=5, position={"lsn": 5})
    w.apply(batch("c", [(1, Decimal("1"), "x")], 6))
    again = TableWriter(w.table, SCHEMA, w.dead_letters, "arn:test")  # a restart
    counts = again.apply(batch("cc", [(1, Decimal("1"), "x"), (2, Decimal("2"), "y")], 6))
    assert counts.skipped == 2
    assert [r["id"] for r in content(again)] == [1]


def test_replayed_changes_that_change_nothing_are_not_counted(catalog: Any) -> None:
    w = writer(catalog)
    copy = batch("rr", [(1, Decimal("1.00"), "a"), (2, Decimal("2.00"), "b")], 10)
    w.load(iter(copy.rows.to_batches()), seq=10, position={"lsn": 10})
    # Written while the copy ran: 1 became "a" and 2 went v1 -> v2 (the copy saw both), 3 was
    # deleted before the copy read it; 4 is new after the copy, 1 then changes again.
    replay = batch(
        "uuudcu",
        [
            (1, Decimal("1.00"), "a"),
            (2, Decimal("2.50"), "v1"),
            (2, Decimal("2.00"), "b"),
            (3,),
            (4, Decimal("4.00"), "d"),
            (1, Decimal("1.10"), "a2"),
        ],
        11,
        replay_until=11,
    )
    replay = replace(replay, seq=pa.array([11, 12, 13, 14, 15, 16], pa.int64()), replay_until=15)
    counts = w.apply(replay)
    assert (counts.inserted, counts.updated, counts.deleted, counts.skipped) == (1, 1, 0, 4)
    assert [(r["id"], r["note"]) for r in content(w)] == [(1, "a2"), (2, "b"), (4, "d")]


def test_primary_key_update_deletes_old_key(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter(batch("r", [(1, Decimal("1"), "x")], 1).rows.to_batches()), 1, {"lsn": 1})
    old = pa.table(
        {"id": [1], "amount": pa.nulls(1, pa.decimal128(10, 2)), "note": pa.nulls(1, pa.string())}
    )
    w.apply(batch("u", [(7, Decimal("1"), "x")], 2, old_keys=old))
    assert [r["id"] for r in content(w)] == [7]


def test_truncate_then_insert(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter(batch("rr", [(1,), (2,)], 1).rows.to_batches()), 1, {"lsn": 1})
    w.apply(batch("c", [(3,)], 2, truncate=True))
    assert [r["id"] for r in content(w)] == [3]


def test_unchanged_toast_keeps_target_and_in_batch_values(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter(batch("r", [(1, Decimal("1"), "big-1")], 1).rows.to_batches()), 1, {"lsn": 1})
    mask = pa.array([True, False, True])
    w.apply(
        batch(
            "ucu",
            [(1, Decimal("2")), (2, Decimal("3"), "big-2"), (2, Decimal("4"))],
            2,
            unchanged={"note": mask},
        )
    )
    assert [(r["id"], r["amount"], r["note"]) for r in content(w)] == [
        (1, Decimal("2.00"), "big-1"),
        (2, Decimal("4.00"), "big-2"),
    ]


def test_decimal_widening_is_promoted(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    wide = TableSchema(
        TID, (COLS[0], Column("amount", pa.decimal128(20, 2), "numeric"), COLS[2]), ("id",)
    )
    w.apply(batch("c", [(2, Decimal("123456789012345.00"), "big")], 3, schema=wide))
    assert content(w)[0]["amount"] == Decimal("123456789012345.00")


def test_add_column_evolves(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    more = TableSchema(TID, (*COLS, Column("qty", pa.int32(), "int")), ("id",))
    w.apply(batch("c", [(1, Decimal("1"), "n", 4)], 1, schema=more))
    assert content(w)[0]["qty"] == 4


def test_incompatible_type_change_raises(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    text_id = TableSchema(
        TID,
        (Column("id", pa.int64(), "bigint"), Column("amount", pa.string(), "text"), COLS[2]),
        ("id",),
    )
    with pytest.raises(SchemaIncompatible):
        w.apply(batch("c", [(1, "x", "n")], 1, schema=text_id))


def test_dead_letter_rows_are_kept(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    small = TableSchema(TID, COLS, ("id",))
    rows = pa.table(
        {
            "id": [1, 2],
            "amount": pa.array([Decimal("1"), Decimal("10")], pa.decimal128(38, 2)),
            "note": ["a", "b"],
        }
    )
    huge = rows.set_column(
        1, "amount", pa.array([Decimal("1"), Decimal("1" * 30)], pa.decimal128(38, 2))
    )
    b = ChangeBatch(small, pa.array(["c", "c"]), huge, pa.array([1, 1], pa.int64()), {"lsn": 1})
    counts = w.apply(b)
    assert counts.dead_lettered == 1
    assert [r["id"] for r in content(w)] == [1]
    dl = w.dead_letters.table().scan().to_arrow().to_pylist()
    assert len(dl) == 1 and '"id": 2' in dl[0]["record"] and dl[0]["reason"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("cud"), st.integers(0, 5), st.integers(0, 9)), max_size=30)
)
def test_coalesce_equals_sequential_application(changes: list[tuple[str, int, int]]) -> None:
    state: dict[int, int] = {0: 0, 1: 1}
    expected = dict(state)
    for op, key, val in changes:
        if op == "d":
            expected.pop(key, None)
        else:
            expected[key] = val
    rows = pa.table(
        {"id": [k for _, k, _ in changes], "v": [v for _, _, v in changes]},
        schema=pa.schema([("id", pa.int64()), ("v", pa.int64())]),
    )
    final, deletes = coalesce(rows, pa.array([o for o, _, _ in changes], pa.string()), ["id"])
    touched = set(final.column("id").to_pylist()) | set(deletes.column("id").to_pylist())
    result = {k: v for k, v in state.items() if k not in touched}
    result.update(
        dict(zip(final.column("id").to_pylist(), final.column("v").to_pylist(), strict=True))
    )
    assert result == expected


def test_maintenance_compacts_and_keeps_the_checkpoint(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    for i in range(1, 8):
        w.apply(batch("c", [(i, Decimal(i), f"n{i}")], i))
    files = len(list(w.table.scan().plan_files()))
    assert files >= 7
    assert w.maintain(max_files=4, keep_seconds=0, keep_last=2)
    w.table.refresh()
    assert len(list(w.table.scan().plan_files())) == 1
    assert read_checkpoint(w.table) == (7, {"lsn": 7})
    assert [r["id"] for r in content(w)] == list(range(1, 8))
    assert len(list(w.table.snapshots())) <= 3


def test_key_update_with_unchanged_toast_takes_the_old_keys_value(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter(batch("r", [(1, Decimal("1"), "big")], 1).rows.to_batches()), 1, {"lsn": 1})
    old = pa.table(
        {"id": [1], "amount": pa.nulls(1, pa.decimal128(10, 2)), "note": pa.nulls(1, pa.string())}
    )
    w.apply(batch("u", [(9, Decimal("1"))], 2, old_keys=old, unchanged={"note": pa.array([True])}))
    assert [(r["id"], r["note"]) for r in content(w)] == [(9, "big")]


def test_a_replayed_truncate_does_not_wipe_later_rows(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter(batch("r", [(1,)], 1).rows.to_batches()), 1, {"lsn": 1})
    w.apply(batch("", [], 5, truncate=True, truncate_seq=5))
    w.apply(batch("c", [(2,)], 6))
    again = TableWriter(w.table, SCHEMA, w.dead_letters, "arn:test")  # restart, replay from 5
    again.apply(batch("", [], 5, truncate=True, truncate_seq=5))
    assert [r["id"] for r in content(again)] == [2]


def test_rows_the_source_could_not_represent_go_to_dead_letters(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    b = batch(
        "ccc",
        [(1, Decimal("1"), "a"), (2, None, "b"), (3, Decimal("3"), "c")],
        4,
        rejects={1: "column amount (numeric): value '1e40' does not fit decimal128(10, 2)"},
    )
    counts = w.apply(b)
    assert counts.dead_lettered == 1 and counts.inserted == 2
    assert [r["id"] for r in content(w)] == [1, 3]
    (dl,) = w.dead_letters.table().scan().to_arrow().to_pylist()
    assert "1e40" in dl["reason"] and '"id": 2' in dl["record"]


def test_a_rename_resyncs(catalog: Any) -> None:
    w = writer(catalog)
    w.load(iter([]), 0, {"lsn": 0})
    renamed = TableSchema(TID, (COLS[0], COLS[1], Column("comment", pa.string(), "text")), ("id",))
    with pytest.raises(SchemaIncompatible, match="rename"):
        w.apply(batch("c", [(1, Decimal("1"), "x")], 1, schema=renamed))
