"""DuckDB (lab.sql), Polars (lab.polars) and pyiceberg read the same rows — the model's — from
tables carrying position-delete files and evolved schemas."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from evolved_support import FINAL, Evolved, evolved, lab  # noqa: F401 - pytest fixtures
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import Model, Tables, by_id, col, delete_file_targets

from zetl_nb import Lab
from zetl_nb.query.duck import QueryEngine
from zetl_nb.query.errors import QueryError
from zetl_nb.target.catalog import LocalCatalog


def three_reads(lab: Lab, name: str) -> tuple[list[Any], list[Any], list[Any]]:
    duck = by_id(lab.sql(f"SELECT * FROM {name}").to_arrow().to_pylist())
    polars = by_id(lab.polars(name).collect().to_dicts())
    ns, table = name.split(".")
    iceberg = by_id(lab.catalog.load_table(ns, table).scan().to_arrow().to_pylist())
    return duck, polars, iceberg


def test_evolved_table_reads_the_same_everywhere(lab: Lab, evolved: Evolved) -> None:
    tables, model = evolved.tables, evolved.model
    duck, polars, iceberg = three_reads(lab, "lake.items")
    assert duck == model.sorted()
    assert polars == model.sorted()
    assert iceberg == model.sorted()
    assert lab.sql("SELECT * FROM lake.items").columns == FINAL
    row4 = next(r for r in duck if r["id"] == 4)
    assert row4["gone"] == "new" and row4["remark"] == "r"
    assert all(r["gone"] is None for r in duck if r["id"] not in (4, 101))  # re-added: new id
    assert next(r for r in duck if r["id"] == 3)["qty"] == 2**40  # int -> long
    # The table really carries what the readers must handle.
    assert max(delete_file_targets(tables.table("items"))) >= 2
    path = lab._query_engine().read_path("lake.items")
    assert path == "parquet by field id: column 'remark' was renamed"


def test_evolution_without_renames_reads_by_name(lab: Lab) -> None:
    from pyiceberg.types import DoubleType, LongType, StringType

    tables = Tables(lab.catalog, "byname")
    tables.create(
        "t",
        [
            col("id", pa.int64()),
            col("n", pa.int32()),
            col("f", pa.float32()),
            col("x", pa.string()),
        ],
    )
    tables.apply("t", [("c", {"id": i, "n": i, "f": 0.5, "x": "x"}) for i in range(10)])
    tables.apply("t", [("u", {"id": 1, "n": -1, "f": 1.5, "x": "y"}), ("d", {"id": 2})])

    def evolve(u: Any) -> None:
        u.update_column("n", LongType())
        u.update_column("f", DoubleType())
        u.delete_column("x")
        u.add_column("later", StringType())  # in no data file yet

    final = [col("id", pa.int64()), col("n", pa.int64()), col("f", pa.float64())]
    tables.evolve("t", evolve, [*final, col("later", pa.string())])
    expected = [
        {"id": i, "n": -1 if i == 1 else i, "f": 1.5 if i == 1 else 0.5, "later": None}
        for i in range(10)
        if i != 2
    ]
    res = lab.sql("SELECT * FROM byname.t")
    assert [d[1] for d in res.description] == ["BIGINT", "BIGINT", "DOUBLE", "VARCHAR"]
    assert by_id(res.to_arrow().to_pylist()) == expected
    assert lab._query_engine().read_path("byname.t") == "parquet"
    tables.apply("t", [("u", {"id": 3, "n": 2**40, "f": 0.25, "later": "now"})])
    duck, polars, iceberg = three_reads(lab, "byname.t")
    assert duck == polars == iceberg
    assert next(r for r in duck if r["id"] == 3) == {"id": 3, "n": 2**40, "f": 0.25, "later": "now"}


def test_counts_and_filters_respect_deletes(lab: Lab, evolved: Evolved) -> None:
    model = evolved.model
    assert lab.sql("SELECT count(*) FROM lake.items").fetchone() == (len(model.rows),)
    got = lab.sql("SELECT id FROM lake.items WHERE id IN (1, 2, 31, 32, 33) ORDER BY id")
    assert got.fetchall() == [(1,), (31,)]
    counted = lab.polars("lake.items").filter(lambda_filter()).select("id").collect()
    assert sorted(counted["id"].to_list()) == sorted(k for k in model.rows if k >= 50)


def lambda_filter() -> Any:
    import polars as pl

    return pl.col("id") >= 50


def test_new_commits_are_visible_at_the_next_query(lab: Lab) -> None:
    tables = Tables(lab.catalog, "fresh")
    tables.create("t", [col("id", pa.int64()), col("v", pa.string())])
    assert lab.sql("SELECT count(*) FROM fresh.t").fetchone() == (0,)
    tables.apply("t", [("c", {"id": 1, "v": "a"}), ("c", {"id": 2, "v": "b"})])
    assert lab.sql("SELECT count(*) FROM fresh.t").fetchone() == (2,)
    tables.apply("t", [("u", {"id": 1, "v": "z"}), ("d", {"id": 2})])
    assert lab.sql("SELECT * FROM fresh.t").fetchall() == [(1, "z")]
    lab.catalog.catalog.drop_table(("fresh", "t"))
    with pytest.raises(QueryError, match="does not exist"):
        lab.sql("SELECT * FROM fresh.t")


def test_partitioned_table_has_no_hive_columns(lab: Lab) -> None:
    tables = Tables(lab.catalog, "parts")
    tables.create("p", [col("id", pa.int64()), col("v", pa.int64())], buckets=("id", 4))
    model = Model()
    changes = [("c", {"id": i, "v": i}) for i in range(40)]
    tables.apply("p", changes)
    model.apply(changes, ["id", "v"])
    more = [("u", {"id": i, "v": -i}) for i in range(0, 40, 3)] + [
        ("d", {"id": 5}),
        ("d", {"id": 6}),
    ]
    tables.apply("p", more)
    model.apply(more, ["id", "v"])
    duck, polars, iceberg = three_reads(lab, "parts.p")
    assert duck == polars == iceberg == model.sorted()
    paths = [t.file.file_path for t in tables.table("p").scan().plan_files()]
    assert all("id_bucket=" in p for p in paths)
    assert max(delete_file_targets(tables.table("p"))) >= 1
    assert lab.sql("SELECT * FROM parts.p").columns == ["id", "v"]


def test_partition_values_that_need_escaping_in_paths(lab: Lab) -> None:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    cat = lab.catalog.catalog
    cat.create_namespace_if_not_exists(("escaped",))
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "category", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "category"))
    table = cat.create_table(("escaped", "products"), schema=schema, partition_spec=spec)
    categories = ["Home & Kitchen", "Sports + Outdoors", "50% off", "plain"]
    table.append(pa.table({"id": [1, 2, 3, 4], "category": categories}))
    # pyiceberg writes these folders percent-encoded (Home+%26+Kitchen) and opens them as is.
    got = lab.sql("SELECT category FROM escaped.products ORDER BY id").fetchall()
    assert [c for (c,) in got] == categories


def test_nested_rename_reads_through_pyiceberg(lab: Lab) -> None:
    tables = Tables(lab.catalog, "nest")
    inner = pa.struct([("a", pa.int64()), ("b", pa.string())])
    tables.create("n", [col("id", pa.int64()), col("s", inner)])
    tables.apply("n", [("c", {"id": i, "s": {"a": i, "b": f"b{i}"}}) for i in range(5)])
    renamed = pa.struct([("a", pa.int64()), ("c", pa.string())])
    tables.evolve(
        "n",
        lambda u: u.rename_column("s.b", "c"),
        [col("id", pa.int64()), col("s", renamed)],
    )
    tables.apply("n", [("u", {"id": 1, "s": {"a": 10, "c": "new"}}), ("d", {"id": 2})])
    expected = [{"id": i, "s": {"a": i, "c": f"b{i}"}} for i in (0, 3, 4)]
    expected.append({"id": 1, "s": {"a": 10, "c": "new"}})
    duck, polars, iceberg = three_reads(lab, "nest.n")
    assert duck == polars == iceberg == by_id(expected)
    assert lab._query_engine().read_path("nest.n").startswith("pyiceberg: nested field 'c'")


def test_column_types_round_trip(lab: Lab) -> None:
    tables = Tables(lab.catalog, "typed")
    tables.create(
        "t",
        [
            col("id", pa.int64()),
            col("amount", pa.decimal128(10, 2)),
            col("day", pa.date32()),
            col("at", pa.timestamp("us", "UTC")),
            col("local", pa.timestamp("us")),
            col("flag", pa.bool_()),
            col("blob", pa.binary()),
            col("tags", pa.list_(pa.string())),
            col("info.color", pa.string()),  # FULL unnest's dotted names
        ],
    )
    at = dt.datetime(2026, 11, 3, 14, 0, tzinfo=dt.UTC)
    row = {
        "amount": Decimal("9.99"),
        "day": dt.date(2026, 11, 3),
        "at": at,
        "local": dt.datetime(2026, 11, 3, 15, 0),
        "flag": True,
        "blob": b"\x00\x01",
        "tags": ["a", "b"],
        "info.color": "red",
    }
    tables.apply("t", [("c", {"id": 1, **row}), ("c", {"id": 2, **row, "tags": None})])
    tables.apply("t", [("u", {"id": 2, **row, "amount": Decimal("-1.50")})])
    duck, polars, iceberg = three_reads(lab, "typed.t")
    assert duck == polars == iceberg
    assert duck[0] == {"id": 1, **row}
    assert lab.sql('SELECT "info.color" FROM typed.t WHERE id = 2').fetchone() == ("red",)


# -- random CDC with schema evolution, against the model -------------------------------------------

op = st.tuples(st.sampled_from("cud"), st.integers(0, 30), st.integers(-1000, 1000))
step = st.one_of(
    st.lists(op, min_size=1, max_size=20).map(lambda c: ("batch", c)),
    st.sampled_from([("add", None), ("promote", None), ("rename", None), ("drop", None)]),
)


class Evolving:
    """A table whose schema evolves at random between batches (one column at a time)."""

    def __init__(self, tables: Tables, name: str) -> None:
        self.tables, self.name = tables, name
        self.columns = [col("id", pa.int64()), col("v", pa.int32())]
        self.model = Model()
        self.added = 0
        self.renamed = False
        tables.create(name, self.columns)

    def batch(self, changes: list[tuple[str, int, int]]) -> None:
        rows = []
        for kind, key, value in changes:
            row: dict[str, Any] = {"id": key}
            for c in self.columns[1:]:
                row[c.name] = value if pa.types.is_integer(c.type) else f"s{value}"
            rows.append((kind, row))
        self.tables.apply(self.name, rows)
        self.model.apply(rows, [c.name for c in self.columns])

    def evolve(self, kind: str) -> None:
        from pyiceberg.types import LongType, StringType

        cols, renames = list(self.columns), {}
        if kind == "add":
            self.added += 1
            new = col(f"c{self.added}", pa.string())
            cols.append(new)
            update: Any = lambda u: u.add_column(new.name, StringType())  # noqa: E731
        elif kind == "promote" and any(c.type == pa.int32() for c in cols):
            i = next(i for i, c in enumerate(cols) if c.type == pa.int32())
            name = cols[i].name
            cols[i] = col(name, pa.int64())
            update = lambda u: u.update_column(name, LongType())  # noqa: E731
        elif kind == "rename" and len(cols) > 1:
            old = cols[-1].name
            cols[-1] = col(old + "r", cols[-1].type)
            renames = {old: old + "r"}
            self.renamed = True
            update = lambda u: u.rename_column(old, old + "r")  # noqa: E731
        elif kind == "drop" and len(cols) > 1:
            gone = cols.pop()
            update = lambda u: u.delete_column(gone.name)  # noqa: E731
        else:
            return
        self.tables.evolve(self.name, update, cols)
        self.columns = cols
        self.model.evolve([c.name for c in cols], renames)


@settings(max_examples=15, deadline=None)
@given(st.lists(step, min_size=1, max_size=8))
def test_random_cdc_and_evolution_match_the_model(steps: list[tuple[str, Any]]) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="zetl-query-") as home:
        catalog = LocalCatalog(Path(home))
        engine = QueryEngine(catalog)
        try:
            table = Evolving(Tables(catalog, "r"), "t")
            for kind, changes in steps:
                if kind == "batch":
                    table.batch(changes)
                else:
                    table.evolve(kind)
            got = by_id(engine.sql("SELECT * FROM r.t").to_arrow().to_pylist())
            assert got == table.model.sorted()
            path = engine.read_path("r.t")
            assert path.startswith("parquet by field id") if table.renamed else path == "parquet"
            import polars as pl

            iceberg = catalog.load_table("r", "t")
            assert by_id(pl.scan_iceberg(iceberg).collect().to_dicts()) == table.model.sorted()
        finally:
            engine.close()


def test_empty_and_unreadable_tables(lab: Lab) -> None:
    import os

    from zetl_nb.query.errors import SnapshotNotFoundError
    from zetl_nb.query.scan import local_path

    lab.catalog.catalog.create_namespace_if_not_exists("edge")
    schema = pa.schema([("id", pa.int64()), ("v", pa.string())])
    lab.catalog.catalog.create_table(("edge", "empty"), schema)  # no snapshot at all
    assert lab.sql("SELECT count(*), max(v) FROM edge.empty").fetchone() == (0, None)
    assert lab.polars("edge.empty").collect().shape == (0, 2)
    assert lab.table("edge.empty").rowcount == 0 and lab.snapshots("edge.empty").rowcount == 0
    with pytest.raises(SnapshotNotFoundError, match="has no snapshots yet"):
        lab.table("edge.empty", as_of=1.0)

    broken = lab.catalog.catalog.create_table(("edge", "broken"), schema)
    broken.append(pa.table({"id": [1], "v": ["a"]}, schema=schema))
    os.unlink(local_path(broken.current_snapshot().manifest_list))
    with pytest.raises(QueryError, match=r"table edge\.broken cannot be read"):
        lab.sql("SELECT count(*) FROM edge.broken")
    assert lab.sql("SELECT count(*) FROM edge.empty").fetchone() == (0,)
    assert lab._query_engine().read_path("edge.broken").startswith("error: ")


def test_nested_namespaces_are_joined_with_underscores(lab: Lab) -> None:
    lab.catalog.catalog.create_namespace_if_not_exists(("org",))
    lab.catalog.catalog.create_namespace_if_not_exists(("org", "team"))
    schema = pa.schema([("id", pa.int64())])
    table = lab.catalog.catalog.create_table(("org", "team", "t"), schema)
    table.append(pa.table({"id": [7]}, schema=schema))
    assert lab.sql("SELECT id FROM org_team.t").fetchall() == [(7,)]
    assert lab.table("org.team.t").fetchall() == [(7,)]
    assert lab.table("org_team.t").fetchall() == [(7,)]
