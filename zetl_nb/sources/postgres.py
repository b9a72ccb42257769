"""PostgreSQL as a zero-ETL source: discovery, prerequisites, a consistent snapshot, pgoutput CDC.

The integration owns a publication ``FOR ALL TABLES`` (``publish_via_partition_root``, so a
partitioned table's changes arrive under its own name) and a logical replication slot using the
built-in ``pgoutput`` plugin, both created by the first :meth:`PostgresSource.snapshot` and removed
by :meth:`PostgresSource.drop`.

Column types map to Arrow as follows (domains map as their base type):

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

Values Arrow cannot hold (``infinity`` dates and timestamps, BC dates, numeric ``NaN``) arrive as
null; see :func:`~zetl_nb.sources.pgoutput.cast_text`. Every session runs with ``TimeZone=UTC``,
``DateStyle=ISO`` and ``bytea_output=hex`` so the text output is what the casts expect.
Generated columns are left out: pgoutput does not send them. Temporary and unlogged tables are
not discovered: their changes are not in the WAL.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ..core.changes import Column, TableId, TableSchema, TableState
from ..core.prerequisites import Fix, Problem
from .base import SourceError
from .pgoutput import (
    PgOutputDecoder,
    Relation,
    Transaction,
    cast_text,
    change_batches,
    format_lsn,
    parse_lsn,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ..core.changes import ChangeBatch
    from ..transform.datafilter import DataFilter

__all__ = ["PostgresSnapshot", "PostgresSource", "PostgresStream", "arrow_type"]

_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c bytea_output=hex"
_FEEDBACK_SECONDS = 5.0  # status updates; the server's wal_sender_timeout defaults to 60 s
_LINGER_SECONDS, _GAP_SECONDS = 0.05, 0.005  # poll: gather more commits after the first
_RECONNECT_SECONDS = 10.0  # a dropped walsender may hold the slot "active" for a moment
_DROP_GRACE_SECONDS = 2.0  # drop(): then end a walsender still holding the slot
_BLOCK_BYTES = 4 << 20  # CSV block: ~60k rows of a narrow table per Arrow batch


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


# A type OID and modifier → (base type OID, base modifier, format_type), following domains.
_TYPES_SQL = """
WITH RECURSIVE base(oid, mod, cur, curmod, depth) AS (
    SELECT p.oid, p.mod, p.oid, p.mod, 0 FROM unnest(%s::oid[], %s::int4[]) AS p(oid, mod)
    UNION ALL
    SELECT b.oid, b.mod, t.typbasetype,
           CASE WHEN t.typtypmod <> -1 THEN t.typtypmod ELSE b.curmod END, b.depth + 1
    FROM base b JOIN pg_type t ON t.oid = b.cur WHERE t.typtype = 'd' AND b.depth < 16)
SELECT DISTINCT ON (oid, mod) oid, mod, cur, curmod, format_type(oid, mod)
FROM base ORDER BY oid, mod, depth DESC"""

_TABLES_SQL = r"""
SELECT c.oid, n.nspname, c.relname, c.reltuples::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%' AND n.nspname NOT LIKE 'pg\_temp%%'
ORDER BY n.nspname, c.relname"""

# Columns in attnum order, each with its position in the primary key (NULL: not in it).
_COLUMNS_SQL = """
SELECT a.attrelid, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
       array_position(i.indkey::int2[], a.attnum)
FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum"""


_REBOOT = {"ApplyMethod": "pending-reboot"}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresSource:
    """A PostgreSQL database (``url``) replicated through slot ``slot_name`` and publication
    ``publication_name``; implements :class:`~zetl_nb.sources.base.Source`.

    >>> src = PostgresSource(pg.dsn("shop"), "zetl_1", "zetl_1")  # doctest: +SKIP
    >>> tables = src.discover(DataFilter.parse("include: shop.*.*", 3))  # doctest: +SKIP
    """

    engine = "postgres"

    def __init__(self, url: str, slot_name: str, publication_name: str) -> None:
        self.url = url
        self.slot_name = slot_name
        self.publication_name = publication_name
        self._meta: Any = None
        self._meta_lock = threading.Lock()
        self._types: dict[tuple[int, int], tuple[pa.DataType, str]] = {}
        self._database: str | None = None

    # -- connections ----------------------------------------------------------------------------

    def connect(self, replication: bool = False) -> Any:
        """A new psycopg2 connection in UTC/ISO/hex (a logical replication one if asked).

        Raises ``SourceError`` ``AuthenticationFailed`` or ``SourceUnavailable``.
        """
        import psycopg2
        import psycopg2.extensions
        import psycopg2.extras

        params = psycopg2.extensions.parse_dsn(self.url)
        params["options"] = f"{params.get('options', '')} {_OPTIONS}".strip()
        params.setdefault("application_name", "zetl_nb")
        if replication:
            params["connection_factory"] = psycopg2.extras.LogicalReplicationConnection
        try:
            return psycopg2.connect(**params)
        except psycopg2.OperationalError as exc:
            text = str(exc).strip()
            if "authentication failed" in text or "no password supplied" in text:
                raise SourceError(
                    "AuthenticationFailed",
                    f"PostgreSQL rejected the credentials of {params.get('user')}: {text}. "
                    "Check the user name and password registered for this database.",
                ) from exc
            raise SourceError("SourceUnavailable", f"cannot connect to PostgreSQL: {text}") from exc

    def _query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        """A query on the shared autocommit connection, reconnecting once if it dropped."""
        import psycopg2

        with self._meta_lock:
            try:
                return _fetch(self._shared(), sql, args)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self._meta.close()
                return _fetch(self._shared(), sql, args)

    def _shared(self) -> Any:
        if self._meta is None or self._meta.closed:
            self._meta = self.connect()
            self._meta.autocommit = True
        return self._meta

    @property
    def database(self) -> str:
        """The database name (the first part of every table's id)."""
        if self._database is None:
            self._database = str(self._query("SELECT current_database()")[0][0])
        return self._database

    # -- Source ---------------------------------------------------------------------------------

    def check_prerequisites(self) -> list[Problem]:
        """wal_level=logical, REPLICATION (or superuser), replication slots and WAL senders."""
        (wal_level, slots, senders, user, can_replicate) = self._query(
            "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int,"
            " current_setting('max_wal_senders')::int, current_user,"
            " r.rolreplication OR r.rolsuper OR (to_regrole('rds_replication') IS NOT NULL AND"
            " pg_has_role(current_user, 'rds_replication', 'member'))"
            " FROM pg_roles r WHERE r.rolname = current_user"
        )[0]
        settings = (
            ("SourceWalLevelNotLogical", wal_level == "logical", "wal_level", "logical", wal_level),
            ("SourceReplicationSlotsDisabled", slots > 0, "max_replication_slots", "10", slots),
            ("SourceWalSendersDisabled", senders > 0, "max_wal_senders", "10", senders),
        )
        problems = [
            self._setting_problem(code, name, value, now)
            for code, ok, name, value, now in settings
            if not ok
        ]
        if not can_replicate:
            sql = f"ALTER ROLE {_ident(user)} REPLICATION"
            problems.append(
                Problem(
                    "SourceReplicationPrivilegeMissing",
                    f"User '{user}' may not stream logical replication. Run: {sql}",
                    Fix(
                        f"Grant REPLICATION to role '{user}' ({sql}). Takes effect on new "
                        "connections; no restart needed.",
                        "postgres",
                        "AlterRole",
                        {"Statement": sql},
                        lambda: self._apply_fix(sql),
                    ),
                )
            )
        return problems

    def _setting_problem(self, code: str, name: str, value: str, now: object) -> Problem:
        sql = f"ALTER SYSTEM SET {name} = {value}"
        return Problem(
            code,
            f"{name} is '{now}'; logical replication needs {name} = {value}. Run {sql} and "
            "restart PostgreSQL (the setting only takes effect after a restart).",
            Fix(
                f"Set {name} = {value} ({sql}). Requires a restart of the PostgreSQL server, like "
                "the console's 'requires reboot': the setting stays pending until you restart it "
                "(zetl_nb does not restart it for you).",
                # The shape RDS uses for the same change (mysql.py does likewise).
                "rds",
                "ModifyDBClusterParameterGroup",
                {"Parameters": [{"ParameterName": name, "ParameterValue": value, **_REBOOT}]},
                lambda: self._apply_fix(sql),
            ),
        )

    def _apply_fix(self, sql: str) -> None:
        import psycopg2

        try:
            self._query(sql)
        except psycopg2.Error as exc:
            raise SourceError(
                "SourceInsufficientPrivileges",
                f"{sql} failed: {str(exc).strip()}. Ask a superuser to run it.",
            ) from exc

    def discover(self, data_filter: DataFilter) -> list[TableState]:
        """Tables (plain and partitioned roots) the filter includes, with columns and keys."""
        database = self.database
        found = [
            (oid, TableId(database, schema, name), reltuples)
            for oid, schema, name, reltuples in self._query(_TABLES_SQL)
            if data_filter.matches((database, schema, name))
        ]
        schemas = self._schemas({oid: table for oid, table, _ in found}, self._query)
        return [
            TableState(schemas[oid], int(tuples) if tuples >= 0 else None)
            for oid, _, tuples in found
            if oid in schemas
        ]

    def _schemas(self, tables: Mapping[int, TableId], query: Any) -> dict[int, TableSchema]:
        """Schemas of tables by OID, read with ``query`` (the shared or a snapshot connection)."""
        if not tables:
            return {}
        columns = query(_COLUMNS_SQL, (list(tables),))
        self._resolve({(typ, mod) for _, _, typ, mod, _, _ in columns}, query)
        by_table: dict[int, list[Column]] = {}
        keys: dict[int, list[tuple[int, str]]] = {}  # (position in the key, name)
        for oid, name, typ, mod, notnull, key in columns:
            arrow, source_type = self._types[(typ, mod)]
            by_table.setdefault(oid, []).append(Column(name, arrow, source_type, not notnull))
            if key is not None:
                keys.setdefault(oid, []).append((key, name))
        schemas = {}
        for oid, cols in by_table.items():
            key = tuple(name for _, name in sorted(keys.get(oid, [])))
            schemas[oid] = TableSchema(tables[oid], tuple(cols), key)
        return schemas

    def _resolve(self, pairs: set[tuple[int, int]], query: Any) -> None:
        """Fill the type cache for ``(oid, typmod)`` pairs (base types of domains, type names)."""
        missing = [p for p in pairs if p not in self._types]
        if not missing:
            return
        rows = query(_TYPES_SQL, ([p[0] for p in missing], [p[1] for p in missing]))
        for oid, mod, base, base_mod, name in rows:
            self._types[(oid, mod)] = (arrow_type(base, base_mod), name)
        for pair in missing:  # a type dropped meanwhile: its text is all we have
            self._types.setdefault(pair, (arrow_type(0, -1), f"oid {pair[0]}"))

    def snapshot(self, tables: list[TableId]) -> PostgresSnapshot:
        """A consistent copy; creates the publication and slot on first use (see the module)."""
        self._ensure_publication()
        if not self._slot_exists():
            repl = self.connect(replication=True)
            try:
                create = f"CREATE_REPLICATION_SLOT {_ident(self.slot_name)} LOGICAL pgoutput"
                _, point, exported, _ = _fetch(repl, create + " EXPORT_SNAPSHOT")[0]
            except BaseException:
                repl.close()
                raise
            # The exported snapshot lives while `repl` stays open and idle.
            return PostgresSnapshot(self, parse_lsn(point), point, exported, repl)
        rows = self._query(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot_name,),
        )
        if not rows:
            raise _lost(self.slot_name, "it was dropped while taking a snapshot")
        return PostgresSnapshot(self, 0, rows[0][0], None, None)

    def _ensure_publication(self) -> None:
        import psycopg2

        name = self.publication_name
        if self._query("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)):
            return
        try:
            self._query(
                f"CREATE PUBLICATION {_ident(name)} FOR ALL TABLES"
                " WITH (publish_via_partition_root = true)"
            )
        except psycopg2.errors.DuplicateObject:
            pass  # created meanwhile by another process
        except psycopg2.errors.InsufficientPrivilege as exc:
            raise SourceError(
                "SourceInsufficientPrivileges",
                f"CREATE PUBLICATION {name} FOR ALL TABLES needs a superuser: {exc}".strip(),
            ) from exc

    def _slot_exists(self) -> bool:
        sql = "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND database = %s"
        return bool(self._query(sql, (self.slot_name, self.database)))

    def stream(self, position: Mapping[str, Any]) -> PostgresStream:
        """Change capture from ``position`` (``{"lsn": "X/Y"}``)."""
        return PostgresStream(self, parse_lsn(str(position["lsn"])))

    def current_position(self) -> Mapping[str, Any]:
        """``{"lsn": pg_current_wal_lsn()}``."""
        return {"lsn": str(self._query("SELECT pg_current_wal_lsn()::text")[0][0])}

    def seq_of(self, position: Mapping[str, Any]) -> int:
        """The LSN of ``position`` as an integer."""
        return parse_lsn(str(position["lsn"]))

    def drop(self) -> None:
        """Drop the slot (ending a walsender still using it) and the publication; idempotent."""
        import psycopg2

        sql = "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s"
        deadline = time.monotonic() + _DROP_GRACE_SECONDS  # a stream closing now frees it
        gone = (psycopg2.errors.ObjectInUse, psycopg2.errors.UndefinedObject)
        while rows := self._query(sql, (self.slot_name,)):
            pid = rows[0][0]
            if pid is None or time.monotonic() > deadline:
                with contextlib.suppress(*gone):  # racing its walsender's exit, or another drop
                    if pid is not None:
                        self._query("SELECT pg_terminate_backend(%s)", (pid,))
                    self._query("SELECT pg_drop_replication_slot(%s)", (self.slot_name,))
            time.sleep(0.05)
        self._query(f"DROP PUBLICATION IF EXISTS {_ident(self.publication_name)}")

    def close(self) -> None:
        """Close the shared catalog connection."""
        with self._meta_lock:
            if self._meta is not None:
                self._meta.close()
                self._meta = None

    # -- for the stream -------------------------------------------------------------------------

    def schema_of(self, rel: Relation) -> TableSchema:
        """The schema of the rows after an ``R`` message: its columns and types, with nullability
        and the primary key from the catalog (the table may have changed or gone since)."""
        table = TableId(self.database, rel.namespace, rel.name)
        self._resolve({(c.type_oid, c.type_modifier) for c in rel.columns}, self._query)
        known = self._schemas({rel.oid: table}, self._query).get(rel.oid)
        now = {c.name: c for c in known.columns} if known else {}
        columns = []
        for col in rel.columns:
            arrow, source_type = self._types[(col.type_oid, col.type_modifier)]
            current = now.get(col.name)
            nullable = current.nullable if current and current.type == arrow else True
            columns.append(Column(col.name, arrow, source_type, nullable))
        names = {c.name for c in columns}
        if known is not None and set(known.primary_key) <= names:
            key = known.primary_key
        else:
            key = tuple(c.name for c in rel.columns if c.is_key and rel.replica_identity == "d")
        return TableSchema(table, tuple(columns), key)


def _lost(slot: str, why: str) -> SourceError:
    message = f"replication slot {slot} is gone ({why.strip()}); the tables must be copied again."
    return SourceError("PositionLost", message, resync=True)


def _fetch(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []


class PostgresSnapshot:
    """A consistent copy of tables: :meth:`read` streams ``COPY ... (FORMAT csv)`` into Arrow.

    ``snapshot_name`` set: every read imports that exported snapshot (the slot's consistent point),
    which lives while ``holder`` (the connection that created the slot) stays open and idle; else
    each read runs in a fresh REPEATABLE READ transaction.
    """

    def __init__(self, source: PostgresSource, seq: int, lsn: str, name: str | None, holder: Any):
        self.source, self.seq, self.snapshot_name, self._holder = source, seq, name, holder
        self.position: Mapping[str, Any] = {"lsn": lsn}

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        """The table's rows as of the snapshot, in its discovered Arrow schema."""
        import psycopg2.extensions

        conn = self.source.connect()
        try:
            conn.set_session(
                isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
            )
            if self.snapshot_name is not None:
                _fetch(conn, "SET TRANSACTION SNAPSHOT %s", (self.snapshot_name,))
            query = partial(_fetch, conn)
            name = f"{_ident(table.schema or 'public')}.{_ident(table.table)}"
            (oid,) = query("SELECT to_regclass(%s)::oid", (name,))[0]
            schema = self.source._schemas({oid: table}, query).get(oid) if oid else None
            if schema is None:
                raise SourceError("SourceTableNotFound", f"table {table} is not in the snapshot")
            with conn.cursor() as cur:
                columns = ", ".join(_ident(n) for n in schema.names)
                sql = f"COPY (SELECT {columns} FROM {name}) TO STDOUT WITH (FORMAT csv)"
                for batch in _copy_csv(cur, sql, schema):
                    for start in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(start, batch_rows)
            conn.rollback()
        finally:
            conn.close()

    def close(self) -> None:
        """Release the exported snapshot (closes the connection that created the slot)."""
        if self._holder is not None:
            self._holder.close()
            self._holder = None


def _copy_csv(cur: Any, sql: str, schema: TableSchema) -> Iterator[pa.RecordBatch]:
    """Run ``sql`` (a COPY TO STDOUT CSV) and parse its output as it streams.

    psycopg2's ``copy_expert`` pushes rows into a file object and only returns at the end, so it
    runs in a thread writing into a pipe that pyarrow's CSV reader consumes. CSV null is an
    unquoted empty field; a quoted empty field is the empty string.
    """
    import pyarrow as pa
    import pyarrow.csv as csv

    target = schema.arrow_schema()
    # Types Arrow's CSV parser reads exactly as PostgreSQL writes them; the rest go through
    # cast_text, which knows infinity, BC dates, NaN numerics and bytea hex.
    direct = [
        t if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)) else None
        for t in target.types
    ]
    read = csv.ReadOptions(column_names=schema.names, block_size=_BLOCK_BYTES)
    parse = csv.ParseOptions(newlines_in_values=any(pa.types.is_string(t) for t in target.types))
    convert = csv.ConvertOptions(
        column_types={n: d or pa.string() for n, d in zip(schema.names, direct, strict=True)},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                cur.copy_expert(sql, out)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=copy, name="zetl-pg-copy", daemon=True)
    thread.start()
    source = os.fdopen(read_fd, "rb")
    try:
        try:
            for batch in csv.open_csv(source, read, parse, convert):
                arrays = [
                    col if d is not None else cast_text(col, t)
                    for col, d, t in zip(batch.columns, direct, target.types, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=target)
        except pa.ArrowInvalid as exc:
            thread.join()
            if not failure and "Empty CSV file" not in str(exc):
                raise
        thread.join()  # a COPY cut short ends the CSV early: only the thread knows it failed
        if failure:
            message = f"COPY from PostgreSQL failed: {str(failure[0]).strip()}"
            raise SourceError("SourceUnavailable", message) from failure[0]
    finally:
        source.close()  # an abandoned read: the COPY thread gets EPIPE and ends
        thread.join()


class PostgresStream:
    """pgoutput change capture on a psycopg2 ``LogicalReplicationConnection``.

    Reads are non-blocking (``read_message`` with ``select`` waits). A transaction is buffered until
    its commit, across polls; ``poll`` returns whole transactions only. ``ack`` records the flush
    LSN, sent in the next status update (psycopg2 also answers keepalives and sends a status update
    every few seconds while we read). A lost connection is reopened at :attr:`position`.
    """

    def __init__(self, source: PostgresSource, start_lsn: int) -> None:
        self._source = source
        self._lsn = start_lsn
        self._acked = 0
        self._sent_ack = 0
        self._decoder = PgOutputDecoder()
        self._schemas: dict[int, tuple[Relation, TableSchema]] = {}
        self._conn: Any = None
        self._cur: Any = None
        self._open()

    @property
    def position(self) -> Mapping[str, Any]:
        """``{"lsn": ...}`` after the last transaction ``poll`` returned."""
        return {"lsn": format_lsn(self._lsn)}

    def _open(self) -> None:
        import psycopg2

        deadline = time.monotonic() + _RECONNECT_SECONDS
        while True:
            conn = self._source.connect(replication=True)
            try:
                cur = conn.cursor()
                cur.start_replication(
                    slot_name=self._source.slot_name,
                    decode=False,
                    start_lsn=self._lsn,
                    status_interval=_FEEDBACK_SECONDS,
                    options={
                        "proto_version": "1",
                        "publication_names": _ident(self._source.publication_name),
                    },
                )
            except psycopg2.errors.UndefinedObject as exc:
                conn.close()
                raise _lost(self._source.slot_name, str(exc)) from exc
            except psycopg2.errors.ObjectInUse as exc:
                conn.close()
                if time.monotonic() > deadline:
                    raise SourceError("SourceUnavailable", str(exc).strip()) from exc
                time.sleep(0.1)
                continue
            except BaseException:
                conn.close()
                raise
            self._conn, self._cur = conn, cur
            self._decoder.reset()
            self._sent_ack = 0
            return

    def poll(self, max_rows: int, max_wait: float) -> list[ChangeBatch]:
        """Whole transactions, about ``max_rows`` rows, waiting up to ``max_wait`` seconds."""
        import psycopg2

        try:
            ready = self._read(max_rows, max_wait)
        except psycopg2.errors.UndefinedObject as exc:  # e.g. the publication was dropped
            self._close_connection()
            raise _lost(self._source.slot_name, str(exc)) from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._reopen(exc)
            return []
        if not ready:
            return []
        self._lsn = ready[-1].end_lsn
        with contextlib.suppress(psycopg2.Error):  # the next read reports a broken connection
            self._cur.send_feedback(write_lsn=self._lsn)
        return change_batches(ready, self._schema_of)

    def _read(self, max_rows: int, max_wait: float) -> list[Transaction]:
        deadline = time.monotonic() + max_wait
        cur, feed = self._cur, self._decoder.feed
        ready: list[Transaction] = []
        rows = 0
        linger_until = 0.0
        self._feedback()
        while True:
            msg = cur.read_message()
            if msg is not None:
                done = feed(msg.payload)
                if type(done) is Transaction:
                    if not ready:
                        linger_until = time.monotonic() + _LINGER_SECONDS
                    ready.append(done)
                    rows += done.rows or len(done.changes)
                    if rows >= max_rows:
                        return ready
                continue
            if ready:
                # Commits right behind the first make one batch rather than many (each batch is
                # a target commit); wait for them briefly, never past a short gap.
                wait = min(_GAP_SECONDS, linger_until - time.monotonic())
                if wait <= 0 or not select.select([cur], [], [], wait)[0]:
                    return ready
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ready
            select.select([cur], [], [], min(remaining, _FEEDBACK_SECONDS))
            self._feedback()

    def _feedback(self) -> None:
        if self._acked > self._sent_ack:
            self._cur.send_feedback(flush_lsn=self._acked, force=True)
            self._sent_ack = self._acked

    def _reopen(self, exc: BaseException) -> None:
        """The walsender went away: the slot is gone (PositionLost) or we reconnect."""
        self._close_connection()
        if not self._source._slot_exists():
            raise _lost(self._source.slot_name, str(exc)) from exc
        self._open()

    def _schema_of(self, rel: Relation) -> TableSchema:
        cached = self._schemas.get(rel.oid)
        if cached is None or cached[0] is not rel:
            cached = (rel, self._source.schema_of(rel))
            self._schemas[rel.oid] = cached
        return cached[1]

    def ack(self, position: Mapping[str, Any]) -> None:
        """Everything up to ``position`` is applied: the slot may release it."""
        self._acked = max(self._acked, parse_lsn(str(position["lsn"])))

    def close(self) -> None:
        """Send the last acknowledgement and close the replication connection."""
        with contextlib.suppress(Exception):  # a broken connection has nothing left to say
            if self._cur is not None:
                self._feedback()
        self._close_connection()

    def _close_connection(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = self._cur = None
