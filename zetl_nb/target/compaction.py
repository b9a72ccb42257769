"""Table maintenance under continuous CDC: compaction and snapshot expiry.

Merge-on-read commits add one small data file, one delete file and two manifests per batch; left
alone, planning, reads and commits slow down as they pile up. Compaction rewrites, in one snapshot
that carries the same checkpoint (``overwrite``: pyiceberg 0.12 cannot summarise ``replace``):

- every small data file (fewer than ``small_rows`` rows) and every file with more than
  ``heavy_fraction`` of its rows deleted, with its deletes applied;
- all delete files as one, holding only positions in files that were not rewritten;
- all manifests as one per content type.

Big files with few deletes are left alone, so one compaction costs roughly the size of the recent
changes, not of the table. Snapshot expiry keeps the newest ``keep_last`` snapshots and every
snapshot younger than ``keep_seconds`` (time travel in labs), but never more than
``max_snapshots``: each commit rewrites the table metadata, which lists every snapshot.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .rowdelta import commit_row_delta, live_files, write_data_files, write_position_deletes


def summary_counts(table: Any) -> tuple[int, int]:
    """(data files, delete files) of the current snapshot, from its summary."""
    snap = table.current_snapshot()
    props = (snap.summary.additional_properties or {}) if snap and snap.summary else {}
    return int(props.get("total-data-files", 0)), int(props.get("total-delete-files", 0))


def compact(
    table: Any,
    properties: dict[str, str],
    small_rows: int = 250_000,
    heavy_fraction: float = 0.2,
) -> int:
    """Rewrite small and heavily deleted files, merge deletes and manifests; files rewritten."""
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.manifest import DataFileContent

    files = live_files(table)
    data = [f for f in files if f.content == DataFileContent.DATA]
    deletes = [f for f in files if f.content == DataFileContent.POSITION_DELETES]
    positions = _read_positions(table, deletes)
    deleted_per_file = Counter(positions.column("file_path").to_pylist())
    rewrite = {
        f.file_path
        for f in data
        if f.record_count < small_rows
        or deleted_per_file.get(f.file_path, 0) > heavy_fraction * f.record_count
    }
    if len(rewrite) <= 1 and len(deletes) <= 1:
        return 0
    tasks = [t for t in table.scan().plan_files() if t.file.file_path in rewrite]
    with table.transaction() as tx:
        rows = ArrowScan(table.metadata, table.io, table.schema(), _always_true()).to_table(tasks)
        added = write_data_files(tx, rows)
        keep = pc.invert(pc.is_in(positions.column("file_path"), pa.array(sorted(rewrite))))
        by_path = {f.file_path: f for f in data}
        added += write_position_deletes(table, positions.filter(keep), by_path)
        removed = {f for f in data if f.file_path in rewrite} | set(deletes)
        commit_row_delta(tx, added, removed, properties, merge_manifests=True)
    return len(rewrite)


def expire(
    table: Any, keep_seconds: float = 600.0, keep_last: int = 20, max_snapshots: int = 200
) -> int:
    """Expire old snapshots; returns how many."""
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    if len(snapshots) <= keep_last:
        return 0
    cutoff_ms = (time.time() - keep_seconds) * 1000
    candidates = snapshots[:-keep_last]
    old = {s.snapshot_id for s in candidates if s.timestamp_ms < cutoff_ms}
    excess = len(snapshots) - max_snapshots
    if excess > 0:
        old |= {s.snapshot_id for s in candidates[:excess]}
    if old:
        table.maintenance.expire_snapshots().by_ids(sorted(old)).commit()
    return len(old)


def _read_positions(table: Any, deletes: list[Any]) -> pa.Table:
    from .rowdelta import DELETE_SCHEMA

    parts = []
    for d in deletes:
        with table.io.new_input(d.file_path).open() as f:
            parts.append(pq.read_table(f, columns=["file_path", "pos"]).cast(DELETE_SCHEMA))
    return pa.concat_tables(parts) if parts else DELETE_SCHEMA.empty_table()


def _always_true() -> Any:
    from pyiceberg.expressions import AlwaysTrue

    return AlwaysTrue()
