"""``QueryState``: a SQL box over ``lab.sql`` — text, dialect, and the last run's outcome.

The names to insert are what ``lab.sql`` can query, read from DuckDB's own
``information_schema``: replicated tables as ``<database>.<table>`` and the monitoring views
(``svv_integration``, ``sys_integration_activity``, ``zetl_lag``, ...).

>>> q = QueryState(lab)                                            # doctest: +SKIP
>>> q.insert("lakehouse.products"); q.run()
>>> q.columns, q.rowcount, q.elapsed, q.error
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Observable

if TYPE_CHECKING:
    from ..lab import Lab

DIALECTS = ("duckdb", "redshift")
_NAMES_SQL = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type = 'VIEW' ORDER BY table_schema = 'main', table_schema, table_name
"""
#: Schemas whose views are monitoring views, not replicated tables.
_SYSTEM_SCHEMAS = ("main", "zetl_system")


@dataclass(frozen=True)
class Names:
    """What can be queried: replicated tables and system views."""

    tables: list[str]
    system_views: list[str]


@dataclass(eq=False)
class QueryState(Observable):
    """The query box. :meth:`run` runs :attr:`sql` in :attr:`dialect` and keeps the outcome:
    :attr:`columns`, :attr:`rows` (the first :attr:`max_rows`), :attr:`rowcount`,
    :attr:`elapsed` seconds, or :attr:`error`."""

    lab: Lab = field(repr=False)
    sql: str = ""
    dialect: str = "duckdb"
    max_rows: int = 100
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int | None = None
    elapsed: float | None = None
    executed_sql: str | None = None
    error: str | None = None
    running: bool = False

    def __post_init__(self) -> None:
        Observable.__init__(self)
        self._run_lock = threading.Lock()

    def set_sql(self, text: str) -> None:
        """Replace the SQL text."""
        self.sql = text
        self.changed()

    def set_dialect(self, dialect: str) -> None:
        """``duckdb`` or ``redshift``."""
        if dialect not in DIALECTS:
            raise ValueError(f"dialect '{dialect}' is not one of {', '.join(DIALECTS)}")
        self.dialect = dialect
        self.changed()

    def insert(self, name: str) -> str:
        """Put a table or view name into the SQL: a whole query if the box is empty, else
        the name at the end. Returns the new text."""
        text = self.sql.rstrip()
        if not text:
            limit = "SELECT TOP 100 * FROM {}" if self.dialect == "redshift" else None
            self.sql = (limit or "SELECT * FROM {} LIMIT 100").format(name)
        else:
            self.sql = f"{text} {name}"
        self.changed()
        return self.sql

    def names(self) -> Names:
        """Replicated tables and system views, as ``lab.sql`` names them."""
        result = self.lab.sql(_NAMES_SQL)
        tables, views = [], []
        for schema, table in result.fetchall():
            if schema == "main":
                views.append(str(table))
            elif schema in _SYSTEM_SCHEMAS:
                views.append(f"{schema}.{table}")
            else:
                tables.append(f"{schema}.{table}")
        return Names(tables, views)

    def run(self) -> bool:
        """Run the SQL now (in the calling thread); True if it succeeded.

        A second run while one is going is refused (False), not queued.
        """
        if not self._run_lock.acquire(blocking=False):
            return False
        try:
            self.running = True
            self.changed()
            return self._run()
        finally:
            self.running = False
            self._run_lock.release()
            self.changed()

    def _run(self) -> bool:
        try:
            result = self.lab.sql(self.sql, dialect=self.dialect)
        except Exception as exc:  # any failure is the query's outcome, shown in the box
            self.error = f"{type(exc).__name__}: {exc}"
            self.columns, self.types, self.rows = [], [], []
            self.rowcount = self.elapsed = self.executed_sql = None
            return False
        table = result.to_arrow()
        head = table.slice(0, self.max_rows)
        self.columns = list(result.columns)
        self.types = [str(f.type) for f in table.schema]
        self.rows = list(zip(*(c.to_pylist() for c in head.columns), strict=True))
        self.rowcount = result.rowcount
        self.elapsed = result.elapsed
        self.executed_sql = result.executed_sql
        self.error = None
        return True

    def run_in_background(self) -> threading.Thread:
        """Run in a daemon thread, so the notebook kernel stays free; returns the thread."""
        thread = threading.Thread(target=self.run, name="zetl-ui-query", daemon=True)
        thread.start()
        return thread

    @property
    def summary(self) -> str:
        """``42 rows · 12.3 ms`` (or the error, or nothing before the first run)."""
        if self.running:
            return "Running…"
        if self.error is not None:
            return "Failed"
        if self.rowcount is None or self.elapsed is None:
            return ""
        shown = f" (first {len(self.rows)} shown)" if len(self.rows) < self.rowcount else ""
        return f"{self.rowcount} rows{shown} · {self.elapsed * 1000:.1f} ms"
