"""The MySQL source against a real private MariaDB: discover, prerequisites, snapshot, CDC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.changes import ChangeBatch, TableId
from zetl_nb.core.errors import ServiceError
from zetl_nb.services.mariadb import PrivateMariaDB
from zetl_nb.sources.base import SourceError
from zetl_nb.sources.mysql import (
    MySQLSource,
    arrow_type,
    format_gtid_state,
    parse_gtid_state,
    seq_in,
)
from zetl_nb.sources.mysql_binlog import statement_kind
from zetl_nb.transform.datafilter import DataFilter

ALL = DataFilter.parse("include: *.*", 2)


def _server(tmp: Path, settings: dict[str, str] | None = None) -> PrivateMariaDB:
    server = PrivateMariaDB(tmp / "data", settings=settings)
    try:
        server.start()
    except ServiceError as exc:
        if "is not installed" in str(exc):
            pytest.skip(str(exc))
        raise
    return server


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    server = _server(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture
def source(db: PrivateMariaDB) -> Iterator[MySQLSource]:
    src = MySQLSource(db.url, server_id=1000 + int(time.monotonic_ns() % 100_000))
    yield src
    src.close()


def sql(db: PrivateMariaDB, *statements: str, user: str = "root") -> list[tuple[Any, ...]]:
    """Run statements (autocommit unless they BEGIN); the last one's rows."""
    conn = pymysql.connect(host="127.0.0.1", port=db.port, user=user, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def drain(source: MySQLSource, stream: Any, max_rows: int = 10_000) -> list[ChangeBatch]:
    """Poll until the stream has delivered the source's current position."""
    target = source.seq_of(source.current_position())
    deadline = time.monotonic() + 15
    out: list[ChangeBatch] = []
    while source.seq_of(stream.position) < target:
        assert time.monotonic() < deadline, f"stream stuck at {stream.position}, want {target}"
        out += stream.poll(max_rows, 0.5)
    return out


def apply(state: dict[Any, dict[str, Any]], batches: list[ChangeBatch], key: str = "id") -> None:
    """The target's job, in miniature: upsert/delete by primary key, in order."""
    for batch in batches:
        if batch.truncate:
            state.clear()
        old = batch.old_keys.to_pylist() if batch.old_keys is not None else None
        ops, rows = batch.ops.to_pylist(), batch.rows.to_pylist()
        for i, (op, row) in enumerate(zip(ops, rows, strict=True)):
            if old is not None and old[i][key] is not None:
                state.pop(old[i][key], None)
            if op == "d":
                state.pop(row[key], None)
            else:
                state[row[key]] = row


# -- pure ----------------------------------------------------------------------------------------


@given(
    st.dictionaries(
        st.integers(0, 2**32 - 1),
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
        max_size=4,
    )
)
def test_gtid_state_round_trips(state: dict[int, tuple[int, int]]) -> None:
    assert parse_gtid_state(format_gtid_state(state)) == state


@pytest.mark.parametrize(
    ("data_type", "column_type", "precision", "scale", "expected"),
    [
        ("tinyint", "tinyint(1)", 3, 0, pa.bool_()),
        ("bit", "bit(1)", 1, None, pa.bool_()),
        ("bit", "bit(12)", 12, None, pa.int64()),
        ("tinyint", "tinyint(4)", 3, 0, pa.int32()),
        ("mediumint", "mediumint(8) unsigned", 7, 0, pa.int32()),
        ("int", "int(11)", 10, 0, pa.int32()),
        ("int", "int(10) unsigned", 10, 0, pa.int64()),
        ("bigint", "bigint(20)", 19, 0, pa.int64()),
        ("bigint", "bigint(20) unsigned", 20, 0, pa.decimal128(20, 0)),
        ("decimal", "decimal(12,3)", 12, 3, pa.decimal128(12, 3)),
        ("decimal", "decimal(65,30)", 65, 30, pa.string()),
        ("float", "float", 12, None, pa.float32()),
        ("double", "double", 22, None, pa.float64()),
        ("year", "year(4)", None, None, pa.int32()),
        ("date", "date", None, None, pa.date32()),
        ("datetime", "datetime(6)", None, None, pa.timestamp("us")),
        ("timestamp", "timestamp", None, None, pa.timestamp("us", tz="UTC")),
        ("time", "time(3)", None, None, pa.string()),
        ("enum", "enum('a','b')", None, None, pa.string()),
        ("longtext", "longtext", None, None, pa.string()),
        ("varbinary", "varbinary(10)", None, None, pa.binary()),
        ("mediumblob", "mediumblob", None, None, pa.binary()),
        ("point", "point", None, None, pa.binary()),
    ],
)
def test_type_mapping(
    data_type: str, column_type: str, precision: int, scale: int, expected: pa.DataType
) -> None:
    assert arrow_type(data_type, column_type, precision, scale) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("COMMIT", ("commit", None)),
        ("ROLLBACK", ("commit", None)),
        ("ROLLBACK TO SAVEPOINT sp", ("begin", None)),
        ("BEGIN", ("begin", None)),
        ("TRUNCATE TABLE `shop`.`order``s`", ("truncate", ("shop", "order`s"))),
        ("/* hint */ truncate audit", ("truncate", ("db", "audit"))),
        ("INSERT INTO t VALUES (1)", ("dml", None)),
        ("ALTER TABLE t ADD c INT COMMENT '# not a comment'", ("ddl", None)),
    ],
)
def test_statement_kinds(query: str, expected: tuple[str, Any]) -> None:
    assert statement_kind(query, "db") == expected


# -- discover and prerequisites ------------------------------------------------------------------


def test_discover_with_filter_and_a_table_without_primary_key(
    db: PrivateMariaDB, source: MySQLSource
) -> None:
    sql(
        db,
        "CREATE DATABASE disc",
        "CREATE TABLE disc.orders (id BIGINT PRIMARY KEY, total DECIMAL(10,2) NOT NULL, "
        "paid TINYINT(1))",
        "CREATE TABLE disc.audit_log (id INT PRIMARY KEY)",
        "CREATE TABLE disc.events (at DATETIME(3), payload JSON)",
        "CREATE TABLE disc.pairs (a INT, b VARCHAR(5), PRIMARY KEY (b, a))",
        "CREATE VIEW disc.v AS SELECT id FROM disc.orders",
        "INSERT INTO disc.orders VALUES (1, 9.99, 1), (2, 5.00, 0)",
        "ANALYZE TABLE disc.orders",
    )
    found = source.discover(DataFilter.parse("include: disc.*, exclude: disc.audit_log", 2))
    by_name = {s.schema.table.table: s for s in found}
    assert set(by_name) == {"orders", "events", "pairs"}  # no view, no excluded table
    orders = by_name["orders"].schema
    assert orders.table == TableId("disc", None, "orders")
    assert orders.primary_key == ("id",)
    assert [(c.name, c.type, c.nullable) for c in orders.columns] == [
        ("id", pa.int64(), False),
        ("total", pa.decimal128(10, 2), False),
        ("paid", pa.bool_(), True),
    ]
    assert by_name["orders"].estimated_rows == 2
    assert by_name["events"].schema.primary_key == ()
    assert by_name["pairs"].schema.primary_key == ("b", "a")  # key order, not column order
    assert not [s for s in source.discover(ALL) if s.schema.table.database in ("mysql", "sys")]


def test_prerequisites_met_on_a_ready_server(source: MySQLSource) -> None:
    assert source.check_prerequisites() == []


def test_prerequisites_statement_format_then_fix(tmp_path: Path) -> None:
    settings = {"binlog_format": "STATEMENT", "binlog_row_metadata": "MINIMAL"}
    server = _server(tmp_path, settings)
    try:
        src = MySQLSource(server.url, server_id=77)
        problems = {p.code: p for p in src.check_prerequisites()}
        assert set(problems) == {"SourceBinlogFormatInvalid", "SourceBinlogRowMetadataInvalid"}
        fix = problems["SourceBinlogFormatInvalid"].fix
        assert fix is not None and "no restart" in fix.description
        assert fix.params["Parameters"][0]["ApplyMethod"] == "immediate"
        for problem in problems.values():
            assert problem.fix is not None
            problem.fix.apply()
        assert src.check_prerequisites() == []
        src.close()
    finally:
        server.stop()


def test_prerequisites_without_binary_log_say_restart(tmp_path: Path) -> None:
    server = _server(tmp_path, {"log_bin": ""})
    try:
        src = MySQLSource(server.url, server_id=78)
        [problem] = src.check_prerequisites()
        assert problem.code == "SourceBinaryLoggingDisabled"
        assert "reboot" in problem.message
        assert problem.fix is not None and "Requires reboot" in problem.fix.description
        assert problem.fix.params["Parameters"][0]["ApplyMethod"] == "pending-reboot"
        with pytest.raises(SourceError) as err:
            src.snapshot([])
        assert err.value.code == "SourceBinaryLoggingDisabled"
        src.close()
    finally:
        server.stop()


def test_prerequisites_replication_grants(db: PrivateMariaDB) -> None:
    sql(db, "CREATE USER 'cdc'@'127.0.0.1'", "GRANT SELECT ON *.* TO 'cdc'@'127.0.0.1'")
    src = MySQLSource(f"mysql://cdc@127.0.0.1:{db.port}/", server_id=79)
    [problem] = src.check_prerequisites()
    assert problem.code == "SourceReplicationPrivilegesMissing"
    assert problem.fix is not None
    statement = problem.fix.params["Statement"]
    assert statement == "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc'@'127.0.0.1'"
    with pytest.raises(SourceError):  # the user cannot grant itself what it lacks
        problem.fix.apply()
    sql(db, statement)  # an administrator runs the statement the fix shows
    src.close()
    assert src.check_prerequisites() == []
    src.close()


def test_unreachable_and_wrong_password(db: PrivateMariaDB) -> None:
    with pytest.raises(SourceError) as err:
        MySQLSource("mysql://root@127.0.0.1:1/", server_id=80).check_prerequisites()
    assert err.value.code == "SourceUnavailable"
    with pytest.raises(SourceError) as err:
        MySQLSource(f"mysql://root:wrong@127.0.0.1:{db.port}/", 81).check_prerequisites()
    assert err.value.code == "AuthenticationFailed"


# -- snapshot and stream produce the same values -------------------------------------------------

TYPES = (
    "id INT PRIMARY KEY, b TINYINT(1), bt BIT(1), bits BIT(10), ti TINYINT, us SMALLINT UNSIGNED, "
    "mi MEDIUMINT, ui INT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED, d DECIMAL(12,3), "
    "big DECIMAL(30,10), f FLOAT, db DOUBLE, c CHAR(5), vc VARCHAR(300), l1 VARCHAR(10) "
    "CHARACTER SET latin1, t TEXT, bin BINARY(4), vb VARBINARY(10), bl BLOB, e ENUM('x','y'), "
    "s SET('a','b','c'), j JSON, dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), "
    "y YEAR, g POINT"
)
ROWS = [
    "(1, 1, b'1', b'1010101010', -128, 65535, -8388608, 4294967295, -9223372036854775808, "
    "18446744073709551615, -123456789.125, 12345678901234567890.0123456789, 16777217, "
    "0.30000000000000004, 'ab  ', REPEAT('é', 300), 'çà', 'line1\\nline \"2\", ok', "
    "'ab', x'00ff', x'deadbeef', 'y', 'c,a', '{\"k\": [1, 2]}', '2024-02-29', "
    "'1999-12-31 23:59:59.999999', '2038-01-19 03:14:07.123', '-838:59:59.99', 2155, "
    "ST_GeomFromText('POINT(1 2)'))",
    "(2, 0, b'0', 0, 0, 0, 0, 0, 0, 0, -0.001, -0.0000000001, -0.1, -1e-300, '', '', '', '', "
    "'', '', '', '', '', '\"\"', '0000-00-00', '0000-00-00 00:00:00', NULL, '00:00:00.01', 0, "
    "NULL)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(4, 5, b'1', 1023, 127, 1, 8388607, 1, 9223372036854775807, 9223372036854775808, "
    "999999999.999, 1, 3.4e38, 1.7976931348623157e308, 'abcde', 'x', 'A', 'x', 'abcd', 'a', "
    "'b', 'x', 'a,b,c', '[]', '1000-01-01', '9999-12-31 23:59:59', '1970-01-01 00:00:01', "
    "'12:34:56.78', 1901, ST_GeomFromText('POINT(0 0)'))",
]


def test_snapshot_and_stream_agree_on_every_type(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE types", f"CREATE TABLE types.snap ({TYPES})")
    sql(db, f"CREATE TABLE types.cdc ({TYPES})")
    sql(db, "SET SESSION sql_mode = ''", f"INSERT INTO types.snap VALUES {', '.join(ROWS)}")
    snap_table = TableId("types", None, "snap")
    [state] = [s for s in source.discover(ALL) if s.schema.table == snap_table]
    reader = source.snapshot([snap_table])
    try:
        snapshot = pa.Table.from_batches(list(reader.read(snap_table)))
        stream = source.stream(reader.position)
    finally:
        reader.close()
    try:
        sql(db, "SET SESSION sql_mode = ''", f"INSERT INTO types.cdc VALUES {', '.join(ROWS)}")
        [batch] = drain(source, stream)
    finally:
        stream.close()
    assert snapshot.schema == state.schema.arrow_schema() == batch.rows.schema
    assert batch.ops.to_pylist() == ["c"] * len(ROWS)
    by_id = {r["id"]: r for r in snapshot.to_pylist()}
    for row in batch.rows.to_pylist():
        assert row == by_id[row["id"]]
    first, zero = by_id[1], by_id[2]
    assert first["f"] == 16777216.0 and first["c"] == "ab" and first["l1"] == "çà"
    assert first["ubi"] == Decimal(18446744073709551615) and first["s"] == "a,c"
    assert first["tm"] == "-838:59:59.99" and first["bits"] == 682 and first["bin"] == b"ab\0\0"
    assert zero["dt"] is None and zero["dtm"] is None and zero["y"] == 0 and zero["vc"] == ""
    assert by_id[4]["b"] is True  # tinyint(1) holding 5


# -- snapshot exactness under concurrent writes ----------------------------------------------------


def test_snapshot_plus_later_changes_equals_the_final_state(
    db: PrivateMariaDB, source: MySQLSource
) -> None:
    sql(
        db,
        "CREATE DATABASE conc",
        "CREATE TABLE conc.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
        "INSERT INTO conc.t SELECT seq, 0, CONCAT('n', seq) FROM conc.seq_1_to_20000",
    )
    stop = threading.Event()

    def writer() -> None:
        conn = pymysql.connect(host="127.0.0.1", port=db.port, user="root", autocommit=True)
        i = 0
        with conn.cursor() as cur:
            while not stop.is_set():
                i += 1
                cur.execute("UPDATE conc.t SET v = v + 1 WHERE id = %s", (i * 7919 % 20000 + 1,))
                cur.execute("INSERT INTO conc.t VALUES (%s, 0, 'new')", (20000 + i,))
                cur.execute("DELETE FROM conc.t WHERE id = %s", (i * 104729 % 20000 + 1,))
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.3)
        table = TableId("conc", None, "t")
        reader = source.snapshot([table])
        try:
            rows = pa.Table.from_batches(list(reader.read(table, batch_rows=4_000))).to_pylist()
            snap_seq, position = reader.seq, reader.position
        finally:
            reader.close()
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert source.seq_of(position) == snap_seq > 0
    state = {r["id"]: r for r in rows}
    assert len(state) == len(rows)  # pages neither overlap nor repeat
    stream = source.stream(position)
    try:
        batches = [b for b in drain(source, stream) if b.table == table]
    finally:
        stream.close()
    assert all(s > snap_seq for b in batches for s in b.seq.to_pylist())
    apply(state, batches)
    final = sql(db, "SELECT id, v, note FROM conc.t ORDER BY id")
    assert sorted((r["id"], r["v"], r["note"]) for r in state.values()) == final


# -- change capture ------------------------------------------------------------------------------


def test_stream_inserts_updates_deletes_and_transactions(
    db: PrivateMariaDB, source: MySQLSource
) -> None:
    sql(
        db,
        "CREATE DATABASE cdc",
        "CREATE TABLE cdc.a (id INT PRIMARY KEY, v VARCHAR(10))",
        "CREATE TABLE cdc.b (k VARCHAR(5) PRIMARY KEY, n INT)",
    )
    stream = source.stream(source.current_position())
    try:
        sql(db, "INSERT INTO cdc.a VALUES (1, 'one'), (2, 'two')")
        sql(db, "UPDATE cdc.a SET v = 'uno' WHERE id = 1")
        sql(db, "DELETE FROM cdc.a WHERE id = 2")
        sql(
            db,
            "BEGIN",
            "INSERT INTO cdc.a VALUES (3, 'three')",
            "INSERT INTO cdc.b VALUES ('x', 1)",
            "UPDATE cdc.a SET id = 30 WHERE id = 3",
            "COMMIT",
        )
        batches = drain(source, stream)
    finally:
        stream.close()
    a = [b for b in batches if b.table.table == "a"]
    ops = [op for b in a for op in b.ops.to_pylist()]
    seqs = [s for b in a for s in b.seq.to_pylist()]
    assert ops == ["c", "c", "u", "d", "c", "u"]
    assert seqs[0] == seqs[1] < seqs[2] < seqs[3] < seqs[4] == seqs[5]  # one seq per transaction
    rows = [r for b in a for r in b.rows.to_pylist()]
    assert rows[3] == {"id": 2, "v": None}  # a delete carries the key only
    assert rows[5] == {"id": 30, "v": "three"}
    old = [k for b in a if b.old_keys is not None for k in b.old_keys.to_pylist()]
    assert {"id": 3} in old  # the primary key moved: the target deletes the old one
    [b_batch] = [b for b in batches if b.table.table == "b"]
    assert b_batch.seq.to_pylist() == [seqs[4]]
    assert b_batch.rows.to_pylist() == [{"k": "x", "n": 1}]
    state: dict[Any, dict[str, Any]] = {}
    apply(state, a)
    assert state == {1: {"id": 1, "v": "uno"}, 30: {"id": 30, "v": "three"}}


def test_stream_truncate_add_column_and_new_table(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE ddl", "CREATE TABLE ddl.t (id INT PRIMARY KEY, v INT)")
    sql(db, "INSERT INTO ddl.t VALUES (1, 1), (2, 2)")
    stream = source.stream(source.current_position())
    try:
        sql(db, "INSERT INTO ddl.t VALUES (3, 3)")
        sql(db, "TRUNCATE TABLE ddl.t")
        sql(db, "INSERT INTO ddl.t VALUES (4, 4)")
        sql(db, "ALTER TABLE ddl.t ADD COLUMN note VARCHAR(10) DEFAULT 'x'")
        sql(db, "INSERT INTO ddl.t (id, v, note) VALUES (5, 5, 'five')")
        sql(db, "CREATE TABLE ddl.fresh (id INT PRIMARY KEY, at DATETIME)")
        sql(db, "INSERT INTO ddl.fresh VALUES (1, '2024-01-01 12:00:00')")
        sql(db, "CREATE TABLE ddl.pair (a INT, b VARCHAR(5), PRIMARY KEY (b, a)) SELECT 1 a, 'x' b")
        batches = drain(source, stream)  # read after the ALTER: a backlog, as after a restart
    finally:
        stream.close()
    t = [b for b in batches if b.table == TableId("ddl", None, "t")]
    assert [(b.truncate, b.ops.to_pylist()) for b in t] == [
        (False, ["c"]),
        (True, ["c"]),  # the truncate, then the row inserted after it
        (False, ["c"]),
    ]
    assert t[0].schema.names == t[1].schema.names == ["id", "v"]
    assert t[2].schema.names == ["id", "v", "note"]
    assert t[2].rows.to_pylist() == [{"id": 5, "v": 5, "note": "five"}]
    [fresh] = [b for b in batches if b.table == TableId("ddl", None, "fresh")]
    assert fresh.schema.primary_key == ("id",)
    assert fresh.rows.column("at").type == pa.timestamp("us")
    [pair] = [b for b in batches if b.table == TableId("ddl", None, "pair")]
    assert pair.rows.to_pylist() == [{"a": 1, "b": "x"}]  # CREATE ... SELECT: DDL, then rows
    # The live schemas and the stream's agree, so the target never sees a spurious change.
    live = {s.schema.table: s.schema for s in source.discover(ALL)}
    assert live[t[2].table] == t[2].schema and live[pair.table] == pair.schema


def test_sent_seq_counts_transactions_without_rows(db: PrivateMariaDB, source: MySQLSource) -> None:
    stream = source.stream(source.current_position())
    try:
        assert stream.sent_seq() == source.seq_of(stream.position)
        sql(db, "CREATE DATABASE sent", "CREATE TABLE sent.t (id INT PRIMARY KEY)")  # no rows
        target = source.seq_of(source.current_position())
        deadline = time.monotonic() + 10
        while (stream.sent_seq() or 0) < target:
            assert time.monotonic() < deadline
            assert stream.poll(10, 0.2) == []
        assert source.seq_of(stream.position) == target  # the position moved past the DDL
    finally:
        stream.close()


def test_resume_from_a_mid_stream_position(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE res", "CREATE TABLE res.t (id INT PRIMARY KEY)")
    start = source.current_position()
    sql(db, *(f"INSERT INTO res.t VALUES ({i})" for i in range(40)))
    sql(db, "INSERT INTO res.t SELECT seq FROM res.seq_100_to_129")  # one 30-row transaction
    stream = source.stream(start)
    seen: list[int] = []
    try:
        while len(seen) < 25:
            seen += [r for b in stream.poll(5, 1.0) for r in b.rows.column("id").to_pylist()]
        middle = stream.position
    finally:
        stream.close()
    stream = source.stream(middle)
    try:
        rest = drain(source, stream, max_rows=5)
    finally:
        stream.close()
    seen += [r for b in rest for r in b.rows.column("id").to_pylist()]
    assert seen == [*range(40), *range(100, 130)]  # no loss, no duplicate, in order
    # A transaction is never split across polls, even when larger than max_rows.
    assert any(set(range(100, 130)) <= set(b.rows.column("id").to_pylist()) for b in rest)


def _dump_threads(db: PrivateMariaDB) -> list[int]:
    """The server's replication (binlog dump) threads, waiting for the stream to (re)connect."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = sql(
            db, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'"
        )
        if found:
            return [row[0] for row in found]
        time.sleep(0.02)
    raise AssertionError("the stream has no replication connection")


def test_killed_replication_connection_reconnects(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE killdb", "CREATE TABLE killdb.t (id INT PRIMARY KEY)")
    stream = source.stream(source.current_position())
    seen: list[int] = []
    try:
        for round_ in range(3):
            ids = range(round_ * 100, round_ * 100 + 100)
            sql(db, *(f"INSERT INTO killdb.t VALUES ({i})" for i in ids))
            seen += [r for b in stream.poll(30, 1.0) for r in b.rows.column("id").to_pylist()]
            for thread_id in _dump_threads(db):
                sql(db, f"KILL {thread_id}")
        batches = drain(source, stream)
    finally:
        stream.close()
    seen += [r for b in batches for r in b.rows.column("id").to_pylist()]
    assert seen == list(range(300))


def test_session_in_statement_format_stops_the_stream(
    db: PrivateMariaDB, source: MySQLSource
) -> None:
    sql(db, "CREATE DATABASE stmt", "CREATE TABLE stmt.t (id INT PRIMARY KEY)")
    stream = source.stream(source.current_position())
    try:
        sql(db, "SET SESSION binlog_format = 'STATEMENT'", "INSERT INTO stmt.t VALUES (1)")
        with pytest.raises(SourceError) as err:
            drain(source, stream)
    finally:
        stream.close()
    assert err.value.code == "SourceBinlogFormatInvalid" and err.value.resync


def test_a_second_gtid_domain_stops_the_stream(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE dom", "CREATE TABLE dom.t (id INT PRIMARY KEY)")
    stream = source.stream(source.current_position())
    try:
        sql(db, "SET SESSION gtid_domain_id = 7", "INSERT INTO dom.t VALUES (1)")
        with pytest.raises(SourceError) as err:
            stream.poll(10, 5.0)
    finally:
        stream.close()
    assert err.value.code == "UnsupportedSource" and "domain 7" in err.value.message
    position = source.current_position()
    assert len(parse_gtid_state(str(position["gtid"]))) == 2
    assert source.seq_of(position) == seq_in(str(position["gtid"]), 0) > 0


def test_purged_position_is_lost(db: PrivateMariaDB, source: MySQLSource) -> None:
    sql(db, "CREATE DATABASE purged", "CREATE TABLE purged.t (id INT PRIMARY KEY)")
    old = source.current_position()
    sql(db, "INSERT INTO purged.t VALUES (1)", "FLUSH BINARY LOGS")
    current = sql(db, "SHOW MASTER STATUS")[0][0]
    deadline = time.monotonic() + 10
    # The server keeps the previous file until its binlog checkpoint is written (a moment).
    while sql(db, f"PURGE BINARY LOGS TO '{current}'", "SHOW BINARY LOGS")[0][0] != current:
        assert time.monotonic() < deadline, "the server would not purge its old binlog"
        time.sleep(0.1)
    stream = source.stream(old)
    try:
        with pytest.raises(SourceError) as err:
            stream.poll(10, 5.0)
    finally:
        stream.close()
    assert err.value.code == "PositionLost" and err.value.resync
    fresh = source.stream(source.current_position())  # a current position still works
    try:
        sql(db, "INSERT INTO purged.t VALUES (2)")
        assert [b.rows.to_pylist() for b in drain(source, fresh)] == [[{"id": 2}]]
    finally:
        fresh.close()
