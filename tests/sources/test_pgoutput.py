"""The pgoutput decoder: hand-built protocol messages, then real output of a private PostgreSQL."""

from __future__ import annotations

import shutil
import struct
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zetl_nb.core.changes import Column, TableId, TableSchema
from zetl_nb.services.postgres import EmbeddedPostgres
from zetl_nb.sources.pgoutput import (
    UNCHANGED,
    DecodeError,
    LogicalMessage,
    PgOutputDecoder,
    Relation,
    RowChange,
    Transaction,
    Truncate,
    cast_text,
    change_batches,
    format_lsn,
    parse_lsn,
)

# -- message builders (the layouts of the PostgreSQL manual, protocol version 1) ------------------


def _c(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(final_lsn: int, xid: int, ts: int = 0) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, ts, xid)


def commit(commit_lsn: int, end_lsn: int, ts: int = 0) -> bytes:
    return b"C" + struct.pack(">BQQq", 0, commit_lsn, end_lsn, ts)


def relation(oid: int, name: str, cols: list[tuple[str, int, int, bool]], ns: str = "s") -> bytes:
    body = b"".join(
        struct.pack(">B", key) + _c(col) + struct.pack(">Ii", typ, mod)
        for col, typ, mod, key in cols
    )
    return (
        b"R"
        + struct.pack(">I", oid)
        + _c(ns)
        + _c(name)
        + b"d"
        + struct.pack(">H", len(cols))
        + body
    )


def tup(*values: Any) -> bytes:
    out = [struct.pack(">H", len(values))]
    for v in values:
        if v is None:
            out.append(b"n")
        elif v is UNCHANGED:
            out.append(b"u")
        else:
            raw = v.encode() if isinstance(v, str) else v
            out.append(b"t" + struct.pack(">i", len(raw)) + raw)
    return b"".join(out)


def insert(oid: int, *values: Any) -> bytes:
    return b"I" + struct.pack(">I", oid) + b"N" + tup(*values)


def update(
    oid: int, new: tuple[Any, ...], old: tuple[Any, ...] | None = None, kind: bytes = b"K"
) -> bytes:
    head = b"U" + struct.pack(">I", oid)
    return head + (kind + tup(*old) if old is not None else b"") + b"N" + tup(*new)


def delete(oid: int, old: tuple[Any, ...], kind: bytes = b"K") -> bytes:
    return b"D" + struct.pack(">I", oid) + kind + tup(*old)


def truncate(*oids: int, options: int = 0) -> bytes:
    return b"T" + struct.pack(">iB", len(oids), options) + struct.pack(f">{len(oids)}I", *oids)


ITEMS = [("id", 23, -1, True), ("name", 25, -1, False), ("price", 1700, (10 << 16 | 2) + 4, False)]


def schema_of(rel: Relation) -> TableSchema:
    from zetl_nb.sources.postgres import arrow_type

    cols = tuple(Column(c.name, arrow_type(c.type_oid, c.type_modifier), "t") for c in rel.columns)
    keys = tuple(c.name for c in rel.columns if c.is_key)
    return TableSchema(TableId("db", rel.namespace, rel.name), cols, keys)


def feed_all(dec: PgOutputDecoder, *messages: bytes) -> list[Transaction | LogicalMessage]:
    out = [dec.feed(m) for m in messages]
    return [o for o in out if o is not None]


# -- decoding --------------------------------------------------------------------------------------


def test_a_transaction_with_every_row_message() -> None:
    dec = PgOutputDecoder()
    ts = 366 * 86_400_000_000  # µs after 2000-01-01, a leap year
    (txn,) = feed_all(
        dec,
        begin(0x100, xid=42, ts=ts),
        b"O" + struct.pack(">Q", 0x90) + _c("upstream"),
        relation(7, "items", ITEMS),
        insert(7, "1", "apple", "1.50"),
        update(7, ("2", UNCHANGED, None), old=("1", None, None)),
        delete(7, ("2", None, None)),
        commit(0x100, 0x128, ts),
    )
    assert isinstance(txn, Transaction)
    assert (txn.xid, txn.final_lsn, txn.commit_lsn, txn.end_lsn) == (42, 0x100, 0x100, 0x128)
    assert txn.origin == "upstream"
    assert txn.commit_time == datetime(2001, 1, 1, tzinfo=UTC)
    assert txn.commit_timestamp == ts and txn.rows == 3 and txn.has_unchanged
    rel = dec.relations[7]
    assert (rel.namespace, rel.name, [c.is_key for c in rel.columns]) == ("s", "items", [1, 0, 0])
    ins, upd, dele = txn.changes
    assert ins == RowChange("I", rel, (b"1", b"apple", b"1.50"), None, "")
    assert upd == RowChange("U", rel, (b"2", UNCHANGED, None), (b"1", None, None), "K")
    assert dele == RowChange("D", rel, None, (b"2", None, None), "K")
    assert not dec.in_transaction


def test_relation_cache_keeps_the_object_while_the_columns_stay() -> None:
    dec = PgOutputDecoder()
    dec.feed(relation(7, "items", ITEMS))
    first = dec.relations[7]
    dec.feed(relation(7, "items", ITEMS))
    assert dec.relations[7] is first
    dec.feed(relation(7, "items", [*ITEMS, ("added", 20, -1, False)]))
    assert dec.relations[7] is not first and dec.relations[7].columns[-1].name == "added"
    dec.feed(b"Y" + struct.pack(">I", 16_400) + _c("") + _c("mood"))
    assert dec.types[16_400].namespace == "pg_catalog" and dec.types[16_400].name == "mood"


def test_truncate_and_logical_messages() -> None:
    dec = PgOutputDecoder()
    free = dec.feed(b"M\x00" + struct.pack(">Q", 5) + _c("audit") + struct.pack(">i", 2) + b"hi")
    assert free == LogicalMessage(False, 5, "audit", b"hi")
    (txn,) = feed_all(
        dec,
        relation(7, "items", ITEMS),
        relation(8, "other", ITEMS),
        begin(0x200, 1),
        truncate(7, 8, options=3),
        b"M\x01" + struct.pack(">Q", 6) + _c("p") + struct.pack(">i", 0),
        commit(0x200, 0x230),
    )
    assert isinstance(txn, Transaction)
    trunc, msg = txn.changes
    assert trunc == Truncate((dec.relations[7], dec.relations[8]), True, True)
    assert msg == LogicalMessage(True, 6, "p", b"")


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([insert(7, "1", "a", "1")], "outside a transaction"),
        ([begin(1, 1), insert(9, "1")], "before its R message"),
        ([begin(1, 1), begin(2, 2)], "inside transaction"),
        ([commit(1, 2)], "outside a transaction"),
        ([b"S" + bytes(8)], "unknown pgoutput message"),
        ([begin(1, 1), b"I" + struct.pack(">I", 7) + b"N" + struct.pack(">H", 1) + b"x"], "kind"),
        ([begin(1, 1), insert(7, "1", "a", "1")[:12]], "malformed"),
        (
            [begin(1, 1), b"D" + struct.pack(">I", 7) + b"N" + tup("1", None, None)],
            "without an old",
        ),
    ],
)
def test_protocol_violations_raise_decode_error(messages: list[bytes], error: str) -> None:
    dec = PgOutputDecoder()
    dec.feed(relation(7, "items", ITEMS))
    with pytest.raises(DecodeError, match=error):
        for m in messages:
            dec.feed(m)


def test_reset_drops_a_partial_transaction_but_keeps_relations() -> None:
    dec = PgOutputDecoder()
    feed_all(dec, relation(7, "items", ITEMS), begin(1, 1), insert(7, "1", "a", "1"))
    dec.reset()
    assert not dec.in_transaction and 7 in dec.relations


@given(st.integers(min_value=0, max_value=2**64 - 1))
@settings(deadline=None)  # no per-example timing: the test machine is shared and busy
def test_lsn_text_round_trips(lsn: int) -> None:
    assert parse_lsn(format_lsn(lsn)) == lsn


def test_lsn_text_is_postgres_spelling() -> None:
    assert format_lsn(0x14AA3F8) == "0/14AA3F8" and parse_lsn("16/B374D848") == 0x16B374D848
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("12")


# -- columnar form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "typ", "expected"),
    [
        (["1", "-32768", None], pa.int32(), [1, -32768, None]),
        (["9223372036854775807"], pa.int64(), [2**63 - 1]),
        (["1.5", "Infinity", "-Infinity"], pa.float64(), [1.5, float("inf"), float("-inf")]),
        (["t", "f", None], pa.bool_(), [True, False, None]),
        (
            ["12.30", "-0.05", "NaN"],
            pa.decimal128(10, 2),
            [Decimal("12.30"), Decimal("-0.05"), None],
        ),
        (
            ["1.123456789012345", "1" * 29, "-7"],
            pa.decimal128(38, 10),
            [Decimal("1.1234567890"), None, Decimal("-7.0000000000")],
        ),
        (["2024-02-29", "infinity", "0044-03-15 BC"], pa.date32(), [date(2024, 2, 29), None, None]),
        (
            ["2024-01-01 10:00:00.5", "-infinity"],
            pa.timestamp("us"),
            [datetime(2024, 1, 1, 10, 0, 0, 500_000), None],
        ),
        (
            ["2024-01-01 10:00:00+00", "infinity"],
            pa.timestamp("us", "UTC"),
            [datetime(2024, 1, 1, 10, tzinfo=UTC), None],
        ),
        (
            ["23:59:59.999999", "00:00:00", "24:00:00"],
            pa.time64("us"),
            [time(23, 59, 59, 999_999), time(0), None],
        ),
        (["{1,2}", "", None], pa.string(), ["{1,2}", "", None]),
        (["\\x00ff10", "\\x", None], pa.binary(), [b"\x00\xff\x10", b"", None]),
    ],
)
def test_cast_text_converts_whole_columns(
    texts: list[str | None], typ: pa.DataType, expected: list[Any]
) -> None:
    out = cast_text(
        pa.array([t.encode() if t is not None else None for t in texts], pa.binary()), typ
    )
    assert out.type == typ
    assert out.to_pylist() == expected


def test_bytea_in_escape_format_or_with_bad_digits_is_refused() -> None:
    with pytest.raises(DecodeError, match="hex"):
        cast_text(pa.array(["abc"]), pa.binary())
    with pytest.raises(DecodeError, match="odd number"):
        cast_text(pa.array(["\\x0g"]), pa.binary())


@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))))
@settings(deadline=None)  # no per-example timing: the test machine is shared and busy
def test_integer_text_columns_round_trip(values: list[int | None]) -> None:
    texts = pa.array([str(v).encode() if v is not None else None for v in values], pa.binary())
    assert cast_text(texts, pa.int64()).to_pylist() == values


@given(st.lists(st.binary(max_size=20), max_size=30))
@settings(deadline=None)  # no per-example timing: the test machine is shared and busy
def test_bytea_hex_round_trips(values: list[bytes]) -> None:
    texts = pa.array(["\\x" + v.hex() for v in values], pa.string())
    assert cast_text(texts, pa.binary()).to_pylist() == values


def _decode(*messages: bytes) -> list[Transaction]:
    dec = PgOutputDecoder()
    return [
        t
        for t in feed_all(dec, relation(7, "items", ITEMS), *messages)
        if isinstance(t, Transaction)
    ]


def test_change_batches_group_per_table_in_commit_order() -> None:
    txns = _decode(
        begin(0x10, 1),
        insert(7, "1", "a", "1.00"),
        insert(7, "2", "b", "2.00"),
        commit(0x10, 0x18),
        begin(0x20, 2),
        update(7, ("1", "A", "1.50")),
        delete(7, ("2", None, None)),
        commit(0x20, 0x28),
    )
    (batch,) = change_batches(txns, schema_of)
    assert batch.ops.to_pylist() == ["c", "c", "u", "d"]
    assert batch.seq.to_pylist() == [0x18, 0x18, 0x28, 0x28]
    assert batch.rows.column("price").to_pylist() == [
        Decimal("1.00"),
        Decimal("2.00"),
        Decimal("1.50"),
        None,
    ]
    assert batch.rows.column("id").to_pylist() == [1, 2, 1, 2]
    assert batch.position == {"lsn": "0/28"} and batch.old_keys is None and not batch.unchanged
    assert batch.rows.schema == batch.schema.arrow_schema()


def test_old_keys_only_where_the_key_changed() -> None:
    txns = _decode(
        begin(0x10, 1),
        update(7, ("5", "x", "1"), old=("4", None, None)),
        update(7, ("6", "y", "1"), old=("6", "y", "0"), kind=b"O"),  # FULL identity, same key
        update(7, ("8", "z", "1"), old=("7", "z", "1"), kind=b"O"),
        update(7, ("9", "w", "1")),
        commit(0x10, 0x18),
    )
    (batch,) = change_batches(txns, schema_of)
    assert batch.old_keys is not None
    assert batch.old_keys.column("id").to_pylist() == [4, None, 7, None]
    assert batch.old_keys.column("name").to_pylist() == [None] * 4


def test_unchanged_toast_becomes_a_mask_and_null() -> None:
    txns = _decode(
        begin(0x10, 1),
        update(7, ("1", UNCHANGED, "2.00")),
        insert(7, "2", "b", "1"),
        commit(0x10, 0x18),
    )
    (batch,) = change_batches(txns, schema_of)
    assert batch.unchanged["name"].to_pylist() == [True, False]
    assert batch.rows.column("name").to_pylist() == [None, "b"]


def test_truncate_keeps_its_place_and_a_new_relation_starts_a_batch() -> None:
    dec = PgOutputDecoder()
    txns = feed_all(
        dec,
        relation(7, "items", ITEMS),
        relation(8, "other", ITEMS),
        begin(0x10, 1),
        insert(7, "1", "a", "1"),
        insert(8, "1", "a", "1"),
        truncate(7),
        insert(7, "2", "b", "2"),
        relation(7, "items", [*ITEMS, ("note", 25, -1, False)]),
        insert(7, "3", "c", "3", "new"),
        commit(0x10, 0x18),
    )
    batches = change_batches([t for t in txns if isinstance(t, Transaction)], schema_of)
    summary = [(b.table.table, b.truncate, b.rows.column("id").to_pylist()) for b in batches]
    assert summary == [
        ("items", False, [1]),
        ("other", False, [1]),
        ("items", True, []),
        ("items", False, [2]),
        ("items", False, [3]),
    ]
    assert batches[-1].schema.names == ["id", "name", "price", "note"]
    assert batches[2].seq.to_pylist() == [] and batches[2].position == {"lsn": "0/18"}


# -- real pgoutput output -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    # Outside pytest's base temp, which another pytest session may make private (0700) under
    # the server's own, non-root user; see test_postgres_source.private_dir.
    path = Path(tempfile.mkdtemp(prefix="zetl-pgoutput-"))
    server = EmbeddedPostgres(path / "data")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(path, ignore_errors=True)


def _changes(cur: Any, slot: str) -> list[bytes]:
    cur.execute(
        "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
        "'publication_names', 'pub', 'messages', 'true')",
        (slot,),
    )
    return [bytes(row[0]) for row in cur.fetchall()]


def test_real_pgoutput_messages_decode(pg: EmbeddedPostgres) -> None:
    conn = psycopg2.connect(pg.dsn(), options="-c TimeZone=UTC")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');"
        "CREATE TABLE items (id int PRIMARY KEY, m mood, big text, n numeric(6,2), ts timestamptz);"
        "CREATE TABLE full_items (id int, note text); ALTER TABLE full_items REPLICA IDENTITY FULL;"
        "CREATE PUBLICATION pub FOR ALL TABLES"
    )
    cur.execute("SELECT pg_create_logical_replication_slot('dec', 'pgoutput')")
    cur.execute("SELECT pg_replication_origin_create('upstream')")
    big = "".join(f"{i:08x}" for i in range(1000))  # 8 kB, poorly compressible: stored out of line
    cur.execute("INSERT INTO items VALUES (1, 'sad', %s, 1.5, '2024-05-01 12:00:00+02')", (big,))
    cur.execute(
        "BEGIN; UPDATE items SET n = 2.25 WHERE id = 1;"
        " UPDATE items SET id = 2 WHERE id = 1; COMMIT"
    )
    cur.execute(
        "INSERT INTO full_items VALUES (1, 'x'); UPDATE full_items SET note = 'y';"
        " DELETE FROM full_items"
    )
    cur.execute("SELECT pg_logical_emit_message(false, 'free', 'hello')")
    cur.execute(
        "BEGIN; SELECT pg_replication_origin_session_setup('upstream'); TRUNCATE items; COMMIT"
    )
    cur.execute("SELECT pg_replication_origin_session_reset()")
    dec = PgOutputDecoder()
    out = feed_all(dec, *_changes(cur, "dec"))
    txns = [o for o in out if isinstance(o, Transaction)]
    assert [o for o in out if isinstance(o, LogicalMessage)] == [
        LogicalMessage(False, out[3].lsn, "free", b"hello")  # type: ignore[union-attr]
    ]
    assert [t.end_lsn > t.commit_lsn for t in txns] == [True] * len(txns)
    assert [len(t.changes) for t in txns] == [1, 2, 3, 1]
    items = next(r for r in dec.relations.values() if r.name == "items")
    assert [c.name for c in items.columns] == ["id", "m", "big", "n", "ts"]
    assert [c.is_key for c in items.columns] == [True, False, False, False, False]
    assert any(t.name == "mood" for t in dec.types.values())  # a Y message for the enum
    ins = txns[0].changes[0]
    assert isinstance(ins, RowChange) and ins.new == (
        b"1",
        b"sad",
        big.encode(),
        b"1.50",
        b"2024-05-01 10:00:00+00",
    )
    price, key = txns[1].changes
    assert isinstance(price, RowChange) and price.new == (
        b"1",
        b"sad",
        UNCHANGED,
        b"2.25",
        b"2024-05-01 10:00:00+00",
    )
    assert (
        isinstance(key, RowChange)
        and key.old_kind == "K"
        and key.old == (b"1", None, None, None, None)
    )
    assert [c.old_kind for c in txns[2].changes] == ["", "O", "O"]  # type: ignore[union-attr]
    assert txns[-1].origin == "upstream" and isinstance(txns[-1].changes[0], Truncate)

    batches = change_batches(txns[:2], _real_schema)
    (batch,) = batches
    assert batch.ops.to_pylist() == ["c", "u", "u"]
    # Even the key change leaves the out-of-line value unsent: it stays under the *old* key.
    assert batch.unchanged["big"].to_pylist() == [False, True, True]
    assert batch.old_keys is not None and batch.old_keys.column("id").to_pylist() == [None, None, 1]
    assert batch.rows.column("ts").to_pylist()[0] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert batch.rows.column("n").to_pylist() == [Decimal("1.50"), Decimal("2.25"), Decimal("2.25")]
    cur.execute("SELECT pg_drop_replication_slot('dec'); DROP PUBLICATION pub")
    conn.close()


def _real_schema(rel: Relation) -> TableSchema:
    schema = schema_of(rel)
    return TableSchema(schema.table, schema.columns, ("id",))
