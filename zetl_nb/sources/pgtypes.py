"""PostgreSQL types in Arrow: the type mapping, and whole-column casts of PostgreSQL's text output.

Pure code, no I/O. The snapshot (``COPY ... (FORMAT csv)``) and the change stream (pgoutput) both
receive values as PostgreSQL's text output; :func:`cast_text` turns a column of such texts into
Arrow with compute kernels, never value by value. Column types map as follows (domains map as their
base type; :func:`arrow_type`):

================================================  ==============================================
PostgreSQL                                        Arrow
================================================  ==============================================
``smallint``, ``integer``                         ``int32``
``bigint``                                        ``int64``
``numeric(p, s)``                                 ``decimal128(p, s)`` (``string`` if p > 38)
``numeric``                                       ``decimal128(38, 10)``
``real`` / ``double precision``                   ``float32`` / ``float64``
``boolean``                                       ``bool``
``bytea``                                         ``binary``
``date``                                          ``date32``
``timestamp``                                     ``timestamp('us')``
``timestamptz``                                   ``timestamp('us', tz='UTC')``
``time``                                          ``time64('us')``
text, varchar, char, citext, uuid, json(b), enum, ``string`` (the PostgreSQL text output)
arrays, interval, timetz, anything else
================================================  ==============================================

The casts expect sessions in ``TimeZone=UTC``, ``DateStyle=ISO`` and ``bytea_output=hex`` (the
source sets them on every connection).

>>> import pyarrow as pa
>>> cast_text(pa.array([b"2024-02-29", b"infinity", None]), pa.date32()).to_pylist()
[datetime.date(2024, 2, 29), None, None]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import ZetlError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DecodeError", "arrow_type", "cast_text"]


class DecodeError(ZetlError):
    """PostgreSQL output that cannot be decoded: a message that is not valid pgoutput protocol
    version 1 (or arrived out of order), or a column text in an unexpected format."""


def arrow_type(oid: int, typmod: int) -> pa.DataType:
    """The Arrow type of a built-in PostgreSQL type OID with its modifier (see the table above)."""
    import pyarrow as pa

    simple = {
        16: pa.bool_(),
        17: pa.binary(),
        20: pa.int64(),
        21: pa.int32(),
        23: pa.int32(),
        700: pa.float32(),
        701: pa.float64(),
        1082: pa.date32(),
        1083: pa.time64("us"),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }
    if oid in simple:
        return simple[oid]
    if oid != 1700:  # numeric
        return pa.string()
    if typmod < 4:  # unconstrained
        return pa.decimal128(38, 10)
    precision = ((typmod - 4) >> 16) & 0xFFFF
    scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # 11-bit signed since PostgreSQL 15
    if scale < 0:  # numeric(p, -s) rounds to 10^s: p + s whole digits
        precision, scale = precision - scale, 0
    precision = max(precision, scale)
    return pa.decimal128(precision, scale) if precision <= 38 else pa.string()


# What PostgreSQL's text output may hold that Arrow's parsers refuse: infinity, BC dates, years
# past 9999, time 24:00, numeric NaN/Infinity. Such values become null; anything else that
# fails to parse is an error.
_TIMESTAMP_OK = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?"
_VALID = {
    "date32": r"^\d{4}-\d\d-\d\d$",
    "timestamp": _TIMESTAMP_OK + "$",
    "timestamptz": _TIMESTAMP_OK + r"[+-]\d\d(:?\d\d){0,2}$",
    "time64": r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?$",
}


def cast_text(texts: pa.Array, typ: pa.DataType) -> pa.Array:
    """PostgreSQL text output (a ``binary`` or ``string`` array) as an array of ``typ``.

    Whole-column Arrow kernels: integers and floats parse directly, ``t``/``f`` compare to
    booleans, ``bytea`` hex (``\\x0a0b``) decodes with numpy, ``time`` parses as a timestamp on
    1970-01-01. Values Arrow cannot hold (``infinity``, BC dates, numeric ``NaN``, numbers past the
    decimal's precision) become null; a numeric's digits beyond the scale are truncated.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_binary(typ):
        return _unhex(texts)
    strings = texts.cast(pa.string()) if pa.types.is_binary(texts.type) else texts
    if pa.types.is_string(typ):
        return strings
    if pa.types.is_boolean(typ):
        return pc.equal(strings, "t")
    try:
        return _parse(strings, typ)
    except pa.ArrowInvalid:
        if pa.types.is_decimal(typ):
            return _decimal(strings, typ)
        kind = "timestamptz" if pa.types.is_timestamp(typ) and typ.tz else str(typ).split("[")[0]
        if kind not in _VALID:
            raise
        return _parse(_valid(strings, kind), typ)


def _parse(strings: pa.Array, typ: pa.DataType) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_time64(typ):  # Arrow casts no string to time: parse as a time on 1970-01-01
        stamps = pc.binary_join_element_wise("1970-01-01 ", strings, "")
        return stamps.cast(pa.timestamp("us")).cast(typ)
    return strings.cast(typ)


def _valid(strings: pa.Array, kind: str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.if_else(pc.match_substring_regex(strings, _VALID[kind]), strings, None)


def _decimal(strings: pa.Array, typ: pa.DataType) -> pa.Array:
    """Numeric text into ``typ``: NaN/Infinity/too large → null, extra fraction digits cut."""
    import pyarrow.compute as pc

    whole = max(typ.precision - typ.scale, 0)
    fits = pc.match_substring_regex(strings, rf"^-?\d{{1,{max(whole, 1)}}}(\.\d*)?$")
    cut = rf"(\.\d{{{typ.scale}}})\d+$" if typ.scale > 0 else r"\.\d*$"
    trimmed = pc.replace_substring_regex(strings, cut, r"\1" if typ.scale > 0 else "")
    return pc.if_else(fits, trimmed, None).cast(typ)


_NIBBLES: Any = None  # hex digit → value, 255 elsewhere; built on first use (numpy is lazy)


def _unhex(texts: pa.Array) -> pa.Array:
    """bytea hex output (``\\x`` then two hex digits per byte) as ``binary``, vectorized."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    global _NIBBLES
    if _NIBBLES is None:
        table = np.full(256, 255, dtype=np.uint8)
        for digit, char in enumerate(b"0123456789abcdef"):
            table[char] = digit
            table[ord(chr(char).upper())] = digit
        _NIBBLES = table
    strings = texts.cast(pa.string()) if pa.types.is_binary(texts.type) else texts
    if pc.all(pc.starts_with(strings, "\\x")).as_py() is False:
        raise DecodeError("bytea value not in hex format; set bytea_output = 'hex'")
    body = pa.concat_arrays([pc.utf8_slice_codeunits(strings, 2)])  # offset 0, own buffers
    count = len(body)
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32, count=count + 1)
    data = np.frombuffer(body.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    nibbles = _NIBBLES[data]
    if (np.diff(offsets) & 1).any() or (nibbles == 255).any():
        raise DecodeError("bytea value with an odd number of hex digits or a non-hex character")
    decoded = (nibbles[0::2] << 4) | nibbles[1::2]
    new_offsets = ((offsets - offsets[0]) // 2).astype(np.int32)
    return pa.Array.from_buffers(
        pa.binary(),
        count,
        [body.buffers()[0], pa.py_buffer(new_offsets), pa.py_buffer(decoded)],
        null_count=body.null_count,
    )
