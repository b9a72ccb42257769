"""A decoder of PostgreSQL's ``pgoutput`` logical replication protocol, version 1.

Pure code, no I/O: :class:`PgOutputDecoder` takes the payload of each ``XLogData`` message, keeps
the relation cache (``R``) and type cache (``Y``), and hands out whole :class:`Transaction` values
at each commit. Message layouts follow the "Logical Replication Message Formats" chapter of the
PostgreSQL manual: ``B`` begin, ``C`` commit, ``O`` origin, ``R`` relation, ``Y`` type, ``I``
insert, ``U`` update, ``D`` delete, ``T`` truncate, ``M`` logical decoding message.

Row images are tuples of column values as the server sent them: ``bytes`` (the column's text
output), ``None`` (SQL null) or :data:`UNCHANGED` (a TOASTed value the update did not touch).
Nothing is parsed per value here; :func:`change_batches` turns transactions into columnar
:class:`~zetl_nb.core.changes.ChangeBatch` values, collecting each column's texts and converting the
whole column at once with :func:`~zetl_nb.sources.pgtypes.cast_text` (Arrow compute kernels),
which the snapshot's CSV path shares. ``DecodeError`` and ``cast_text`` live in
:mod:`zetl_nb.sources.pgtypes` and are re-exported here.

>>> dec = PgOutputDecoder()
>>> dec.feed(b"B" + bytes(8) + bytes(8) + (7).to_bytes(4, "big")) is None
True
>>> dec.in_transaction
True
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .pgtypes import DecodeError, cast_text

if TYPE_CHECKING:
    import pyarrow as pa

    from ..core.changes import ChangeBatch, TableSchema

__all__ = [
    "UNCHANGED",
    "DecodeError",
    "LogicalMessage",
    "PgOutputDecoder",
    "Relation",
    "RelationColumn",
    "RowChange",
    "Transaction",
    "Truncate",
    "TypeInfo",
    "cast_text",
    "change_batches",
    "format_lsn",
    "parse_lsn",
    "text_columns",
]

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _Unchanged:
    """The type of :data:`UNCHANGED` (compare with ``is``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


#: A TOASTed column value the update left as it was (pgoutput's ``u``): not sent.
UNCHANGED: Final = _Unchanged()

#: One column value as sent: text output, SQL null, or :data:`UNCHANGED`.
Value = bytes | None | _Unchanged
Row = tuple[Value, ...]


def format_lsn(lsn: int) -> str:
    """An LSN as PostgreSQL writes it. ``format_lsn(0x1_4AA3F8) == '0/14AA3F8'``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``'X/Y'`` as an integer; raises ``ValueError`` for anything else."""
    high, sep, low = text.partition("/")
    if not sep or not high or not low:
        raise ValueError(f"not an LSN: {text!r} (expected 'X/Y' in hex, e.g. '0/14AA3F8')")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class RelationColumn:
    """A column as an ``R`` message describes it."""

    name: str
    type_oid: int
    type_modifier: int
    #: Part of the replica identity (the primary key unless REPLICA IDENTITY says otherwise).
    is_key: bool


@dataclass(frozen=True)
class Relation:
    """A table as an ``R`` message describes it (the schema in effect for the rows after it)."""

    oid: int
    namespace: str
    name: str
    #: ``d`` default (primary key), ``n`` nothing, ``f`` full, ``i`` index.
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True)
class TypeInfo:
    """A non-built-in type as a ``Y`` message names it."""

    oid: int
    namespace: str
    name: str


class RowChange(NamedTuple):
    """An insert (``I``), update (``U``) or delete (``D``) of one row."""

    op: str
    relation: Relation
    #: The new row (``I``, ``U``); ``None`` for ``D``.
    new: Row | None
    #: The old key (``K``) or whole old row (``O``) when sent; else ``None``.
    old: Row | None
    #: ``K``, ``O`` or ``""`` (no old image).
    old_kind: str


class Truncate(NamedTuple):
    """A TRUNCATE of one or more tables."""

    relations: tuple[Relation, ...]
    cascade: bool
    restart_identity: bool


class LogicalMessage(NamedTuple):
    """A ``pg_logical_emit_message`` record (sent only with the ``messages`` option)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Change = RowChange | Truncate | LogicalMessage


@dataclass(slots=True)
class Transaction:
    """A committed transaction, its changes in the order the server made them."""

    xid: int
    #: The commit's LSN as announced by ``B``.
    final_lsn: int
    #: Commit time, microseconds since 2000-01-01 UTC (PostgreSQL's epoch).
    commit_timestamp: int
    commit_lsn: int = 0
    #: The end of the commit record: resume replication here to continue after this transaction.
    end_lsn: int = 0
    origin: str | None = None
    changes: list[Change] = field(default_factory=list)
    #: Rows changed (inserted, updated, deleted).
    rows: int = 0
    #: Whether some row image holds :data:`UNCHANGED`.
    has_unchanged: bool = False

    @property
    def commit_time(self) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=self.commit_timestamp)


_U16 = struct.Struct(">H").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_BEGIN = struct.Struct(">QqI").unpack_from
_COMMIT = struct.Struct(">BQQq").unpack_from
_COLUMN_TAIL = struct.Struct(">Ii").unpack_from
_ROW_KINDS = frozenset((b"I", b"U", b"D"))


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(0, pos)
    return data[pos:end].decode(), end + 1


class PgOutputDecoder:
    """Decodes pgoutput v1 messages one at a time; see the module docstring.

    ``feed`` returns a :class:`Transaction` at its commit, a non-transactional
    :class:`LogicalMessage` as it comes, and ``None`` otherwise.
    """

    def __init__(self) -> None:
        #: The relation cache: the latest ``R`` message per relation OID.
        self.relations: dict[int, Relation] = {}
        #: The type cache: the latest ``Y`` message per type OID.
        self.types: dict[int, TypeInfo] = {}
        self._txn: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        """Whether a ``B`` arrived whose ``C`` has not yet."""
        return self._txn is not None

    def reset(self) -> None:
        """Forget a partly received transaction (the connection was lost mid-way).

        The caches stay: the server sends ``R`` again before a relation's first row on a new
        connection, and an unchanged ``R`` keeps the cached :class:`Relation` object.
        """
        self._txn = None

    def feed(self, data: bytes) -> Transaction | LogicalMessage | None:
        """Decode one message."""
        kind = data[:1]
        txn = self._txn
        try:
            if kind in _ROW_KINDS:  # first: by far the most frequent
                if txn is None:
                    raise DecodeError(f"{kind.decode()} message outside a transaction")
                txn.changes.append(self._row(kind, data, txn))
                txn.rows += 1
                return None
            if kind == b"B":
                if txn is not None:
                    raise DecodeError(f"B message inside transaction {txn.xid}")
                final_lsn, timestamp, xid = _BEGIN(data, 1)
                self._txn = Transaction(xid, final_lsn, timestamp)
                return None
            if kind == b"C":
                if txn is None:
                    raise DecodeError("C message outside a transaction")
                _flags, txn.commit_lsn, txn.end_lsn, txn.commit_timestamp = _COMMIT(data, 1)
                self._txn = None
                return txn
            return self._other(kind, data, txn)
        except (struct.error, IndexError, ValueError) as exc:  # cut short or not UTF-8
            raise DecodeError(f"malformed pgoutput message {kind!r}: {exc}") from exc

    def _other(
        self, kind: bytes, data: bytes, txn: Transaction | None
    ) -> Transaction | LogicalMessage | None:
        if kind == b"R":
            self._relation(data)
        elif kind == b"Y":
            (oid,) = _U32(data, 1)
            namespace, pos = _cstring(data, 5)
            name, _ = _cstring(data, pos)
            self.types[oid] = TypeInfo(oid, namespace or "pg_catalog", name)
        elif kind == b"T":
            if txn is None:
                raise DecodeError("T message outside a transaction")
            txn.changes.append(self._truncate(data))
        elif kind == b"O":
            if txn is None:
                raise DecodeError("O message outside a transaction")
            txn.origin, _ = _cstring(data, 9)
        elif kind == b"M":
            return self._message(data, txn)
        else:
            raise DecodeError(f"unknown pgoutput message type {kind!r} (protocol version 1)")
        return None

    def _relation(self, data: bytes) -> None:
        (oid,) = _U32(data, 1)
        namespace, pos = _cstring(data, 5)
        name, pos = _cstring(data, pos)
        identity = chr(data[pos])
        (count,) = _U16(data, pos + 1)
        pos += 3
        columns = []
        for _ in range(count):
            flags = data[pos]
            column, pos = _cstring(data, pos + 1)
            type_oid, modifier = _COLUMN_TAIL(data, pos)
            pos += 8
            columns.append(RelationColumn(column, type_oid, modifier, bool(flags & 1)))
        # An empty namespace means pg_catalog, as the protocol documents.
        rel = Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))
        if self.relations.get(oid) != rel:
            self.relations[oid] = rel  # keep the old object when equal: consumers compare by `is`

    def _row(self, kind: bytes, data: bytes, txn: Transaction) -> RowChange:
        (oid,) = _U32(data, 1)
        rel = self.relations.get(oid)
        if rel is None:
            raise DecodeError(f"row for relation {oid} before its R message")
        marker = data[5:6]
        old: Row | None = None
        new: Row | None = None
        old_kind = ""
        pos = 6
        if marker in (b"K", b"O"):
            old_kind = marker.decode()
            old, pos, unchanged = _tuple(data, pos)
            txn.has_unchanged |= unchanged
            marker = data[pos : pos + 1]
            pos += 1
        if kind != b"D":
            if marker != b"N":
                raise DecodeError(
                    f"{kind.decode()} message for {rel.name}: expected N, got {marker!r}"
                )
            new, pos, unchanged = _tuple(data, pos)
            txn.has_unchanged |= unchanged
        elif old is None:
            raise DecodeError(f"D message for {rel.name} without an old key or row")
        return RowChange(kind.decode(), rel, new, old, old_kind)

    def _truncate(self, data: bytes) -> Truncate:
        (count,) = _I32(data, 1)
        options = data[5]
        oids = struct.unpack_from(f">{count}I", data, 6)
        missing = [oid for oid in oids if oid not in self.relations]
        if missing:
            raise DecodeError(f"TRUNCATE of relations {missing} before their R messages")
        rels = tuple(self.relations[oid] for oid in oids)
        return Truncate(rels, bool(options & 1), bool(options & 2))

    def _message(self, data: bytes, txn: Transaction | None) -> LogicalMessage | None:
        transactional = bool(data[1] & 1)
        (lsn,) = _U64(data, 2)
        prefix, pos = _cstring(data, 10)
        (length,) = _I32(data, pos)
        msg = LogicalMessage(transactional, lsn, prefix, data[pos + 4 : pos + 4 + length])
        if transactional and txn is not None:
            txn.changes.append(msg)
            return None
        return msg


def _tuple(data: bytes, pos: int) -> tuple[Row, int, bool]:
    """TupleData at ``pos``: the values, the position after it, and whether one is unchanged."""
    (count,) = _U16(data, pos)
    pos += 2
    values: list[Value] = []
    append, i32 = values.append, _I32  # locals: this loop runs once per column of every row
    unchanged = False
    for _ in range(count):
        kind = data[pos]
        if kind == 116 or kind == 98:  # text, binary (int literals: the fastest test)
            (length,) = i32(data, pos + 1)
            start = pos + 5
            pos = start + length
            append(data[start:pos])
        elif kind == 110:  # 'n' null
            append(None)
            pos += 1
        elif kind == 117:  # 'u' unchanged TOAST
            append(UNCHANGED)
            unchanged = True
            pos += 1
        else:
            raise DecodeError(f"unknown tuple value kind {chr(kind)!r} at byte {pos}")
    return tuple(values), pos, unchanged


# -- columnar form -------------------------------------------------------------------------------


def text_columns(
    rows: Sequence[Row],
    types: Sequence[pa.DataType],
    has_unchanged: bool = False,
    lost: dict[int, tuple[pa.Array, pa.Array]] | None = None,
) -> tuple[list[pa.Array], dict[int, pa.Array]]:
    """Arrow arrays of ``rows`` (column texts) in ``types``, and unchanged masks by column index.

    Each column's values are gathered with one C-level ``map`` and converted as a whole.
    """
    import pyarrow as pa

    arrays: list[pa.Array] = []
    masks: dict[int, pa.Array] = {}
    for i, typ in enumerate(types):
        values: list[Any] = list(map(itemgetter(i), rows))
        if has_unchanged and UNCHANGED in values:
            # Rare (TOAST): one pass to split the sentinel into a mask and a null.
            masks[i] = pa.array([v is UNCHANGED for v in values], pa.bool_())
            values = [None if v is UNCHANGED else v for v in values]
        texts = pa.array(values, pa.binary())
        cast = cast_text(texts, typ)
        if lost is not None and cast.null_count > texts.null_count:
            import pyarrow.compute as pc

            # A value Arrow cannot hold became null: report it rather than lose it silently.
            lost[i] = (pc.and_(pc.is_valid(texts), pc.is_null(cast)), texts)
        arrays.append(cast)
    return arrays, masks


# -- change batches ------------------------------------------------------------------------------

_OPS = {"I": "c", "U": "u", "D": "d"}


class _Group:
    """Rows of one table under one schema, on their way to a ChangeBatch."""

    def __init__(self, relation: Relation, schema: TableSchema, truncate: bool = False) -> None:
        self.relation = relation
        self.schema = schema
        names = schema.names
        self.key_idx = tuple(names.index(k) for k in schema.primary_key if k in names)
        self.truncate = truncate
        self.ops: list[str] = []
        self.rows: list[Row] = []
        self.old: list[Row | None] = []
        self.any_old = False
        self.seqs: list[int] = []
        self.lsn = 0
        self.has_unchanged = False


def change_batches(
    transactions: Sequence[Transaction], schema_of: Callable[[Relation], TableSchema]
) -> list[ChangeBatch]:
    """One :class:`ChangeBatch` per table per schema, rows in commit order.

    A table's TRUNCATE closes its batch and adds an empty ``truncate=True`` batch, so the rows
    after it land in a later batch; a changed relation (``R``) starts a batch with the new schema.
    ``seq`` is each transaction's commit end LSN, ``position`` resumes after the batch's last row.
    """
    groups: list[_Group] = []
    open_: dict[int, _Group] = {}
    for txn in transactions:
        seq = txn.end_lsn
        for change in txn.changes:
            if type(change) is RowChange:
                rel = change.relation
                group = open_.get(rel.oid)
                if group is None or group.relation is not rel:
                    group = _reopen(group, rel, schema_of, groups, open_)
                _add_row(group, change, seq)
                group.has_unchanged |= txn.has_unchanged
            elif type(change) is Truncate:
                for rel in change.relations:
                    open_.pop(rel.oid, None)
                    empty = _Group(rel, schema_of(rel), truncate=True)
                    empty.lsn = seq
                    groups.append(empty)
    return [_batch(g) for g in groups]


def _reopen(
    group: _Group | None,
    rel: Relation,
    schema_of: Callable[[Relation], TableSchema],
    groups: list[_Group],
    open_: dict[int, _Group],
) -> _Group:
    schema = schema_of(rel)
    if group is not None and group.schema == schema:
        group.relation = rel  # an R message repeated the same columns
        return group
    group = _Group(rel, schema)
    groups.append(group)
    open_[rel.oid] = group
    return group


def _add_row(group: _Group, change: RowChange, seq: int) -> None:
    op = change.op
    group.ops.append(_OPS[op])
    group.seqs.append(seq)
    group.lsn = seq
    old = change.old
    if op == "D":
        group.rows.append(old)  # type: ignore[arg-type]  # D always has an old image
        group.old.append(None)
        return
    new: Row = change.new  # type: ignore[assignment]  # I and U always have a new image
    group.rows.append(new)
    # A key column missing from the old image (REPLICA IDENTITY on another index) tells nothing.
    if (
        old is not None
        and all(old[i] is not None for i in group.key_idx)
        and any(old[i] != new[i] for i in group.key_idx)
    ):
        keys: list[Value] = [None] * len(new)
        for i in group.key_idx:
            keys[i] = old[i]
        group.old.append(tuple(keys))
        group.any_old = True
    else:
        group.old.append(None)


def _batch(group: _Group) -> ChangeBatch:
    import pyarrow as pa

    from ..core.changes import ChangeBatch

    schema = group.schema
    arrow_schema = schema.arrow_schema()
    types = [c.type for c in schema.columns]
    lost: dict[int, tuple[pa.Array, pa.Array]] = {}
    arrays, masks = text_columns(group.rows, types, group.has_unchanged, lost)
    rejects = _rejects(lost, schema)
    old_keys = None
    if group.any_old:
        empty: Row = (None,) * len(types)
        olds = [o if o is not None else empty for o in group.old]
        old_arrays, _ = text_columns(olds, types, group.has_unchanged)
        old_keys = pa.Table.from_arrays(old_arrays, schema=arrow_schema)
    unchanged: Mapping[str, pa.Array] = {schema.columns[i].name: m for i, m in masks.items()}
    return ChangeBatch(
        schema=schema,
        ops=pa.array(group.ops, pa.string()),
        rows=pa.Table.from_arrays(arrays, schema=arrow_schema),
        seq=pa.array(group.seqs, pa.int64()),
        position={"lsn": format_lsn(group.lsn)},
        old_keys=old_keys,
        unchanged=unchanged,
        truncate=group.truncate,
        truncate_seq=group.lsn if group.truncate else None,
        rejects=rejects,
    )


def _rejects(lost: dict[int, tuple[pa.Array, pa.Array]], schema: TableSchema) -> dict[int, str]:
    """Row index → why its values could not be represented (with the source's text)."""
    out: dict[int, str] = {}
    for col, (mask, texts) in lost.items():
        column = schema.columns[col]
        for row, (bad, text) in enumerate(zip(mask.to_pylist(), texts.to_pylist(), strict=True)):
            if bad:
                shown = text.decode(errors="replace") if isinstance(text, bytes) else text
                reason = (
                    f"column {column.name} ({column.source_type}): value {shown!r} does "
                    f"not fit {column.type}"
                )
                out[row] = f"{out[row]}; {reason}" if row in out else reason
    return out
