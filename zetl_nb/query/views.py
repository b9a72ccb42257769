"""DuckDB views that follow the Iceberg catalog, and the monitoring system views.

:class:`CatalogViews` keeps one view ``<namespace>.<table>`` per Iceberg table (nested namespaces
joined with ``_``). Before each query it reads every table's metadata location in one catalog
query and re-plans only the tables whose metadata changed, so a new snapshot is visible at the
next query and an unchanged catalog costs one SQLite read. A view reads the snapshot's Parquet
files (see :mod:`.scan`); a table DuckDB cannot read right is read by pyiceberg into a table of
the internal ``zetl_internal`` database; a table that cannot be read at all becomes a view that
raises the reason when queried, so it never breaks queries over the others. With ``copies`` (see
:mod:`.memory`), a table held in memory is a view over its in-memory copy instead, kept in step
with each new snapshot at the refresh.

:class:`SystemViews` registers the monitor's tables (``svv_integration``, ...) as plain views in
DuckDB's ``main`` schema before each query that names one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from .scan import FastPathUnavailable, read_arrow, read_mode, select_sql, snapshot_files

INTERNAL = "zetl_internal"

#: Redshift's zero-ETL monitoring views and zetl_nb's own monitoring tables.
SYSTEM_VIEWS = (
    "svv_integration",
    "svv_integration_table_state",
    "sys_integration_activity",
    "sys_integration_table_activity",
    "sys_integration_table_state_change",
    "zetl_logs",
    "zetl_metrics",
    "zetl_events",
    "zetl_lag",
)

_serial = itertools.count()


def ident(name: str) -> str:
    """A quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def error_select(message: str) -> str:
    """A ``SELECT`` that raises ``message`` when it runs (even for ``count(*)``)."""
    return f"SELECT NULL AS error FROM range(1) WHERE error({literal(message)})::BOOLEAN"


def materialize(con: Any, key: str, arrow: Any) -> str:
    """Copy ``arrow`` into ``zetl_internal.main.<key>``; a ``SELECT`` of it.

    A copy, not a registered Arrow object: registrations belong to one DuckDB connection, and
    views must work from every cursor of ``lab.duckdb()``.
    """
    temp = f"__zetl_arrow_{next(_serial)}"
    con.register(temp, arrow)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {INTERNAL}.main.{ident(key)} AS SELECT * FROM {temp}")
    finally:
        con.unregister(temp)
    return f"SELECT * FROM {INTERNAL}.main.{ident(key)}"


def schema_name(namespace: tuple[str, ...]) -> str:
    """The DuckDB schema of an Iceberg namespace (nested levels joined with ``_``)."""
    return "_".join(namespace)


class CatalogViews:
    """One DuckDB view per Iceberg table, at the table's current snapshot."""

    def __init__(self, catalog: Any, con: Any, copies: Any = None) -> None:
        self.catalog = catalog  # pyiceberg Catalog
        self.con = con
        self.copies = copies  # a MemoryCopies, or None
        self._versions: dict[tuple[str, ...], str | None] = {}
        self._tables: dict[tuple[str, ...], Any] = {}
        self._schemas: set[str] = set()
        #: How each view reads its table: "memory", "memory by field id: <why>", "parquet",
        #: "parquet by field id: <why>", "pyiceberg: <why>" or "error: <why>" (see
        #: :func:`.scan.read_mode`); a Parquet path may end with a note on the memory copy.
        self.read_paths: dict[tuple[str, ...], str] = {}

    # -- the catalog's state ----------------------------------------------------------------
    def _state(self) -> tuple[set[tuple[str, ...]], dict[tuple[str, ...], str | None]]:
        """(namespaces, table → metadata location), in one query for a SQL catalog."""
        try:
            return _sql_catalog_state(self.catalog)
        except Exception:  # not a SQL catalog (Glue, REST, ...): ask table by table
            return self._generic_state()

    def _generic_state(self) -> tuple[set[tuple[str, ...]], dict[tuple[str, ...], str | None]]:
        namespaces: set[tuple[str, ...]] = set()
        tables: dict[tuple[str, ...], str | None] = {}
        stack = [tuple(ns) for ns in self.catalog.list_namespaces()]
        while stack:
            ns = stack.pop()
            namespaces.add(ns)
            stack.extend(
                tuple(c) for c in self.catalog.list_namespaces(ns) if tuple(c) not in namespaces
            )
            for table_id in self.catalog.list_tables(ns):
                table = self.catalog.load_table(tuple(table_id))
                self._tables[tuple(table_id)] = table
                tables[tuple(table_id)] = table.metadata_location
        return namespaces, tables

    # -- refresh ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-point every view whose table changed; drop views of dropped tables."""
        namespaces, tables = self._state()
        for ns in sorted(namespaces | {t[:-1] for t in tables}):
            schema = schema_name(ns)
            if schema not in self._schemas:
                self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
                self._schemas.add(schema)
        for table_id, location in tables.items():
            if table_id in self._versions and self._versions[table_id] == location:
                continue
            self._define(table_id, location)
            self._versions[table_id] = location
        for gone in set(self._versions) - set(tables):
            self.con.execute(f"DROP VIEW IF EXISTS {_view(gone)}")
            self.con.execute(f"DROP TABLE IF EXISTS {INTERNAL}.main.{ident('.'.join(gone))}")
            for cache in (self._versions, self._tables, self.read_paths):
                cache.pop(gone, None)
            if self.copies is not None:
                self.copies.forget(gone)
        if self.copies is not None:
            self._collect()

    def _collect(self) -> None:
        """Swap in the memory copies that finished since the last refresh."""
        for table_id, path in self.copies.collect(self._tables, _view).items():
            if path is None:  # the copy could not take over: back to Parquet
                self._define(table_id, self._versions.get(table_id))
            else:
                self.read_paths[table_id] = path

    def _define(self, table_id: tuple[str, ...], location: str | None) -> None:
        key = ".".join(table_id)
        view = _view(table_id)
        table = None
        try:
            table = self._tables.get(table_id)
            if table is None or table.metadata_location != location:
                table = self.catalog.load_table(table_id)
            self._tables[table_id] = table
            if self.copies is not None:  # held in memory: apply the new snapshot there
                memory = self.copies.update(table_id, table, view)
                if memory is not None:
                    self.read_paths[table_id] = memory
                    return
            body, path = self._body(key, table)
        except Exception as exc:  # one unreadable table must not break queries over the others
            body = error_select(f"table {key} cannot be read: {exc}")
            path = f"error: {exc}"
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
        if self.copies is not None:
            path = self.copies.consider(table_id, table, location, path)
        self.read_paths[table_id] = path

    def _body(self, key: str, table: Any) -> tuple[str, str]:
        mode, why = read_mode(table)
        if mode != "pyiceberg":
            try:
                files = snapshot_files(table, None)
                body = select_sql(files, table.schema(), by_field_id=mode == "field-id")
                return body, "parquet" if why is None else f"parquet by field id: {why}"
            except FastPathUnavailable as exc:
                why = str(exc)
        arrow = read_arrow(table, None, table.schema())
        return materialize(self.con, key, arrow), f"pyiceberg: {why}"

    # -- lookups ----------------------------------------------------------------------------
    def identifiers(self) -> list[tuple[str, ...]]:
        """Every table the views cover (as of the last refresh)."""
        return sorted(self._versions)

    def load(self, table_id: tuple[str, ...]) -> Any:
        """The pyiceberg table at the metadata the view shows."""
        table = self._tables.get(table_id)
        return table if table is not None else self.catalog.load_table(table_id)


def _view(table_id: tuple[str, ...]) -> str:
    """The quoted DuckDB view of an Iceberg table."""
    return f"{ident(schema_name(table_id[:-1]))}.{ident(table_id[-1])}"


def _sql_catalog_state(
    catalog: Any,
) -> tuple[set[tuple[str, ...]], dict[tuple[str, ...], str | None]]:
    from pyiceberg.catalog.sql import IcebergNamespaceProperties, IcebergTables
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    tables_stmt = select(
        IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location
    ).where(IcebergTables.catalog_name == catalog.name)
    if hasattr(IcebergTables, "iceberg_type"):  # pyiceberg keeps views in the same table
        kind = IcebergTables.iceberg_type
        tables_stmt = tables_stmt.where((kind.is_(None)) | (kind == "TABLE"))
    ns_stmt = (
        select(IcebergNamespaceProperties.namespace)
        .where(IcebergNamespaceProperties.catalog_name == catalog.name)
        .distinct()
    )
    with Session(catalog.engine) as session:
        rows = session.execute(tables_stmt).all()
        namespaces = {tuple(str(r[0]).split(".")) for r in session.execute(ns_stmt).all()}
    tables = {(*str(ns).split("."), str(name)): loc for ns, name, loc in rows}
    return namespaces, tables


class SystemViews:
    """The monitor's tables as plain views in DuckDB's ``main`` schema."""

    def __init__(self, con: Any, provider: Callable[[], Mapping[str, Any]] | None) -> None:
        self.con = con
        self.provider = provider
        self._current: dict[str, Any] = {}

    @property
    def names(self) -> list[str]:
        """The system views registered now."""
        return sorted(self._current)

    def refresh(self, query: str | None = None) -> None:
        """Ask the provider for the tables; re-copy the ones that changed.

        With ``query``, only when it names a system view (after the first time): asking the
        monitor costs a few milliseconds, more than many queries over the data take.
        """
        if self.provider is None:
            return
        if query is not None and self._current:
            text = query.lower()
            if not any(name in text for name in (*SYSTEM_VIEWS, *self._current)):
                return
        try:
            tables = {name.lower(): t for name, t in dict(self.provider()).items()}
        except Exception as exc:  # the monitor's failure must not stop queries over data
            message = f"the monitoring tables could not be read: {exc}"
            for name in sorted(set(SYSTEM_VIEWS) | set(self._current)):
                view = f"main.{ident(name)}"
                self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {error_select(message)}")
            self._current = {}
            return
        for name, table in tables.items():
            previous = self._current.get(name)
            if previous is not None and (previous is table or previous.equals(table)):
                continue
            body = materialize(self.con, f"system.{name}", table)
            self.con.execute(f"CREATE OR REPLACE VIEW main.{ident(name)} AS {body}")
            self._current[name] = table
        for gone in set(self._current) - set(tables):
            self.con.execute(f"DROP VIEW IF EXISTS main.{ident(gone)}")
            del self._current[gone]
