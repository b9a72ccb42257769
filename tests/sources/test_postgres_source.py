"""PostgresSource against private PostgreSQL 16 servers: discovery, prerequisites, snapshot, CDC.

One server for the module, a fresh database (and slot) per test (see ``pg_support``).
"""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from typing import Any

import psycopg2
import pyarrow as pa
import pytest
from pg_support import Db, collect, db, flat, only, pg, private_dir, published

from zetl_nb.core.changes import ChangeBatch
from zetl_nb.services.postgres import EmbeddedPostgres
from zetl_nb.sources.base import REJECT_COLUMN, SourceError
from zetl_nb.sources.pgoutput import parse_lsn
from zetl_nb.sources.postgres import PostgresSource
from zetl_nb.transform.datafilter import DataFilter

__all__ = ["db", "pg"]  # fixtures


# -- discovery ---------------------------------------------------------------------------------


def test_discover_lists_included_tables_with_keys(db: Db) -> None:
    db.sql(
        "CREATE SCHEMA audit",
        "CREATE TABLE orders (id int, region text, total numeric(12,2) NOT NULL,"
        " doubled numeric GENERATED ALWAYS AS (total * 2) STORED, PRIMARY KEY (region, id))",
        "INSERT INTO orders SELECT g, 'eu', g FROM generate_series(1, 30) g",
        "CREATE TABLE nopk (note text)",
        "CREATE VIEW v AS SELECT * FROM orders",
        "CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders",
        "CREATE TABLE parted (id int PRIMARY KEY, at date) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100)",
        "CREATE UNLOGGED TABLE scratch (id int)",
        "CREATE TABLE audit.log (id bigint PRIMARY KEY)",
        "ANALYZE",
    )
    states = db.source.discover(
        DataFilter.parse(f"include: {db.name}.*.*, exclude: {db.name}.audit.*", levels=3)
    )
    by_name = {s.schema.table.table: s for s in states}
    assert sorted(by_name) == ["nopk", "orders", "parted"]
    orders = by_name["orders"].schema
    assert orders.table == db.tid("orders")
    assert orders.primary_key == ("region", "id")  # key order, not column order
    assert [(c.name, str(c.type), c.source_type, c.nullable) for c in orders.columns] == [
        ("id", "int32", "integer", False),
        ("region", "string", "text", False),
        ("total", "decimal128(12, 2)", "numeric(12,2)", False),
    ]
    assert by_name["orders"].estimated_rows == 30
    assert by_name["nopk"].schema.primary_key == ()
    assert by_name["parted"].schema.primary_key == ("id",)
    audit = db.source.discover(DataFilter.parse(f"include: {db.name}.audit.*", levels=3))
    assert [s.schema.table for s in audit] == [db.tid("log", "audit")]


KINDS = (
    "CREATE TYPE mood AS ENUM ('sad', 'happy');"
    "CREATE DOMAIN money2 AS numeric(8,2);"
    "CREATE TABLE kinds (id int PRIMARY KEY, a smallint, b bigint, c numeric(10,2), d numeric,"
    " e real, f double precision, g boolean, h bytea, i date, j timestamp, k timestamptz,"
    " l time, m interval, n uuid, o jsonb, p int[], q text, r varchar(5), s char(3), t mood,"
    " u money2)"
)
ROW = (
    "(%s, 1, 9007199254740993, 3.45, 1.123456789012345, 1.5, 'NaN', true, '\\x00ff10',"
    " '2024-02-29', '2024-01-01 10:00:00.5', '2024-01-01 10:00:00+02', '23:59:59.999999',"
    " '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', '{1,2}',"
    " E'line\\nnext, \"quoted\"', '', 'ab', 'happy', 12.5)"
)
EDGE = (
    "(%s, NULL, NULL, NULL, 'NaN', NULL, 'Infinity', false, '\\x', 'infinity', '-infinity',"
    " '0044-03-15 12:00:00 BC', '24:00:00', NULL, NULL, NULL, '{}', NULL, NULL, NULL, NULL, NULL)"
)
EXPECTED = [
    {
        "a": 1,
        "b": 9007199254740993,
        "c": Decimal("3.45"),
        "d": Decimal("1.1234567890"),
        "e": 1.5,
        "g": True,
        "h": b"\x00\xff\x10",
        "i": date(2024, 2, 29),
        "j": datetime(2024, 1, 1, 10, 0, 0, 500_000),
        "k": datetime(2024, 1, 1, 8, tzinfo=UTC),
        "l": clock(23, 59, 59, 999_999),
        "m": "1 day",
        "n": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "o": '{"a": [1, 2]}',
        "p": "{1,2}",
        "q": 'line\nnext, "quoted"',
        "r": "",
        "s": "ab ",
        "t": "happy",
        "u": Decimal("12.50"),
    },
    {
        **dict.fromkeys("abcdeijklmnoqrstu"),
        "f": float("inf"),
        "g": False,
        "h": b"",
        "p": "{}",
    },
]


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.drop_columns(["id"]).to_pylist()
    for row in rows:
        if row["f"] != row["f"]:  # NaN
            row.pop("f")
    return rows


def test_snapshot_and_stream_agree_on_every_type(db: Db) -> None:
    db.sql(KINDS, f"INSERT INTO kinds VALUES {ROW}, {EDGE}", args=(1, 2))
    (state,) = db.source.discover(DataFilter.parse(f"include: {db.name}.public.kinds", 3))
    types = {c.name: (str(c.type), c.source_type) for c in state.schema.columns}
    assert types["u"] == ("decimal128(8, 2)", "money2") and types["t"] == ("string", "mood")
    assert types["a"][0] == "int32" and types["d"][0] == "decimal128(38, 10)"
    assert types["k"][0] == "timestamp[us, tz=UTC]" and types["l"][0] == "time64[us]"
    db.source.publish([state.schema.table])
    snap = db.source.snapshot([state.schema.table])
    copied = pa.Table.from_batches(list(snap.read(state.schema.table)))
    snap.close()
    # The edge row holds values Arrow cannot (infinity, ...): flagged for the dead letters.
    reasons = copied.column(REJECT_COLUMN).to_pylist()
    assert reasons[0] is None and "does not fit" in reasons[1]
    copied = copied.drop_columns([REJECT_COLUMN])
    assert copied.schema == state.schema.arrow_schema()
    assert _rows(copied) == EXPECTED

    stream = db.source.stream(snap.position)
    db.sql(f"INSERT INTO kinds VALUES {ROW}, {EDGE}", args=(3, 4))
    (batch,) = collect(stream, 2)
    stream.close()
    assert batch.schema == state.schema  # same columns, types, nullability and key
    assert _rows(batch.rows) == EXPECTED and batch.ops.to_pylist() == ["c", "c"]
    assert list(batch.rejects) == [1] and "does not fit" in batch.rejects[1]


# -- prerequisites -------------------------------------------------------------------------------


def test_prerequisites_on_a_misconfigured_server() -> None:
    with private_dir() as path:
        port = _misconfigured_server_checks(EmbeddedPostgres(path / "data"))
    gone = PostgresSource(f"postgresql://postgres@127.0.0.1:{port}/postgres", "s", "p")
    with pytest.raises(SourceError) as down:
        gone.discover(DataFilter.parse("include: *.*.*", 3))
    assert down.value.code == "SourceUnavailable"


def _misconfigured_server_checks(server: EmbeddedPostgres) -> int:
    server.start()
    try:
        admin = PostgresSource(server.dsn(), "s", "p")
        assert admin.check_prerequisites() == []
        admin._query("ALTER SYSTEM SET wal_level = replica")
        admin._query("CREATE ROLE app LOGIN")
        admin.close()
        server.stop()
        server.start()

        app = PostgresSource(f"postgresql://app@127.0.0.1:{server.port}/postgres", "s", "p")
        problems = {p.code: p for p in app.check_prerequisites()}
        assert sorted(problems) == ["SourceReplicationPrivilegeMissing", "SourceWalLevelNotLogical"]
        wal = problems["SourceWalLevelNotLogical"]
        assert wal.fix is not None and "restart" in wal.fix.description.lower()
        assert "requires" in wal.fix.description.lower() and "restart" in wal.message
        (change,) = wal.fix.params["Parameters"]
        assert change == {
            "ParameterName": "wal_level",
            "ParameterValue": "logical",
            "ApplyMethod": "pending-reboot",
        }
        role = problems["SourceReplicationPrivilegeMissing"].fix
        assert role is not None and role.params == {"Statement": 'ALTER ROLE "app" REPLICATION'}
        with pytest.raises(SourceError, match="superuser"):
            role.apply()  # app cannot grant itself REPLICATION

        (admin_wal,) = admin.check_prerequisites()
        assert admin_wal.fix is not None
        admin_wal.fix.apply()
        admin._query("ALTER ROLE app REPLICATION")  # what role.apply() runs, as a superuser
        assert [p.code for p in admin.check_prerequisites()] == ["SourceWalLevelNotLogical"]
        admin.close()
        server.stop()  # the restart the fix asks for
        server.start()
        assert admin.check_prerequisites() == []
        app.close()
        assert app.check_prerequisites() == []
        app.close()
        admin.close()

        _require_password(server, admin)
        wrong = PostgresSource(f"postgresql://pw:wrong@127.0.0.1:{server.port}/postgres", "s", "p")
        with pytest.raises(SourceError) as denied:
            wrong.check_prerequisites()
        assert denied.value.code == "AuthenticationFailed"
        right = PostgresSource(f"postgresql://pw:right@127.0.0.1:{server.port}/postgres", "s", "p")
        assert [p.code for p in right.check_prerequisites()] == [
            "SourceReplicationPrivilegeMissing"
        ]
        right.close()
        return server.port
    finally:
        server.stop()


def _require_password(server: EmbeddedPostgres, admin: PostgresSource) -> None:
    admin._query("CREATE ROLE pw LOGIN PASSWORD 'right'")
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text("host all pw 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    admin._query("SELECT pg_reload_conf()")
    admin.close()


# -- snapshot ------------------------------------------------------------------------------------


def test_snapshot_is_exact_under_concurrent_writes(db: Db) -> None:
    db.sql(
        "CREATE TABLE acct (id int PRIMARY KEY, balance int, note text)",
        "INSERT INTO acct SELECT g, g, 'n' || g FROM generate_series(1, 20000) g",
        "CREATE TABLE marker (id int PRIMARY KEY)",
    )
    db.source.publish([db.tid("acct"), db.tid("marker")])
    writes = [0]
    stop = threading.Event()

    def writer() -> None:
        conn = psycopg2.connect(db.dsn)
        conn.autocommit = True
        rnd, next_id = random.Random(7), 20_001
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    "BEGIN; UPDATE acct SET balance = balance + 1 WHERE id = %s;"
                    " INSERT INTO acct VALUES (%s, 0, 'new');"
                    " DELETE FROM acct WHERE id = %s; COMMIT",
                    (rnd.randint(1, 20_000), next_id, rnd.randint(1, 20_000)),
                )
                next_id += 1
                writes[0] += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while writes[0] < 20:
            time.sleep(0.01)
        snap = db.source.snapshot([db.tid("acct")])
        before = writes[0]
        copy: dict[int, tuple[int, str]] = {}
        for batch in snap.read(db.tid("acct"), batch_rows=2_000):
            time.sleep(0.05)  # stretch the copy over many concurrent commits
            for row in batch.to_pylist():
                copy[row["id"]] = (row["balance"], row["note"])
        snap.close()
        assert writes[0] > before + 5, "too few writes happened during the copy"
    finally:
        stop.set()
        thread.join()
    db.sql("INSERT INTO marker VALUES (1)")
    final = {r[0]: (r[1], r[2]) for r in db.sql("SELECT id, balance, note FROM acct")}

    stream = db.source.stream(snap.position)
    batches: list[ChangeBatch] = []
    deadline = time.monotonic() + 15
    while not only(batches, "marker"):
        assert time.monotonic() < deadline
        batches += stream.poll(50_000, 0.2)
    stream.close()
    assert snap.seq > 0 and snap.position == {"lsn": snap.position["lsn"]}
    assert parse_lsn(snap.position["lsn"]) == snap.seq
    for batch in only(batches, "acct"):
        assert min(batch.seq.to_pylist()) > snap.seq
        for op, row in zip(batch.ops.to_pylist(), batch.rows.to_pylist(), strict=True):
            if op == "d":
                del copy[row["id"]]  # KeyError: the delete of a row the copy never had
            else:
                copy[row["id"]] = (row["balance"], row["note"])
    assert copy == final


def test_a_later_snapshot_reads_fresh_from_the_slot_position(db: Db) -> None:
    db.sql("CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a VALUES (1)")
    stream, seq = db.start("a")
    db.sql("CREATE TABLE b (id int PRIMARY KEY)")
    db.source.publish([db.tid("a"), db.tid("b")])
    db.sql("INSERT INTO b VALUES (1), (2)")
    collect(stream, 2)
    stream.ack(stream.position)
    stream.close()  # sends the acknowledgement
    confirmed = _confirmed_reaches(db, stream.position["lsn"])
    later = db.source.snapshot([db.tid("b")])
    assert seq > 0 and later.seq == 0
    assert parse_lsn(later.position["lsn"]) == confirmed
    assert [b.to_pylist() for b in later.read(db.tid("b"))] == [[{"id": 1}, {"id": 2}]]
    later.close()


def test_an_empty_table_reads_as_no_batches(db: Db) -> None:
    db.sql("CREATE TABLE empty (id int PRIMARY KEY, note text)")
    snap = db.source.snapshot([db.tid("empty")])
    assert list(snap.read(db.tid("empty"))) == []
    with pytest.raises(SourceError, match="not in the snapshot"):
        list(snap.read(db.tid("missing")))
    snap.close()


# -- change data capture -------------------------------------------------------------------------


def test_inserts_updates_deletes_in_commit_order(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
    stream, seq = db.start("t")
    db.sql("INSERT INTO t VALUES (1, 'a')")
    db.sql("BEGIN", "INSERT INTO t VALUES (2, 'b'), (3, 'c')", "UPDATE t SET v = 'A' WHERE id = 1")
    db.sql("DELETE FROM t WHERE id = 2", "COMMIT")
    changes = flat(collect(stream, 5))
    assert [(op, row) for op, row, _ in changes] == [
        ("c", {"id": 1, "v": "a"}),
        ("c", {"id": 2, "v": "b"}),
        ("c", {"id": 3, "v": "c"}),
        ("u", {"id": 1, "v": "A"}),
        ("d", {"id": 2, "v": None}),  # a delete carries the key only
    ]
    first, *rest = [s for _, _, s in changes]
    assert seq < first < rest[0] and len(set(rest)) == 1  # one seq per transaction
    assert parse_lsn(stream.position["lsn"]) == rest[0]
    stream.close()


def test_a_primary_key_update_reports_the_old_key(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    stream, _ = db.start("t")
    db.sql("UPDATE t SET id = 10 WHERE id = 1", "UPDATE t SET v = 'b' WHERE id = 10")
    (batch,) = collect(stream, 2)
    assert batch.rows.to_pylist() == [{"id": 10, "v": "a"}, {"id": 10, "v": "b"}]
    assert batch.old_keys is not None
    assert batch.old_keys.to_pylist() == [{"id": 1, "v": None}, {"id": None, "v": None}]
    stream.close()


def test_an_unchanged_toasted_value_is_flagged_not_sent(db: Db) -> None:
    db.sql(
        "CREATE TABLE doc (id int PRIMARY KEY, body text, n int)",
        "INSERT INTO doc SELECT 1, string_agg(md5(g::text), ''), 0 FROM generate_series(1, 200) g",
    )
    stream, _ = db.start("doc")
    db.sql("UPDATE doc SET n = 1", "UPDATE doc SET body = 'short', n = 2")
    (batch,) = collect(stream, 2)
    assert batch.unchanged["body"].to_pylist() == [True, False]
    assert batch.rows.to_pylist() == [
        {"id": 1, "body": None, "n": 1},
        {"id": 1, "body": "short", "n": 2},
    ]
    stream.close()


def test_truncate_keeps_its_place_among_the_rows(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    stream, _ = db.start("t")
    db.sql("INSERT INTO t VALUES (2)")
    db.sql("BEGIN", "TRUNCATE t", "INSERT INTO t VALUES (3)", "COMMIT")
    batches = collect(stream, 3)
    assert [(b.truncate, b.rows.column("id").to_pylist()) for b in batches] == [
        (False, [2]),
        (True, []),
        (False, [3]),
    ]
    assert batches[1].seq.to_pylist() == [] and batches[1].position == batches[2].position
    stream.close()


def test_schema_changes_mid_stream_start_a_batch_with_the_new_schema(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY, v int)")
    stream, _ = db.start("t")
    db.sql("INSERT INTO t VALUES (1, 1)")
    db.sql("ALTER TABLE t ADD COLUMN note text", "INSERT INTO t VALUES (2, 2, 'x')")
    db.sql("ALTER TABLE t ALTER COLUMN v TYPE bigint", "INSERT INTO t VALUES (3, 3, 'y')")
    old, added, widened = collect(stream, 3)
    assert old.schema.names == ["id", "v"] and old.rows.to_pylist() == [{"id": 1, "v": 1}]
    assert added.schema.names == ["id", "v", "note"] and added.schema.column("note").nullable
    assert added.rows.to_pylist() == [{"id": 2, "v": 2, "note": "x"}]
    assert str(widened.schema.column("v").type) == "int64"
    (now,) = db.source.discover(DataFilter.parse(f"include: {db.name}.public.t", 3))
    assert widened.schema == now.schema
    stream.close()


def test_partition_changes_arrive_under_the_partitioned_table(db: Db) -> None:
    db.sql(
        "CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (10)",
        "CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (10) TO (20)",
    )
    stream, _ = db.start("parted")
    db.sql("INSERT INTO parted VALUES (1, 'low'), (15, 'high')")
    (batch,) = collect(stream, 2)
    assert batch.table == db.tid("parted") and batch.rows.column("id").to_pylist() == [1, 15]
    stream.close()


def test_quoted_identifiers_survive_snapshot_and_stream(db: Db) -> None:
    db.sql(
        'CREATE SCHEMA "Sales Dept"',
        'CREATE TABLE "Sales Dept"."Order ""Lines""" ("Id" int PRIMARY KEY, "a.b" text)',
        'INSERT INTO "Sales Dept"."Order ""Lines""" VALUES (1, \'x\')',
    )
    table = db.tid('Order "Lines"', "Sales Dept")
    (state,) = db.source.discover(DataFilter.parse(f'include: {db.name}."Sales Dept".*', 3))
    assert state.schema.table == table and state.schema.names == ["Id", "a.b"]
    db.source.publish([table])
    assert published(db) == ['Sales Dept.Order "Lines"']
    snap = db.source.snapshot([table])
    assert [b.to_pylist() for b in snap.read(table)] == [[{"Id": 1, "a.b": "x"}]]
    snap.close()
    stream = db.source.stream(snap.position)
    db.sql('UPDATE "Sales Dept"."Order ""Lines""" SET "Id" = 2')
    (batch,) = collect(stream, 1)
    assert batch.schema == state.schema and batch.old_keys is not None
    assert batch.old_keys.column("Id").to_pylist() == [1]
    stream.close()


def test_an_identity_index_other_than_the_key_gives_no_old_key(db: Db) -> None:
    db.sql(
        "CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL UNIQUE)",
        "ALTER TABLE u REPLICA IDENTITY USING INDEX u_email_key",
        "INSERT INTO u VALUES (1, 'a@x')",
    )
    stream, _ = db.start("u")
    db.sql("UPDATE u SET email = 'b@x'")  # the old image holds email only, not the key
    (batch,) = collect(stream, 1)
    assert batch.old_keys is None and batch.rows.to_pylist() == [{"id": 1, "email": "b@x"}]
    stream.close()


def _confirmed(db: Db) -> str:
    sql = "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s"
    return str(db.sql(sql, args=(db.source.slot_name,))[0][0])


def _confirmed_reaches(db: Db, lsn: str) -> int:
    deadline = time.monotonic() + 5
    while parse_lsn(_confirmed(db)) < parse_lsn(lsn):
        assert time.monotonic() < deadline, f"the slot never confirmed {lsn}"
        time.sleep(0.02)
    return parse_lsn(_confirmed(db))


def test_ack_and_reconnect_resume_without_loss_or_duplicates(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    stream, _ = db.start("t")
    db.sql("INSERT INTO t VALUES (1)")
    collect(stream, 1)
    acked = dict(stream.position)
    stream.ack(acked)
    db.sql("INSERT INTO t VALUES (2)")
    collect(stream, 1)  # returned, not acknowledged
    unacked = dict(stream.position)
    # The status update carries the ack and never covers the unacknowledged transaction.
    # (psycopg2 moves the flush position up to a keepalive's WAL end while everything received
    # is acknowledged: WAL without changes for us, released so an idle slot does not hold it.)
    assert (
        parse_lsn(acked["lsn"]) <= _confirmed_reaches(db, acked["lsn"]) < parse_lsn(unacked["lsn"])
    )
    stream.close()
    assert _confirmed_reaches(db, acked["lsn"]) < parse_lsn(unacked["lsn"])

    db.sql("INSERT INTO t VALUES (3)")
    again = db.source.stream(acked)  # as after a crash before the target committed row 2
    assert [b.rows.column("id").to_pylist() for b in collect(again, 2)] == [[2, 3]]
    again.close()
    resumed = db.source.stream(unacked)  # as after the target committed row 2
    db.sql("INSERT INTO t VALUES (4)")
    assert [b.rows.column("id").to_pylist() for b in collect(resumed, 2)] == [[3, 4]]
    resumed.close()


def test_a_lost_walsender_is_reconnected_without_loss(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    stream, _ = db.start("t")
    db.sql("INSERT INTO t VALUES (1)")
    collect(stream, 1)
    db.sql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s",
        args=(db.source.slot_name,),
    )
    db.sql("INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
    assert [b.rows.column("id").to_pylist() for b in collect(stream, 2)] == [[2, 3]]
    stream.close()


def test_a_dropped_slot_is_position_lost(db: Db) -> None:
    db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    stream, _ = db.start("t")
    position = stream.position
    db.source.drop()  # ends the active walsender, drops slot and publication
    with pytest.raises(SourceError) as lost:
        for _ in range(50):
            stream.poll(10, 0.1)
    assert lost.value.code == "PositionLost" and lost.value.resync
    stream.close()
    with pytest.raises(SourceError) as again:
        db.source.stream(position)
    assert again.value.code == "PositionLost"
    db.source.drop()  # idempotent
    assert db.sql("SELECT count(*) FROM pg_publication") == [(0,)]
    slots = "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s"
    assert db.sql(slots, args=(db.source.slot_name,)) == [(0,)]


def test_positions_are_lsns(db: Db) -> None:
    now = db.source.current_position()
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", now["lsn"])
    assert db.source.seq_of(now) == parse_lsn(now["lsn"]) > 0
    db.sql("CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
    assert db.source.seq_of(db.source.current_position()) > db.source.seq_of(now)
