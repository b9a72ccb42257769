"""How DuckDB reads one Iceberg snapshot: its Parquet files minus their position deletes.

A snapshot is read with one SQL ``SELECT`` over the data files of pyiceberg's scan plan. Files
with position deletes are anti-joined on (file, row number); files without are read as they are.
Three ways, chosen from the table's metadata alone (:func:`read_mode`):

- ``name`` (the usual case): ``read_parquet(..., union_by_name=true)`` after an empty ``SELECT``
  typed with the current schema (``UNION ALL BY NAME``), so added columns are NULL where files lack
  them (even in no file at all), int→long / float→double promotions widen, dropped columns are left
  out, and DuckDB keeps its row-count estimates (which order the delete anti-join well). Valid
  while no top-level name ever meant another field: no renames, no name dropped and added again.
- ``field-id``: after such a rename, ``read_parquet(..., schema=MAP {field_id: {name, type,
  default_value}})`` matches columns by Parquet field id. Correct, but DuckDB cannot estimate the
  rows of such a scan, so the delete anti-join can be planned the slow way round.
- ``pyiceberg``: where DuckDB would match by name but field ids say otherwise — a field renamed or
  re-added *inside* a struct, list or map, a nested name stored in its Avro-safe form, renames in
  a table whose files may lack field ids (a name mapping), types DuckDB lacks, equality deletes —
  :func:`read_arrow` reads the snapshot with pyiceberg's own reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

#: The name-mapping property pyiceberg's ``add_files`` sets: such files may lack field ids.
NAME_MAPPING = "schema.name-mapping.default"
#: Columns the reads add; a table column with one of these names is read by pyiceberg.
_FILE_COLUMN, _ROW_COLUMN = "__zetl_file", "file_row_number"


class FastPathUnavailable(Exception):
    """DuckDB cannot read this snapshot by field id; ``str(exc)`` says why."""


@dataclass(frozen=True)
class SnapshotFiles:
    """The files of one snapshot: data files and, per data file, its position-delete files."""

    data: list[str]
    deletes: dict[str, list[str]]

    @property
    def delete_files(self) -> list[str]:
        """Every position-delete file, once."""
        return sorted({d for ds in self.deletes.values() for d in ds})


def snapshot_files(table: Any, snapshot_id: int | None) -> SnapshotFiles:
    """Plan ``table`` at ``snapshot_id`` (None: current) with pyiceberg."""
    from pyiceberg.manifest import DataFileContent

    snap = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snap is None and snapshot_id is None:
        snap = table.current_snapshot()
    if snap is None:
        return SnapshotFiles([], {})
    data: list[str] = []
    deletes: dict[str, list[str]] = {}
    for task in table.scan(snapshot_id=snap.snapshot_id).plan_files():
        data.append(task.file.file_path)
        for d in task.delete_files:
            if d.content == DataFileContent.EQUALITY_DELETES:
                raise FastPathUnavailable("it has equality-delete files")
            deletes.setdefault(task.file.file_path, []).append(d.file_path)
    return SnapshotFiles(data, deletes)


def read_mode(table: Any) -> tuple[str, str | None]:
    """How to read ``table``: (``name`` | ``field-id`` | ``pyiceberg``, why not by name).

    Metadata only, no I/O: every schema the table ever had is compared.
    """
    schemas = list(table.schemas().values())
    problem = _nested_problem(schemas)
    if problem is not None:
        return "pyiceberg", problem
    top = _top_level_problem(schemas)
    if top is None:
        return "name", None
    if NAME_MAPPING in table.properties:
        return "pyiceberg", f"{top}, and files added without field ids may be read by name"
    return "field-id", top


def _top_level_problem(schemas: list[Any]) -> str | None:
    from pyiceberg.schema import make_compatible_name

    names: dict[int, str] = {}
    ids: dict[str, int] = {}
    for schema in schemas:
        for f in schema.fields:
            if f.name in (_FILE_COLUMN, _ROW_COLUMN):
                return f"a column is named {f.name}, like a column the read adds"
            stored = make_compatible_name(f.name)
            if names.setdefault(f.field_id, stored) != stored:
                return f"column '{f.name}' was renamed"
            if ids.setdefault(stored, f.field_id) != f.field_id:
                return f"column '{f.name}' was dropped and added again"
    return None


def _nested_problem(schemas: list[Any]) -> str | None:
    from pyiceberg.schema import index_by_id, make_compatible_name

    names: dict[int, str] = {}
    ids: dict[tuple[int, str], int] = {}
    for schema in schemas:
        for parent in index_by_id(schema).values():
            for child in _children(parent.field_type):
                if make_compatible_name(child.name) != child.name:
                    return f"nested field '{child.name}' is stored under an Avro-safe name"
                if names.setdefault(child.field_id, child.name) != child.name:
                    return f"nested field '{child.name}' was renamed"
                if ids.setdefault((parent.field_id, child.name), child.field_id) != child.field_id:
                    return f"nested field '{child.name}' was dropped and added again"
    return None


def _children(field_type: Any) -> list[Any]:
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(field_type, StructType):
        return list(field_type.fields)
    if isinstance(field_type, ListType):
        return [field_type.element_field]
    if isinstance(field_type, MapType):
        return [field_type.key_field, field_type.value_field]
    return []


_PRIMITIVES = {
    "boolean": "BOOLEAN",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "timestamp_ns": "TIMESTAMP_NS",
    "string": "VARCHAR",
    "uuid": "UUID",
    "binary": "BLOB",
}


def duck_type(field_type: Any) -> str | None:
    """DuckDB's spelling of an Iceberg type (nested names as stored in Parquet); None if none."""
    from pyiceberg.types import DecimalType, FixedType, ListType, MapType, StructType

    if isinstance(field_type, DecimalType):
        return f"DECIMAL({field_type.precision}, {field_type.scale})"
    if isinstance(field_type, FixedType):
        return "BLOB"
    if isinstance(field_type, StructType):
        parts = [(_ident(f.name), duck_type(f.field_type)) for f in field_type.fields]
        if not parts or any(t is None for _, t in parts):
            return None
        return "STRUCT(" + ", ".join(f"{n} {t}" for n, t in parts) + ")"
    if isinstance(field_type, ListType):
        inner = duck_type(field_type.element_type)
        return None if inner is None else f"{inner}[]"
    if isinstance(field_type, MapType):
        key, value = duck_type(field_type.key_type), duck_type(field_type.value_type)
        return None if key is None or value is None else f"MAP({key}, {value})"
    return _PRIMITIVES.get(str(field_type))


def select_sql(files: SnapshotFiles, schema: Any, by_field_id: bool = False) -> str:
    """A DuckDB ``SELECT`` of ``schema``'s columns over ``files`` (see the module docstring)."""
    types = column_types(schema)
    if not files.data:
        nulls = ", ".join(
            f"CAST(NULL AS {types[f.field_id]}) AS {_ident(f.name)}" for f in schema.fields
        )
        return f"SELECT {nulls} WHERE false"
    refs, source = parquet_source(schema, by_field_id)
    columns = ", ".join(f"{refs[f.field_id]} AS {_ident(f.name)}" for f in schema.fields)
    return _with_deletes(files, columns, source)


def column_types(schema: Any) -> dict[int, str]:
    """Field id → DuckDB type of ``schema``'s top-level columns; raises when DuckDB has none."""
    types = {f.field_id: duck_type(f.field_type) for f in schema.fields}
    for f in schema.fields:
        if types[f.field_id] is None:
            raise FastPathUnavailable(f"column '{f.name}' has type {f.field_type}")
    return {k: str(v) for k, v in types.items()}


Source = Callable[[list[str], bool], str]


def parquet_source(schema: Any, by_field_id: bool) -> tuple[dict[int, str], Source]:
    """How to read Parquet files in ``schema``: (field id → column reference, ``source``).

    ``source(paths, positions)`` is a ``FROM`` item over ``paths``; with ``positions`` it also
    has each row's local file path (``__zetl_file``) and ``file_row_number``.
    """
    from pyiceberg.schema import make_compatible_name

    types = column_types(schema)
    if by_field_id:
        refs = {f.field_id: _ident(f.name) for f in schema.fields}
        entries = ", ".join(
            f"{f.field_id}: {{name: {_literal(f.name)}, type: {_literal(types[f.field_id])}, "
            "default_value: NULL}"
            for f in schema.fields
        )

        def source(paths: list[str], positions: bool) -> str:
            extra = _POSITION_OPTIONS if positions else ""
            return (
                f"read_parquet({_list(paths)}, schema = MAP {{{entries}}}, "
                f"hive_partitioning = false{extra})"
            )

        return refs, source

    refs = {f.field_id: _ident(make_compatible_name(f.name)) for f in schema.fields}
    typed = ", ".join(
        f"CAST(NULL AS {types[f.field_id]}) AS {refs[f.field_id]}" for f in schema.fields
    )

    def by_name(paths: list[str], positions: bool) -> str:
        extra = _POSITION_OPTIONS if positions else ""
        typed_extra = _POSITION_COLUMNS if positions else ""
        return (
            f"(SELECT {typed}{typed_extra} WHERE false UNION ALL BY NAME SELECT * FROM "
            f"read_parquet({_list(paths)}, union_by_name = true, hive_partitioning = false"
            f"{extra}))"
        )

    return refs, by_name


_POSITION_OPTIONS = f", filename = '{_FILE_COLUMN}', file_row_number = true"
_POSITION_COLUMNS = (
    f", CAST(NULL AS VARCHAR) AS {_FILE_COLUMN}, CAST(NULL AS BIGINT) AS {_ROW_COLUMN}"
)


def _with_deletes(files: SnapshotFiles, columns: str, source: Source) -> str:
    """``SELECT columns`` over the clean files, and over the others minus their deletes."""
    parts = []
    clean = [p for p in files.data if p not in files.deletes]
    if clean:
        parts.append(f"SELECT {columns} FROM {source(clean, False)}")
    if files.deletes:
        with_deletes = [p for p in files.data if p in files.deletes]
        mapping = ", ".join(f"({_literal(p)}, {_literal(local_path(p))})" for p in with_deletes)
        parts.append(
            f"SELECT {columns} FROM {source(with_deletes, True)} AS d "
            f"ANTI JOIN (SELECT m.local_path, x.pos FROM read_parquet({_list(files.delete_files)}) "
            f"AS x JOIN (VALUES {mapping}) AS m(uri, local_path) ON x.file_path = m.uri) AS del "
            f"ON d.{_FILE_COLUMN} = del.local_path AND d.{_ROW_COLUMN} = del.pos"
        )
    return "\nUNION ALL\n".join(parts)


def read_arrow(table: Any, snapshot_id: int | None, schema: Any) -> Any:
    """``table`` at ``snapshot_id`` in ``schema``, read by pyiceberg (the correct, slower path)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    snap = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    snap = snap or (table.current_snapshot() if snapshot_id is None else None)
    if snap is None:
        return schema.as_arrow().empty_table()
    tasks = list(table.scan(snapshot_id=snap.snapshot_id).plan_files())
    scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    return scan.to_table(tasks)


def local_path(uri: str) -> str:
    """The path DuckDB opens for a ``file://`` URI (other schemes are passed through).

    Not percent-decoded: pyiceberg's FileIO writes and opens ``urlparse(uri).path`` as it is, so
    a partition value such as ``Home & Kitchen`` lives in a folder named ``Home+%26+Kitchen``.
    """
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(_literal(local_path(p)) for p in paths) + "]"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
