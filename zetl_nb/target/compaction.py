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

from .rowdelta import (
    commit_row_delta,
    live_entries,
    transaction,
    write_data_files,
    write_position_deletes,
)


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
) -> tuple[set[str], list[Any]]:
    """Rewrite small and heavily deleted files, merge deletes and manifests.

    Returns the paths of the rewritten data files and the data files written in their place.
    """
    from pyiceberg.manifest import DataFileContent

    entries = live_entries(table)
    files = [e.data_file for _, group in entries for e in group]
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
        return set(), []
    with transaction(table) as tx:
        rows = _live_rows(table, [f for f in data if f.file_path in rewrite], positions)
        written = write_data_files(tx, rows)
        keep = pc.invert(pc.is_in(positions.column("file_path"), pa.array(sorted(rewrite))))
        by_path = {f.file_path: f for f in data}
        merged = write_position_deletes(table, positions.filter(keep), by_path)
        removed = {f for f in data if f.file_path in rewrite} | set(deletes)
        commit_row_delta(
            tx, written + merged, removed, properties, merge_manifests=True, parent_entries=entries
        )
    return rewrite, written


def _live_rows(table: Any, data_files: list[Any], positions: pa.Table) -> pa.Table:
    """Rows of ``data_files`` in the table's current schema, without the deleted positions."""
    import numpy as np
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.table import FileScanTask

    scan = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
    by_file = positions.group_by("file_path").aggregate([("pos", "list")])
    gone = dict(
        zip(
            by_file.column("file_path").to_pylist(),
            by_file.column("pos_list").to_numpy(zero_copy_only=False),
            strict=True,
        )
    )
    parts = []
    for f in data_files:
        rows = scan.to_table([FileScanTask(f)])
        if f.file_path in gone:
            keep = np.ones(rows.num_rows, dtype=bool)
            keep[np.asarray(gone[f.file_path], dtype=np.int64)] = False
            rows = rows.filter(pa.array(keep))
        parts.append(rows)
    return pa.concat_tables(parts) if parts else table.schema().as_arrow().empty_table()


def expire(
    table: Any, keep_seconds: float = 600.0, keep_last: int = 20, max_snapshots: int = 100
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
        from pyiceberg.table.update.snapshot import ExpireSnapshots

        # by_ids reads the metadata once per id: the cached transaction makes that cheap
        ExpireSnapshots(transaction(table, autocommit=True)).by_ids(sorted(old)).commit()
    return len(old)


def _read_positions(table: Any, deletes: list[Any]) -> pa.Table:
    from .rowdelta import DELETE_SCHEMA

    parts = []
    for d in deletes:
        with table.io.new_input(d.file_path).open() as f:
            parts.append(pq.read_table(f, columns=["file_path", "pos"]).cast(DELETE_SCHEMA))
    return pa.concat_tables(parts) if parts else DELETE_SCHEMA.empty_table()
