"""DuckDB over the latest snapshots of every Iceberg table in the Lab.

One DuckDB connection; every Iceberg table is a view ``<database>.<table>`` at its current
snapshot, re-planned before each query when the table's metadata changed (see :mod:`.views` and
:mod:`.scan`: the snapshot's Parquet files minus their position deletes, by name or by field id,
or pyiceberg's reader where DuckDB cannot read the files right). Tables that fit the memory
budget (``query_memory_mb``) are copied into DuckDB's own storage in the background and then
answered from the copy, kept in step with each new snapshot from its file diff (see
:mod:`.copies` and :mod:`.memory`). The monitor's tables
(``svv_integration``, ...) are plain views in ``main``; databases created with Redshift's
``CREATE DATABASE ... FROM INTEGRATION`` are DuckDB databases of views (see :mod:`.redshift`).
Sessions run in UTC, as Redshift's do. The DuckDB ``iceberg`` extension is not used:
installing it needs the internet.

>>> lab.sql("SELECT count(*) FROM lakehouse.orders").fetchall()     # doctest: +SKIP
[(42,)]
>>> lab.sql("SELECT TOP 3 NVL(note, '') FROM lakehouse.t", dialect="redshift")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..target.catalog import LocalCatalog
from .errors import QueryError, TableNotFoundError
from .result import Result
from .views import INTERNAL, CatalogViews, SystemViews, ident, schema_name

__all__ = ["QueryEngine", "Result"]

Params = Sequence[Any] | dict[str, Any] | None
SystemTables = Callable[[], Mapping[str, Any]]


class QueryEngine:
    """One DuckDB connection whose views follow the catalog.

    Args:
        catalog: the Lab's Iceberg catalog.
        system_tables: returns the monitoring tables (name → ``pyarrow.Table``), registered as
            views in ``main`` before each query; None before the monitor exists.
        control: the control plane, for ``CREATE DATABASE ... FROM INTEGRATION``.
        home: the Lab home, where created databases are kept.
        read_only: the Lab is attached read-only (no CREATE/DROP DATABASE).
        on_database_created: called with (integration id, database name, source database or
            None) after a CREATE DATABASE FROM INTEGRATION.
        llm_model: the model of ``llm_sentiment`` and ``llm_complete`` (see :mod:`.llm.udf`).
        llm_concurrency: LLM calls in flight per chunk of rows.
        llm_per_prompt: texts per ``llm_sentiment`` prompt.
        memory_mb: memory for in-memory copies of the tables (0: none, every table read from
            Parquet); None: the home's ``query_memory_mb`` setting (see :mod:`zetl_nb.config`).
        copy_min_rows: tables with fewer rows stay on their Parquet views.
        copy_in_background: build first copies on a worker thread while the Parquet view
            answers (False: during the refresh, before the query).
    """

    def __init__(
        self,
        catalog: LocalCatalog,
        system_tables: SystemTables | None = None,
        *,
        control: Any = None,
        home: Path | None = None,
        read_only: bool = False,
        on_database_created: Callable[[str, str, str | None], None] | None = None,
        llm_model: str = "local/zetl",
        llm_concurrency: int = 8,
        llm_per_prompt: int = 50,
        memory_mb: float | None = None,
        copy_min_rows: int = 1_000,
        copy_in_background: bool = True,
    ) -> None:
        import duckdb

        from .llm.udf import SqlFunctions
        from .memory import MemoryCopies
        from .redshift import RedshiftDatabases
        from .redshift_ml import RedshiftModels

        self.catalog = catalog
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET parquet_metadata_cache = true")  # data files never change
        self.con.execute(f"ATTACH ':memory:' AS {INTERNAL}")
        self._lock = threading.RLock()
        if memory_mb is None:
            memory_mb = _configured_memory_mb(home)
        self.copies = MemoryCopies(
            self.con, int(memory_mb * 1_000_000), copy_min_rows, copy_in_background
        )
        self.views = CatalogViews(catalog.catalog, self.con, self.copies)
        self.system = SystemViews(self.con, system_tables)
        self.databases = RedshiftDatabases(home, control, read_only, on_database_created)
        self.llm = SqlFunctions(
            self.con,
            model=llm_model,
            concurrency=llm_concurrency,
            per_prompt=llm_per_prompt,
            cache=home / "llm" / "cache.sqlite" if home is not None else None,
        )
        self.models = RedshiftModels(home, read_only)
        self.models.refresh(self.llm)
        self._cursors: list[Any] = []
        self._closed = False

    def close(self) -> None:
        """Close the connection and every ``lab.duckdb()`` connection made from it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.copies.close()
            for cursor in self._cursors:
                cursor.close()
            self.con.close()

    def refresh(self, query: str | None = None) -> None:
        """Re-point every view at its table's current snapshot; re-read the system views
        (with ``query``: only if it names one)."""
        with self._lock:
            if self._closed:
                raise QueryError("the query engine is closed (its Lab was closed).")
            self.views.refresh()
            self.databases.refresh(self.con, set(self.views.identifiers()))
            self.models.refresh(self.llm)
            self.system.refresh(query)

    # -- queries --------------------------------------------------------------------------------
    def sql(self, query: str, params: Params = None, dialect: str = "duckdb") -> Result:
        """Run ``query`` against the latest snapshots; returns a fetched :class:`Result`.

        ``dialect="redshift"`` transpiles Redshift SQL first (see :mod:`.redshift`).
        """
        if dialect.lower() == "redshift":
            return self._redshift(query, params)
        if dialect.lower() != "duckdb":
            raise QueryError(f"dialect '{dialect}' is not supported; use 'duckdb' or 'redshift'.")
        with self._lock:
            self.refresh(query)
            try:
                return self._run(query, params)
            except Exception as exc:
                raise self._explain(exc, query) from exc

    def _run(self, query: str, params: Params) -> Result:
        import pyarrow as pa

        start = time.perf_counter()
        with self.llm.recorder.recording() as usage:
            rel = self.con.sql(query, params=params)
            description = list(rel.description or []) if rel is not None else []
            arrow = rel.to_arrow_table() if rel is not None else pa.table({})
        return Result(
            arrow,
            description,
            time.perf_counter() - start,
            query,
            llm=usage if usage.functions else None,
            notices=usage.notices,
        )

    def _redshift(self, query: str, params: Params) -> Result:
        import pyarrow as pa

        from .redshift import explain_failure, split_statements, transpile

        result = Result(pa.table({}), [], 0.0)
        notices: list[str] = []
        with self._lock:
            self.refresh(query)
            statements = split_statements(query)
            for i, statement in enumerate(statements):
                if self.databases.handles(statement):
                    self.databases.run(self.con, statement)
                    self.refresh(query)
                    result = Result(pa.table({}), [], 0.0, statement)
                    continue
                if self.models.handles(statement):
                    rows, said = self.models.run(statement, self.llm)
                    notices += [n for n in said if n not in notices]
                    result = Result(
                        rows if rows is not None else pa.table({}), None, 0.0, statement
                    )
                    continue
                duck_sql = transpile(statement, self.models.super_functions())
                if duck_sql is None:
                    continue
                try:  # parameters belong to the last statement of a script
                    result = self._run(duck_sql, params if i == len(statements) - 1 else None)
                except Exception as exc:
                    if not _is_duckdb_error(exc):
                        raise
                    failure = explain_failure(statement, duck_sql, exc)
                    if "does not exist" in str(exc):
                        failure = type(failure)(f"{failure}\n{self.available()}")
                    raise failure from exc
                notices += [n for n in result.notices if n not in notices]
        result.notices = notices
        return result

    def _explain(self, exc: Exception, query: str | None = None) -> Exception:
        """DuckDB's error, plus what can be queried when a name was not found."""
        if not _is_duckdb_error(exc):
            return exc
        from .redshift import read_only_hint

        message = str(exc)
        if re.search(r"(Table|Schema|Catalog|Function) with name .* does not exist", message):
            message += "\n" + self.available()
        if query is not None and self.models.handles(query):
            message += "\nCREATE EXTERNAL MODEL, DROP MODEL and SHOW MODEL need dialect='redshift'."
        return QueryError(message + read_only_hint(message))

    def available(self) -> str:
        """A short list of what can be queried: replicated tables, system views, databases."""
        names = [f"{schema_name(t[:-1])}.{t[-1]}" for t in self.views.identifiers()]
        shown = ", ".join(names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
        text = f"Replicated tables: {shown or 'none yet'}."
        if self.system.names:
            text += f" System views: {', '.join(self.system.names)}."
        if self.databases.docs:
            text += f" Databases FROM INTEGRATION: {', '.join(sorted(self.databases.docs))}."
        functions = ["llm_sentiment(text)", "llm_complete(prompt)"]
        functions += [f"{m.function}(...) (model {m.name})" for m in self.models.models.values()]
        return text + f" LLM functions: {', '.join(functions)}."

    # -- connections ----------------------------------------------------------------------------
    def connect(self) -> Any:
        """A DuckDB connection (see :class:`.connection.DuckDBConnection`) over the same views."""
        from .connection import DuckDBConnection

        with self._lock:
            if self._closed:
                raise QueryError("the query engine is closed (its Lab was closed).")
            cursor = self.con.cursor()
            self._cursors.append(cursor)
        return DuckDBConnection(self, cursor)

    # -- tables, time travel, Polars ------------------------------------------------------------
    def resolve(self, name: str | tuple[str, ...]) -> tuple[str, ...]:
        """The Iceberg identifier of ``"<database>.<table>"``; lists the tables when unknown."""
        self.refresh("")  # tables only: the system views are not looked up by name here
        known = self.views.identifiers()
        wanted = name if isinstance(name, tuple) else None
        for table_id in known:
            if wanted == table_id or (
                isinstance(name, str)
                and name.lower()
                in (
                    ".".join(table_id).lower(),
                    f"{schema_name(table_id[:-1])}.{table_id[-1]}".lower(),
                )
            ):
                return table_id
        raise TableNotFoundError(
            f"No replicated table {name!r}: name it '<database>.<table>'. {self.available()}"
        )

    def load(self, name: str | tuple[str, ...]) -> Any:
        """The pyiceberg table ``name`` names (as the views last saw it)."""
        return self.views.load(self.resolve(name))

    def read_path(self, name: str) -> str:
        """How the view reads ``name``: ``memory`` (its in-memory copy; ``memory by field id:
        <why>`` when files are copied by field id), ``parquet``, ``parquet by field id: <why>``,
        ``pyiceberg: <why>`` or ``error: <why>`` (see :func:`.scan.read_mode`). A Parquet path
        may end with a note on the copy: ``(copy to memory under way)``, ``(not in memory:
        ...)``."""
        return self.views.read_paths[self.resolve(name)]

    def wait_for_copies(self, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait for the in-memory copies under way and swap them in; what is in memory now
        (table → rows, memory_mb measured at its first copy, first_copy_s)."""
        self.refresh("")
        self.copies.wait(timeout)
        self.refresh("")
        with self._lock:
            return self.copies.report()

    def snapshots(self, name: str) -> Result:
        """The readable snapshots of ``name``, oldest first."""
        import pyarrow as pa

        from .timetravel import snapshot_rows

        rows = snapshot_rows(self.load(name))
        schema = pa.schema(
            [
                ("snapshot_id", pa.int64()),
                ("parent_id", pa.int64()),
                ("committed_at", pa.timestamp("ms", "UTC")),
                ("operation", pa.string()),
                ("total_records", pa.int64()),
                ("added_records", pa.int64()),
                ("deleted_records", pa.int64()),
                ("schema_id", pa.int32()),
                ("is_current", pa.bool_()),
            ]
        )
        return Result(pa.Table.from_pylist(rows, schema=schema))

    def table(self, name: str, as_of: Any = None) -> Result:
        """``name`` at the snapshot ``as_of`` selects (see :mod:`.timetravel`), in that
        snapshot's schema; the latest snapshot when ``as_of`` is None."""
        from .timetravel import read_select, resolve_snapshot, snapshot_schema

        table = self.load(name)
        snapshot_id = resolve_snapshot(table, name, as_of)
        schema = snapshot_schema(table, snapshot_id)
        return self._with_temps(
            lambda temps: read_select(self.con, table, snapshot_id, schema, temps)
        )

    def diff(
        self,
        name: str,
        from_snapshot: Any,
        to_snapshot: Any = None,
        key: Sequence[str] | None = None,
    ) -> Result:
        """Rows that changed from one snapshot to another, with ``_change_type``.

        ``key`` (default: the table's identifier fields) pairs rows: a changed row gives
        ``update_preimage`` and ``update_postimage``; without a key, rows are ``insert`` or
        ``delete``. Both snapshots are read in ``to_snapshot``'s schema.
        """
        from .timetravel import diff_sql, read_select, resolve_snapshot, snapshot_schema

        table = self.load(name)
        before = resolve_snapshot(table, name, from_snapshot)
        after = resolve_snapshot(table, name, to_snapshot)
        schema = snapshot_schema(table, after)
        columns = [f.name for f in schema.fields]
        keys = list(key) if key is not None else _identifier_names(schema)
        missing = [k for k in keys if k not in columns]
        if missing:
            raise QueryError(f"key column(s) {missing} are not columns of {name}: {columns}")

        def build(temps: list[str]) -> str:
            a = read_select(self.con, table, before, schema, temps)
            b = read_select(self.con, table, after, schema, temps)
            return diff_sql(a, b, columns, keys)

        return self._with_temps(build)

    def _with_temps(self, build: Callable[[list[str]], str]) -> Result:
        temps: list[str] = []
        with self._lock:
            try:
                return self._run(build(temps), None)
            except Exception as exc:
                raise self._explain(exc) from exc
            finally:
                for key in temps:
                    self.con.execute(f"DROP TABLE IF EXISTS {INTERNAL}.main.{ident(key)}")

    def polars(self, name: str, as_of: Any = None) -> Any:
        """A Polars ``LazyFrame`` over ``name`` (``pl.scan_iceberg``), at ``as_of``."""
        from .frames import scan
        from .timetravel import resolve_snapshot

        table = self.load(name)
        snapshot_id = resolve_snapshot(table, name, as_of) if as_of is not None else None
        return scan(table, snapshot_id)


def _configured_memory_mb(home: Path | None) -> float:
    """``query_memory_mb`` of the home's ``zetl.toml`` / ``ZETL_QUERY_MEMORY_MB``."""
    from ..config import default_query_memory_mb, load_config

    if home is None:
        return float(default_query_memory_mb())
    return float(load_config(home).query_memory_mb)


def _identifier_names(schema: Any) -> list[str]:
    return [schema.find_column_name(i) for i in sorted(schema.identifier_field_ids)]


def _is_duckdb_error(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)
