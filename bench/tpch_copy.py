"""Upkeep of the in-memory copies (``bench/query_tpch.py``), and the prototype they came from.

:class:`InMemoryCopy` is the prototype, kept for the record; ``zetl_nb.query.copies`` is the
production form (columns by field id, schema evolution, budget), and :func:`replay` times it. Each
Iceberg table gets a DuckDB table holding its rows plus two hidden columns, the data file's
number and the row's position in it. Data files never change, so a new snapshot costs only its
difference from the one before: rows of data files that left the snapshot (compaction) are
deleted, new data files are inserted, and the rows that new position-delete files name are
deleted by (file number, position). Queries then read DuckDB's own storage.

:func:`replay` measures the upkeep: it builds a copy from a table's oldest kept snapshot and
syncs it through every later one, timing each step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class InMemoryCopy:
    """One Iceberg table's rows in a DuckDB table ``name`` of ``con``, synced by file diffs."""

    def __init__(self, con: Any, name: str, table: Any, local: Callable[[str], str]) -> None:
        self.con, self.name, self.local = con, '"' + name + '"', local
        self.columns = ", ".join('"' + f.name + '"' for f in table.schema().fields)
        self.files: dict[str, int] = {}  # data file URI → its number in the copy
        self.applied: set[str] = set()  # delete files already applied
        self.next_number = 0

    def sync(self, table: Any, snapshot_id: int | None = None) -> None:
        """Bring the copy to ``snapshot_id`` (None: the current snapshot)."""
        data: set[str] = set()
        deletes: set[str] = set()
        for task in table.scan(snapshot_id=snapshot_id).plan_files():
            data.add(task.file.file_path)
            deletes.update(d.file_path for d in task.delete_files)
        gone = [uri for uri in self.files if uri not in data]
        if gone:
            numbers = ", ".join(str(self.files.pop(uri)) for uri in gone)
            self.con.execute(f"DELETE FROM {self.name} WHERE __file IN ({numbers})")
        for uri in sorted(data - set(self.files)):
            self.files[uri] = number = self.next_number
            self.next_number += 1
            rows = (
                f"SELECT {self.columns}, {number}::INTEGER AS __file, file_row_number AS __pos "
                f"FROM read_parquet({_literal(self.local(uri))}, file_row_number = true)"
            )
            if number == 0:
                self.con.execute(f"CREATE TABLE {self.name} AS {rows}")
            else:
                self.con.execute(f"INSERT INTO {self.name} {rows}")
        new = sorted(deletes - self.applied)
        if new:
            mapping = ", ".join(f"({_literal(u)}, {n})" for u, n in self.files.items())
            listed = ", ".join(_literal(self.local(d)) for d in new)
            self.con.execute(
                f"DELETE FROM {self.name} USING (SELECT m.number, x.pos "
                f"FROM read_parquet([{listed}]) AS x JOIN (VALUES {mapping}) AS m(uri, number) "
                f"ON x.file_path = m.uri) AS d "
                f"WHERE {self.name}.__file = d.number AND {self.name}.__pos = d.pos"
            )
            self.applied.update(new)

    def select(self) -> str:
        """The view body: the table's columns, without the hidden ones."""
        return f"SELECT {self.columns} FROM {self.name}"


def replay(table: Any, local: Callable[[str], str]) -> dict[str, Any]:
    """Build a copy at the oldest kept snapshot, sync it through the later ones; times in s.

    Through the query layer's own code (``zetl_nb.query.copies``: ``create`` + ``sync``), each
    step in a transaction as the engine runs it.
    """
    import duckdb

    from zetl_nb.query.copies import create, memory_used, sync

    con = duckdb.connect()
    copy = create(con, table)
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    steps = []
    for snap in snapshots:
        start = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        sync(con, copy, table, snap.snapshot_id)
        con.execute("COMMIT")
        steps.append(time.perf_counter() - start)
    rows = con.sql(f"SELECT count(*) FROM {copy.name}").fetchall()[0][0]
    memory = memory_used(con)
    con.close()
    later = steps[1:] or [0.0]
    return {
        "snapshots": len(snapshots),
        "first": steps[0] if steps else 0.0,
        "median_later": statistics.median(later),
        "max_later": max(later),
        "rows": rows,
        "memory_mb": (memory or 0) / 1e6,
    }
