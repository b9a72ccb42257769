"""MariaDB binary-log events for change capture: layouts only, no I/O and no row values.

Table maps (with ``binlog_row_metadata=FULL``: column names, signedness, collations, ENUM/SET
members, primary key), GTID and QUERY events, and the classification of logged statements
(commit, TRUNCATE, DDL, a stray statement-based row change). Row images are decoded in
:mod:`.mysql_rows`. Layouts follow MariaDB's ``log_event.h``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.changes import Column

# Event types (MariaDB's log_event.h).
QUERY, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP, HEARTBEAT = 2, 4, 15, 16, 19, 27
WRITE_V1, UPDATE_V1, DELETE_V1, WRITE_V2, UPDATE_V2, DELETE_V2 = 23, 24, 25, 30, 31, 32
XA_PREPARE, GTID = 38, 162
ROWS_EVENTS = {WRITE_V1: "c", UPDATE_V1: "u", DELETE_V1: "d", WRITE_V2: "c"}
ROWS_EVENTS.update({UPDATE_V2: "u", DELETE_V2: "d"})
COMPRESSED_EVENTS = frozenset(range(165, 172))  # log_bin_compress=ON
GTID_STANDALONE, GTID_PREPARED_XA = 0x01, 0x40

# Column types (mysql_com.h).
T_DECIMAL, T_TINY, T_SHORT, T_LONG, T_FLOAT, T_DOUBLE = 0, 1, 2, 3, 4, 5
T_TIMESTAMP, T_LONGLONG, T_INT24, T_DATE, T_TIME, T_DATETIME, T_YEAR = 7, 8, 9, 10, 11, 12, 13
T_VARCHAR, T_BIT, T_TIMESTAMP2, T_DATETIME2, T_TIME2 = 15, 16, 17, 18, 19
T_JSON, T_NEWDECIMAL, T_ENUM, T_SET, T_BLOB, T_VAR_STRING, T_STRING, T_GEOMETRY = (
    245,
    246,
    247,
    248,
    252,
    253,
    254,
    255,
)
_META_1 = {T_FLOAT, T_DOUBLE, T_BLOB, T_GEOMETRY, T_JSON, T_TIMESTAMP2, T_DATETIME2, T_TIME2}
_META_2 = {T_VARCHAR, T_VAR_STRING, T_BIT, T_NEWDECIMAL, T_STRING, T_ENUM, T_SET}
_NUMERIC = {T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_NEWDECIMAL, T_FLOAT, T_DOUBLE}
_NUMERIC |= {T_DECIMAL, T_YEAR}  # MariaDB counts YEAR in the signedness bitmap
_CHARACTER = {T_STRING, T_VAR_STRING, T_VARCHAR, T_BLOB, T_GEOMETRY}
_TYPE_NAMES = {
    T_TINY: "tinyint", T_SHORT: "smallint", T_INT24: "mediumint", T_LONG: "int",
    T_LONGLONG: "bigint", T_FLOAT: "float", T_DOUBLE: "double", T_NEWDECIMAL: "decimal",
    T_TIMESTAMP: "timestamp", T_TIMESTAMP2: "timestamp", T_DATE: "date", T_TIME: "time",
    T_TIME2: "time", T_DATETIME: "datetime", T_DATETIME2: "datetime", T_YEAR: "year",
    T_VARCHAR: "varchar", T_VAR_STRING: "varchar", T_STRING: "char", T_BIT: "bit",
    T_ENUM: "enum", T_SET: "set", T_BLOB: "blob", T_GEOMETRY: "geometry", T_JSON: "json",
}  # fmt: skip
BINARY_COLLATION = 63
_UTF8_CHARSETS = {"utf8mb4", "utf8mb3", "utf8", "ascii"}


class BinlogError(Exception):
    """An event that cannot become changes; ``code`` is the integration error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnMap:
    """One column as a table map event describes it."""

    type: int
    meta: int
    nullable: bool
    name: str | None = None
    unsigned: bool = False
    collation: int | None = None
    values: tuple[str, ...] = ()  # ENUM/SET members

    @property
    def real_type(self) -> int:
        """ENUM and SET travel as STRING; their metadata's first byte names the real type."""
        if self.type == T_STRING and (self.meta >> 8) in (T_ENUM, T_SET):
            return self.meta >> 8
        return self.type


@dataclass(frozen=True)
class TableMap:
    """A TABLE_MAP event: which table a table id means, with its columns at that time."""

    table_id: int
    database: str
    table: str
    columns: tuple[ColumnMap, ...]
    primary_key: tuple[int, ...]


def parse_table_map(body: bytes, id_len: int) -> TableMap:
    """Decode a TABLE_MAP body (after the 19-byte header, checksum removed)."""
    table_id = int.from_bytes(body[:id_len], "little")
    pos = id_len + 2
    db_len = body[pos]
    database = body[pos + 1 : pos + 1 + db_len].decode()
    pos += db_len + 2
    tbl_len = body[pos]
    table = body[pos + 1 : pos + 1 + tbl_len].decode()
    pos += tbl_len + 2
    count, pos = read_lenenc(body, pos)
    types = body[pos : pos + count]
    pos += count
    meta_len, pos = read_lenenc(body, pos)
    metas, _ = _parse_metadata(types, body, pos)
    pos += meta_len
    null_bits = int.from_bytes(body[pos : pos + (count + 7) // 8], "little")
    pos += (count + 7) // 8
    extra = _parse_optional_metadata(types, metas, body, pos)
    columns = tuple(
        ColumnMap(
            type=types[i],
            meta=metas[i],
            nullable=bool(null_bits >> i & 1),
            name=extra["names"][i] if i < len(extra["names"]) else None,
            unsigned=extra["unsigned"].get(i, False),
            collation=extra["collations"].get(i),
            values=extra["values"].get(i, ()),
        )
        for i in range(count)
    )
    return TableMap(table_id, database, table, columns, tuple(extra["pk"]))


def _parse_metadata(types: bytes, body: bytes, pos: int) -> tuple[list[int], int]:
    metas = []
    for t in types:
        if t in _META_1:
            metas.append(body[pos])
            pos += 1
        elif t in (T_VARCHAR, T_VAR_STRING):
            metas.append(body[pos] | body[pos + 1] << 8)
            pos += 2
        elif t in _META_2:  # big-endian pairs: (real type, length), (bits, bytes), (p, s)
            metas.append(body[pos] << 8 | body[pos + 1])
            pos += 2
        else:
            metas.append(0)
    return metas, pos


def _parse_optional_metadata(
    types: bytes, metas: Sequence[int], body: bytes, pos: int
) -> dict[str, Any]:
    """binlog_row_metadata=FULL: names, signedness, collations, ENUM/SET members, primary key."""
    real = [
        m >> 8 if t == T_STRING and (m >> 8) in (T_ENUM, T_SET) else t
        for t, m in zip(types, metas, strict=True)
    ]
    numeric = [i for i, t in enumerate(real) if t in _NUMERIC]
    character = [i for i, t in enumerate(real) if t in _CHARACTER]
    enum_set = [i for i, t in enumerate(real) if t in (T_ENUM, T_SET)]
    out: dict[str, Any] = {"names": [], "unsigned": {}, "collations": {}, "values": {}, "pk": []}
    enums = iter(i for i in enum_set if real[i] == T_ENUM)
    sets = iter(i for i in enum_set if real[i] == T_SET)
    while pos < len(body):
        kind = body[pos]
        length, pos = read_lenenc(body, pos + 1)
        chunk, pos = body[pos : pos + length], pos + length
        if kind == 1:  # SIGNEDNESS: one bit per numeric column, most significant first
            bits = int.from_bytes(chunk, "big")
            width = len(chunk) * 8
            out["unsigned"] = {c: bool(bits >> (width - 1 - k) & 1) for k, c in enumerate(numeric)}
        elif kind == 2:  # DEFAULT_CHARSET: default, then (character column index, collation)
            ints = _lenencs(chunk)
            out["collations"] = dict.fromkeys(character, ints[0])
            for k in range(1, len(ints) - 1, 2):
                out["collations"][character[ints[k]]] = ints[k + 1]
        elif kind == 3:  # COLUMN_CHARSET: one collation per character column
            out["collations"] = dict(zip(character, _lenencs(chunk), strict=False))
        elif kind == 4:  # COLUMN_NAME
            out["names"] = [s.decode("utf-8", "replace") for s in _strings(chunk)]
        elif kind in (5, 6):  # SET_STR_VALUE, ENUM_STR_VALUE
            owners = sets if kind == 5 else enums
            for members in _string_lists(chunk):
                out["values"][next(owners)] = members
        elif kind == 8:  # SIMPLE_PRIMARY_KEY
            out["pk"] = _lenencs(chunk)
        elif kind == 9:  # PRIMARY_KEY_WITH_PREFIX: (index, prefix length) pairs
            out["pk"] = _lenencs(chunk)[::2]
    return out


def read_lenenc(data: bytes, pos: int) -> tuple[int, int]:
    """A length-encoded integer at ``pos``; returns (value, next position)."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def lenenc_bytes(value: int) -> bytes:
    if value < 0xFB:
        return bytes([value])
    size, marker = (2, 0xFC) if value < 1 << 16 else (3, 0xFD) if value < 1 << 24 else (8, 0xFE)
    return bytes([marker]) + value.to_bytes(size, "little")


def _lenencs(chunk: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(chunk):
        value, pos = read_lenenc(chunk, pos)
        out.append(value)
    return out


def _strings(chunk: bytes, pos: int = 0, count: int | None = None) -> list[bytes]:
    out: list[bytes] = []
    while pos < len(chunk) and (count is None or len(out) < count):
        size, pos = read_lenenc(chunk, pos)
        out.append(chunk[pos : pos + size])
        pos += size
    return out


def _string_lists(chunk: bytes) -> list[tuple[str, ...]]:
    out, pos = [], 0
    while pos < len(chunk):
        count, pos = read_lenenc(chunk, pos)
        members = []
        for _ in range(count):
            size, pos = read_lenenc(chunk, pos)
            members.append(chunk[pos : pos + size].decode("utf-8", "replace"))
            pos += size
        out.append(tuple(members))
    return out


def parse_gtid(body: bytes) -> tuple[int, int, int]:
    """A MariaDB GTID event: (domain id, sequence number, flags)."""
    seq, domain, flags = struct.unpack_from("<QIB", body, 0)
    return domain, seq, flags


def parse_query(body: bytes, post_header_len: int) -> tuple[str, str]:
    """A QUERY event: (default database, statement text)."""
    db_len = body[8]
    status_len = struct.unpack_from("<H", body, 11)[0]
    pos = post_header_len + status_len
    database = body[pos : pos + db_len].decode("utf-8", "replace")
    return database, body[pos + db_len + 1 :].decode("utf-8", "replace")


# Comments are stripped only to classify the statement: /* ... */ anywhere, -- and # on a line.
_COMMENTS = re.compile(r"/\*.*?\*/|^\s*(?:--|#)[^\n]*", re.S | re.M)
_IDENT = r"(`(?:[^`]|``)+`|[\w$]+)"
_TRUNCATE = re.compile(rf"^TRUNCATE\s+(?:TABLE\s+)?{_IDENT}(?:\s*\.\s*{_IDENT})?\s*;?\s*$", re.I)
_DML = re.compile(r"^(?:INSERT|UPDATE|DELETE|REPLACE|LOAD\s+DATA)\b", re.I)
_NO_OP = ("BEGIN", "SAVEPOINT", "ROLLBACK TO", "RELEASE SAVEPOINT", "XA START", "XA END")
_COMMIT = ("COMMIT", "ROLLBACK", "XA COMMIT", "XA ROLLBACK")


def statement_kind(query: str, default_db: str) -> tuple[str, tuple[str, str] | None]:
    """Classify a QUERY event: ``commit``, ``begin`` (nothing to do), ``truncate`` (with its
    table), ``dml`` (a statement-based row change, which ROW format never writes) or ``ddl``."""
    text = _COMMENTS.sub(" ", query).strip()
    head = " ".join(text[:24].upper().split())
    if head.startswith(_NO_OP):  # before COMMIT: "ROLLBACK TO sp" does not end the transaction
        return "begin", None
    if head.startswith(_COMMIT):
        return "commit", None
    if m := _TRUNCATE.match(text):
        first, second = (_unquote(g) if g else None for g in m.groups())
        return "truncate", (first, second) if second and first else (default_db, first or "")
    if _DML.match(text):
        return "dml", None
    return "ddl", None


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


# -- schemas ---------------------------------------------------------------------------------------


def column_from_map(col: ColumnMap, index: int) -> Column:
    """The column as the binlog alone describes it (when the live table no longer matches)."""
    import pyarrow as pa

    t, meta = col.real_type, col.meta
    name = col.name or f"col{index}"
    source = _TYPE_NAMES.get(t, f"type{t}")
    binary = col.collation == BINARY_COLLATION
    ints = {T_TINY: pa.int32(), T_SHORT: pa.int32(), T_INT24: pa.int32(), T_YEAR: pa.int32()}
    arrow: pa.DataType
    if t in ints:
        arrow = ints[t]
    elif t == T_LONG:
        arrow = pa.int64() if col.unsigned else pa.int32()
    elif t == T_LONGLONG:
        arrow = pa.decimal128(20, 0) if col.unsigned else pa.int64()
    elif t == T_NEWDECIMAL:
        p, s = meta >> 8, meta & 0xFF
        arrow, source = (pa.decimal128(p, s) if p <= 38 else pa.string()), f"decimal({p},{s})"
    elif t in (T_FLOAT, T_DOUBLE):
        arrow = pa.float32() if t == T_FLOAT else pa.float64()
    elif t == T_DATE:
        arrow = pa.date32()
    elif t in (T_DATETIME, T_DATETIME2):
        arrow = pa.timestamp("us")
    elif t in (T_TIMESTAMP, T_TIMESTAMP2):
        arrow = pa.timestamp("us", tz="UTC")
    elif t == T_BIT:
        bits = (meta & 0xFF) * 8 + (meta >> 8)
        arrow, source = (pa.bool_() if bits == 1 else pa.int64()), f"bit({bits})"
    elif t in (T_ENUM, T_SET, T_TIME, T_TIME2, T_JSON):
        arrow = pa.string()
    elif t in (T_VARCHAR, T_VAR_STRING, T_STRING, T_BLOB):
        arrow = pa.binary() if binary else pa.string()
        if binary:
            source = {T_STRING: "binary", T_BLOB: "blob"}.get(t, "varbinary")
        elif t == T_BLOB:
            source = "text"
    else:
        arrow = pa.binary()
    if col.unsigned and t in _NUMERIC:
        source += " unsigned"
    return Column(name, arrow, source, col.nullable)


def compatible(info: Column, col: ColumnMap, index: int) -> bool:
    """Whether the live table's ``info`` column can carry values of the logged ``col``."""
    if info.name != (col.name or info.name):
        return False
    if str(info.type) == "bool" and col.real_type in (T_TINY, T_BIT):
        return True
    return bool(info.type == column_from_map(col, index).type)
