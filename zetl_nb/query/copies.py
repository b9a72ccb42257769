"""In-memory DuckDB copies of Iceberg tables, kept from snapshot file diffs.

Views over Parquet decode the files and anti-join the position deletes on every query; DuckDB's
own storage answers TPC-H-style queries 2-10x faster (``docs/benchmarks.md``). So each table
whose files DuckDB can read (:func:`.scan.read_mode` ``name`` or ``field-id``) and that fits
the memory budget (``query_memory_mb``) gets a DuckDB table in the schema ``zetl_copies`` of the
connection's main database, holding its rows plus two hidden columns: the data file's number and
the row's position in the file. Columns are named by Iceberg field id (``c<id>``), so a rename
only changes the view; the view ``<database>.<table>`` selects ``c<id> AS "<name>"``.

Data files never change, so a new snapshot costs only its difference from the last one
(:func:`sync`): rows of data files that left the snapshot (compaction, truncate) are deleted,
new data files are inserted (read the way the Parquet view would read them) without the
positions new position-delete files name, then the positions those name in the files held
before are deleted. (Deleted rows stay in DuckDB's storage and slow its scans: a first copy has
none.) Added columns are added, promoted ones widened, dropped ones dropped. A copy is rebuilt
when the table was replaced (new table UUID), when its history moved backwards (rollback: the
new snapshot does not descend from the copied one) and when a column's type changed other than
by promotion; a table whose files DuckDB cannot read right (nested renames, equality deletes,
...) is never copied.

Cost: the first copy is built in the background on its own cursor while the Parquet view
answers; the next refresh after it finishes catches it up to the current snapshot and swaps the
view, in one transaction. Later snapshots are applied at the refresh before the next query, in
one transaction with the view's redefinition, so a query never sees half an update (DuckDB's
MVCC: other cursors see the old or the new state). A copy that outgrows the budget is dropped
and its table goes back to the Parquet view.
"""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .scan import column_types, local_path, parquet_source, read_mode, snapshot_files

#: The schema (in DuckDB's main database) holding the copies.
COPIES = "zetl_copies"
_FILE, _POS = "__zetl_file_id", "__zetl_pos"
#: Bytes in memory per byte of Parquet, to guess a copy's size before building it (lineitem
#: of ``bench/query_tpch.py``: ~3.3); the measured size replaces the guess once known.
_EXPANSION = 4.0
_serial = itertools.count()


class NeedsRebuild(Exception):
    """The copy cannot follow the table by a file diff; ``str(exc)`` says why."""


@dataclass
class TableCopy:
    """One table's copy: where it is and what of the table it holds."""

    name: str  # qualified, quoted DuckDB name
    uuid: str
    types: dict[int, str]  # field id → DuckDB type of column c<id>
    files: dict[str, int] = field(default_factory=dict)  # data file URI → its number
    applied: set[str] = field(default_factory=set)  # position-delete files applied
    next_number: int = 0
    snapshot_id: int | None = None
    sequence: int = 0
    why_field_id: str | None = None  # files are read by field id, because ...
    bytes: int = 0  # memory measured after the first copy
    seconds: float = 0.0  # time of the first copy

    @property
    def path(self) -> str:
        """The read path ``QueryEngine.read_path`` reports."""
        return "memory" if self.why_field_id is None else f"memory by field id: {self.why_field_id}"


def create(con: Any, table: Any) -> TableCopy:
    """An empty copy of ``table``'s current schema (raises FastPathUnavailable if none)."""
    types = column_types(table.schema())
    name = f"{_ident(COPIES)}.{_ident(f'copy_{next(_serial)}')}"
    columns = ", ".join(f"c{fid} {t}" for fid, t in types.items())
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(COPIES)}")
    con.execute(f"CREATE TABLE {name} ({columns}, {_FILE} INTEGER, {_POS} BIGINT)")
    return TableCopy(name, str(table.metadata.table_uuid), types)


def view_sql(copy: TableCopy, schema: Any) -> str:
    """The view body over ``copy``: ``schema``'s columns by name, without the hidden ones."""
    columns = ", ".join(f"c{f.field_id} AS {_ident(f.name)}" for f in schema.fields)
    return f"SELECT {columns} FROM {copy.name}"


def sync(con: Any, copy: TableCopy, table: Any, snapshot_id: int | None = None) -> None:
    """Bring ``copy`` to ``table``'s current snapshot (or ``snapshot_id``, for replays) and
    current schema (see the module docstring).

    Raises NeedsRebuild or FastPathUnavailable; the copy is then to be dropped (its Python
    state may be ahead of a rolled-back transaction).
    """
    if str(table.metadata.table_uuid) != copy.uuid:
        raise NeedsRebuild("the table was replaced")
    mode, why = read_mode(table)
    if mode == "pyiceberg":
        raise NeedsRebuild(f"DuckDB cannot read its files right: {why}")
    snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    if not _descends(table, copy, snap):
        raise NeedsRebuild("its current snapshot does not descend from the copied one")
    _evolve(con, copy, table.schema())
    files = snapshot_files(table, snap.snapshot_id if snap is not None else None)
    data = set(files.data)
    gone = [uri for uri in copy.files if uri not in data]
    if gone:
        numbers = ", ".join(str(copy.files.pop(uri)) for uri in gone)
        con.execute(f"DELETE FROM {copy.name} WHERE {_FILE} IN ({numbers})")
    held = dict(copy.files)  # new delete files may name these, and the new data files
    deletes = set(files.delete_files)
    fresh = sorted(deletes - copy.applied)
    new = [uri for uri in files.data if uri not in copy.files]
    if new:  # without the rows the new delete files name: deleted rows slow DuckDB's scans
        _insert(con, copy, table.schema(), new, fresh, by_field_id=mode == "field-id")
    if fresh and held:
        _delete(con, copy, fresh, held)
    copy.applied = deletes
    copy.why_field_id = why
    copy.snapshot_id = snap.snapshot_id if snap is not None else None
    copy.sequence = snap.sequence_number if snap is not None else 0


def _descends(table: Any, copy: TableCopy, snap: Any) -> bool:
    """Whether snapshot ``snap`` descends from the copied one.

    Expired ancestors end the walk early; the history is then taken as forward if every
    snapshot seen is newer than the copied one (a rollback lands on an older snapshot).
    """
    if copy.snapshot_id is None:
        return True
    while snap is not None:
        if snap.snapshot_id == copy.snapshot_id:
            return True
        if snap.sequence_number <= copy.sequence:
            return False
        if snap.parent_snapshot_id is None:
            return False
        parent = table.snapshot_by_id(snap.parent_snapshot_id)
        if parent is None:  # expired
            return True
        snap = parent
    return False


_WIDER = {("INTEGER", "BIGINT"), ("FLOAT", "DOUBLE")}


def _evolve(con: Any, copy: TableCopy, schema: Any) -> None:
    """Add, widen and drop ``copy``'s columns to match ``schema``; NeedsRebuild otherwise."""
    types = column_types(schema)
    for fid in sorted(set(copy.types) - set(types)):
        con.execute(f"ALTER TABLE {copy.name} DROP COLUMN c{fid}")
    for fid, new in types.items():
        old = copy.types.get(fid)
        if old is None:
            con.execute(f"ALTER TABLE {copy.name} ADD COLUMN c{fid} {new}")
        elif old != new:
            if not _widens(old, new):
                raise NeedsRebuild(f"field {fid} changed type from {old} to {new}")
            con.execute(f"ALTER TABLE {copy.name} ALTER COLUMN c{fid} TYPE {new}")
    copy.types = types


def _widens(old: str, new: str) -> bool:
    if (old, new) in _WIDER:
        return True
    a = re.fullmatch(r"DECIMAL\((\d+), (\d+)\)", old)
    b = re.fullmatch(r"DECIMAL\((\d+), (\d+)\)", new)
    return bool(a and b and a[2] == b[2] and int(b[1]) >= int(a[1]))


def _insert(
    con: Any,
    copy: TableCopy,
    schema: Any,
    uris: list[str],
    delete_files: list[str],
    by_field_id: bool,
) -> None:
    """Insert the rows of data files ``uris``, each numbered, with its row positions, except
    the positions ``delete_files`` name."""
    numbers = {}
    for uri in uris:
        numbers[uri] = copy.files[uri] = copy.next_number
        copy.next_number += 1
    refs, source = parquet_source(schema, by_field_id)
    mapping = ", ".join(
        f"({_literal(local_path(u))}, {n}, {_literal(u)})" for u, n in numbers.items()
    )
    targets = ", ".join(f"c{f.field_id}" for f in schema.fields)
    values = ", ".join(f"r.{refs[f.field_id]}" for f in schema.fields)
    deleted = ""
    if delete_files:
        listed = ", ".join(_literal(local_path(d)) for d in delete_files)
        deleted = (
            f" ANTI JOIN (SELECT file_path, pos FROM read_parquet([{listed}])) AS x "
            "ON x.file_path = m.uri AND x.pos = r.file_row_number"
        )
    con.execute(
        f"INSERT INTO {copy.name} ({targets}, {_FILE}, {_POS}) "
        f"SELECT {values}, m.number, r.file_row_number FROM {source(uris, True)} AS r "
        f"JOIN (VALUES {mapping}) AS m(path, number, uri) ON r.__zetl_file = m.path{deleted}"
    )


def _delete(con: Any, copy: TableCopy, delete_files: list[str], held: dict[str, int]) -> None:
    """Delete the rows that ``delete_files`` name in the data files ``held`` (URI → number)."""
    listed = ", ".join(_literal(local_path(d)) for d in delete_files)
    mapping = ", ".join(f"({_literal(u)}, {n})" for u, n in held.items())
    con.execute(
        f"DELETE FROM {copy.name} AS t USING (SELECT m.number, x.pos "
        f"FROM read_parquet([{listed}]) AS x JOIN (VALUES {mapping}) AS m(uri, number) "
        f"ON x.file_path = m.uri) AS d WHERE t.{_FILE} = d.number AND t.{_POS} = d.pos"
    )


def memory_used(con: Any) -> int:
    """Bytes DuckDB holds in in-memory tables (the copies and the materialized tables)."""
    rows = con.execute(  # fetchall: a partly fetched execute() blocks the connection
        "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory() "
        "WHERE tag = 'IN_MEMORY_TABLE'"
    ).fetchall()
    return int(rows[0][0])


def estimate(table: Any) -> tuple[int, int]:
    """(rows, bytes in memory) of ``table``'s current snapshot, guessed from its summary."""
    snap = table.current_snapshot()
    if snap is None or snap.summary is None:
        return 0, 0
    props = snap.summary.additional_properties or {}
    rows = int(props.get("total-records", 0)) - int(props.get("total-position-deletes", 0))
    return max(rows, 0), int(int(props.get("total-files-size", 0)) * _EXPANSION)


class Builder:
    """First copies, built one at a time on a cursor of their own (or inline)."""

    def __init__(self, con: Any, background: bool) -> None:
        self.con = con
        self.background = background
        self._pool: ThreadPoolExecutor | None = None
        self._cursors: set[Any] = set()
        self._lock = threading.Lock()

    def submit(self, copy: TableCopy, table: Any) -> Future[TableCopy]:
        """Fill ``copy`` from ``table``'s current snapshot; a future of it."""
        if not self.background:
            done: Future[TableCopy] = Future()
            try:
                done.set_result(self._build(self.con, copy, table))
            except Exception as exc:
                done.set_exception(exc)
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="zetl-query-copy")
        cursor = self.con.cursor()
        with self._lock:
            self._cursors.add(cursor)
        return self._pool.submit(self._run, cursor, copy, table)

    def _run(self, cursor: Any, copy: TableCopy, table: Any) -> TableCopy:
        try:
            return self._build(cursor, copy, table)
        finally:
            with self._lock:
                self._cursors.discard(cursor)
            cursor.close()

    @staticmethod
    def _build(con: Any, copy: TableCopy, table: Any) -> TableCopy:
        import time

        start = time.perf_counter()
        before = memory_used(con)
        sync(con, copy, table)
        copy.bytes = max(memory_used(con) - before, 0)
        copy.seconds = time.perf_counter() - start
        return copy

    def close(self) -> None:
        """Interrupt the copy under way; wait for the worker to stop."""
        with self._lock:
            for cursor in self._cursors:
                cursor.interrupt()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
