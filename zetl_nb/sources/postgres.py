"""PostgreSQL as a zero-ETL source: discovery, prerequisites, a consistent snapshot, pgoutput CDC.

The integration owns a logical replication slot using the built-in ``pgoutput`` plugin and a
publication listing exactly the tables it replicates (``publish_via_partition_root``, so a
partitioned table's changes arrive under its own name). Never ``FOR ALL TABLES``: once a table is
in a publication that publishes updates, PostgreSQL refuses UPDATE and DELETE on it unless it has
a replica identity, so the application's tables without a primary key would break.
:meth:`PostgresSource.publish` sets the list (the engine calls it before it copies a table); the
first :meth:`PostgresSource.snapshot` creates the slot (and the publication, empty, if ``publish``
has not run yet); :meth:`PostgresSource.drop` removes both. A table added to the publication
streams from the commit of that ``ALTER PUBLICATION`` (pgoutput reads the catalog as of each
change); the engine then copies it with a snapshot taken after that commit.

Column types map to Arrow as :mod:`zetl_nb.sources.pgtypes` describes; values Arrow cannot hold
(``infinity`` dates and timestamps, BC dates, numeric ``NaN``) arrive as null. Every session runs
with ``TimeZone=UTC``, ``DateStyle=ISO`` and ``bytea_output=hex`` so the text output is what the
casts expect. Generated columns are left out: pgoutput does not send them. Temporary and unlogged
tables are not discovered: their changes are not in the WAL.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.changes import Column, TableId, TableSchema, TableState
from ..core.prerequisites import Fix, Problem
from .base import SourceError
from .pgoutput import Relation, parse_lsn
from .pgtypes import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

    from ..transform.datafilter import DataFilter
    from .postgres_snapshot import PostgresSnapshot
    from .postgres_stream import PostgresStream

__all__ = ["PostgresSource", "arrow_type"]

_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c bytea_output=hex"
_DROP_GRACE_SECONDS = 2.0  # drop(): then end a walsender still holding the slot
# publish(): how long one attempt waits for a table lock. Below the default deadlock_timeout
# (1 s), so in a lock cycle with an application transaction we give up first, not it.
_LOCK_TIMEOUT = "200ms"
_PUBLISH_ATTEMPTS, _PUBLISH_PAUSE_SECONDS = 10, 0.1


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


# Tables by name (``"schema"."table"``) → (OID, canonical quoted name); only those that exist.
_RESOLVE_SQL = """
SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM unnest(%s::text[]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name)
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'"""

# The publication (no row: absent) and its tables, one row each (OID NULL: none).
_PUBLICATION_SQL = """
SELECT p.puballtables, p.pubviaroot, c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_publication p LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid
LEFT JOIN pg_class c ON c.oid = r.prrelid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = %s"""

_REBOOT = {"ApplyMethod": "pending-reboot"}


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier. ``quote_ident('a"b') == '"a""b"'``."""
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
                return fetch(self._shared(), sql, args)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self._meta.close()
                return fetch(self._shared(), sql, args)

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
            sql = f"ALTER ROLE {quote_ident(user)} REPLICATION"
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
        schemas = self.read_schemas({oid: table for oid, table, _ in found}, self._query)
        return [
            TableState(schemas[oid], int(tuples) if tuples >= 0 else None)
            for oid, _, tuples in found
            if oid in schemas
        ]

    def read_schemas(self, tables: Mapping[int, TableId], query: Any) -> dict[int, TableSchema]:
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
        """A consistent copy; creates the slot on first use (see the module).

        The publication is created empty if :meth:`publish` has not created it yet: it must
        exist before the slot, whose stream names it from its first change on.
        """
        from .postgres_snapshot import PostgresSnapshot

        self._ensure_publication()
        if not self.slot_exists():
            repl = self.connect(replication=True)
            try:
                create = f"CREATE_REPLICATION_SLOT {quote_ident(self.slot_name)} LOGICAL pgoutput"
                _, point, exported, _ = fetch(repl, create + " EXPORT_SNAPSHOT")[0]
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
            raise position_lost(self.slot_name, "it was dropped while taking a snapshot")
        return PostgresSnapshot(self, 0, rows[0][0], None, None)

    # -- the publication ------------------------------------------------------------------------

    def publish(self, tables: Sequence[TableId]) -> None:
        """Make the publication list exactly ``tables`` (creating it if absent); idempotent.

        Tables that do not exist (any more) are left out; a publication ``FOR ALL TABLES`` (made
        by an older zetl_nb) is replaced. Once the slot exists, the tables being added are locked
        ``IN SHARE MODE`` for the ``ALTER PUBLICATION``, which so waits for transactions writing
        them to end: each of their changes then either committed before the table joined (and is
        in the snapshot the engine takes next) or is decoded with the table published. Without
        the lock, the changes a transaction made before the ``ALTER`` and committed after it are
        never sent, and on PostgreSQL 16.2 the table's later changes were not sent either (the
        walsender kept a stale relation cache entry; newer minor releases distribute the
        invalidation). Upstream's proposed fix takes a like lock in ``ALTER PUBLICATION`` itself.
        A long writer makes one attempt give up after ``_LOCK_TIMEOUT``; after
        ``_PUBLISH_ATTEMPTS`` this raises ``SourceUnavailable`` (the engine retries).

        >>> src.publish([TableId("shop", "public", "orders")])  # doctest: +SKIP
        """
        import psycopg2

        retry = (
            psycopg2.errors.LockNotAvailable,  # a long transaction writes a table being added
            psycopg2.errors.DuplicateObject,  # the publication was created meanwhile
            psycopg2.errors.UndefinedTable,  # a table was dropped meanwhile
            psycopg2.errors.UndefinedObject,  # a table left the publication meanwhile
        )
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            statements = self._publication_changes(tables)
            if not statements:
                return
            try:
                self._transaction(statements)
                return
            except psycopg2.errors.InsufficientPrivilege as exc:
                raise _no_privilege(self.publication_name, exc) from exc
            except retry as exc:
                if attempt == _PUBLISH_ATTEMPTS:
                    raise SourceError(
                        "SourceUnavailable",
                        f"could not update publication {self.publication_name}: "
                        f"{str(exc).strip()}. A long-running transaction may be writing a table "
                        "being added; it is tried again.",
                    ) from exc
                time.sleep(_PUBLISH_PAUSE_SECONDS * attempt)

    def _publication_changes(self, tables: Sequence[TableId]) -> list[str]:
        """The statements that make the publication list exactly ``tables``; ``[]`` if it does."""
        pub = quote_ident(self.publication_name)
        names = [f"{quote_ident(t.schema or 'public')}.{quote_ident(t.table)}" for t in tables]
        wanted: dict[int, str] = dict(self._query(_RESOLVE_SQL, (names,)))
        rows = self._query(_PUBLICATION_SQL, (self.publication_name,))
        listed = ", ".join(sorted(set(wanted.values())))
        if not rows:
            return [*self._locks(wanted.values()), _create_publication(pub, listed)]
        all_tables, via_root = rows[0][0], rows[0][1]
        if all_tables:
            # Made by an older zetl_nb. Replaced in one transaction: at every point of the WAL a
            # publication of that name exists, so the stream goes on.
            return [f"DROP PUBLICATION {pub}", _create_publication(pub, listed)]
        current = {oid: name for _, _, oid, name in rows if oid is not None}
        statements = []
        if current.keys() != wanted.keys():
            added = [name for oid, name in wanted.items() if oid not in current]
            statements += self._locks(added)
            if wanted:
                statements.append(f"ALTER PUBLICATION {pub} SET TABLE {listed}")
            else:  # SET TABLE needs at least one table
                statements.append(
                    f"ALTER PUBLICATION {pub} DROP TABLE {', '.join(current.values())}"
                )
        if not via_root:
            statements.append(f"ALTER PUBLICATION {pub} SET (publish_via_partition_root = true)")
        return statements

    def _locks(self, names: Iterable[str]) -> list[str]:
        """Statements that lock the tables ``names`` against writers, if the slot exists."""
        listed = ", ".join(sorted(names))
        if not listed or not self.slot_exists():
            return []  # a slot created later starts after this commit, consistent by itself
        return [f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'", f"LOCK TABLE {listed} IN SHARE MODE"]

    def _transaction(self, statements: Sequence[str]) -> None:
        """Run ``statements`` in one transaction, on a connection of their own."""
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:  # commits, or rolls back on an exception
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def _ensure_publication(self) -> None:
        """Create the publication, empty, unless it exists."""
        import psycopg2

        if self._query(_PUBLICATION_SQL, (self.publication_name,)):
            return
        try:
            self._query(_create_publication(quote_ident(self.publication_name), ""))
        except psycopg2.errors.DuplicateObject:
            pass  # created meanwhile by another process
        except psycopg2.errors.InsufficientPrivilege as exc:
            raise _no_privilege(self.publication_name, exc) from exc

    def slot_exists(self) -> bool:
        """Whether the integration's replication slot exists (in this database)."""
        sql = "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND database = %s"
        return bool(self._query(sql, (self.slot_name, self.database)))

    def stream(self, position: Mapping[str, Any]) -> PostgresStream:
        """Change capture from ``position`` (``{"lsn": "X/Y"}``)."""
        from .postgres_stream import PostgresStream

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
        self._query(f"DROP PUBLICATION IF EXISTS {quote_ident(self.publication_name)}")

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
        known = self.read_schemas({rel.oid: table}, self._query).get(rel.oid)
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


def _create_publication(pub: str, listed: str) -> str:
    tables = f" FOR TABLE {listed}" if listed else ""  # none: valid, publishes nothing
    return f"CREATE PUBLICATION {pub}{tables} WITH (publish_via_partition_root = true)"


def _no_privilege(publication: str, exc: Exception) -> SourceError:
    return SourceError(
        "SourceInsufficientPrivileges",
        f"cannot create or alter publication {publication}: {str(exc).strip()}. The user needs "
        "CREATE on the database and must own the replicated tables (or be a superuser).",
    )


def position_lost(slot: str, why: str) -> SourceError:
    """The error for a slot that is gone: ``PositionLost``, every table must be copied again."""
    message = f"replication slot {slot} is gone ({why.strip()}); the tables must be copied again."
    return SourceError("PositionLost", message, resync=True)


def fetch(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on a psycopg2 connection (``[]`` for a statement without rows)."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []
