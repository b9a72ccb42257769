"""Time travel (lab.table as_of, lab.snapshots, lab.polars as_of) and lab.diff."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pyarrow as pa
import pytest
from evolved_support import BASE, EVOLVED, FINAL, Evolved, evolved, lab  # noqa: F401 - pytest fixtures
from query_support import Tables, by_id, col

from zetl_nb import Lab
from zetl_nb.query.errors import QueryError, SnapshotNotFoundError


def rows(result: Any) -> list[dict[str, Any]]:
    return by_id(result.to_arrow().to_pylist())


def test_as_of_snapshot_id_reads_that_snapshot_in_its_schema(lab: Lab, evolved: Evolved) -> None:
    columns = [BASE, BASE, BASE, EVOLVED, FINAL]
    for snap, state, cols in zip(evolved.snapshots, evolved.states, columns, strict=True):
        res = lab.table("lake.items", as_of=snap)
        assert res.columns == cols
        assert rows(res) == state
    assert rows(lab.table("lake.items")) == evolved.model.sorted()


def test_as_of_times_in_every_form(lab: Lab, evolved: Evolved) -> None:
    snaps = lab.snapshots("lake.items").to_arrow().to_pylist()
    assert [s["snapshot_id"] for s in snaps][-5:] == evolved.snapshots
    assert snaps[-1]["is_current"] and not snaps[-2]["is_current"]
    third = snaps[-3]  # evolved.snapshots[2]
    when: dt.datetime = third["committed_at"]
    expected = evolved.states[2]
    assert rows(lab.table("lake.items", as_of=when)) == expected
    assert rows(lab.table("lake.items", as_of=when.timestamp())) == expected
    iso = when.isoformat().replace("+00:00", "Z")
    assert rows(lab.table("lake.items", as_of=iso)) == expected
    naive_local = when.astimezone().replace(tzinfo=None)  # naive = local time
    assert rows(lab.table("lake.items", as_of=naive_local)) == expected


def test_polars_as_of(lab: Lab, evolved: Evolved) -> None:
    frame = lab.polars("lake.items", as_of=evolved.snapshots[1]).collect()
    assert by_id(frame.to_dicts()) == evolved.states[1]


def test_errors_name_the_table_and_list_snapshots(lab: Lab, evolved: Evolved) -> None:
    with pytest.raises(SnapshotNotFoundError) as exc:
        lab.table("lake.items", as_of=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    text = str(exc.value)
    assert "lake.items had no readable snapshot at 2001-01-01" in text and "first commit" in text
    assert str(evolved.snapshots[-1]) in text and "lab.snapshots('lake.items')" in text
    with pytest.raises(SnapshotNotFoundError, match=r"123456789012345 is not a snapshot id"):
        lab.table("lake.items", as_of=123456789012345)
    with pytest.raises(SnapshotNotFoundError, match="not an ISO-8601 time"):
        lab.table("lake.items", as_of="yesterday")
    with pytest.raises(QueryError, match=r"No replicated table 'lake.nope'.*lake.items"):
        lab.table("lake.nope")


def test_expired_snapshots_say_so(lab: Lab) -> None:
    from zetl_nb.target.compaction import expire

    tables = Tables(lab.catalog, "expiry")
    tables.create("t", [col("id", pa.int64()), col("v", pa.int64())])
    tables.apply("t", [("c", {"id": 1, "v": 1})])
    first = lab.snapshots("expiry.t").to_arrow().to_pylist()[-1]["committed_at"]
    time.sleep(0.01)
    tables.apply("t", [("u", {"id": 1, "v": 2})])
    tables.apply("t", [("u", {"id": 1, "v": 3})])
    assert expire(tables.table("t"), keep_seconds=0, keep_last=1) >= 2
    with pytest.raises(SnapshotNotFoundError, match="were expired by table maintenance"):
        lab.table("expiry.t", as_of=first)
    assert lab.table("expiry.t", as_of=time.time()).fetchall() == [(1, 3)]


def test_diff_by_key_and_by_row(lab: Lab, evolved: Evolved) -> None:
    before, after = evolved.snapshots[3], evolved.snapshots[4]
    old4 = {"id": 4, "qty": 4, "price": 0.5, "remark": "n", "added": None, "gone": None}
    new4 = {"id": 4, "qty": 4, "price": 4.0, "remark": "r", "added": "b", "gone": "new"}
    gone = {"id": 100, "qty": 5, "price": 1.25, "remark": "new", "added": "x", "gone": None}
    born = {"id": 101, "qty": 1, "price": 2.0, "remark": "late", "added": None, "gone": "x"}
    keyed = lab.diff("lake.items", before, after, key=["id"])
    assert keyed.columns == ["_change_type", *FINAL]
    assert keyed.to_arrow().to_pylist() == [
        {"_change_type": "update_preimage", **old4},
        {"_change_type": "update_postimage", **new4},
        {"_change_type": "delete", **gone},
        {"_change_type": "insert", **born},
    ]
    plain = lab.diff("lake.items", before, after).to_arrow().to_pylist()
    kinds = sorted((r["_change_type"], r["id"]) for r in plain)
    assert kinds == [("delete", 4), ("delete", 100), ("insert", 4), ("insert", 101)]
    assert lab.diff("lake.items", after, after).rowcount == 0
    with pytest.raises(QueryError, match=r"key column\(s\) \['nope'\]"):
        lab.diff("lake.items", before, after, key=["nope"])


def test_diff_uses_identifier_fields(lab: Lab) -> None:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "v", StringType(), required=False),
        identifier_field_ids=[1],
    )
    lab.catalog.catalog.create_namespace_if_not_exists("ident")
    table = lab.catalog.catalog.create_table(("ident", "t"), schema)
    arrow_schema = schema.as_arrow()
    table.append(pa.table({"id": [1, 2], "v": ["a", "b"]}, schema=arrow_schema))
    first = table.current_snapshot().snapshot_id
    table.upsert(pa.table({"id": [2, 3], "v": ["B", "c"]}, schema=arrow_schema))
    out = lab.diff("ident.t", first, None).fetchall()
    assert out == [
        ("update_preimage", 2, "b"),
        ("update_postimage", 2, "B"),
        ("insert", 3, "c"),
    ]


def test_time_travel_through_pyiceberg_reader(lab: Lab) -> None:
    tables = Tables(lab.catalog, "nestt")
    inner = pa.struct([("a", pa.int64()), ("b", pa.string())])
    tables.create("n", [col("id", pa.int64()), col("s", inner)])
    tables.apply("n", [("c", {"id": 1, "s": {"a": 1, "b": "x"}})])
    first = tables.table("n").current_snapshot().snapshot_id
    renamed = pa.struct([("a", pa.int64()), ("c", pa.string())])
    tables.evolve(
        "n", lambda u: u.rename_column("s.b", "c"), [col("id", pa.int64()), col("s", renamed)]
    )
    tables.apply("n", [("u", {"id": 1, "s": {"a": 2, "c": "y"}})])
    assert lab.table("nestt.n", as_of=first).fetchall() == [(1, {"a": 1, "b": "x"})]
    assert lab.table("nestt.n").fetchall() == [(1, {"a": 2, "c": "y"})]
    diff = lab.diff("nestt.n", first, None, key=["id"]).fetchall()
    assert diff == [
        ("update_preimage", 1, {"a": 1, "c": "x"}),
        ("update_postimage", 1, {"a": 2, "c": "y"}),
    ]
    left = lab.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'zetl_internal' "
        "AND table_name LIKE 'timetravel.%'"
    )
    assert left.fetchone() == (0,)
