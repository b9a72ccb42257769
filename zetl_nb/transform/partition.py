"""PartitionSpec for DynamoDB targets: Iceberg partition specs and in-place timestamp conversion.

Follows the Glue guide's "DynamoDB zero-ETL partitioning" and "Partition specification and
schema unnesting guide" pages:

- A ``PartitionSpec`` lists up to 10 ``{"FieldName", "FunctionSpec", "ConversionSpec"}`` entries
  (validated by :mod:`.specs`). ``identity`` partitions by the value; ``year``, ``month``,
  ``day`` and ``hour`` apply Iceberg's time transforms once the column has been converted to a
  timestamp as its ``ConversionSpec`` says (``epoch_sec``, ``epoch_milli`` or ``iso``).
- **In place.** The guide: Glue "performs an in-place conversion on that column" and "converts
  the column type from string to timestamp". The converted column *replaces* the source column,
  same name and field id, as ``timestamptz`` (Arrow ``timestamp[us, tz=UTC]``).
- **Default.** With no partition columns, Glue "partitions data using the DynamoDB table's hash
  key" and "applies bucketing to prevent partition explosion", with no count given:
  :data:`DEFAULT_BUCKETS` is ours.

Choices where the guide is silent:

- **Time zones.** Results are UTC. ISO strings with ``Z`` or an offset (``+02:00``, ``+0200``,
  ``+02``) are converted to UTC; ISO strings without one are taken as UTC, as are naive timestamps.
- **ISO-8601 accepted:** ``YYYY-MM-DD`` or ``YYYYMMDD``, optionally ``T``/``t``/space and
  ``hh``, ``hh:mm``, ``hh:mm:ss``, ``hhmm`` or ``hhmmss``, a fraction of seconds (``.`` or ``,``,
  any digits; past microseconds cut, as ``datetime.fromisoformat`` does), an optional zone
  (``Z``, ``z``, ``±hh``, ``±hhmm``, ``±hh:mm``) after a time; surrounding whitespace ignored.
  Week and ordinal dates, ``24:00`` and leap seconds are not.
- **Epoch values** are numbers of any integer, float or decimal type (DynamoDB ``N`` arrives as
  double) or numeric strings (``"1700000000"``, ``"1.7e9"``). Whole values convert exactly;
  fractions round half to even at the microsecond, like ``datetime.fromtimestamp``.
- **Range.** Results lie in 0001-01-01 .. 9999-12-31 UTC (Python's ``datetime`` range).
- **Failures are per row:** the value becomes NULL and ``(row index, reason)`` is reported, so
  the engine can dead-letter the row or raise NEEDS_ATTENTION with the reason. NULL or absent
  values are not failures (their partition is NULL). A column *type* that cannot hold a time
  (boolean, list, struct, ...) or a partition column missing from the table is a
  :class:`PartitionError`.
- ``ConversionSpec`` is ignored with ``identity`` (the guide: only specify it with time
  functions).
- **One partition field per column.** The API accepts e.g. ``year`` and ``hour`` on one column,
  but pyiceberg's writer refuses redundant partition fields, so that is a :class:`PartitionError`.

>>> spec = [{"FieldName": "created_at", "FunctionSpec": "day", "ConversionSpec": "epoch_milli"}]
>>> import pyarrow as pa
>>> rows, failures = convert_partition_columns(pa.table({"created_at": [1701388800000.0]}), spec)
>>> rows.column("created_at")[0].as_py().isoformat(), failures
('2023-12-01T00:00:00+00:00', [])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import AwsError, ZetlError
from .specs import TIME_FUNCTIONS, validate_partition_spec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_BUCKETS",
    "MAX_TIMESTAMP_US",
    "MIN_TIMESTAMP_US",
    "PartitionError",
    "convert_partition_columns",
    "converted_schema",
    "drop_failed_rows",
    "iceberg_partition_spec",
    "spec_conflicts",
]

DEFAULT_BUCKETS = 8
"""Buckets of the default spec, ``bucket[8](<hash key>)``.

AWS gives no count. Here a table lives on one machine (2 cores) and holds thousands to a few
million items. A commit writes a data file (and, for updates, a delete file) per bucket it
touches, and a CDC batch of scattered keys touches them all: 8 keeps such a commit to 8 + 8 files
and a 100-item lab table to 8 tiny files, while 1,000,000 items still make ~125,000 rows (a few
MB of Parquet) per bucket for DuckDB and Polars to read in parallel and prune by key. Measured on
a busy machine (200k rows): a scattered 1,000-row append took ~40 ms with 8 buckets, ~65 ms with
16, ~85 ms with 32. ``buckets=`` on :func:`iceberg_partition_spec` picks another count.
"""

MIN_TIMESTAMP_US = -62_135_596_800_000_000
"""0001-01-01T00:00:00Z in microseconds since the epoch: the earliest convertible instant."""
MAX_TIMESTAMP_US = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z in microseconds since the epoch: the latest convertible instant."""

_UNIT_US = {"epoch_sec": 1_000_000, "epoch_milli": 1_000}
_UNIT_NAME = {"epoch_sec": "seconds", "epoch_milli": "milliseconds"}
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_ISO_SHAPE = (
    r"^(\d{4}-\d{2}-\d{2}|\d{8})"
    r"([Tt ](\d{2}(:\d{2}(:\d{2}([.,]\d+)?)?)?|\d{4}(\d{2}([.,]\d+)?)?)"
    r"([Zz]|[+-]\d{2}(:?\d{2})?)?)?$"
)
_ISO_PARTS = (
    r"^(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2})(?::?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?)?"
    r"(?:[Zz]|(?P<sg>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?$"
)
_DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class PartitionError(ZetlError):
    """A PartitionSpec cannot be applied to a table: the integration needs attention.

    ``column`` names the partition column at fault, when there is one.
    """

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class _Field:
    """One validated PartitionSpec entry."""

    name: str
    function: str
    conversion: str | None

    @property
    def is_time(self) -> bool:
        return self.function in TIME_FUNCTIONS


def _parse(spec: Sequence[Mapping[str, Any]] | None) -> list[_Field]:
    """Validate with the API's rules (:mod:`.specs`) plus one field per column."""
    if not spec:
        return []
    try:
        validate_partition_spec(list(spec))
    except AwsError as err:
        raise PartitionError(err.message) from None
    fields: dict[str, _Field] = {}
    for s in spec:
        f = _Field(s["FieldName"], s.get("FunctionSpec") or "identity", s.get("ConversionSpec"))
        if f.name in fields:
            raise PartitionError(
                f"PartitionSpec partitions column '{f.name}' twice ('{fields[f.name].function}' "
                f"and '{f.function}'); the Iceberg writer allows one partition field per column. "
                "Keep one (the finest time function implies the coarser ones).",
                column=f.name,
            )
        fields[f.name] = f
    return list(fields.values())


def _conversions(fields: list[_Field]) -> dict[str, str]:
    """Column → ConversionSpec for every column a time function converts."""
    return {f.name: f.conversion for f in fields if f.is_time and f.conversion is not None}


def _find(schema: Any, name: str, what: str) -> Any:
    """The schema field called ``name`` or a PartitionError naming it and the fix."""
    try:
        return schema.find_field(name, case_sensitive=True)
    except ValueError:
        columns = ", ".join(f"'{c}'" for c in schema.column_names[:20])
        raise PartitionError(
            f"{what} '{name}' is not a column of the target table (columns: {columns}). "
            f"Fix the FieldName in TargetTableConfig.PartitionSpec, or write items that have "
            f"the attribute '{name}', then resync the table.",
            column=name,
        ) from None


def iceberg_partition_spec(
    schema: Any,
    spec: Sequence[Mapping[str, Any]] | None,
    key_columns: Sequence[str],
    *,
    buckets: int = DEFAULT_BUCKETS,
) -> Any:
    """The Iceberg ``PartitionSpec`` for a TargetTableConfig ``PartitionSpec`` on ``schema``.

    ``schema`` is a pyiceberg ``Schema``, before or after conversion (field ids are what count);
    create the table with :func:`converted_schema` so time-partitioned columns are timestamps.
    With no spec (``None`` or ``[]``), the DynamoDB hash key (``key_columns[0]``; a sort key, if
    any, follows it) is bucketed into ``buckets`` buckets; a hash key Iceberg cannot bucket
    (``N`` maps to double, and Iceberg has no bucket transform for floating point) or no key at
    all leaves the table unpartitioned. Raises :class:`PartitionError` for an invalid spec or a
    column missing from ``schema``.

    >>> from pyiceberg.schema import Schema
    >>> from pyiceberg.types import NestedField, StringType
    >>> s = Schema(NestedField(1, "pk", StringType(), required=False))
    >>> iceberg_partition_spec(s, None, ["pk"]).fields[0].name
    'pk_bucket'
    """
    from pyiceberg.partitioning import PARTITION_FIELD_ID_START, PartitionField, PartitionSpec

    fields = _parse(spec)
    if not fields:
        return _default_spec(schema, key_columns, buckets)
    taken = set(schema.column_names)
    out = []
    for i, f in enumerate(fields):
        field = _find(schema, f.name, "PartitionSpec FieldName")
        _check_partitionable(schema, field, f)
        name = f.name if f.function == "identity" else f"{f.name}_{f.function}"
        while name in taken and f.function != "identity":
            name += "_"
        taken.add(name)
        first = PARTITION_FIELD_ID_START
        out.append(PartitionField(field.field_id, first + i, _transform(f.function), name))
    return PartitionSpec(*out)


def _transform(function: str) -> Any:
    from pyiceberg import transforms as t

    kinds: dict[str, Any] = {"identity": t.IdentityTransform, "year": t.YearTransform}
    kinds.update(month=t.MonthTransform, day=t.DayTransform, hour=t.HourTransform)
    return kinds[function]()


def _check_partitionable(schema: Any, field: Any, f: _Field) -> None:
    if not field.field_type.is_primitive:
        raise PartitionError(
            f"PartitionSpec FieldName '{f.name}' is a {field.field_type}, not a single value; "
            f"partition by one of its fields (UnnestSpec FULL makes '{f.name}.<field>' columns).",
            column=f.name,
        )
    if f.is_time and all(c.name != f.name for c in schema.fields):
        raise PartitionError(
            f"PartitionSpec FieldName '{f.name}' is nested inside a struct; FunctionSpec "
            f"'{f.function}' converts a top-level column in place. Use UnnestSpec FULL so "
            f"'{f.name}' becomes a column.",
            column=f.name,
        )


def _default_spec(schema: Any, key_columns: Sequence[str], buckets: int) -> Any:
    from pyiceberg.partitioning import PARTITION_FIELD_ID_START, PartitionField, PartitionSpec
    from pyiceberg.transforms import BucketTransform

    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    if not key_columns:
        return PartitionSpec()
    hash_key = key_columns[0]
    field = _find(schema, hash_key, "The DynamoDB hash key")
    transform: Any = BucketTransform(num_buckets=buckets)
    if not transform.can_transform(field.field_type):
        return PartitionSpec()
    first = PARTITION_FIELD_ID_START
    return PartitionSpec(PartitionField(field.field_id, first, transform, f"{hash_key}_bucket"))


def converted_schema(schema: Any, spec: Sequence[Mapping[str, Any]] | None) -> Any:
    """``schema`` with every time-partitioned column retyped to ``timestamptz`` (same field id).

    This is the target table's schema once :func:`convert_partition_columns` has run.
    """
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField, TimestamptzType

    fields = _parse(spec)
    converted = _conversions(fields)
    for name in converted:
        _find(schema, name, "PartitionSpec FieldName")
    out = [
        NestedField(f.field_id, f.name, TimestamptzType(), required=False, doc=f.doc)
        if f.name in converted
        else f
        for f in schema.fields
    ]
    return Schema(
        *out, schema_id=schema.schema_id, identifier_field_ids=schema.identifier_field_ids
    )


def spec_conflicts(
    existing_spec: Any,
    existing_schema: Any,
    spec: Sequence[Mapping[str, Any]] | None,
    key_columns: Sequence[str],
    *,
    buckets: int = DEFAULT_BUCKETS,
) -> str | None:
    """Why an existing table cannot take the PartitionSpec ``spec``, or None if it can.

    A different partitioning (other columns, functions, order or bucket count) or a partition
    column whose type the conversion would change (e.g. a ``string`` column now to be converted to
    ``timestamptz``) conflicts: the engine then resyncs the table in full, as AWS does when
    table properties conflict with the existing table. Raises :class:`PartitionError` when the
    spec cannot apply to the table at all.
    """
    from pyiceberg.types import TimestamptzType

    wanted = iceberg_partition_spec(existing_schema, spec, key_columns, buckets=buckets)
    have, want = _describe(existing_spec, existing_schema), _describe(wanted, existing_schema)
    if have != want:
        return f"the table is partitioned by {have}; its table properties now ask for {want}"
    for name in _conversions(_parse(spec)):
        kind = existing_schema.find_field(name).field_type
        if not isinstance(kind, TimestamptzType):
            return (
                f"column '{name}' is {kind} in the table; its ConversionSpec now makes it "
                "timestamptz"
            )
    return None


def _describe(spec: Any, schema: Any) -> str:
    parts = [f"{f.transform}({schema.find_column_name(f.source_id)})" for f in spec.fields]
    return ", ".join(parts) or "nothing (unpartitioned)"


# -- conversion -------------------------------------------------------------------------------


def convert_partition_columns(
    rows: pa.Table, spec: Sequence[Mapping[str, Any]] | None
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Convert, in place, each time-partitioned column of ``rows`` to ``timestamp[us, tz=UTC]``.

    Returns the converted table (same rows, same column order and names) and the rows whose
    value could not be converted, as ``(row index, reason)`` in row order, one entry per row
    (reasons for several columns are joined with ``"; "``). Those rows hold NULL in the failed
    column; :func:`drop_failed_rows` removes them. Columns absent from ``rows`` are skipped
    (the batch has no such attribute yet). Vectorized with ``pyarrow.compute``; Python runs per
    row only to word the reasons of failed rows.
    """
    import pyarrow as pa

    failures: dict[int, list[str]] = {}
    for name, conversion in _conversions(_parse(spec)).items():
        index = rows.schema.get_field_index(name)
        if index < 0:
            continue
        column = rows.column(index)
        converted, failed = _to_timestamps(column, conversion, name)
        for i, reason in _reasons(column, failed, name, conversion):
            failures.setdefault(i, []).append(reason)
        field = pa.field(
            name, converted.type, nullable=True, metadata=rows.schema.field(index).metadata
        )
        rows = rows.set_column(index, field, converted)
    return rows, [(i, "; ".join(failures[i])) for i in sorted(failures)]


def drop_failed_rows(rows: pa.Table, failures: Sequence[tuple[int, str]]) -> pa.Table:
    """``rows`` without the rows :func:`convert_partition_columns` reported as failed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not failures:
        return rows
    positions = pa.array(range(rows.num_rows), pa.int64())
    failed = pa.array([i for i, _ in failures], pa.int64())
    return rows.filter(pc.invert(pc.is_in(positions, value_set=failed)))


# Failure kinds, worded once per failed row by _reasons.
_BAD_VALUE, _BAD_DATE, _OUT_OF_RANGE = 1, 2, 3


def _to_timestamps(column: Any, conversion: str, name: str) -> tuple[Any, Any]:
    """(timestamp[us, UTC] chunked array, int8 failure kind per row, 0 where fine)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind):  # already converted (or a timestamp source): keep the instant
        # A naive timestamp keeps its value when it gains a zone (its wall clock read as UTC);
        # nanoseconds are cut to microseconds, as Python cuts ISO fractions.
        utc = column.cast(pa.timestamp("us", tz="UTC"), safe=kind.unit != "ns")
        return utc, pa.repeat(pa.scalar(0, pa.int8()), len(column))
    if pa.types.is_dictionary(kind):
        return _to_timestamps(column.cast(kind.value_type), conversion, name)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        column = column.cast(pa.string())
        if conversion == "iso":
            return _iso(column)
        return _epoch_strings(column, conversion)
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if numeric and conversion != "iso":
        return _epoch_numbers(column, conversion)
    expected = "ISO-8601 strings" if conversion == "iso" else "numbers or numeric strings"
    raise PartitionError(
        f"PartitionSpec column '{name}' is {kind}, which ConversionSpec '{conversion}' cannot "
        f"turn into a timestamp (it reads {expected}). Change the ConversionSpec to match how "
        f"'{name}' stores time, or partition it with FunctionSpec 'identity'.",
        column=name,
    )


def _finish(column: Any, us: Any, bad_value: Any, bad_date: Any, in_range: Any) -> tuple[Any, Any]:
    """Assemble (timestamps, failure kinds) from microseconds and the three failure masks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.is_valid(column)
    bad_value = pc.and_(valid, bad_value.fill_null(True))
    bad_date = pc.and_(valid, bad_date.fill_null(False))
    out_of_range = pc.and_(valid, pc.invert(in_range.fill_null(False)))
    kinds = pc.if_else(
        bad_value,
        _BAD_VALUE,
        pc.if_else(bad_date, _BAD_DATE, pc.if_else(out_of_range, _OUT_OF_RANGE, 0)),
    ).cast(pa.int8())
    good = pc.if_else(pc.equal(kinds, 0), us, pa.scalar(None, pa.int64()))
    return good.cast(pa.timestamp("us", tz="UTC")), kinds


def _in_range(us: Any) -> Any:
    import pyarrow.compute as pc

    return pc.and_(pc.greater_equal(us, MIN_TIMESTAMP_US), pc.less_equal(us, MAX_TIMESTAMP_US))


def _epoch_numbers(column: Any, conversion: str) -> tuple[Any, Any]:
    """Epoch seconds or milliseconds held in an integer, floating point or decimal column.

    Through float64: every in-range epoch value (at most ~2.5e14 milliseconds) is exact there,
    and :func:`_epoch_floats` converts whole values exactly; larger ones are out of range anyway.
    """
    import pyarrow as pa

    x = column.cast(pa.float64(), safe=False)
    return _epoch_floats(column, x, _UNIT_US[conversion])


def _epoch_floats(column: Any, x: Any, unit: int) -> tuple[Any, Any]:
    """Epoch values as float64 → microseconds, the way ``datetime.fromtimestamp`` rounds.

    The whole part converts exactly; the fraction is scaled and rounded half to even, then added
    (CPython's ``_PyTime_DoubleToDenominator`` does the same with ``modf``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    finite = pc.is_finite(x)
    # Anything beyond ±1e18 µs is far out of range; nulling it first keeps int64 from overflowing.
    bounded = pc.and_(finite, pc.less_equal(pc.abs(x), 1e18 / unit))
    x = pc.if_else(bounded, x, pa.scalar(None, pa.float64()))
    whole = pc.trunc(x)
    fraction = pc.round(pc.multiply(pc.subtract(x, whole), float(unit)), 0, "half_to_even")
    us = pc.add(pc.multiply(whole.cast(pa.int64()), unit), fraction.cast(pa.int64()))
    return _finish(column, us, pc.invert(finite), pc.not_equal(x, x), _in_range(us))


def _epoch_strings(column: Any, conversion: str) -> tuple[Any, Any]:
    """Epoch values written as numeric strings (``"1700000000"``, ``"1.7e9"``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    numeric = pc.match_substring_regex(text, _NUMBER).fill_null(False)
    x = pc.if_else(numeric, text, pa.scalar(None, pa.string())).cast(pa.float64())
    ts, kinds = _epoch_floats(column, x, _UNIT_US[conversion])
    not_numeric = pc.and_(pc.is_valid(column), pc.invert(numeric))
    return ts, pc.if_else(not_numeric, pa.scalar(_BAD_VALUE, pa.int8()), kinds)


def _iso(column: Any) -> tuple[Any, Any]:
    """ISO-8601 strings → UTC microseconds.

    Fast path: when every well-shaped string is one Arrow's own ISO parser reads (all with a
    zone, or all without), its cast does the work. Otherwise (mixed zones, ``t``/``z``, a comma,
    basic format, more than 6 fraction digits, impossible dates) :func:`_iso_fields` parses the
    fields with a regex and integer arithmetic, and finds the bad rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    shaped = pc.match_substring_regex(text, _ISO_SHAPE).fill_null(False)
    text = pc.if_else(shaped, text, pa.scalar(None, pa.string()))
    for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
        try:
            us = text.cast(target).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return _finish(column, us, pc.invert(shaped), pc.not_equal(us, us), _in_range(us))
    us, valid = _iso_fields(text)
    return _finish(column, us, pc.invert(shaped), pc.invert(valid), _in_range(us))


def _iso_fields(text: Any) -> tuple[Any, Any]:
    """(UTC microseconds, valid date and time) by integer arithmetic on the extracted fields."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = pc.extract_regex(text, _ISO_PARTS)

    def number(name: str) -> Any:
        digits = pc.struct_field(parts, name)
        return pc.if_else(pc.equal(digits, ""), "0", digits).cast(pa.int64())

    y, mo, d, h, mi, s = (number(n) for n in ("y", "mo", "d", "h", "mi", "s"))
    oh, om = number("oh"), number("om")
    digits = pc.utf8_slice_codeunits(pc.struct_field(parts, "f"), 0, 6)
    micros = pc.utf8_rpad(digits, width=6, padding="0").cast(pa.int64())
    valid = _valid_date(y, mo, d)
    for value, top in ((h, 23), (mi, 59), (s, 59), (oh, 23), (om, 59)):
        valid = pc.and_(valid, pc.less_equal(value, top))
    y, mo, d = (pc.if_else(valid, v, pa.scalar(None, pa.int64())) for v in (y, mo, d))
    local = _sum(
        (_days_from_civil(y, mo, d), 86_400_000_000),
        (h, 3_600_000_000),
        (mi, 60_000_000),
        (s, 1_000_000),
        (micros, 1),
    )
    offset = _sum((oh, 3_600_000_000), (om, 60_000_000))
    west = pc.equal(pc.struct_field(parts, "sg"), "-")
    return pc.subtract(local, pc.if_else(west, pc.negate(offset), offset)), valid


def _sum(*terms: tuple[Any, int]) -> Any:
    import pyarrow.compute as pc

    total = None
    for value, scale in terms:
        term = pc.multiply(value, scale)
        total = term if total is None else pc.add(total, term)
    return total


def _valid_date(y: Any, mo: Any, d: Any) -> Any:
    """Whether (y, mo, d) is a day of the proleptic Gregorian calendar in years 1 to 9999."""
    import pyarrow as pa
    import pyarrow.compute as pc

    leap = pc.or_(
        pc.and_(pc.equal(_mod(y, 4), 0), pc.not_equal(_mod(y, 100), 0)),
        pc.equal(_mod(y, 400), 0),
    )
    month_ok = pc.and_(pc.greater_equal(mo, 1), pc.less_equal(mo, 12))
    month = pc.if_else(month_ok, mo, 1)
    days = pc.take(pa.array(_DAYS_IN_MONTH, pa.int64()), pc.subtract(month, 1))
    days = pc.add(days, pc.and_(leap, pc.equal(month, 2)).cast(pa.int64()))
    day_ok = pc.and_(pc.greater_equal(d, 1), pc.less_equal(d, days))
    return pc.and_(pc.and_(pc.greater_equal(y, 1), month_ok), day_ok)


def _mod(a: Any, n: int) -> Any:
    """``a mod n`` for non-negative ``a`` (Arrow's integer division truncates)."""
    import pyarrow.compute as pc

    return pc.subtract(a, pc.multiply(pc.divide(a, n), n))


def _days_from_civil(y: Any, mo: Any, d: Any) -> Any:
    """Days since 1970-01-01 of a valid date, years ≥ 1 (H. Hinnant's ``days_from_civil``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    early = pc.less_equal(mo, 2)  # the computational year starts in March
    y = pc.subtract(y, early.cast(pa.int64()))
    era = pc.divide(y, 400)
    year_of_era = pc.subtract(y, pc.multiply(era, 400))
    march_month = pc.if_else(early, pc.add(mo, 9), pc.subtract(mo, 3))
    day_of_year = pc.add(pc.divide(pc.add(pc.multiply(march_month, 153), 2), 5), pc.subtract(d, 1))
    day_of_era = _sum(
        (year_of_era, 365),
        (pc.divide(year_of_era, 4), 1),
        (pc.divide(year_of_era, 100), -1),
        (day_of_year, 1),
    )
    return pc.subtract(pc.add(pc.multiply(era, 146_097), day_of_era), 719_468)


def _reasons(column: Any, kinds: Any, name: str, conversion: str) -> list[tuple[int, str]]:
    """Word the failures: Python runs here once per failed row only."""
    import pyarrow.compute as pc

    failed = pc.indices_nonzero(kinds)
    if len(failed) == 0:
        return []
    values = column.take(failed).to_pylist()
    codes = kinds.take(failed).to_pylist()
    return [
        (i, _reason(name, conversion, value, code))
        for i, value, code in zip(failed.to_pylist(), values, codes, strict=True)
    ]


def _reason(name: str, conversion: str, value: Any, code: int) -> str:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    where = f"PartitionSpec column '{name}' (ConversionSpec '{conversion}')"
    if code == _OUT_OF_RANGE:
        return f"{where}: {shown} is outside 0001-01-01 to 9999-12-31 UTC"
    if code == _BAD_DATE:
        return f"{where}: {shown} is not a valid date and time"
    if conversion == "iso":
        return f"{where}: {shown} is not an ISO-8601 timestamp such as '2024-01-15T10:20:30Z'"
    return f"{where}: {shown} is not a number of {_UNIT_NAME[conversion]} since 1970-01-01 UTC"
