"""The control-plane store: integrations, properties, connections, policies and state history.

One SQLite file in the Lab home (``control.db``), so a kernel restart keeps everything. Documents
are JSON; each write is its own transaction. A read-only Lab opens the file with ``mode=ro``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ReadOnlyLabError
from ..core.states import IntegrationState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS integrations (
    arn TEXT PRIMARY KEY, api TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, arn TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, at REAL NOT NULL, errors TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS table_properties (
    resource_arn TEXT NOT NULL, table_name TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (resource_arn, table_name));
CREATE TABLE IF NOT EXISTS resource_properties (resource_arn TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connections (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resource_policies (resource_arn TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS databases (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS table_states (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replication (arn TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


@dataclass
class Integration:
    """One integration, as persisted. Field names follow AWS's members in snake_case."""

    arn: str
    api: str  # "glue" or "rds": which face created it
    name: str
    source_arn: str
    target_arn: str
    create_time: float
    status: str = IntegrationState.CREATING.value
    description: str | None = None
    data_filter: str | None = None
    kms_key_id: str | None = None
    additional_encryption_context: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    refresh_interval: str | None = None
    source_properties: dict[str, str] = field(default_factory=dict)
    continuous_sync: bool | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    #: When NEEDS_ATTENTION began (for the retry window); None otherwise.
    attention_since: float | None = None

    @property
    def state(self) -> IntegrationState:
        return IntegrationState(self.status)

    @property
    def integration_id(self) -> str:
        return self.arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class StateChange:
    """One entry of an integration's state history."""

    seq: int
    arn: str
    name: str
    status: str
    at: float
    errors: list[dict[str, str]]


class ControlStore:
    """Thread-safe access to ``control.db``."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        if read_only:
            uri = f"file:{path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise ReadOnlyLabError(
                "this Lab is attached read-only; open it without read_only=True to change it."
            )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- integrations -------------------------------------------------------------------------
    def put_integration(self, integ: Integration, record_state: bool = False) -> None:
        """Insert or replace ``integ``; with ``record_state`` also append its state to history."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO integrations VALUES (?, ?, ?, ?)",
                (integ.arn, integ.api, integ.name, json.dumps(asdict(integ))),
            )
            if record_state:
                db.execute(
                    "INSERT INTO state_history (arn, name, status, at, errors) VALUES (?,?,?,?,?)",
                    (integ.arn, integ.name, integ.status, time.time(), json.dumps(integ.errors)),
                )

    def delete_integration(self, integ: Integration) -> None:
        """Remove ``integ`` and record its final ``deleted`` state."""
        with self._write() as db:
            db.execute("DELETE FROM integrations WHERE arn = ?", (integ.arn,))
            db.execute(
                "INSERT INTO state_history (arn, name, status, at, errors) VALUES (?,?,?,?,?)",
                (integ.arn, integ.name, IntegrationState.DELETED.value, time.time(), "[]"),
            )

    def get_integration(self, arn: str) -> Integration | None:
        rows = self._rows("SELECT doc FROM integrations WHERE arn = ?", (arn,))
        return Integration(**json.loads(rows[0][0])) if rows else None

    def integrations(self) -> list[Integration]:
        """Every integration, oldest first."""
        docs = [Integration(**json.loads(r[0])) for r in self._rows("SELECT doc FROM integrations")]
        return sorted(docs, key=lambda i: (i.create_time, i.arn))

    def history(self, arn: str | None = None) -> list[StateChange]:
        sql = "SELECT seq, arn, name, status, at, errors FROM state_history"
        rows = self._rows(
            sql + (" WHERE arn = ?" if arn else "") + " ORDER BY seq", (arn,) if arn else ()
        )
        return [StateChange(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- keyed documents ----------------------------------------------------------------------
    def put_doc(self, table: str, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace one document of ``table`` (not for integrations/table_properties)."""
        key_col = _KEY_COLUMNS[table]
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO {table} ({key_col}, doc) VALUES (?, ?)",
                (key, json.dumps(doc)),
            )

    def get_doc(self, table: str, key: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT doc FROM {table} WHERE {_KEY_COLUMNS[table]} = ?", (key,))
        return dict(json.loads(rows[0][0])) if rows else None

    def delete_doc(self, table: str, key: str) -> bool:
        with self._write() as db:
            cur = db.execute(f"DELETE FROM {table} WHERE {_KEY_COLUMNS[table]} = ?", (key,))
            return cur.rowcount > 0

    def docs(self, table: str) -> list[tuple[str, dict[str, Any]]]:
        key_col = _KEY_COLUMNS[table]
        rows = self._rows(f"SELECT {key_col}, doc FROM {table} ORDER BY {key_col}")
        return [(r[0], dict(json.loads(r[1]))) for r in rows]

    # -- table properties (two-part key) ------------------------------------------------------
    def put_table_properties(self, resource_arn: str, table: str, doc: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO table_properties VALUES (?, ?, ?)",
                (resource_arn, table, json.dumps(doc)),
            )

    def get_table_properties(self, resource_arn: str, table: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT doc FROM table_properties WHERE resource_arn = ? AND table_name = ?",
            (resource_arn, table),
        )
        return dict(json.loads(rows[0][0])) if rows else None

    def delete_table_properties(self, resource_arn: str, table: str) -> bool:
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM table_properties WHERE resource_arn = ? AND table_name = ?",
                (resource_arn, table),
            )
            return cur.rowcount > 0


_KEY_COLUMNS = {
    "resource_properties": "resource_arn",
    "connections": "name",
    "resource_policies": "resource_arn",
    "databases": "name",
    "table_states": "key",
    "replication": "arn",
}
