"""Diagnostic views for ``bench/query_tpch.py --profile``: where lab.sql's time goes.

Each variant is a DuckDB connection with one view per replicated table over the same snapshot
files that ``lab.sql`` reads, built here (not by zetl_nb) so each differs from the next in one
way. Every variant returns the tables' current rows (the caller checks the counts):

- ``path anti-join``: all data files in one ``read_parquet(..., filename, file_row_number)``,
  anti-joined with every position-delete row on (file path, row number): the view of the
  committed query layer (``zetl_nb/query/duck.py`` up to ``af3a708``);
- ``+ field-id schema``: the same with ``schema = MAP {field_id: {name, type, ...}}`` (reading
  by Parquet field id, as the query layer's rewrite does for tables whose history needs it);
- ``+ build side pinned``: the same again, on a connection with DuckDB's build-side optimizer
  off (``disabled_optimizers = 'build_side_probe_side'``), so the anti-join hashes the deleted
  positions, not the data rows, whatever DuckDB estimates;
- ``per-file positions``: files without deletes read as they are; each file with deletes read
  on its own and anti-joined on ``file_row_number`` alone with its positions, copied once into a
  small DuckDB table (no file-path strings per row, no path join);
- ``in-memory copy``: the rows in DuckDB's own storage, kept per snapshot from file diffs (the
  prototype in ``bench/tpch_copy.py``): what a cache in the query layer could reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VARIANTS = (
    "path anti-join",
    "+ field-id schema",
    "+ build side pinned",
    "per-file positions",
    "in-memory copy",
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


Files = dict[str, str]  # data file URI (as delete files name it) → local path


def _plan(table: Any, local: Callable[[str], str]) -> tuple[Files, dict[str, list[str]]]:
    """(data files, data file URI → local paths of its delete files), from pyiceberg's plan."""
    data, deletes = {}, {}
    for task in table.scan().plan_files():
        data[task.file.file_path] = local(task.file.file_path)
        if task.delete_files:
            deletes[task.file.file_path] = [local(d.file_path) for d in task.delete_files]
    return data, deletes


def _schema_map(table: Any) -> str:
    from pyiceberg.types import DecimalType

    names = {
        "int": "INTEGER",
        "long": "BIGINT",
        "string": "VARCHAR",
        "date": "DATE",
        "double": "DOUBLE",
        "timestamptz": "TIMESTAMPTZ",
        "timestamp": "TIMESTAMP",
        "boolean": "BOOLEAN",
    }
    entries = []
    for f in table.schema().fields:
        t = f.field_type
        duck = f"DECIMAL({t.precision}, {t.scale})" if isinstance(t, DecimalType) else names[str(t)]
        entries.append(
            f"{f.field_id}: {{name: {_literal(f.name)}, type: '{duck}', default_value: NULL}}"
        )
    return "schema = MAP {" + ", ".join(entries) + "}"


def build(variant: str, tables: dict[str, Any], local: Callable[[str], str]) -> Any:
    """A DuckDB connection with ``variant``'s views, named ``<namespace>.<table>``."""
    import duckdb

    con = duckdb.connect()
    if variant == "+ build side pinned":
        con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    schemas = {key.split(".")[0] for key in tables}
    for schema in schemas:
        con.execute(f"CREATE SCHEMA {_ident(schema)}")
    for key, table in tables.items():
        ns, name = key.split(".")
        data, deletes = _plan(table, local)
        cols = ", ".join(_ident(f.name) for f in table.schema().fields)
        if variant == "in-memory copy":
            from tpch_copy import InMemoryCopy

            copy = InMemoryCopy(con, f"__copy_{ns}_{name}", table, local)
            copy.sync(table)
            body = copy.select()
        else:
            body = _body(con, variant, f"{ns}_{name}", table, cols, data, deletes)
        con.execute(f"CREATE VIEW {_ident(ns)}.{_ident(name)} AS {body}")
    return con


def _body(
    con: Any,
    variant: str,
    key: str,
    table: Any,
    cols: str,
    data: Files,
    deletes: dict[str, list[str]],
) -> str:
    files = "[" + ", ".join(_literal(p) for p in data.values()) + "]"
    if not deletes:
        return f"SELECT {cols} FROM read_parquet({files})"
    if variant in ("path anti-join", "+ field-id schema", "+ build side pinned"):
        delete_files = sorted({d for ds in deletes.values() for d in ds})
        options = ", " + _schema_map(table) if variant != "path anti-join" else ""
        listed = "[" + ", ".join(_literal(p) for p in delete_files) + "]"
        # Delete files name data files by URI; the mapping turns them into local paths.
        mapping = ", ".join(f"({_literal(u)}, {_literal(p)})" for u, p in data.items())
        return (
            f"SELECT {cols} FROM read_parquet({files}{options}, filename = true, "
            "file_row_number = true) AS d "
            f"ANTI JOIN (SELECT m.local, x.pos FROM read_parquet({listed}) AS x "
            f"JOIN (VALUES {mapping}) AS m(uri, local) ON x.file_path = m.uri) AS del "
            "ON d.filename = del.local AND d.file_row_number = del.pos"
        )
    if variant != "per-file positions":
        raise ValueError(variant)
    clean = [p for u, p in data.items() if u not in deletes]
    parts = []
    if clean:
        listed = "[" + ", ".join(_literal(p) for p in clean) + "]"
        parts.append(f"SELECT {cols} FROM read_parquet({listed})")
    for i, (uri, delete_files) in enumerate(sorted(deletes.items())):
        positions = f"__pos_{key}_{i}"
        listed = "[" + ", ".join(_literal(p) for p in delete_files) + "]"
        con.execute(
            f"CREATE TABLE {_ident(positions)} AS SELECT DISTINCT pos FROM read_parquet({listed}) "
            f"WHERE file_path = {_literal(uri)}"
        )
        parts.append(
            f"SELECT {cols} FROM read_parquet({_literal(data[uri])}, file_row_number = true) AS d "
            f"ANTI JOIN {_ident(positions)} AS del ON d.file_row_number = del.pos"
        )
    return " UNION ALL ".join(parts)
