"""DuckDB over the latest snapshots of every Iceberg table in the Lab.

Each table is a view ``<database>.<table>`` over its current data files
(``scan().plan_files()`` → ``read_parquet``), re-created only when the table's metadata changed.
CDC writes merge-on-read, so the view anti-joins the rows its position-delete files point at
(``filename``, ``file_row_number``). zetl_nb never renames columns in place (a rename resyncs the
table), so Parquet column names are the table's. The DuckDB ``iceberg`` extension is not used:
installing it needs the internet.

>>> lab.sql("SELECT count(*) FROM lakehouse.orders").fetchall()     # doctest: +SKIP
[(42,)]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from ..target.catalog import LocalCatalog


@dataclass
class Result:
    """A fetched query result: DB-API-like ``fetchall()`` and ``description``, plus Arrow."""

    arrow: Any
    description: list[tuple[Any, ...]]
    elapsed: float

    def fetchall(self) -> list[tuple[Any, ...]]:
        cols = [c.to_pylist() for c in self.arrow.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def to_arrow(self) -> Any:
        return self.arrow

    def pl(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.arrow)

    def __len__(self) -> int:
        return int(self.arrow.num_rows)

    def __repr__(self) -> str:
        return f"<Result {self.arrow.num_rows} rows x {self.arrow.num_columns} columns>"


class QueryEngine:
    """One DuckDB connection whose views follow the catalog."""

    def __init__(self, catalog: LocalCatalog) -> None:
        import duckdb

        self.catalog = catalog
        self.con = duckdb.connect()
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, ...], str] = {}

    def close(self) -> None:
        with self._lock:
            self.con.close()

    def refresh(self) -> None:
        """Re-point every view at its table's current snapshot."""
        cat = self.catalog.catalog
        seen: set[tuple[str, ...]] = set()
        for ns in _all_namespaces(cat):
            schema = "_".join(ns)
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for ident in cat.list_tables(ns):
                ident = tuple(ident)
                seen.add(ident)
                table = cat.load_table(ident)
                if self._versions.get(ident) == table.metadata_location:
                    continue
                self._define(schema, ident[-1], table)
                self._versions[ident] = table.metadata_location
        for gone in set(self._versions) - seen:
            self.con.execute(f'DROP VIEW IF EXISTS "{"_".join(gone[:-1])}"."{gone[-1]}"')
            del self._versions[gone]

    def _define(self, schema: str, name: str, table: Any) -> None:
        tasks = list(table.scan().plan_files())
        target = f'"{schema}"."{name}"'
        if not tasks:
            empty = table.schema().as_arrow().empty_table()
            self.con.register(f"__empty_{schema}_{name}", empty)
            self.con.execute(
                f'CREATE OR REPLACE VIEW {target} AS SELECT * FROM "__empty_{schema}_{name}"'
            )
            return
        paths = ", ".join(_quote(_local(t.file.file_path)) for t in tasks)
        cols = ", ".join(_column(f.name) for f in table.schema().fields)
        deletes = {d.file_path for t in tasks for d in t.delete_files}
        if not deletes:
            self.con.execute(
                f"CREATE OR REPLACE VIEW {target} AS SELECT {cols} FROM "
                f"read_parquet([{paths}], union_by_name=true)"
            )
            return
        # Merge-on-read: drop the rows the position-delete files point at.
        import pyarrow as pa

        mapping = f"__paths_{schema}_{name}"
        uris = [t.file.file_path for t in tasks]
        self.con.register(mapping, pa.table({"uri": uris, "local": [_local(u) for u in uris]}))
        delete_paths = ", ".join(_quote(_local(p)) for p in sorted(deletes))
        self.con.execute(
            f"CREATE OR REPLACE VIEW {target} AS SELECT {cols} FROM "
            f"read_parquet([{paths}], union_by_name=true, filename=true, file_row_number=true) d "
            f"ANTI JOIN (SELECT m.local, x.pos FROM read_parquet([{delete_paths}]) x "
            f'JOIN "{mapping}" m ON x.file_path = m.uri) del '
            "ON d.filename = del.local AND d.file_row_number = del.pos"
        )

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Result:
        """Run ``query`` against the latest snapshots; returns a fetched :class:`Result`."""
        with self._lock:
            self.refresh()
            start = time.perf_counter()
            rel = self.con.sql(query, params=params)
            description = list(rel.description or []) if rel is not None else []
            arrow = rel.to_arrow_table() if rel is not None else None
            elapsed = time.perf_counter() - start
        if arrow is None:
            import pyarrow as pa

            arrow = pa.table({})
        return Result(arrow, description, elapsed)


def _all_namespaces(cat: Any) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    stack = [tuple(ns) for ns in cat.list_namespaces()]
    while stack:
        ns = stack.pop()
        out.append(ns)
        stack.extend(tuple(child) for child in cat.list_namespaces(ns) if tuple(child) != ns)
    return sorted(out)


def _column(name: str) -> str:
    """A view column: pyiceberg writes Avro-safe names into Parquet (``a.b`` → ``a_x2Eb``)."""
    from pyiceberg.schema import make_compatible_name

    stored = make_compatible_name(name).replace('"', '""')
    return f'"{stored}" AS "{name.replace(chr(34), chr(34) * 2)}"'


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _local(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri
