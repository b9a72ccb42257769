"""UnnestSpec and DynamoDB type mapping, against the Glue zero-ETL guide's "Schema unnesting" page.

Tests named ``test_guide_*`` reproduce the page's worked examples (NO_UNNEST, TOP_LEVEL, FULL of
the ``col_1``/``col_2`` item): the resulting table as the page draws it and the page's query, run
verbatim with DuckDB, also after a round trip through a real Iceberg table. The Hypothesis tests
check that every mode gives a valid Iceberg schema and loses nothing beyond the documented
mappings (N to double, NULL ignored, conflicts to string), by reconstructing each item.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.types import ListType, NestedField, StructType

from zetl_nb.core.errors import ZetlError
from zetl_nb.target.catalog import LocalCatalog
from zetl_nb.transform.unnest import (
    DEFAULT_UNNEST,
    MAX_COLUMNS,
    UNNEST_SPECS,
    UnnestError,
    check_mode,
    conform,
    merge_schemas,
    reconstruct,
    unnest,
)

MODES = ("NOUNNEST", "TOPLEVEL", "FULL")

# -- the guide's worked example ------------------------------------------------------------------

# "// Input DynamoDB Record", verbatim.
GUIDE_RECORD: dict[str, Any] = {
    "Item": {
        "col_1": {"S": "value_1"},
        "col_2": {
            "M": {
                "col_3": {"M": {"id": {"S": "value_3"}}},
                "col_4": {"BOOL": True},
            }
        },
    }
}
# The page's queries, verbatim (trailing spaces included).
GUIDE_QUERIES = {
    "NOUNNEST": (
        "SELECT \n"
        "  value.col_1,\n"
        "  value.col_2.M.col_3.M.id.S,\n"
        "  value.col_2.M.col_4.BOOL\n"
        "FROM product_table;"
    ),
    "TOPLEVEL": ("SELECT \n  col_1, \n  col_2.col_3.id,\n  col_2.col_4\nFROM product_table;"),
    "FULL": ('SELECT \n  col_1, \n  "col_2.col_3.id",\n  "col_2.col_4"\nFROM product_table;'),
}
# value.col_1 reads the key inside ``value`` with its descriptor: see docs/aws-parity.md.
GUIDE_ANSWERS = {
    "NOUNNEST": [({"S": "value_1"}, "value_3", True)],
    "TOPLEVEL": [("value_1", "value_3", True)],
    "FULL": [("value_1", "value_3", True)],
}


def guide_table(mode: str) -> pa.Table:
    # "Resulting Iceberg table (assuming col_1 is primary key)"
    return unnest([GUIDE_RECORD["Item"]], keys=["col_1"], mode=mode)


def query(table: pa.Table, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    con.register("product_table", table)
    return con.execute(sql).fetchall()


def test_guide_no_unnest_table() -> None:
    # "the entire row is stored within one column plus the primary key. DynamoDB type
    # information is preserved."
    table = guide_table("NOUNNEST")
    assert table.column_names == ["col_1", "value"]
    assert table.schema.field("col_1").type == pa.string()
    assert pa.types.is_struct(table.schema.field("value").type)
    [row] = table.to_pylist()
    assert row["col_1"] == "value_1"
    assert row["value"]["col_2"] == {
        "M": {"col_3": {"M": {"id": {"S": "value_3"}}}, "col_4": {"BOOL": True}}
    }
    assert row["value"]["col_1"] == {"S": "value_1"}


def test_guide_top_level_table() -> None:
    # "only the top-level fields are unnested while keeping nested fields intact as structs.
    # DynamoDB type information is removed"
    table = guide_table("TOPLEVEL")
    assert table.column_names == ["col_1", "col_2"]
    assert table.schema.field("col_1").type == pa.string()
    assert table.schema.field("col_2").type == pa.struct(
        [("col_3", pa.struct([("id", pa.string())])), ("col_4", pa.bool_())]
    )
    assert table.to_pylist() == [
        {"col_1": "value_1", "col_2": {"col_3": {"id": "value_3"}, "col_4": True}}
    ]


def test_guide_full_table() -> None:
    # "| col_1 (string) | col_2.col_3.id (string) | col_2.col_4 (boolean) |"
    table = guide_table("FULL")
    assert table.schema == pa.schema(
        [("col_1", pa.string()), ("col_2.col_3.id", pa.string()), ("col_2.col_4", pa.bool_())]
    )
    assert table.to_pylist() == [
        {"col_1": "value_1", "col_2.col_3.id": "value_3", "col_2.col_4": True}
    ]


@pytest.mark.parametrize("mode", MODES)
def test_guide_queries(mode: str) -> None:
    assert query(guide_table(mode), GUIDE_QUERIES[mode]) == GUIDE_ANSWERS[mode]


def test_guide_queries_after_an_iceberg_round_trip(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path).catalog
    catalog.create_namespace("lab")
    for mode in MODES:
        written = guide_table(mode)
        iceberg = catalog.create_table(f"lab.product_table_{mode.lower()}", schema=written.schema)
        iceberg.append(written)
        read = iceberg.scan().to_arrow()
        assert read.to_pylist() == written.to_pylist(), mode
        assert query(read, GUIDE_QUERIES[mode]) == GUIDE_ANSWERS[mode], mode


def test_full_is_the_default_and_the_api_spells_the_modes() -> None:
    assert DEFAULT_UNNEST == "FULL"
    assert UNNEST_SPECS == ("TOPLEVEL", "FULL", "NOUNNEST")
    item = GUIDE_RECORD["Item"]
    assert unnest([item], ["col_1"]).equals(unnest([item], ["col_1"], "FULL"))
    assert unnest([item], ["col_1"], None).equals(unnest([item], ["col_1"], "FULL"))
    assert check_mode(None) == "FULL"


@pytest.mark.parametrize(("guide", "api"), [("TOP_LEVEL", "TOPLEVEL"), ("NO_UNNEST", "NOUNNEST")])
def test_the_guides_spelling_is_rejected_with_the_api_value(guide: str, api: str) -> None:
    with pytest.raises(UnnestError, match=f"'{guide}' is the guide's spelling.*'{api}'"):
        unnest([GUIDE_RECORD["Item"]], ["col_1"], guide)


def test_unknown_mode() -> None:
    with pytest.raises(UnnestError, match="'DEEP' is not valid; use one of TOPLEVEL, FULL"):
        check_mode("DEEP")


# -- the guide's type table ----------------------------------------------------------------------

TYPE_TABLE = [
    ({"S": "x"}, pa.string(), "x"),
    ({"B": b"\x00\xff"}, pa.binary(), b"\x00\xff"),
    ({"N": "9.5"}, pa.float64(), 9.5),
    ({"BOOL": False}, pa.bool_(), False),
    ({"SS": ["a", "b"]}, pa.list_(pa.string()), ["a", "b"]),
    ({"NS": ["1", "-2.5"]}, pa.list_(pa.float64()), [1.0, -2.5]),
    ({"BS": [b"a", b"\x00"]}, pa.list_(pa.binary()), [b"a", b"\x00"]),
    ({"L": [{"S": "a"}, {"N": "1"}]}, pa.list_(pa.string()), ['"a"', "1"]),
]


@pytest.mark.parametrize(("attr", "arrow", "value"), TYPE_TABLE)
@pytest.mark.parametrize("mode", ["TOPLEVEL", "FULL"])
def test_type_table(mode: str, attr: dict[str, Any], arrow: pa.DataType, value: Any) -> None:
    table = unnest([{"pk": {"S": "1"}, "a": attr}], ["pk"], mode)
    assert table.schema.field("a").type == arrow
    assert table.column("a").to_pylist() == [value]


@pytest.mark.parametrize(("attr", "arrow", "value"), TYPE_TABLE)
def test_type_table_with_descriptors(attr: dict[str, Any], arrow: pa.DataType, value: Any) -> None:
    table = unnest([{"pk": {"S": "1"}, "a": attr}], ["pk"], "NOUNNEST")
    [desc] = attr
    value_type = table.schema.field("value").type
    assert value_type.field("a").type == pa.struct([(desc, arrow)])
    if desc == "L":  # with descriptors, L elements are DynamoDB JSON
        value = ['{"S":"a"}', '{"N":"1"}']
    assert table.column("value").to_pylist()[0]["a"] == {desc: value}


def test_null_is_ignored() -> None:
    items = [{"pk": {"S": "1"}, "n": {"NULL": True}, "m": {"M": {"x": {"NULL": True}}}}]
    for mode in MODES:
        table = unnest(items, ["pk"], mode)
        assert "n" not in table.column_names, mode
        assert reconstruct(table.to_pylist()[0], mode) == {"pk": "1"}, mode
    # A NULL beside a real value is just a missing value.
    items.append({"pk": {"S": "2"}, "n": {"N": "3"}})
    assert unnest(items, ["pk"], "FULL").column("n").to_pylist() == [None, 3.0]


def test_m_is_a_struct_in_toplevel_and_a_typed_struct_in_nounnest() -> None:
    item = {"pk": {"S": "1"}, "m": {"M": {"x": {"N": "1"}, "y": {"SS": ["a"]}}}}
    top = unnest([item], ["pk"], "TOPLEVEL").schema.field("m").type
    assert top == pa.struct([("x", pa.float64()), ("y", pa.list_(pa.string()))])
    typed = unnest([item], ["pk"], "NOUNNEST").schema.field("value").type.field("m").type
    assert typed == pa.struct(
        [
            (
                "M",
                pa.struct(
                    [
                        ("x", pa.struct([("N", pa.float64())])),
                        ("y", pa.struct([("SS", pa.list_(pa.string()))])),
                    ]
                ),
            )
        ]
    )


def test_list_elements_are_json_text() -> None:
    l_attr = {
        "L": [
            {"S": "a"},
            {"N": "1E+2"},
            {"B": b"\x00"},
            {"NULL": True},
            {"BOOL": True},
            {"M": {"k": {"N": ".5"}, "gone": {"NULL": True}}},
            {"L": [{"SS": ["z"]}]},
        ]
    }
    item = {"pk": {"S": "1"}, "l": l_attr}
    plain = unnest([item], ["pk"], "FULL").column("l").to_pylist()[0]
    assert plain == ['"a"', "1E+2", '"AA=="', "null", "true", '{"k":0.5}', '[["z"]]']
    typed = unnest([item], ["pk"], "NOUNNEST").column("value").to_pylist()[0]["l"]["L"]
    assert [json.loads(t) for t in typed] == [
        {"S": "a"},
        {"N": "1E+2"},
        {"B": "AA=="},
        {"NULL": True},
        {"BOOL": True},
        {"M": {"k": {"N": ".5"}, "gone": {"NULL": True}}},
        {"L": [{"SS": ["z"]}]},
    ]


def test_numbers_at_the_edges_of_dynamodb_and_double() -> None:
    numbers = [
        "9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "-1E-130",
        "0",
        "12345678901234567890123456789012345678",
        "9007199254740993",
    ]
    items = [{"pk": {"N": n}, "v": {"N": n}} for n in numbers]
    table = unnest(items, ["pk"], "FULL")
    assert table.column("v").to_pylist() == [float(n) for n in numbers]
    assert table.column("pk").type == pa.float64()


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "abc", "1e400"])
def test_invalid_numbers_are_refused(bad: str) -> None:
    with pytest.raises(UnnestError, match=f"attribute 'v' has an invalid DynamoDB number '{bad}'"):
        unnest([{"pk": {"S": "1"}, "v": {"N": bad}}], ["pk"], "FULL")


def test_binary_may_arrive_as_base64_text() -> None:
    items = [{"pk": {"S": "1"}, "b": {"B": base64.b64encode(b"\x01\x02").decode()}}]
    assert unnest(items, ["pk"], "FULL").column("b").to_pylist() == [b"\x01\x02"]


# -- conflicts -----------------------------------------------------------------------------------

CONFLICTING = [
    {"pk": {"S": "1"}, "x": {"N": "1.50"}, "m": {"M": {"y": {"BOOL": True}}}},
    {"pk": {"S": "2"}, "x": {"S": "one"}, "m": {"M": {"y": {"B": b"\xff"}}}},
    {"pk": {"S": "3"}, "x": {"M": {"k": {"N": "2"}}}, "m": {"S": "flat"}},
    {"pk": {"S": "4"}, "x": {"BOOL": False}},
]


def test_toplevel_conflicts_become_string() -> None:
    table = unnest(CONFLICTING, ["pk"], "TOPLEVEL")
    assert table.schema.field("x").type == pa.string()
    assert table.schema.field("m").type == pa.string()
    assert table.column("x").to_pylist() == ["1.50", "one", '{"k":2}', "false"]
    assert table.column("m").to_pylist() == ['{"y":true}', '{"y":"/w=="}', "flat", None]


def test_toplevel_conflicts_inside_a_struct_stay_inside() -> None:
    items = [
        {"pk": {"S": "1"}, "m": {"M": {"y": {"BOOL": True}, "z": {"N": "1"}}}},
        {"pk": {"S": "2"}, "m": {"M": {"y": {"S": "yes"}}}},
    ]
    table = unnest(items, ["pk"], "TOPLEVEL")
    assert table.schema.field("m").type == pa.struct([("y", pa.string()), ("z", pa.float64())])
    assert table.column("m").to_pylist() == [{"y": "true", "z": 1.0}, {"y": "yes", "z": None}]


def test_full_conflicts_become_string_per_leaf() -> None:
    table = unnest(CONFLICTING, ["pk"], "FULL")
    assert table.schema == pa.schema(
        [
            ("pk", pa.string()),
            ("x", pa.string()),
            ("m.y", pa.string()),
            ("x.k", pa.float64()),
            ("m", pa.string()),
        ]
    )
    assert table.column("m.y").to_pylist() == ["true", "/w==", None, None]


def test_nounnest_never_conflicts() -> None:
    table = unnest(CONFLICTING, ["pk"], "NOUNNEST")
    x = table.schema.field("value").type.field("x").type
    assert [x.field(i).name for i in range(x.num_fields)] == ["N", "S", "M", "BOOL"]
    assert [reconstruct(r, "NOUNNEST")["x"] for r in table.to_pylist()] == [
        1.5,
        "one",
        {"k": 2.0},
        False,
    ]


def test_string_sets_and_lists_share_a_column() -> None:
    items = [{"pk": {"S": "1"}, "t": {"SS": ["a"]}}, {"pk": {"S": "2"}, "t": {"L": [{"S": "a"}]}}]
    table = unnest(items, ["pk"], "TOPLEVEL")
    assert table.schema.field("t").type == pa.list_(pa.string())
    assert table.column("t").to_pylist() == [["a"], ['"a"']]


# -- keys, item validation, limits ---------------------------------------------------------------


def test_keys_come_first_and_must_be_scalars() -> None:
    items = [{"z": {"S": "z"}, "sk": {"N": "2"}, "pk": {"S": "1"}}]
    assert unnest(items, ["pk", "sk"], "TOPLEVEL").column_names == ["pk", "sk", "z"]
    assert unnest(items, ["pk", "sk"], "NOUNNEST").column_names == ["pk", "sk", "value"]
    for bad in ({"z": {"S": "z"}}, {"pk": {"NULL": True}}, {"pk": {"SS": ["a"]}}):
        with pytest.raises(UnnestError, match="item 0 has no key attribute 'pk' of type S, N or B"):
            unnest([bad], ["pk"], "FULL")


def test_a_key_named_value_cannot_use_nounnest() -> None:
    with pytest.raises(UnnestError, match="key attribute 'value' collides"):
        unnest([{"value": {"S": "1"}}], ["value"], "NOUNNEST")
    assert unnest([{"value": {"S": "1"}}], ["value"], "TOPLEVEL").column_names == ["value"]


def test_deserialized_items_are_refused_with_a_hint() -> None:
    with pytest.raises(UnnestError, match=r"attribute 'price' is not DynamoDB JSON.*low-level"):
        unnest([{"pk": {"S": "1"}, "price": 9.5}], ["pk"], "FULL")
    with pytest.raises(UnnestError, match=re.escape("attribute 'm.x' is not DynamoDB JSON")):
        unnest([{"pk": {"S": "1"}, "m": {"M": {"x": {"Q": 1}}}}], ["pk"], "TOPLEVEL")


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ({"S": 1}, "is S but not a string: 1"),
        ({"BOOL": "yes"}, "is BOOL but not true or false: 'yes'"),
        ({"N": 5}, "is N but not number text: 5"),
        ({"L": "x"}, "is L but not a list: 'x'"),
        ({"L": [{"N": "x"}]}, "attribute 'a[0]' has an invalid DynamoDB number 'x'"),
        ({"M": [1]}, "attribute 'a' has an M payload that is not a map"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_malformed_payloads_name_the_attribute(mode: str, attr: Any, message: str) -> None:
    with pytest.raises(UnnestError, match=re.escape(message)):
        unnest([{"pk": {"S": "1"}, "a": attr}], ["pk"], mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_colon_in_any_field_name_fails(mode: str) -> None:
    assert issubclass(UnnestError, ZetlError)
    top = {"pk": {"S": "1"}, "a:b": {"S": "x"}}
    with pytest.raises(UnnestError, match=r"attribute 'a:b' has ':' in its name.*FAILED"):
        unnest([top], ["pk"], mode)
    nested = {"pk": {"S": "1"}, "m": {"M": {"n": {"M": {"c:d": {"N": "1"}}}}}}
    with pytest.raises(UnnestError, match=re.escape("attribute 'm.n.c:d' has ':'")):
        unnest([nested], ["pk"], mode)


def wide(columns: int) -> dict[str, Any]:
    return {"pk": {"S": "1"}, **{f"c{i:04d}": {"N": str(i)} for i in range(columns - 1)}}


def test_at_most_1000_columns() -> None:
    assert MAX_COLUMNS == 1000
    assert unnest([wide(1000)], ["pk"], "FULL").num_columns == 1000
    with pytest.raises(UnnestError, match=r"1001 columns \(the 1001st is 'c0999'\).*at most 1000"):
        unnest([wide(1001)], ["pk"], "FULL")
    # TOPLEVEL keeps the same attributes inside one struct column.
    nested = {"pk": {"S": "1"}, "m": {"M": {k: v for k, v in wide(1001).items() if k != "pk"}}}
    assert unnest([nested], ["pk"], "TOPLEVEL").num_columns == 2
    with pytest.raises(UnnestError, match="at most 1000"):
        unnest([nested], ["pk"], "FULL")


def test_the_limit_holds_across_batches() -> None:
    old = unnest([wide(600)], ["pk"], "FULL").schema
    new = pa.schema([(f"d{i}", pa.string()) for i in range(401)])
    with pytest.raises(UnnestError, match="1001 columns"):
        merge_schemas(old, new)


def test_dotted_names_that_collide_in_iceberg_are_refused() -> None:
    items = [{"pk": {"S": "1"}, "a.b": {"S": "x"}, "a": {"M": {"b": {"N": "1"}}}}]
    with pytest.raises(UnnestError, match=re.escape("both named 'a.b'")):
        unnest(items, ["pk"], "TOPLEVEL")
    lists = [
        {"pk": {"S": "1"}, "x": {"SS": ["a"]}},
        {"pk": {"S": "2"}, "x": {"M": {"element": {"S": "e"}}}},
    ]
    with pytest.raises(UnnestError, match=re.escape("both named 'x.element'")):
        unnest(lists, ["pk"], "FULL")


def test_no_items() -> None:
    assert unnest([], ["pk"], "FULL").num_columns == 0
    schema = pa.schema([("pk", pa.string()), ("a", pa.float64())])
    assert unnest([], ["pk"], "FULL", schema=schema).schema == schema


def test_empty_maps_have_no_column() -> None:
    items = [{"pk": {"S": "1"}, "e": {"M": {}}, "f": {"M": {"g": {"M": {}}}}}]
    for mode in MODES:
        table = unnest(items, ["pk"], mode)
        assert reconstruct(table.to_pylist()[0], mode) == {"pk": "1"}, mode
        iceberg_schema(table.schema)


# -- schema drift --------------------------------------------------------------------------------


def test_new_attributes_add_columns_and_conflicts_widen() -> None:
    first = unnest(
        [{"pk": {"S": "1"}, "a": {"N": "1"}, "m": {"M": {"x": {"S": "x"}}}}], ["pk"], "TOPLEVEL"
    )
    batch = [
        {"pk": {"S": "2"}, "b": {"BOOL": True}, "a": {"S": "1E+1"}, "m": {"M": {"y": {"N": "2"}}}}
    ]
    second = unnest(batch, ["pk"], "TOPLEVEL", schema=first.schema)
    assert second.schema == pa.schema(
        [
            ("pk", pa.string()),
            ("a", pa.string()),
            ("m", pa.struct([("x", pa.string()), ("y", pa.float64())])),
            ("b", pa.bool_()),
        ]
    )
    assert second.schema == merge_schemas(first.schema, unnest(batch, ["pk"], "TOPLEVEL").schema)
    assert second.to_pylist() == [{"pk": "2", "a": "1E+1", "m": {"x": None, "y": 2.0}, "b": True}]
    old = conform(first, second.schema)
    assert old.to_pylist() == [{"pk": "1", "a": "1", "m": {"x": "x", "y": None}, "b": None}]


def test_conform_renders_widened_values_as_text() -> None:
    table = pa.table(
        {
            "pk": ["1"],
            "d": [0.1],
            "i": [100.0],
            "b": [b"\x01"],
            "t": [True],
            "l": [["a"]],
            "s": pa.array(
                [{"x": 1.5, "y": None}], pa.struct([("x", pa.float64()), ("y", pa.string())])
            ),
        }
    )
    target = pa.schema([(n, pa.string()) for n in table.column_names])
    assert conform(table, target).to_pylist() == [
        {
            "pk": "1",
            "d": "0.1",
            "i": "100",
            "b": "AQ==",
            "t": "true",
            "l": '["a"]',
            "s": '{"x":1.5}',
        }
    ]
    with pytest.raises(
        UnnestError, match=r"columns \['d', 'i', 'b', 't', 'l', 's'\] are not in the target"
    ):
        conform(table, pa.schema([("pk", pa.string())]))


def test_a_writer_evolves_the_iceberg_table_by_adding_columns(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path).catalog
    catalog.create_namespace("lab")
    first = unnest([{"pk": {"S": "1"}, "a": {"N": "1"}}], ["pk"], "FULL")
    table = catalog.create_table("lab.drift", schema=first.schema)
    table.append(first)
    batch = [{"pk": {"S": "2"}, "a": {"N": "2"}, "m": {"M": {"x": {"SS": ["s"]}}}}]
    second = unnest(batch, ["pk"], "FULL", schema=first.schema)
    with table.update_schema() as update:
        update.union_by_name(second.schema)
    table.append(second)
    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["pk"])
    assert rows == [{"pk": "1", "a": 1.0, "m.x": None}, {"pk": "2", "a": 2.0, "m.x": ["s"]}]


# -- Hypothesis: random items, every mode ----------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "ab", "value", "é ü", "x-y", "n 1", "M", "S"])
DIGITS = st.integers(1, 10**38 - 1)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 to 9.99..E+125."""
    if draw(st.booleans()):
        return draw(
            st.sampled_from(
                [
                    "0",
                    "-0",
                    "0.1",
                    "9007199254740993",
                    "1E-130",
                    "-1E-130",
                    "9.9999999999999999999999999999999999999E+125",
                    "123.4500",
                ]
            )
        )
    coefficient = draw(DIGITS)
    digits = len(str(coefficient))
    exponent = draw(st.integers(-130 - (digits - 1), 125 - (digits - 1)))
    return f"{draw(st.sampled_from(['', '-']))}{coefficient}E{exponent}"


SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=6)),
    st.builds(lambda n: {"N": n}, numbers()),
    st.builds(lambda b: {"B": b}, st.binary(max_size=6)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(
        lambda s: {"SS": s}, st.lists(st.text(max_size=4), min_size=1, max_size=3, unique=True)
    ),
    st.builds(lambda s: {"NS": s}, st.lists(numbers(), min_size=1, max_size=3, unique=True)),
    st.builds(
        lambda s: {"BS": s}, st.lists(st.binary(max_size=4), min_size=1, max_size=3, unique=True)
    ),
)
ATTRS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(NAMES, inner, max_size=3)),
    ),
    max_leaves=8,
)
ITEMS = st.lists(st.dictionaries(NAMES, ATTRS, max_size=4), min_size=1, max_size=4).map(
    lambda bodies: [{"pk": {"S": str(i)}, **body} for i, body in enumerate(bodies)]
)
KIND = {"S": "s", "N": "d", "B": "b", "BOOL": "t", "SS": "ls", "NS": "ld", "BS": "lb", "L": "ls"}


def iceberg_schema(schema: pa.Schema) -> Schema:
    """The Iceberg schema a catalog would create from ``schema``; fails on what Iceberg refuses."""
    converted = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
    pending: list[NestedField] = list(converted.fields)
    while pending:  # Parquet cannot store a struct without fields
        field = pending.pop()
        if isinstance(field.field_type, StructType):
            assert field.field_type.fields, field
            pending.extend(field.field_type.fields)
        elif isinstance(field.field_type, ListType):
            pending.append(field.field_type.element_field)
    pq.write_table(
        pa.table({n: pa.nulls(1, t) for n, t in zip(schema.names, schema.types, strict=True)}),
        io.BytesIO(),
    )
    return converted


def one(attr: dict[str, Any]) -> tuple[str, Any]:
    [(desc, payload)] = attr.items()
    return desc, payload


def conflicts(items: list[dict[str, Any]], mode: str) -> set[tuple[str, ...]]:
    """Paths whose items disagree on the Arrow type: the oracle for "conflicts to string"."""
    kinds: dict[tuple[str, ...], set[str]] = defaultdict(set)

    def visit(attrs: dict[str, Any], path: tuple[str, ...]) -> None:
        for name, attr in attrs.items():
            desc, payload = one(attr)
            here = (*path, name)
            if desc == "M":
                if mode == "TOPLEVEL" and not empty(attr):
                    kinds[here].add("struct")
                visit(payload, here)
            elif desc != "NULL":
                kinds[here].add(KIND[desc])

    if mode != "NOUNNEST":
        for item in items:
            visit(item, ())
    return {path for path, seen in kinds.items() if len(seen) > 1}


def plain(attr: dict[str, Any]) -> Any:
    """A value as plain JSON would carry it (numbers exact), for comparing JSON text."""
    desc, payload = one(attr)
    if desc in ("N", "NS"):
        return Decimal(payload) if desc == "N" else [Decimal(n) for n in payload]
    if desc in ("B", "BS"):
        encode = lambda b: base64.b64encode(b).decode()  # noqa: E731
        return encode(payload) if desc == "B" else [encode(b) for b in payload]
    if desc == "L":
        return [plain(a) for a in payload]
    if desc == "M":
        return {k: plain(a) for k, a in payload.items() if "NULL" not in a}
    return None if desc == "NULL" else payload


def wire(attr: dict[str, Any]) -> Any:
    """DynamoDB JSON of a value, as json.loads reads it back."""
    desc, payload = one(attr)
    if desc in ("B", "BS"):
        return {desc: plain(attr)}
    if desc == "L":
        return {"L": [wire(a) for a in payload]}
    if desc == "M":
        return {"M": {k: wire(a) for k, a in payload.items()}}
    return {desc: payload}


def empty(attr: dict[str, Any]) -> bool:
    desc, payload = one(attr)
    return desc == "M" and all(empty(a) or "NULL" in a for a in payload.values())


def loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def check_text(attr: dict[str, Any], got: Any) -> None:
    desc, payload = one(attr)
    assert isinstance(got, str)
    if desc == "S":
        assert got == payload
    elif desc == "N":
        assert Decimal(got) == Decimal(payload)
    elif desc == "B":
        assert base64.b64decode(got) == payload
    elif desc == "BOOL":
        assert got == ("true" if payload else "false")
    else:
        assert loads(got) == plain(attr)


def check_value(attr: dict[str, Any], got: Any, typed: bool) -> None:
    desc, payload = one(attr)
    if desc in ("S", "B", "BOOL", "SS", "BS"):
        assert got == (list(payload) if desc in ("SS", "BS") else payload)
        assert type(got) is type(payload) or desc in ("SS", "BS")
    elif desc == "N":
        assert got == float(payload)
    elif desc == "NS":
        assert got == [float(n) for n in payload]
    else:
        assert desc == "L" and len(got) == len(payload)
        for element, text in zip(payload, got, strict=True):
            assert json.loads(text) == wire(element) if typed else loads(text) == plain(element)


def check(
    attr: dict[str, Any],
    got: Any,
    path: tuple[str, ...],
    bad: set[tuple[str, ...]],
    typed: bool,
    flat: bool = False,
) -> None:
    """``got`` (reconstructed) holds ``attr`` up to the documented mappings. ``flat`` (FULL): a
    map is flattened into its own dot-named columns even where other items hold a scalar under
    its name, so only scalars there read back as conflict text."""
    desc, payload = one(attr)
    if path in bad and not (flat and desc == "M"):
        check_text(attr, got)
        return
    if desc != "M":
        check_value(attr, got, typed)
        return
    got = got or {}
    assert isinstance(got, dict)
    kept = {k: a for k, a in payload.items() if "NULL" not in a}
    assert set(got) <= set(kept), (path, got)
    for name, child in kept.items():
        here = (*path, name)
        if empty(child):
            assert not squash(got.get(name)), here  # an empty map reads back absent (or empty)
        else:
            assert name in got, here
            check(child, got[name], here, bad, typed, flat)


def squash(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: s for k, v in value.items() if (s := squash(v)) not in (None, {})}
        return kept or None
    return value


@settings(max_examples=120, deadline=None)
@given(items=ITEMS, mode=st.sampled_from(MODES))
@example(  # found by Hypothesis: a scalar conflict (B, S) beside a map under the same name
    items=[
        {"pk": {"S": "0"}, "a": {"S": ""}, "b": {"NULL": True}, "S": {"B": b""}},
        {"pk": {"S": "1"}, "S": {"S": ""}},
        {"pk": {"S": "2"}, "S": {"M": {"a": {"S": ""}}}},
    ],
    mode="FULL",
)
def test_nothing_lost_beyond_the_documented_mappings(
    items: list[dict[str, Any]], mode: str
) -> None:
    table = unnest(items, ["pk"], mode)
    iceberg_schema(table.schema)
    bad = conflicts(items, mode)
    rows = table.to_pylist()
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        check({"M": item}, reconstruct(row, mode), (), bad, mode == "NOUNNEST", mode == "FULL")


def sorted_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(t):
        fields = sorted((t.field(i) for i in range(t.num_fields)), key=lambda f: f.name)
        return pa.struct([pa.field(f.name, sorted_type(f.type)) for f in fields])
    return t


@settings(max_examples=60, deadline=None)
@given(items=ITEMS, mode=st.sampled_from(MODES), split=st.integers(0, 4))
def test_batches_merge_to_the_schema_of_one_batch(
    items: list[dict[str, Any]], mode: str, split: int
) -> None:
    head, tail = items[:split], items[split:]
    first = unnest(head, ["pk"], mode)
    second = unnest(tail, ["pk"], mode, schema=first.schema)
    merged = merge_schemas(first.schema, unnest(tail, ["pk"], mode).schema)
    assert second.schema == merged
    whole = unnest(items, ["pk"], mode)
    assert sorted_type(pa.struct(list(merged))) == sorted_type(pa.struct(list(whole.schema)))
    iceberg_schema(merged)
    # The second batch is what one batch gives; the first, conformed, keeps every value.
    assert second.to_pylist() == whole.to_pylist()[split:]
    old = conform(first, merged)
    assert old.schema == merged
    for field in first.schema:
        if field.type == merged.field(field.name).type:
            assert old.column(field.name).equals(first.column(field.name))
        else:
            assert old.column(field.name).is_null().equals(first.column(field.name).is_null())
    pa.concat_tables([old, second])
