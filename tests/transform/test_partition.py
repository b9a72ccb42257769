"""DynamoDB PartitionSpec: Iceberg specs, in-place conversion, real Iceberg writes, conflicts."""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.types import (
    BinaryType,
    DoubleType,
    IcebergType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from zetl_nb.core.errors import ZetlError
from zetl_nb.transform.partition import (
    DEFAULT_BUCKETS,
    MAX_TIMESTAMP_US,
    MIN_TIMESTAMP_US,
    PartitionError,
    convert_partition_columns,
    converted_schema,
    drop_failed_rows,
    iceberg_partition_spec,
    spec_conflicts,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_FUNCTIONS = ("year", "month", "day", "hour")
CONVERSIONS = ("epoch_sec", "epoch_milli", "iso")

# Instants that straddle year, month, day and hour boundaries.
INSTANTS = [
    datetime(2023, 12, 31, 23, 30, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 30, tzinfo=UTC),
    datetime(2024, 1, 1, 1, 15, 30, 250000, tzinfo=UTC),
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2025, 6, 15, 8, 0, tzinfo=UTC),
]
# The same instants as ISO strings, in the forms the guide's "iso" has to cover.
ISO_FORMS = [
    "2023-12-31T23:30:00Z",
    "2024-01-01T01:30:00+01:00",  # 00:30 UTC, a different UTC day than its local day
    "2024-01-01 01:15:30.25",  # no offset: UTC
    "2024-02-29T07:00:00-0500",
    "20250615T080000Z",
]


def spec_of(field: str, function: str, conversion: str | None = None) -> list[dict[str, str]]:
    entry = {"FieldName": field, "FunctionSpec": function}
    if conversion is not None:
        entry["ConversionSpec"] = conversion
    return [entry]


def schema_of(*columns: tuple[str, IcebergType]) -> Schema:
    return Schema(
        *(NestedField(i, n, t, required=False) for i, (n, t) in enumerate(columns, start=1))
    )


def encoded(conversion: str) -> pa.Array:
    """INSTANTS as the source stores them under ``conversion`` (DynamoDB N arrives as double)."""
    if conversion == "iso":
        return pa.array(ISO_FORMS, pa.string())
    scale = 1 if conversion == "epoch_sec" else 1000
    return pa.array([(t - EPOCH).total_seconds() * scale for t in INSTANTS], pa.float64())


def partition_value(function: str, t: datetime) -> int:
    """Iceberg's time transforms, from the spec, in plain Python."""
    if function == "year":
        return t.year - 1970
    if function == "month":
        return (t.year - 1970) * 12 + t.month - 1
    if function == "day":
        return (t.date() - date(1970, 1, 1)).days
    return (t - EPOCH) // timedelta(hours=1)


# -- a real catalog -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Iterator[SqlCatalog]:
    home = tempfile.mkdtemp(prefix="zetl-partition-")
    cat = SqlCatalog("partition", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}")
    cat.create_namespace("lake")
    yield cat
    shutil.rmtree(home, ignore_errors=True)


_names = iter(range(10**6))


def write(
    catalog: SqlCatalog,
    rows: pa.Table,
    source: Schema,
    spec: list[dict[str, str]] | None,
    keys: list[str],
) -> Any:
    """Convert, create the table as the engine would, append, return the pyiceberg table."""
    converted, failures = convert_partition_columns(rows, spec)
    assert failures == []
    schema = converted_schema(source, spec)
    table = catalog.create_table(
        ("lake", f"t{next(_names)}"),
        schema=schema,
        partition_spec=iceberg_partition_spec(schema, spec, keys),
    )
    table.append(converted)
    return table


def files_by_partition(table: Any) -> dict[tuple[Any, ...], pa.Table]:
    """Each data file's partition tuple → the rows in that file."""
    out: dict[tuple[Any, ...], pa.Table] = {}
    for task in table.scan().plan_files():
        key = tuple(task.file.partition)
        assert key not in out, "one file per partition for a single append"
        out[key] = pq.read_table(task.file.file_path.removeprefix("file://"))
    return out


# -- each function x each conversion, written to Iceberg -----------------------------------------


@pytest.mark.parametrize("conversion", CONVERSIONS)
@pytest.mark.parametrize("function", TIME_FUNCTIONS)
def test_time_partitions_land_where_iceberg_puts_them(
    catalog: SqlCatalog, function: str, conversion: str
) -> None:
    source_type = StringType() if conversion == "iso" else DoubleType()
    rows = pa.table({"pk": [f"p{i}" for i in range(len(INSTANTS))], "ts": encoded(conversion)})
    spec = spec_of("ts", function, conversion)
    table = write(catalog, rows, schema_of(("pk", StringType()), ("ts", source_type)), spec, ["pk"])

    # In place: same column, now timestamptz holding the instants.
    assert table.schema().find_field("ts").field_type == TimestamptzType()
    assert [f.name for f in table.spec().fields] == [f"ts_{function}"]
    assert table.scan().to_arrow().sort_by("pk").column("ts").to_pylist() == INSTANTS

    files = files_by_partition(table)
    assert set(files) == {(partition_value(function, t),) for t in INSTANTS}
    for (value,), data in files.items():
        assert {partition_value(function, t) for t in data.column("ts").to_pylist()} == {value}
    assert sum(data.num_rows for data in files.values()) == len(INSTANTS)


def test_identity_partitions_by_value_and_ignores_a_conversion_spec(catalog: SqlCatalog) -> None:
    rows = pa.table({"pk": ["a", "b", "c", "d"], "category": ["books", "toys", "books", None]})
    spec = spec_of("category", "identity", "epoch_sec")  # ignored: identity converts nothing
    source = schema_of(("pk", StringType()), ("category", StringType()))
    table = write(catalog, rows, source, spec, ["pk"])

    assert table.schema().find_field("category").field_type == StringType()
    partitions = table.inspect.partitions().to_pylist()
    counts = {p["partition"]["category"]: p["record_count"] for p in partitions}
    assert counts == {"books": 2, "toys": 1, None: 1}
    for (value,), data in files_by_partition(table).items():
        assert set(data.column("category").to_pylist()) == {value}


def test_the_guides_example_month_of_epoch_milli_then_identity(catalog: SqlCatalog) -> None:
    # The guide's PartitionSpec: month(timestamp_col, epoch_milli), then identity(category).
    spec = [
        {"FieldName": "timestamp_col", "FunctionSpec": "month", "ConversionSpec": "epoch_milli"},
        {"FieldName": "category", "FunctionSpec": "identity"},
    ]
    rows = pa.table(
        {
            "pk": ["a", "b", "c"],
            "timestamp_col": [1701388800000.0, 1704067200000.0, 1704067200001.0],
            "category": ["x", "x", "y"],
        }
    )
    source = schema_of(
        ("pk", StringType()), ("timestamp_col", DoubleType()), ("category", StringType())
    )
    table = write(catalog, rows, source, spec, ["pk"])
    assert [f.name for f in table.spec().fields] == ["timestamp_col_month", "category"]
    dec_2023, jan_2024 = 53 * 12 + 11, 54 * 12
    assert set(files_by_partition(table)) == {(dec_2023, "x"), (jan_2024, "x"), (jan_2024, "y")}


# -- the default: bucketing the hash key ----------------------------------------------------------


def test_default_spec_buckets_the_hash_key() -> None:
    schema = schema_of(("pk", StringType()), ("sk", StringType()), ("v", DoubleType()))
    for spec in (None, []):
        (field,) = iceberg_partition_spec(schema, spec, ["pk", "sk"]).fields
        assert field.source_id == 1  # the hash key, not the sort key
        assert field.transform == BucketTransform(DEFAULT_BUCKETS)
        assert field.name == "pk_bucket"
    custom = iceberg_partition_spec(schema, None, ["pk"], buckets=3)
    assert custom.fields[0].transform == BucketTransform(3)


def test_default_bucket_count_is_documented() -> None:
    import zetl_nb.transform.partition as module

    assert DEFAULT_BUCKETS == 8
    assert "bucket[8]" in (module.__doc__ or "") + str(
        iceberg_partition_spec(schema_of(("pk", StringType())), None, ["pk"])
    )


def test_default_buckets_write_by_icebergs_hash(catalog: SqlCatalog) -> None:
    # Iceberg spec test vector: murmur3_x86_32("iceberg") = 1210000089, and 1210000089 % 8 == 1.
    keys = ["iceberg", "iceberg", *(f"user#{i}" for i in range(40))]
    rows = pa.table({"pk": keys, "sk": [f"s{i}" for i in range(len(keys))]})
    source = schema_of(("pk", StringType()), ("sk", StringType()))
    table = write(catalog, rows, source, None, ["pk", "sk"])

    files = files_by_partition(table)
    assert 1 < len(files) <= DEFAULT_BUCKETS
    iceberg_bucket = [
        b for (b,), data in files.items() if "iceberg" in data.column("pk").to_pylist()
    ]
    assert iceberg_bucket == [1]
    # Items of one hash key share a bucket (the sort key does not spread them).
    owners = {k: {b for (b,), d in files.items() if k in d.column("pk").to_pylist()} for k in keys}
    assert all(len(b) == 1 for b in owners.values())


def test_a_hash_key_iceberg_cannot_bucket_leaves_the_table_unpartitioned() -> None:
    numbers = schema_of(("pk", DoubleType()))  # DynamoDB N → double; no bucket for doubles
    assert iceberg_partition_spec(numbers, None, ["pk"]).fields == ()
    assert iceberg_partition_spec(numbers, None, []).fields == ()
    binary = schema_of(("pk", BinaryType()))
    assert len(iceberg_partition_spec(binary, None, ["pk"]).fields) == 1


# -- errors ---------------------------------------------------------------------------------------


def test_more_than_ten_fields_are_rejected() -> None:
    schema = schema_of(*((f"c{i}", StringType()) for i in range(11)))
    spec = [{"FieldName": f"c{i}", "FunctionSpec": "identity"} for i in range(11)]
    with pytest.raises(PartitionError, match="has 11 fields; at most 10"):
        iceberg_partition_spec(schema, spec, ["c0"])
    assert len(iceberg_partition_spec(schema, spec[:10], ["c0"]).fields) == 10


def test_a_missing_partition_column_names_the_column_and_the_fix() -> None:
    schema = schema_of(("pk", StringType()), ("created", StringType()))
    with pytest.raises(PartitionError) as info:
        iceberg_partition_spec(schema, spec_of("created_at", "day", "iso"), ["pk"])
    err = info.value
    assert isinstance(err, ZetlError)
    assert err.column == "created_at"
    assert "'created_at' is not a column of the target table" in err.message
    assert "'created'" in err.message  # the columns there are, to spot the typo
    assert "Fix the FieldName in TargetTableConfig.PartitionSpec" in err.message


def test_a_missing_hash_key_is_an_error() -> None:
    with pytest.raises(PartitionError, match="hash key 'pk' is not a column") as info:
        iceberg_partition_spec(schema_of(("id", StringType())), None, ["pk"])
    assert info.value.column == "pk"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (spec_of("ts", "week", "iso"), "FunctionSpec 'week' is not valid"),
        (spec_of("ts", "day"), "ConversionSpec is required with FunctionSpec 'day'"),
        (spec_of("ts", "day", "epoch_nano"), "ConversionSpec 'epoch_nano' is not valid"),
        (spec_of("info", "identity"), "is a struct<.*>, not a single value"),
        (spec_of("info.at", "day", "iso"), "nested inside a struct.*UnnestSpec FULL"),
        (
            spec_of("ts", "year", "iso") + spec_of("ts", "hour", "iso"),
            "partitions column 'ts' twice \\('year' and 'hour'\\).*one partition field per column",
        ),
        (spec_of("ts", "identity") + spec_of("ts", "day", "iso"), "column 'ts' twice"),
    ],
)
def test_invalid_specs(spec: list[dict[str, str]], message: str) -> None:
    info_type = StructType(NestedField(10, "at", StringType(), required=False))
    schema = schema_of(("pk", StringType()), ("ts", StringType()), ("info", info_type))
    with pytest.raises(PartitionError, match=message):
        iceberg_partition_spec(schema, spec, ["pk"])


@pytest.mark.parametrize(
    ("values", "conversion"),
    [
        (pa.array([True, False]), "epoch_sec"),
        (pa.array([[1.0], [2.0]]), "epoch_milli"),
        (pa.array([1.0, 2.0]), "iso"),
    ],
)
def test_a_column_type_that_cannot_hold_time_is_an_error(values: pa.Array, conversion: str) -> None:
    rows = pa.table({"ts": values})
    with pytest.raises(PartitionError, match="cannot turn into a timestamp") as info:
        convert_partition_columns(rows, spec_of("ts", "day", conversion))
    assert info.value.column == "ts"


# -- conversion: failures, nulls, in place --------------------------------------------------------


def test_failed_conversions_are_reported_per_row_not_raised() -> None:
    rows = pa.table(
        {
            "pk": list("abcdefg"),
            "iso": ["2024-01-15T10:00Z", "yesterday", None, "2024-02-30", "2024-13-01", "x", "9"],
            "ms": ["1700000000000", "1e3", "soon", None, "nan", "1e20", "-1"],
        }
    )
    spec = spec_of("iso", "day", "iso") + spec_of("ms", "month", "epoch_milli")
    converted, failures = convert_partition_columns(rows, spec)

    assert [i for i, _ in failures] == [1, 2, 3, 4, 5, 6]
    reasons = dict(failures)
    assert reasons[1] == (
        "PartitionSpec column 'iso' (ConversionSpec 'iso'): 'yesterday' is not an ISO-8601 "
        "timestamp such as '2024-01-15T10:20:30Z'"
    )
    assert reasons[2] == (
        "PartitionSpec column 'ms' (ConversionSpec 'epoch_milli'): 'soon' is not a number of "
        "milliseconds since 1970-01-01 UTC"
    )
    assert "'2024-02-30' is not a valid date and time" in reasons[3]
    assert "'2024-13-01' is not a valid date and time" in reasons[4]
    assert "; " in reasons[4] and "'nan' is not a number" in reasons[4]
    assert "'1e20' is outside 0001-01-01 to 9999-12-31 UTC" in reasons[5]
    assert "'9' is not an ISO-8601 timestamp" in reasons[6] and "ms" not in reasons[6]

    # Failed cells are NULL, good cells converted, other columns untouched, rows kept in place.
    assert (
        converted.column("iso").to_pylist()[:3]
        == [datetime(2024, 1, 15, 10, tzinfo=UTC)] + [None] * 2
    )
    assert converted.column("ms").to_pylist()[1] == EPOCH + timedelta(seconds=1)
    assert converted.column("pk").to_pylist() == list("abcdefg")
    assert drop_failed_rows(converted, failures).column("pk").to_pylist() == ["a"]
    assert drop_failed_rows(converted, []) is converted


def test_nulls_and_absent_columns_are_not_failures() -> None:
    rows = pa.table({"pk": ["a", "b"], "ts": pa.array([None, 1.0], pa.float64())})
    spec = spec_of("ts", "hour", "epoch_sec") + spec_of("not_in_batch", "day", "iso")
    converted, failures = convert_partition_columns(rows, spec)
    assert failures == []
    assert converted.column("ts").to_pylist() == [None, EPOCH + timedelta(seconds=1)]
    assert converted.column_names == ["pk", "ts"]


def test_conversion_is_in_place_and_idempotent() -> None:
    field = pa.field("ts", pa.string(), metadata={b"PARQUET:field_id": b"7"})
    rows = pa.table({"a": [1], "ts": ["2024-01-15T10:00:00+02:00"], "z": [2]}).cast(
        pa.schema([pa.field("a", pa.int64()), field, pa.field("z", pa.int64())])
    )
    spec = spec_of("ts", "day", "iso")
    once, _ = convert_partition_columns(rows, spec)
    assert once.column_names == ["a", "ts", "z"]
    assert once.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert once.schema.field("ts").metadata == {b"PARQUET:field_id": b"7"}
    twice, failures = convert_partition_columns(once, spec)
    assert failures == [] and twice.equals(once)
    assert once.column("ts").to_pylist() == [datetime(2024, 1, 15, 8, tzinfo=UTC)]


def test_timestamp_sources_keep_their_instant() -> None:
    naive = pa.array([datetime(2024, 1, 1, 12)], pa.timestamp("ns"))
    berlin = pa.array([datetime(2024, 1, 1, 12, tzinfo=UTC)], pa.timestamp("s", tz="Europe/Berlin"))
    rows = pa.table({"n": naive, "b": berlin})
    spec = spec_of("n", "hour", "iso") + spec_of("b", "hour", "iso")
    converted, failures = convert_partition_columns(rows, spec)
    assert failures == []
    noon = datetime(2024, 1, 1, 12, tzinfo=UTC)  # naive is taken as UTC
    assert converted.column("n").to_pylist() == [noon] == converted.column("b").to_pylist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
        ("2024-01-15T10", datetime(2024, 1, 15, 10, tzinfo=UTC)),
        ("2024-01-15t10:20", datetime(2024, 1, 15, 10, 20, tzinfo=UTC)),
        ("2024-01-15T10:20:30z", datetime(2024, 1, 15, 10, 20, 30, tzinfo=UTC)),
        ("2024-01-15T10:20:30,5+02", datetime(2024, 1, 15, 8, 20, 30, 500000, tzinfo=UTC)),
        ("2024-01-15T10:20:30.123456789Z", datetime(2024, 1, 15, 10, 20, 30, 123456, tzinfo=UTC)),
        ("  20240115T1020-0130 ", datetime(2024, 1, 15, 11, 50, tzinfo=UTC)),
        ("2024-02-29T00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2023-02-29", None),
        ("2024-01-15Z", None),  # a zone needs a time
        ("2024-01-15+02:00", None),
        ("1900-02-29", None),
        ("2024-01-15T24:00:00", None),
        ("2024-01-15T10:20:60", None),
        ("2024-01-15T10:20:30+24:00", None),
        ("2024-W03-1", None),
        ("2024-015", None),
        ("2024-0115", None),
        ("0000-01-01", None),
        ("9999-12-31T23:00-01:00", None),
        ("", None),
    ],
)
def test_iso_forms(text: str, expected: datetime | None) -> None:
    converted, failures = convert_partition_columns(
        pa.table({"ts": [text]}), spec_of("ts", "day", "iso")
    )
    assert converted.column("ts").to_pylist() == [expected]
    assert (failures == []) == (expected is not None)


def test_fast_and_field_paths_agree() -> None:
    # Alone, each string is one Arrow's ISO parser reads; with a lowercase "t" in the batch the
    # whole batch is parsed field by field. Both must give the same instants.
    texts = ["2024-01-15T10:20:30Z", "2024-01-15T10:20:30.5+05:30", "0001-01-01T00:30:00+01:00"]
    alone = [convert_one(pa.array([t]), "iso")[0] for t in texts]
    mixed = convert_one(pa.array([*texts, "2024-01-15t10:20"]), "iso")
    assert alone == mixed[:3]
    assert alone == [
        datetime(2024, 1, 15, 10, 20, 30, tzinfo=UTC),
        datetime(2024, 1, 15, 4, 50, 30, 500000, tzinfo=UTC),
        None,
    ]
    naive = ["2024-01-15 10:20", "2024-01-15"]
    assert convert_one(pa.array(naive), "iso") == convert_one(pa.array([*naive, "x"]), "iso")[:2]


def test_epoch_edges() -> None:
    values = pa.array([MIN_TIMESTAMP_US // 1000, MAX_TIMESTAMP_US // 1000, -1, 2**62], pa.int64())
    converted, failures = convert_partition_columns(
        pa.table({"ms": values}), spec_of("ms", "year", "epoch_milli")
    )
    assert converted.column("ms").to_pylist()[:3] == [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        EPOCH - timedelta(milliseconds=1),
    ]
    assert [i for i, _ in failures] == [3]


# -- conflicts with an existing table -------------------------------------------------------------


def test_spec_conflicts() -> None:
    source = schema_of(("pk", StringType()), ("ts", StringType()), ("cat", StringType()))
    day = spec_of("ts", "day", "iso")
    table_schema = converted_schema(source, day)
    table_spec = iceberg_partition_spec(table_schema, day, ["pk"])

    assert spec_conflicts(table_spec, table_schema, day, ["pk"]) is None
    assert spec_conflicts(table_spec, table_schema, spec_of("ts", "hour", "iso"), ["pk"]) == (
        "the table is partitioned by day(ts); its table properties now ask for hour(ts)"
    )
    reordered = spec_of("cat", "identity") + day
    assert "identity(cat), day(ts)" in (
        spec_conflicts(table_spec, table_schema, reordered, ["pk"]) or ""
    )
    assert "bucket[8](pk)" in (spec_conflicts(table_spec, table_schema, None, ["pk"]) or "")

    default = iceberg_partition_spec(source, None, ["pk"])
    assert spec_conflicts(default, source, None, ["pk"]) is None
    assert spec_conflicts(default, source, [], ["pk"]) is None
    assert "bucket[16](pk)" in (spec_conflicts(default, source, None, ["pk"], buckets=16) or "")

    # Same partitioning, but the column would change type: string → timestamptz.
    string_day = iceberg_partition_spec(source, day, ["pk"])
    assert spec_conflicts(string_day, source, day, ["pk"]) == (
        "column 'ts' is string in the table; its ConversionSpec now makes it timestamptz"
    )
    with pytest.raises(PartitionError, match="'gone' is not a column"):
        spec_conflicts(table_spec, table_schema, spec_of("gone", "identity"), ["pk"])


def test_converted_schema_retypes_only_time_partitioned_columns() -> None:
    source = schema_of(("pk", StringType()), ("ts", DoubleType()), ("cat", StringType()))
    spec = spec_of("ts", "day", "epoch_sec") + spec_of("cat", "identity")
    out = converted_schema(source, spec)
    assert [(f.field_id, f.name, f.field_type) for f in out.fields] == [
        (1, "pk", StringType()),
        (2, "ts", TimestamptzType()),
        (3, "cat", StringType()),
    ]
    assert converted_schema(source, None) == source
    spec_fields = iceberg_partition_spec(out, spec, ["pk"]).fields
    assert [f.transform for f in spec_fields] == [DayTransform(), IdentityTransform()]


# -- properties: the same instant Python's datetime gives -----------------------------------------


def expect(convert: Any) -> datetime | None:
    """Python's answer, or None where Python cannot represent it."""
    try:
        result: datetime = convert()
        return result.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None


def convert_one(values: pa.Array, conversion: str) -> list[datetime | None]:
    converted, failures = convert_partition_columns(
        pa.table({"v": values}), spec_of("v", "day", conversion)
    )
    out: list[datetime | None] = converted.column("v").to_pylist()
    assert {i for i, _ in failures} == {i for i, v in enumerate(out) if v is None}
    return out


SECONDS = st.floats(min_value=-62_135_596_800.0, max_value=253_402_300_800.0)
MILLIS = st.integers(min_value=MIN_TIMESTAMP_US // 1000 - 5, max_value=MAX_TIMESTAMP_US // 1000 + 5)


@settings(max_examples=60, deadline=None)
@given(st.lists(SECONDS, min_size=1, max_size=20))
def test_epoch_sec_matches_datetime_fromtimestamp(seconds: list[float]) -> None:
    expected = [expect(lambda s=s: datetime.fromtimestamp(s, UTC)) for s in seconds]
    assert convert_one(pa.array(seconds, pa.float64()), "epoch_sec") == expected
    assert convert_one(pa.array([repr(s) for s in seconds]), "epoch_sec") == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(MILLIS, min_size=1, max_size=20))
def test_epoch_milli_matches_datetime_arithmetic(millis: list[int]) -> None:
    expected = [expect(lambda m=m: EPOCH + timedelta(milliseconds=m)) for m in millis]
    assert convert_one(pa.array(millis, pa.int64()), "epoch_milli") == expected
    assert convert_one(pa.array(millis, pa.float64()), "epoch_milli") == expected
    assert convert_one(pa.array([str(m) for m in millis]), "epoch_milli") == expected
    seconds = [m // 1000 for m in millis]
    expected_s = [expect(lambda s=s: EPOCH + timedelta(seconds=s)) for s in seconds]
    assert convert_one(pa.array(seconds, pa.int64()), "epoch_sec") == expected_s


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e13, max_value=1e13), min_size=1, max_size=20))
def test_fractional_epoch_milli_rounds_half_even_at_the_microsecond(millis: list[float]) -> None:
    def python(m: float) -> datetime:
        fraction, whole = math.modf(m)
        return EPOCH + timedelta(milliseconds=int(whole), microseconds=round(fraction * 1000))

    assert convert_one(pa.array(millis, pa.float64()), "epoch_milli") == [
        expect(lambda m=m: python(m)) for m in millis
    ]


@st.composite
def iso_strings(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    minutes = draw(st.none() | st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
    if minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    spec = draw(st.sampled_from(["hours", "minutes", "seconds", "milliseconds", "microseconds"]))
    text = moment.isoformat(sep=draw(st.sampled_from("T t")), timespec=spec)
    if spec == "microseconds":
        text = text[:26] + draw(st.from_regex(r"[0-9]{0,3}", fullmatch=True)) + text[26:]
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text[:-6] + "Z"
    return text


def python_iso(text: str) -> datetime:
    """Python's reading of an ISO string; no zone means UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def assert_iso_like_python(texts: list[str]) -> None:
    expected = [expect(lambda t=t: python_iso(t)) for t in texts]
    assert convert_one(pa.array(texts), "iso") == expected
    # One at a time, a string Arrow's parser reads takes the fast path: same answers.
    assert [convert_one(pa.array([t]), "iso")[0] for t in texts] == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(iso_strings(), min_size=1, max_size=10))
def test_iso_matches_datetime_fromisoformat(texts: list[str]) -> None:
    assert_iso_like_python(texts)


ISO_GRAMMAR = re.sub(
    r"\\d",
    "[0-9]",
    r"(\d{4}-\d{2}-\d{2}|\d{8})"
    r"([T ](\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?|\d{4}(\d{2}(\.\d+)?)?)(Z|[+-]\d{2}(:?\d{2})?)?)?",
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.from_regex(ISO_GRAMMAR, fullmatch=True), min_size=1, max_size=8))
def test_whatever_the_grammar_admits_python_reads_the_same(texts: list[str]) -> None:
    # Random strings of the accepted shape, most of them impossible dates or times: where Python
    # rejects one, so do we; where Python reads one, we read the same instant.
    assert_iso_like_python(texts)
