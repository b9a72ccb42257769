"""Which tables the query engine holds in memory, under a budget (see :mod:`.copies`).

:class:`MemoryCopies` is driven by :class:`.views.CatalogViews` at each refresh:
:meth:`~MemoryCopies.update` applies a changed table's new snapshot to its copy (and redefines
its view in the same transaction); :meth:`~MemoryCopies.consider` starts a first copy of a table
that a Parquet view answers for now; :meth:`~MemoryCopies.collect` swaps finished copies in.
``budget_bytes`` 0 turns copies off; tables under ``min_rows`` stay on their Parquet views
(DuckDB reads them in about a millisecond, and a copy would only add upkeep).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .copies import (
    COPIES,
    Builder,
    NeedsRebuild,
    TableCopy,
    create,
    estimate,
    memory_used,
    sync,
    view_sql,
)
from .scan import FastPathUnavailable

TableId = tuple[str, ...]
_MB = 1_000_000


@dataclass(frozen=True)
class _Build:
    """A first copy under way: filled by ``future``, of the table at metadata ``location``."""

    future: Future[TableCopy]
    copy: TableCopy
    location: str | None
    guess: int  # bytes it is expected to take


class MemoryCopies:
    """In-memory copies of the catalog's tables within ``budget_bytes``.

    Args:
        con: the engine's DuckDB connection (copies live in its main database).
        budget_bytes: memory for in-memory tables; 0 disables copies.
        min_rows: tables with fewer rows are not copied.
        background: build first copies on a worker thread (False: at the refresh).
    """

    def __init__(self, con: Any, budget_bytes: int, min_rows: int, background: bool) -> None:
        self.con = con
        self.budget = budget_bytes
        self.min_rows = min_rows
        self.serving: dict[TableId, TableCopy] = {}
        self.building: dict[TableId, _Build] = {}
        self.notes: dict[TableId, str] = {}  # why a table is on its Parquet view
        self._stale: dict[TableId, TableCopy] = {}
        self._sizes: dict[TableId, int] = {}  # measured bytes of copies that did not fit
        self._failed: dict[TableId, str | None] = {}  # metadata location a copy failed at
        self._builder = Builder(con, background)

    @property
    def enabled(self) -> bool:
        """Whether copies are on (``query_memory_mb`` > 0)."""
        return self.budget > 0

    # -- called by CatalogViews -------------------------------------------------------------------
    def update(self, table_id: TableId, table: Any, view: str) -> str | None:
        """Apply ``table``'s new snapshot and schema to its copy and point ``view`` at it, in one
        transaction; the read path, or None when the Parquet view must answer (the copy is then
        dropped by the next :meth:`consider`)."""
        copy = self.serving.pop(table_id, None)
        if copy is None:
            return None
        self.con.execute("BEGIN TRANSACTION")
        try:
            sync(self.con, copy, table)
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {view_sql(copy, table.schema())}")
            self.con.execute("COMMIT")
        except Exception as exc:
            self.con.execute("ROLLBACK")
            self._stale[table_id] = copy
            self.notes[table_id] = f"rebuilding its copy in memory: {_reason(exc)}"
            return None
        used = memory_used(self.con)
        if used > self.budget:
            self._stale[table_id] = copy
            self._sizes[table_id] = copy.bytes + max(used - self.budget, 0)
            self.notes[table_id] = f"its copy outgrew the memory budget ({self._budget_text()})"
            return None
        self.serving[table_id] = copy
        return copy.path

    def consider(self, table_id: TableId, table: Any, location: str | None, path: str) -> str:
        """Start a copy of ``table`` (now read through a view whose read path is ``path``) if it
        is worth one and fits; ``path``, with a note on the copy when there is one to tell."""
        self._drop_stale(table_id)
        if not self.enabled or not path.startswith("parquet"):
            return path
        if table_id in self.building:
            return f"{path} (copy to memory under way)"
        if self._failed.get(table_id, "") == location:
            return f"{path} ({self.notes.get(table_id, 'copy failed')})"
        rows, guess = estimate(table)
        if rows < self.min_rows:
            return path
        need = max(guess, self._sizes.get(table_id, 0))
        used = memory_used(self.con) + sum(b.guess for b in self.building.values())
        if used + need > self.budget:
            note = (
                f"not in memory: needs ~{need / _MB:.0f} MB, {used / _MB:.0f} MB in use of "
                f"the {self._budget_text()}"
            )
            self.notes[table_id] = note
            return f"{path} ({note})"
        try:
            copy = create(self.con, table)
        except FastPathUnavailable:
            return path
        self.building[table_id] = _Build(self._builder.submit(copy, table), copy, location, need)
        self.notes[table_id] = "copy to memory under way"
        return f"{path} (copy to memory under way)"

    def collect(
        self, tables: dict[TableId, Any], views: Callable[[TableId], str]
    ) -> dict[TableId, str | None]:
        """Swap in the copies that finished: catch each up with its table's current state and
        point its view at it, in one transaction. Returns the read paths that changed (None:
        the view must be defined over Parquet again)."""
        paths: dict[TableId, str | None] = {}
        for table_id, build in list(self.building.items()):
            if not build.future.done():
                continue
            del self.building[table_id]
            self._stale[table_id] = build.copy  # until it serves
            table = tables.get(table_id)
            error = build.future.exception()
            if error is not None:
                self._failed[table_id] = build.location
                self.notes[table_id] = f"copy failed: {_reason(error)}"
            elif table is not None and memory_used(self.con) > self.budget:
                self._sizes[table_id] = build.copy.bytes
                self.notes[table_id] = f"its copy did not fit the {self._budget_text()}"
            elif table is not None:
                del self._stale[table_id]
                self.serving[table_id] = build.copy
                paths[table_id] = self.update(table_id, table, views(table_id))
                if paths[table_id] is not None:
                    self.notes.pop(table_id, None)
                continue
            self._drop_stale(table_id)
        return paths

    def forget(self, table_id: TableId) -> None:
        """The table was dropped: drop its copy (its view is gone already)."""
        copy = self.serving.pop(table_id, None)
        if copy is not None:
            self._stale[table_id] = copy
        self._drop_stale(table_id)
        for cache in (self.notes, self._sizes, self._failed):
            cache.pop(table_id, None)

    # -- reports ---------------------------------------------------------------------------------
    def report(self) -> dict[str, dict[str, Any]]:
        """Per table held in memory: rows, MB measured at its first copy, seconds it took."""
        out = {}
        for table_id, copy in sorted(self.serving.items()):
            rows = self.con.execute(f"SELECT count(*) FROM {copy.name}").fetchall()
            out[".".join(table_id)] = {
                "rows": int(rows[0][0]),
                "memory_mb": round(copy.bytes / _MB, 1),
                "first_copy_s": round(copy.seconds, 3),
            }
        return out

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the copies under way (they are swapped in at the next refresh)."""
        from concurrent.futures import wait

        wait([b.future for b in self.building.values()], timeout=timeout)

    def close(self) -> None:
        """Stop building copies."""
        self._builder.close()

    # -- helpers ---------------------------------------------------------------------------------
    def _drop_stale(self, table_id: TableId) -> None:
        copy = self._stale.pop(table_id, None)
        if copy is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {copy.name}")

    def _budget_text(self) -> str:
        return f"query_memory_mb budget of {self.budget / _MB:.0f} MB"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NeedsRebuild | FastPathUnavailable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["COPIES", "MemoryCopies"]
