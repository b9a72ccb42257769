"""The Arrow path of FULL unnesting (``zetl_nb.transform.unnest_arrow``): it gives exactly what
:func:`~zetl_nb.transform.unnest.unnest` gives, or declines (None) and leaves the items to it.

Items are DynamoDB JSON as exports carry it (binary already base64 text), one per line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from zetl_nb.transform.unnest import unnest
from zetl_nb.transform.unnest_arrow import arrow_full


def lines(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps({"Item": item}).encode() + b"\n" for item in items)


def product(i: int) -> dict[str, Any]:
    return {
        "id": {"S": f"p{i:05d}"},
        "price": {"N": f"{i % 997}.{i % 100:02d}"},
        "name": {"S": f"Product {i}"},
        "description": {
            "M": {
                "color": {"S": ("red", "green", "blue")[i % 3]},
                "weight_kg": {"N": str(i % 40 / 4)},
                "material": {"S": "steel"},
                "in_stock": {"BOOL": i % 2 == 0},
            }
        },
        "tags": {"SS": ["sale", f"t{i % 7}"]},
    }


def test_arrow_path_covers_products_and_agrees_with_unnest() -> None:
    items = [product(i) for i in range(50)]
    table = arrow_full(lines(items), ["id"])
    assert table is not None
    assert table.equals(unnest(items, ["id"], "FULL"))


def test_arrow_path_keeps_unnest_column_order() -> None:
    # Item 1 brings "z" before a new field under the existing map "m": unnest's first-seen order
    # follows the item, not pyarrow's struct layout.
    items = [
        {"pk": {"S": "a"}, "m": {"M": {"x": {"S": "1"}}}},
        {"pk": {"S": "b"}, "z": {"BOOL": True}, "m": {"M": {"y": {"N": "2"}, "x": {"S": "3"}}}},
    ]
    table = arrow_full(lines(items), ["pk"])
    assert table is not None
    assert table.column_names == ["pk", "m.x", "z", "m.y"] == unnest(items, ["pk"]).column_names


def test_arrow_path_reads_date_like_strings_as_text() -> None:
    # pyarrow.json would infer "2024-05-01" as a timestamp; an S value stays its exact text.
    items = [{"id": {"S": "1"}, "day": {"S": "2024-05-01"}, "ns": {"NS": ["1", "2.5"]}}]
    table = arrow_full(lines(items), ["id"])
    assert table is not None
    assert table.column("day").to_pylist() == ["2024-05-01"]
    assert table.equals(unnest(items, ["id"]))


@pytest.mark.parametrize(
    "attr",
    [
        {"B": "AAE="},
        {"BS": ["AAE="]},
        {"L": [{"S": "a"}]},
        {"N": "NaN"},
        {"N": "1_000"},
        {"S": "x", "N": "1"},
        {},
    ],
)
def test_arrow_path_leaves_to_unnest_what_it_cannot_convert(attr: dict[str, Any]) -> None:
    assert arrow_full(lines([{"id": {"S": "1"}, "a": attr}]), ["id"]) is None


def test_arrow_path_declines_conflicts_and_missing_keys() -> None:
    conflict = [{"id": {"S": "1"}, "a": {"S": "x"}}, {"id": {"S": "2"}, "a": {"N": "1"}}]
    assert arrow_full(lines(conflict), ["id"]) is None
    assert arrow_full(lines([{"other": {"S": "x"}}]), ["id"]) is None
    assert arrow_full(lines([{"id": {"BOOL": True}}]), ["id"]) is None
    assert arrow_full(lines([{"id": {"S": "1"}, "a:b": {"S": "x"}}]), ["id"]) is None
