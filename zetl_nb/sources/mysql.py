"""MySQL/MariaDB as a zero-ETL source: discover, prerequisites, consistent snapshot, binlog CDC.

The pieces: this module (types, connections, ``discover``, prerequisites and their fixes),
:mod:`.mysql_snapshot` (a consistent copy into Arrow), :mod:`.mysql_stream` (change capture as a
replica: ``COM_BINLOG_DUMP`` from a MariaDB GTID position), :mod:`.mysql_binlog` (event layouts)
and :mod:`.mysql_rows` (row images to Arrow). Snapshot and change capture need MariaDB 10.5 or
later (``binlog_row_metadata``, ``Binlog_snapshot_*``); against MySQL, ``discover`` works and
:meth:`MySQLSource.check_prerequisites` says plainly that change capture from MySQL is not
implemented.

Type mapping (source → Arrow); the snapshot and the stream produce exactly these types:

====================================================  ==========================================
tinyint(1) / bool, bit(1)                             bool
tinyint, smallint, mediumint (signed or unsigned),    int32
int, year
int unsigned, bigint                                  int64
bigint unsigned                                       decimal128(20, 0)
decimal(p, s), p <= 38                                decimal128(p, s)
decimal(p, s), p > 38                                 string (the exact text)
float / double                                        float32 / float64 (float exact, not rounded)
bit(n), n > 1                                         int64
char, varchar, *text, enum, set, json                 string (char without trailing spaces)
binary, varbinary, *blob, geometry types              binary
date                                                  date32 (the zero date becomes null)
datetime                                              timestamp('us') (likewise)
timestamp                                             timestamp('us', 'UTC')
time                                                  string, as the server prints it (TIME is an
                                                      interval up to ±838:59:59, wider than time64)
====================================================  ==========================================

A DATE or DATETIME that is not on the calendar (``2024-00-10``, or ``2024-02-31`` under
``ALLOW_INVALID_DATES``) fits no Arrow or Iceberg date: its row goes to the dead letters, with
the column and the server's text of the value in the reason, and the other rows replicate.

Positions and ``seq``: a position is ``{"gtid": "0-1-57", "file": "binlog.000003", "pos": 1234}``;
``gtid`` is the GTID state after the last transaction (what a MariaDB replica sends as
``@slave_connect_state``), ``file``/``pos`` the binlog coordinates for people. ``seq`` is the
sequence number of the transaction's GTID in the server's own replication domain
(``@@gtid_domain_id``): monotonic per transaction under ``gtid_strict_mode``, equal on a replica
after failover, and the same number ``BINLOG_GTID_POS`` gives the snapshot. Sequence numbers of
*different* domains do not order against each other, so a stream that meets a transaction from a
second domain (multi-source replication into this server) stops with ``UnsupportedSource``
rather than mis-order changes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..core.changes import Column, TableId, TableSchema, TableState
from ..core.prerequisites import Fix, Problem
from .base import SourceError

if TYPE_CHECKING:
    from ..transform.datafilter import DataFilter
    from .mysql_snapshot import MySQLSnapshot
    from .mysql_stream import BinlogStream

__all__ = [
    "SYSTEM_DATABASES",
    "MySQLSource",
    "arrow_type",
    "format_gtid_state",
    "parse_gtid_state",
    "seq_in",
]

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
_AUTH_ERRORS = {1044, 1045, 1227, 1698}
_REQUIRED = {"binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}


# -- types ---------------------------------------------------------------------------------------


def arrow_type(data_type: str, column_type: str, precision: int | None, scale: int | None) -> Any:
    """The Arrow type of an ``information_schema.COLUMNS`` row (see the module's table)."""
    import pyarrow as pa

    dt, ct = data_type.lower(), column_type.lower()
    unsigned = "unsigned" in ct
    if (dt == "tinyint" and ct.startswith("tinyint(1)")) or (dt == "bit" and precision == 1):
        return pa.bool_()
    if dt in ("tinyint", "smallint", "mediumint", "year"):
        return pa.int32()
    if dt in ("int", "integer"):
        return pa.int64() if unsigned else pa.int32()
    if dt == "bigint":
        return pa.decimal128(20, 0) if unsigned else pa.int64()
    if dt == "bit":
        return pa.int64()
    if dt in ("decimal", "numeric", "fixed"):
        p, s = precision or 10, scale or 0
        return pa.decimal128(p, s) if p <= 38 else pa.string()
    if dt == "float":
        return pa.float32()
    if dt in ("double", "real", "double precision"):
        return pa.float64()
    if dt == "date":
        return pa.date32()
    if dt == "datetime":
        return pa.timestamp("us")
    if dt == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if dt.endswith(("binary", "blob")) or dt in _GEOMETRY:
        return pa.binary()
    return pa.string()  # char/varchar/*text/enum/set/json/time


_GEOMETRY = {
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
    "multipolygon", "geometrycollection", "geomcollection",
}  # fmt: skip


# -- GTID positions ------------------------------------------------------------------------------


def parse_gtid_state(text: str) -> dict[int, tuple[int, int]]:
    """``"0-1-57,1-2-9"`` → ``{0: (1, 57), 1: (2, 9)}`` (domain → (server id, sequence))."""
    state: dict[int, tuple[int, int]] = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if part:
            domain, server, seq = (int(x) for x in part.split("-"))
            state[domain] = (server, seq)
    return state


def format_gtid_state(state: Mapping[int, tuple[int, int]]) -> str:
    """The inverse of :func:`parse_gtid_state`, domains in order."""
    return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(state.items()))


def seq_in(gtid: str, domain: int) -> int:
    """The sequence number of ``domain`` in a GTID state (0 when the domain has none yet)."""
    return parse_gtid_state(gtid).get(domain, (0, 0))[1]


# -- connections ---------------------------------------------------------------------------------


def connect_args(url: str) -> dict[str, Any]:
    """pymysql arguments for ``mysql://user:password@host:port/db`` (or ``mariadb://``).

    The database in the path is not selected: the source covers the whole server, as a zero-ETL
    integration covers a whole cluster; the DataFilter chooses databases and tables.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise SourceError(
            "InvalidSource", f"'{url}' is not a MySQL URL like mysql://user:pass@host:3306/"
        )
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": 10,
    }


def connect(args: Mapping[str, Any], **extra: Any) -> Any:
    """A pymysql connection; failures become ``SourceUnavailable``/``AuthenticationFailed``."""
    import pymysql

    try:
        return pymysql.connect(**{**args, **extra})
    except pymysql.err.MySQLError as exc:
        raise source_error(exc, f"{args['user']}@{args['host']}:{args['port']}") from exc


def source_error(exc: Exception, where: str) -> SourceError:
    """The SourceError for a pymysql error (the engine retries ``SourceUnavailable``)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _AUTH_ERRORS:
        return SourceError(
            "AuthenticationFailed",
            f"MySQL at {where} refused the login or the privilege: {exc.args[-1]}. Check the user "
            "and password in the database URL and the user's grants.",
        )
    return SourceError("SourceUnavailable", f"MySQL at {where} is unavailable: {exc}")


def read_schemas(
    conn: Any, tables: list[TableId] | None = None
) -> dict[TableId, tuple[TableSchema, int | None]]:
    """Base tables of non-system databases (or just ``tables``) with schema and row estimate."""
    where, params = _table_filter(tables)
    cur = conn.cursor()
    cur.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
        f"WHERE TABLE_TYPE = 'BASE TABLE' AND {where}",
        params,
    )
    estimates = {(r[0], r[1]): r[2] for r in cur.fetchall()}
    cur.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION,"
        " NUMERIC_SCALE, IS_NULLABLE FROM information_schema.COLUMNS WHERE "
        f"{where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        params,
    )
    columns: dict[tuple[str, str], list[Column]] = {}
    for db, name, col, dt, ct, prec, scale, nullable in cur.fetchall():
        if (db, name) in estimates:
            column = Column(col, arrow_type(dt, ct, prec, scale), ct, nullable == "YES")
            columns.setdefault((db, name), []).append(column)
    cur.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
        f"WHERE CONSTRAINT_NAME = 'PRIMARY' AND {where} "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        params,
    )
    keys: dict[tuple[str, str], list[str]] = {}
    for db, name, col in cur.fetchall():
        keys.setdefault((db, name), []).append(col)
    cur.close()
    return {
        TableId(db, None, name): (
            TableSchema(TableId(db, None, name), tuple(cols), tuple(keys.get((db, name), ()))),
            None if estimates[(db, name)] is None else int(estimates[(db, name)]),
        )
        for (db, name), cols in sorted(columns.items())
    }


def _table_filter(tables: list[TableId] | None) -> tuple[str, list[str]]:
    if tables is None:
        marks = ", ".join(["%s"] * len(SYSTEM_DATABASES))
        return f"TABLE_SCHEMA NOT IN ({marks})", list(SYSTEM_DATABASES)
    if not tables:
        return "FALSE", []
    pairs = " OR ".join(["(TABLE_SCHEMA = %s AND TABLE_NAME = %s)"] * len(tables))
    return f"({pairs})", [p for t in tables for p in (t.database, t.table)]


# -- the source ----------------------------------------------------------------------------------


class MySQLSource:
    """A MySQL/MariaDB server as a zero-ETL source.

    >>> source = MySQLSource("mysql://root@127.0.0.1:3306/", server_id=4242)  # doctest: +SKIP
    >>> source.check_prerequisites()                                            # doctest: +SKIP
    []

    ``server_id`` identifies this reader to the server as a replica: give every concurrent
    stream its own (a second reader with the same id makes the server drop the first).
    """

    engine = "mysql"

    def __init__(self, url: str, server_id: int) -> None:
        self.url = url
        self.server_id = server_id
        self._args = connect_args(url)
        self._lock = threading.Lock()
        self._ctl: Any = None
        self._domain: int | None = None

    def __repr__(self) -> str:
        return f"<MySQLSource {self._where} server_id={self.server_id}>"

    @property
    def _where(self) -> str:
        return f"{self._args['user']}@{self._args['host']}:{self._args['port']}"

    def _query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the control connection (reconnecting once if it was dropped)."""
        import pymysql

        with self._lock:
            for attempt in (1, 2):
                if self._ctl is None:
                    self._ctl = connect(self._args)
                try:
                    with self._ctl.cursor() as cur:
                        cur.execute(sql, params)
                        return list(cur.fetchall())
                except pymysql.err.OperationalError as exc:
                    self._ctl = None
                    if attempt == 2 or exc.args[0] in _AUTH_ERRORS:
                        raise source_error(exc, self._where) from exc
                except pymysql.err.MySQLError as exc:
                    raise source_error(exc, self._where) from exc
        raise AssertionError("unreachable")

    # -- prerequisites ---------------------------------------------------------------------------

    def check_prerequisites(self) -> list[Problem]:
        """Binary logging, ROW format with full images and metadata, and replication grants."""
        version = str(self._query("SELECT VERSION()")[0][0])
        if "mariadb" not in version.lower():
            return [
                Problem(
                    "SourceEngineUnsupported",
                    f"{self._where} runs MySQL {version}; zetl_nb reads MariaDB's binary log "
                    "(GTID resume) and does not implement change capture from MySQL yet. Use "
                    "MariaDB 10.5 or later as the source.",
                )
            ]
        names = ("log_bin", "log_bin_basename", "log_bin_compress", *_REQUIRED)
        marks = ", ".join(["%s"] * len(names))
        rows = self._query(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({marks})", list(names))
        settings = {str(k).lower(): str(v) for k, v in rows}
        if "binlog_row_metadata" not in settings:
            return [
                Problem(
                    "SourceVersionUnsupported",
                    f"MariaDB {version} at {self._where} has no binlog_row_metadata (added in "
                    "10.5), so the binary log does not name columns. Upgrade to 10.5 or later.",
                )
            ]
        problems = []
        if settings.get("log_bin", "OFF").upper() != "ON":
            problems.append(_log_bin_problem(self._where))
        for name, wanted in _REQUIRED.items():
            if settings[name].upper() != wanted:
                problems.append(self._setting_problem(name, settings[name], wanted))
        if settings.get("log_bin_compress", "OFF").upper() == "ON":
            problems.append(self._setting_problem("log_bin_compress", "ON", "OFF"))
        grants = self._privilege_problem()
        return problems + ([grants] if grants else [])

    def _setting_problem(self, name: str, current: str, wanted: str) -> Problem:
        statement = f"SET GLOBAL {name} = '{wanted}'"
        return Problem(
            f"Source{''.join(p.title() for p in name.split('_'))}Invalid",
            f"{name} is {current} on {self._where}; zero-ETL needs {name}={wanted}. Run "
            f"{statement} (and put {name}={wanted} in the server's configuration so a restart "
            "keeps it), or use fix-it-for-me. No restart is needed.",
            Fix(
                f"Set {name}={wanted} with {statement}: applies immediately, no restart needed "
                "(connections opened before keep their session value until they reconnect)",
                "rds",
                "ModifyDBClusterParameterGroup",
                {
                    "Parameters": [
                        {
                            "ParameterName": name,
                            "ParameterValue": wanted,
                            "ApplyMethod": "immediate",
                        }
                    ]
                },
                partial(self._query, statement),
            ),
        )

    def _privilege_problem(self) -> Problem | None:
        user = str(self._query("SELECT CURRENT_USER()")[0][0])
        grants = " ".join(str(r[0]).upper() for r in self._query("SHOW GRANTS"))
        # Only global grants count: replication privileges exist only ON *.*.
        global_grants = " ".join(g for g in grants.split("GRANT ") if " ON *.* " in g)
        has = partial(_has_any, global_grants)
        missing = []
        if not has("ALL PRIVILEGES", "REPLICATION SLAVE", "REPLICATION REPLICA"):
            missing.append("REPLICATION SLAVE")
        if not has("ALL PRIVILEGES", "BINLOG MONITOR", "REPLICATION CLIENT", "SUPER"):
            missing.append("BINLOG MONITOR")
        if not missing:
            return None
        name, _, host = user.rpartition("@")
        statement = f"GRANT {', '.join(missing)} ON *.* TO '{name}'@'{host}'"
        return Problem(
            "SourceReplicationPrivilegesMissing",
            f"User {user} lacks {' and '.join(missing)} (REPLICATION CLIENT before MariaDB 10.5) "
            f"on {self._where}: change capture reads the binary log as a replica. As an "
            f"administrator run: {statement}",
            Fix(
                f"Grant {', '.join(missing)} to {user} ({statement}); needs a user that may grant "
                "them, no restart",
                "mysql",
                "Grant",
                {"Statement": statement},
                partial(self._query, statement),
            ),
        )

    # -- discovery and snapshot ------------------------------------------------------------------

    def discover(self, data_filter: DataFilter) -> list[TableState]:
        """Base tables of non-system databases that ``data_filter`` includes."""
        with self._lock:
            if self._ctl is None:
                self._ctl = connect(self._args)
            try:
                found = read_schemas(self._ctl)
            except Exception as exc:
                self._ctl = None
                raise source_error(exc, self._where) from exc
        return [
            TableState(schema, estimate)
            for tid, (schema, estimate) in found.items()
            if data_filter.matches(tid.parts)
        ]

    def publish(self, tables: Sequence[TableId]) -> None:
        """Nothing to do: the binary log carries every table's changes."""

    def snapshot(self, tables: list[TableId]) -> MySQLSnapshot:
        """A consistent copy of ``tables`` (one transaction) and the binlog position it matches."""
        from .mysql_snapshot import MySQLSnapshot

        return MySQLSnapshot(self._args, tables, self.domain())

    # -- change capture --------------------------------------------------------------------------

    def stream(self, position: Mapping[str, Any]) -> BinlogStream:
        """Change capture from ``position`` (a snapshot's or a stream's)."""
        from .mysql_stream import BinlogStream

        return BinlogStream(self._args, self.server_id, position, self.domain())

    def domain(self) -> int:
        """The server's own GTID domain, whose sequence numbers are ``seq``."""
        if self._domain is None:
            self._domain = int(self._query("SELECT @@gtid_domain_id")[0][0])
        return self._domain

    def current_position(self) -> Mapping[str, Any]:
        """``@@gtid_binlog_pos`` with the ``SHOW MASTER STATUS`` coordinates it matches."""
        for _ in range(5):
            before = self._query("SELECT @@gtid_binlog_pos")[0][0]
            status = self._query("SHOW MASTER STATUS")
            after = self._query("SELECT @@gtid_binlog_pos")[0][0]
            if not status:
                raise SourceError("SourceUnavailable", f"binary logging is off on {self._where}")
            if before == after:  # no commit in between: the pair is consistent
                return {"gtid": str(after), "file": str(status[0][0]), "pos": int(status[0][1])}
        file, pos = str(status[0][0]), int(status[0][1])
        gtid = self._query("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))[0][0]
        return {"gtid": str(gtid or ""), "file": file, "pos": pos}

    def seq_of(self, position: Mapping[str, Any]) -> int:
        """The sequence number of this server's domain in ``position``'s GTID state."""
        state = parse_gtid_state(str(position.get("gtid", "")))
        if len(state) <= 1:  # one domain: no need to ask the server which
            return next(iter(state.values()), (0, 0))[1]
        return seq_in(str(position["gtid"]), self.domain())

    def drop(self) -> None:
        """Nothing to remove: a binlog reader leaves no state on the server."""

    def close(self) -> None:
        with self._lock:
            ctl, self._ctl = self._ctl, None
        if ctl is not None:
            ctl.close()


def _has_any(grants: str, *privileges: str) -> bool:
    return any(p in grants for p in privileges)


def _log_bin_problem(where: str) -> Problem:
    return Problem(
        "SourceBinaryLoggingDisabled",
        f"Binary logging is off on {where}; zero-ETL reads changes from the binary log. Start "
        "the server with log_bin (e.g. log_bin=/var/lib/mysql/binlog, server_id=1, "
        "binlog_format=ROW) in its configuration. This requires a reboot of the server.",
        Fix(
            "Enable binary logging (log_bin=ON). Requires reboot: the setting is read only at "
            "server start, so restart the server after setting it; zetl_nb cannot restart a "
            "server it does not manage.",
            "rds",
            "ModifyDBClusterParameterGroup",
            {
                "Parameters": [
                    {
                        "ParameterName": "log_bin",
                        "ParameterValue": "ON",
                        "ApplyMethod": "pending-reboot",
                    }
                ]
            },
            lambda: "pending reboot: restart the server with log_bin set",
        ),
    )
