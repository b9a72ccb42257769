"""Row images of MariaDB binlog rows events → Python values → Arrow: the stream's hot path.

python-mysql-replication decodes ~6.4k row events/s: every value goes through several layers of
method calls and becomes a ``datetime`` or ``Decimal``. Here a table map compiles once into a row
loop for that table (see :class:`RowsDecoder`), and values stay plain ``int``/``float``/``bytes``
— dates as days, timestamps as microseconds, decimals as unscaled integers — until
:func:`arrow_array` turns a whole column into Arrow at once (UTF-8 validated in C, decimals
rescaled as buffers).

Values are made to equal what ``SELECT`` (and so the snapshot) returns: ``CHAR`` without trailing
spaces, ``FLOAT`` as its exact binary value, ``TIME`` as the server's text (``-01:02:03.500``, up
to ``838:59:59``), the zero date as null. A date that is not on the calendar (a zero month or
day, or February 31st under ``ALLOW_INVALID_DATES``) decodes as the server's text, a ``str``
where an ``int`` belongs: :func:`arrow_array` turns it into null and a reject for the dead
letters, so the fast path never checks for it. Temporal columns must be in the MySQL 5.6 format
MariaDB writes by default (``mysql56_temporal_format=ON``); older tables need
``ALTER TABLE ... FORCE``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

from ..core.changes import Column
from .mysql_binlog import (
    BINARY_COLLATION,
    T_BIT,
    T_BLOB,
    T_DATE,
    T_DATETIME2,
    T_DOUBLE,
    T_ENUM,
    T_FLOAT,
    T_GEOMETRY,
    T_INT24,
    T_JSON,
    T_LONG,
    T_LONGLONG,
    T_NEWDECIMAL,
    T_SET,
    T_SHORT,
    T_STRING,
    T_TIME2,
    T_TIMESTAMP2,
    T_TINY,
    T_VAR_STRING,
    T_VARCHAR,
    T_YEAR,
    BinlogError,
    ColumnMap,
    TableMap,
    lenenc_bytes,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RowsDecoder", "arrow_array", "on_calendar", "unrepresentable", "value_reader"]

_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_EXACT = Context(prec=100)  # the default context's 28 digits would round DECIMAL(30+, s)
_INTS: dict[int, tuple[str, str]] = {  # struct codes: (signed, unsigned)
    T_TINY: ("<b", "<B"),
    T_SHORT: ("<h", "<H"),
    T_LONG: ("<i", "<I"),
    T_LONGLONG: ("<q", "<Q"),
}

# -- values --------------------------------------------------------------------------------------

Reader = Callable[[bytes, int], tuple[Any, int]]
_U16 = struct.Struct("<H").unpack_from


def _fixed(fmt: str) -> Reader:
    unpack, size = struct.Struct(fmt).unpack_from, struct.calcsize(fmt)

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size

    return read


def _int24(unsigned: bool) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        return int.from_bytes(data[pos : pos + 3], "little", signed=not unsigned), pos + 3

    return read


def _length_prefixed(prefix: int) -> Reader:
    """Bytes after a little-endian length of ``prefix`` bytes (VARCHAR, CHAR, BLOB/TEXT)."""
    if prefix == 1:

        def read(data: bytes, pos: int) -> tuple[Any, int]:
            end = pos + 1 + data[pos]
            return data[pos + 1 : end], end

    elif prefix == 2:

        def read(data: bytes, pos: int) -> tuple[Any, int]:
            end = pos + 2 + _U16(data, pos)[0]
            return data[pos + 2 : end], end

    else:

        def read(data: bytes, pos: int) -> tuple[Any, int]:
            end = pos + prefix + int.from_bytes(data[pos : pos + prefix], "little")
            return data[pos + prefix : end], end

    return read


def _char(inner: Reader, text: bool, length: int) -> Reader:
    """CHAR/BINARY(n): the binlog drops the trailing pad (spaces, or zero bytes for BINARY).

    ``SELECT`` also drops CHAR's spaces, but returns BINARY(n) padded to ``n`` bytes.
    """

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        value, end = inner(data, pos)
        return (value.rstrip(b" ") if text else value.ljust(length, b"\0")), end

    return read


def _decoded(inner: Reader, encoding: str) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        raw, end = inner(data, pos)
        return raw.decode(encoding, "replace"), end

    return read


def _days(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def on_calendar(year: int, month: int, day: int) -> bool:
    """Whether a date MariaDB stored exists (it may hold ``2024-00-10`` or ``2024-02-31``)."""
    if not (1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month]):
        return False
    return month != 2 or day < 29 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))


def _date_value(year: int, month: int, day: int) -> int | str | None:
    """Days since 1970; None for the zero date; the server's text for a date off the calendar."""
    if on_calendar(year, month, day):
        return _days(year, month, day)
    return f"{year:04d}-{month:02d}-{day:02d}" if year or month or day else None


def _date(data: bytes, pos: int) -> tuple[Any, int]:
    v = int.from_bytes(data[pos : pos + 3], "little")
    return _date_value(v >> 9, v >> 5 & 15, v & 31), pos + 3


def _frac(fsp: int) -> tuple[int, int]:
    """(bytes, multiplier to microseconds) of a 5.6-format fractional part."""
    size = (fsp + 1) // 2
    return size, (1, 10_000, 100, 1)[size]


def _datetime2(fsp: int) -> Reader:
    size, scale = _frac(fsp)
    # packed year/month/day → _date_value() of it (days since 1970, None or the date's text)
    cache: dict[int, int | str | None] = {}

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        v = int.from_bytes(data[pos : pos + 5], "big") - 0x8000000000
        frac = int.from_bytes(data[pos + 5 : pos + 5 + size], "big") * scale if size else 0
        ymd, hms = v >> 17, v & 0x1FFFF
        try:
            days = cache[ymd]
        except KeyError:
            year, month = divmod(ymd >> 5, 13)
            days = cache[ymd] = _date_value(year, month, ymd & 31)
        if not isinstance(days, int):  # the zero date, or a date off the calendar
            return (None if days is None else _datetime_text(days, hms, frac, fsp)), pos + 5 + size
        secs = (hms >> 12) * 3600 + (hms >> 6 & 63) * 60 + (hms & 63)
        return (days * 86_400 + secs) * 1_000_000 + frac, pos + 5 + size

    return read


def _datetime_text(date: str, hms: int, micros: int, fsp: int) -> str:
    """A DATETIME as the server prints it (``2024-02-31 10:00:00.50`` for DATETIME(2))."""
    text = f"{date} {hms >> 12:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}"
    return f"{text}.{micros:06d}"[: len(text) + 1 + fsp] if fsp else text


def _timestamp2(fsp: int) -> Reader:
    size, scale = _frac(fsp)

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        secs = int.from_bytes(data[pos : pos + 4], "big")
        frac = int.from_bytes(data[pos + 4 : pos + 4 + size], "big") * scale if size else 0
        value = secs * 1_000_000 + frac
        return (value or None), pos + 4 + size  # 0 is the zero timestamp

    return read


def _time2(fsp: int) -> Reader:
    """TIME as the server's own text, since MySQL TIME is an interval up to ±838:59:59."""
    size = (fsp + 1) // 2
    digits = fsp

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        # my_time_packed_from_binary(): a negative value borrows from its fractional part.
        if size == 3:
            packed = int.from_bytes(data[pos : pos + 6], "big") - 0x800000000000
        else:
            intpart = int.from_bytes(data[pos : pos + 3], "big") - 0x800000
            frac = int.from_bytes(data[pos + 3 : pos + 3 + size], "big") if size else 0
            if intpart < 0 and frac:
                intpart += 1
                frac -= 1 << (8 * size)
            packed = (intpart << 24) + frac * (1, 10_000, 100)[size]
        sign = "-" if packed < 0 else ""
        packed = abs(packed)
        hms, micros = packed >> 24, packed & 0xFFFFFF
        text = f"{sign}{hms >> 12 & 0x3FF:02d}:{hms >> 6 & 63:02d}:{hms & 63:02d}"
        if digits:
            text += "." + f"{micros:06d}"[:digits]
        return text, pos + 3 + size

    return read


def _decimal(precision: int, scale: int) -> Reader:
    """MySQL's binary DECIMAL (groups of 9 digits in 4 bytes) as an unscaled integer.

    The field is big-endian with its sign bit flipped, and negative values are stored inverted;
    read as one integer, both undo with an XOR, then each group is a shift and a mask.
    """
    intg = precision - scale
    parts = [
        (_DIG2BYTES[intg % 9], intg % 9),
        *[(4, 9)] * (intg // 9 + scale // 9),
        (_DIG2BYTES[scale % 9], scale % 9),
    ]
    size = sum(n for n, _ in parts)
    sign, mask = 1 << (8 * size - 1), (1 << (8 * size)) - 1
    groups, shift = [], 8 * size
    for nbytes, digits in parts:
        if nbytes:
            shift -= 8 * nbytes
            groups.append((shift, (1 << (8 * nbytes)) - 1, 10**digits))

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        raw = int.from_bytes(data[pos : pos + size], "big") ^ sign
        negative = raw & sign  # the sign bit was 0 before the flip
        if negative:
            raw ^= mask
        value = 0
        for at, width, scale10 in groups:
            value = value * scale10 + (raw >> at & width)
        return (-value if negative else value), pos + size

    return read


def _bit(nbytes: int, as_bool: bool) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        value = int.from_bytes(data[pos : pos + nbytes], "big")
        return (value != 0 if as_bool else value), pos + nbytes

    return read


def _enum(size: int, members: tuple[str, ...]) -> Reader:
    names = ("", *members)  # index 0 is the "invalid value" empty string

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        index = int.from_bytes(data[pos : pos + size], "little")
        return (names[index] if index < len(names) else ""), pos + size

    return read


def _set(size: int, members: tuple[str, ...]) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        bits = int.from_bytes(data[pos : pos + size], "little")
        return ",".join(m for i, m in enumerate(members) if bits >> i & 1), pos + size

    return read


def _year(data: bytes, pos: int) -> tuple[Any, int]:
    y = data[pos]
    return (y + 1900 if y else 0), pos + 1


def _as_bool(inner: Reader) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        value, end = inner(data, pos)
        return value != 0, end

    return read


def _unsigned(col: ColumnMap, column: Column) -> bool:
    """Signedness as logged (a later ALTER may have changed it), else as the table says now."""
    return col.unsigned if col.name is not None else "unsigned" in column.source_type.lower()


def value_reader(col: ColumnMap, column: Column, encoding: str | None) -> Reader:
    """How to read one non-null value of ``col`` as the Python value ``column`` is built from.

    ``encoding`` is the Python codec of a text column whose charset is not UTF-8 (else None).
    """
    t, meta = col.real_type, col.meta
    arrow = str(column.type)
    unsigned = _unsigned(col, column)
    if t in _INTS or t == T_INT24:
        read = _int24(unsigned) if t == T_INT24 else _fixed(_INTS[t][unsigned])
        return _as_bool(read) if arrow == "bool" else read
    simple: dict[int, Reader] = {
        T_FLOAT: _fixed("<f"),
        T_DOUBLE: _fixed("<d"),
        T_DATE: _date,
        T_YEAR: _year,
    }
    if t in simple:
        return simple[t]
    if t == T_NEWDECIMAL:
        return _decimal(meta >> 8, meta & 0xFF)
    if t in (T_DATETIME2, T_TIMESTAMP2, T_TIME2):
        return {T_DATETIME2: _datetime2, T_TIMESTAMP2: _timestamp2, T_TIME2: _time2}[t](meta)
    if t == T_BIT:
        return _bit((meta & 0xFF) + (1 if meta >> 8 else 0), arrow == "bool")
    if t in (T_ENUM, T_SET):
        return (_enum if t == T_ENUM else _set)(meta & 0xFF, col.values)
    text = arrow == "string"
    if t in (T_VARCHAR, T_VAR_STRING):
        read = _length_prefixed(1 if meta < 256 else 2)
    elif t == T_STRING:
        first, length = meta >> 8, meta & 0xFF
        if first & 0x30 != 0x30:
            length |= ((first & 0x30) ^ 0x30) << 4
        read = _char(_length_prefixed(1 if length < 256 else 2), text, length)
    elif t in (T_BLOB, T_GEOMETRY, T_JSON):
        read = _length_prefixed(meta)
    else:  # the pre-5.6 DATETIME/TIME/TIMESTAMP, MySQL-only types
        raise BinlogError(
            "UnsupportedSource",
            f"column {column.name}: binlog column type {t} is not supported (a temporal column "
            "in the pre-MySQL-5.6 format: ALTER TABLE ... FORCE rewrites it)",
        )
    return _decoded(read, encoding) if text and encoding else read


def encoding(collation: int | None) -> str | None:
    """The Python codec of a text column that is not UTF-8 (None: keep the bytes)."""
    from pymysql.charset import charset_by_id

    if collation is None or collation == BINARY_COLLATION:
        return None
    try:
        charset = charset_by_id(collation)
    except KeyError:
        return None  # MariaDB's newer (UCA 14) collation ids: utf8mb3/utf8mb4
    return None if charset.name in ("utf8mb4", "utf8mb3", "utf8", "ascii") else charset.encoding


# -- rows ----------------------------------------------------------------------------------------


def fast_layout(col: ColumnMap, column: Column, encoding: str | None) -> str:
    """How the compiled row loop may inline ``col``: a struct code (``i``, ``Q``, ``d``...),
    ``p1``/``p2`` (bytes after a 1/2-byte length), or ``""`` (call its reader)."""
    t, meta, arrow = col.real_type, col.meta, str(column.type)
    if t in _INTS and arrow != "bool":
        return _INTS[t][_unsigned(col, column)][1]
    if t in (T_FLOAT, T_DOUBLE):
        return "f" if t == T_FLOAT else "d"
    raw = arrow == "binary" or (arrow == "string" and encoding is None)
    if t in (T_VARCHAR, T_VAR_STRING) and raw:
        return "p1" if meta < 256 else "p2"
    if t == T_BLOB and raw and meta in (1, 2):
        return f"p{meta}"
    return ""


class RowsDecoder:
    """Decodes the rows events of one table map into row lists, in the columns of ``columns``.

    Rows without nulls (the common case) go through a loop compiled for this table: runs of
    fixed-width columns are one ``struct`` call, short strings are inline slices, the rest call
    their reader. That is ~2.5x faster than calling a reader per value; rows with nulls take
    the generic loop.
    """

    def __init__(self, table_map: TableMap, columns: Sequence[Column], encodings: list[str | None]):
        self.table_map = table_map
        self.columns = list(columns)
        triples = list(zip(table_map.columns, columns, encodings, strict=True))
        self.readers = [value_reader(c, col, enc) for c, col, enc in triples]
        self.count = len(self.readers)
        self.null_bytes = (self.count + 7) // 8
        # Every rows event starts with the column count and the columns-present bitmap(s);
        # with binlog_row_image=FULL they are all ones, so they are one fixed byte string.
        count = lenenc_bytes(self.count)
        present = ((1 << self.count) - 1).to_bytes(self.null_bytes, "little")
        self._prefix, self._update_prefix = count + present, count + present + present
        layouts = [fast_layout(c, col, enc) for c, col, enc in triples]
        self._loop = _compile(layouts, self.readers, self.null_bytes, self._row)

    def rows(self, body: bytes, pos: int, end: int, update: bool) -> list[list[Any]]:
        """The row images in ``body[pos:end]`` (from the column count on); an update's images
        alternate before, after."""
        prefix = self._update_prefix if update else self._prefix
        if not body.startswith(prefix, pos):  # count and bitmaps in one comparison
            raise BinlogError(
                "SourceBinlogRowImageInvalid",
                f"a rows event of {self.table_map.database}.{self.table_map.table} does not "
                f"carry all {self.count} columns: binlog_row_image is not FULL for some session, "
                "or the table changed under its table map",
            )
        return self._loop(body, pos + len(prefix), end)

    def _row(self, body: bytes, pos: int) -> tuple[list[Any], int]:
        """One row image, nulls and all: the generic path."""
        nb = self.null_bytes
        nulls = int.from_bytes(body[pos : pos + nb], "little")
        pos += nb
        row: list[Any] = []
        for i, read in enumerate(self.readers):
            if nulls >> i & 1:
                row.append(None)
            else:
                value, pos = read(body, pos)
                row.append(value)
        return row, pos


def _compile(
    layouts: list[str], readers: list[Reader], null_bytes: int, slow: Callable[..., Any]
) -> Callable[[bytes, int, int], list[list[Any]]]:
    """Generate the table's row loop (no user text reaches the code: only indexes and codes)."""
    env: dict[str, Any] = {"slow": slow}
    steps, i = [], 0
    while i < len(layouts):
        j = i
        while j < len(layouts) and len(layouts[j]) == 1:
            j += 1
        if j > i:  # a run of fixed-width columns: one unpack
            unpack = struct.Struct("<" + "".join(layouts[i:j]))
            env[f"s{i}"] = unpack.unpack_from
            steps.append(f"{', '.join(f'v{k}' for k in range(i, j))}, = s{i}(b, p)")
            steps.append(f"p += {unpack.size}")
            i = j
            continue
        if layouts[i] == "p1":
            steps.append(f"m = b[p] + 1; v{i} = b[p + 1 : p + m]; p += m")
        elif layouts[i] == "p2":
            steps.append(f"m = b[p] + (b[p + 1] << 8) + 2; v{i} = b[p + 2 : p + m]; p += m")
        else:
            env[f"r{i}"] = readers[i]
            steps.append(f"v{i}, p = r{i}(b, p)")
        i += 1
    # The bitmap's unused high bits are set (MariaDB pads with ones): test the columns' bits.
    mask = (1 << len(layouts)) - 1
    if null_bytes == 1:
        has_nulls = f"b[p] & {mask}"
    else:
        has_nulls = f"int.from_bytes(b[p : p + {null_bytes}], 'little') & {mask}"
    source = "\n".join(
        [
            "def loop(b, p, end):",
            "    out = []",
            "    add = out.append",
            "    while p < end:",
            f"        if {has_nulls}:",
            "            row, p = slow(b, p)",
            "            add(row)",
            "            continue",
            f"        p += {null_bytes}",
            *(f"        {step}" for step in steps),
            f"        add([{', '.join(f'v{k}' for k in range(len(layouts)))}])",
            "    return out",
        ]
    )
    exec(compile(source, "<binlog row loop>", "exec"), env)
    loop: Callable[[bytes, int, int], list[list[Any]]] = env["loop"]
    return loop


# -- Arrow ---------------------------------------------------------------------------------------


def arrow_array(values: Sequence[Any], column: Column, rejects: dict[int, str]) -> pa.Array:
    """One column of decoded values as an Arrow array of ``column.type``.

    A value the column type cannot hold (a date off the calendar) becomes null, and its row
    index gets a reason in ``rejects`` (added to any reason another column gave it).
    """
    import pyarrow as pa

    arrow = column.type
    if pa.types.is_date(arrow) or pa.types.is_timestamp(arrow):
        try:
            return pa.array(values, arrow)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            if not any(type(v) is str for v in values):
                raise
            return pa.array(_rejected(values, column, rejects), arrow)
    if pa.types.is_decimal(arrow):
        if column.source_type.lower().startswith("bigint"):
            return pa.array(values, pa.uint64()).cast(arrow)  # BIGINT UNSIGNED
        if arrow.precision <= 18:
            # Unscaled integers, reinterpreted with the scale: no Decimal object per value.
            wide = pa.array(values, pa.int64()).cast(pa.decimal128(38, 0))
            return pa.Array.from_buffers(arrow, len(wide), wide.buffers(), wide.null_count)
        return pa.array(
            [None if v is None else _EXACT.scaleb(Decimal(v), -arrow.scale) for v in values],
            arrow,
        )
    if pa.types.is_string(arrow):
        if "decimal" in column.source_type.lower():
            scale = _scale_of(column.source_type)
            values = [None if v is None else _decimal_text(v, scale) for v in values]
        return pa.array(values, pa.binary()).cast(pa.string())  # validates UTF-8 in C
    return pa.array(values, arrow)


def unrepresentable(column: Column, text: str) -> str:
    """Why a dead letter's value could not be replicated, with the server's text of it."""
    return (
        f"column {column.name} ({column.source_type}): value {text!r} is not a calendar date, "
        f"which {column.type} cannot hold"
    )


def _rejected(values: Sequence[Any], column: Column, rejects: dict[int, str]) -> list[Any]:
    """``values`` with the server's texts of dates off the calendar as nulls, which it records
    in ``rejects``. Only called for a column that holds such a value."""
    out = list(values)
    for row, value in enumerate(values):
        if type(value) is str:
            out[row] = None
            why = unrepresentable(column, value)
            rejects[row] = f"{rejects[row]}; {why}" if row in rejects else why
    return out


def _scale_of(source_type: str) -> int:
    m = re.search(r"\(\s*\d+\s*,\s*(\d+)\s*\)", source_type)
    return int(m.group(1)) if m else 0


def _decimal_text(unscaled: int, scale: int) -> str:
    """An unscaled integer as DECIMAL text (``-0.05``), like the server prints it."""
    sign, digits = ("-" if unscaled < 0 else ""), str(abs(unscaled))
    if not scale:
        return sign + digits
    digits = digits.rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
