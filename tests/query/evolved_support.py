"""The evolved table of the query tests: merge-on-read with position deletes across files,
type promotions, and add/drop/rename/re-add of columns, written through the engine's TableWriter
(see ``query_support``). Kept out of ``conftest.py``: the suite has a top-level conftest too, and
test modules import these names and fixtures (``from evolved_support import lab``): a second
``conftest.py`` would shadow the top-level one's helpers under the same module name."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, NamedTuple

import pyarrow as pa
import pytest
from query_support import Model, Tables, col

from zetl_nb import Lab

BASE = ["id", "qty", "price", "note", "gone"]
EVOLVED = ["id", "qty", "price", "note", "added"]
FINAL = ["id", "qty", "price", "remark", "added", "gone"]


class Evolved(NamedTuple):
    """The evolved table's writer set, final model, and per step: snapshot id and rows."""

    tables: Tables
    model: Model
    snapshots: list[int]
    states: list[list[dict[str, Any]]]


def build_evolved(tables: Tables, name: str) -> Evolved:
    """The evolved table: position deletes across files, promotions, add/drop/rename/re-add."""
    from pyiceberg.types import DoubleType, LongType, StringType

    model, snaps, states = Model(), [], []

    def step(changes: list[tuple[str, dict[str, Any]]], columns: list[str]) -> None:
        tables.apply(name, changes)
        model.apply(changes, columns)
        snaps.append(tables.table(name).current_snapshot().snapshot_id)
        states.append(copy.deepcopy(model.sorted()))

    tables.create(
        name,
        [
            col("id", pa.int64()),
            col("qty", pa.int32()),
            col("price", pa.float32()),
            col("note", pa.string()),
            col("gone", pa.string()),
        ],
    )
    row = {"qty": 1, "price": 0.5, "note": "n", "gone": "g"}
    step([("c", {"id": i, **row, "qty": i}) for i in range(30)], BASE)
    step([("c", {"id": i, **row, "qty": i}) for i in range(30, 60)], BASE)
    # One commit that updates and deletes rows of both earlier files: one delete file, two files.
    step(
        [
            ("u", {"id": 1, **row, "qty": 101}),
            ("u", {"id": 31, **row, "qty": 131}),
            ("d", {"id": 2}),
            ("d", {"id": 32}),
        ],
        BASE,
    )

    def promote(u: Any) -> None:
        u.update_column("qty", LongType())
        u.update_column("price", DoubleType())
        u.add_column("added", StringType())
        u.delete_column("gone")

    tables.evolve(
        name,
        promote,
        [
            col("id", pa.int64()),
            col("qty", pa.int64()),
            col("price", pa.float64()),
            col("note", pa.string()),
            col("added", pa.string()),
        ],
    )
    model.evolve(EVOLVED)
    step(
        [
            ("u", {"id": 3, "qty": 2**40, "price": 0.1, "note": "big", "added": "a"}),
            ("c", {"id": 100, "qty": 5, "price": 1.25, "note": "new", "added": "x"}),
            ("d", {"id": 33}),
        ],
        EVOLVED,
    )

    def rename(u: Any) -> None:
        u.rename_column("note", "remark")
        u.add_column("gone", StringType())  # same name as the dropped column, a new field id

    tables.evolve(
        name,
        rename,
        [
            col("id", pa.int64()),
            col("qty", pa.int64()),
            col("price", pa.float64()),
            col("remark", pa.string()),
            col("added", pa.string()),
            col("gone", pa.string()),
        ],
    )
    model.evolve(FINAL, {"note": "remark"})
    step(
        [
            ("u", {"id": 4, "qty": 4, "price": 4.0, "remark": "r", "added": "b", "gone": "new"}),
            ("d", {"id": 100}),
            ("c", {"id": 101, "qty": 1, "price": 2.0, "remark": "late", "gone": "x"}),
        ],
        FINAL,
    )
    return Evolved(tables, model, snaps, states)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("query-home"))
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def evolved(lab: Lab) -> Evolved:
    return build_evolved(Tables(lab.catalog, "lake"), "items")
