"""Merge-on-read commits: position-delete files and one snapshot that adds and removes files.

pyiceberg 0.12 reads position deletes but never writes them (FIELD-NOTES), so its row-level
operations rewrite every data file a change touches. Here a change batch becomes a small data file
(the new images) plus a position-delete file (where the old images are), committed as one
snapshot: the cost follows the batch, not the table. Compaction uses the same producer to swap
rewritten data files and merged delete files in one snapshot.

The producer subclasses pyiceberg's snapshot producer (a private class; pyiceberg is pinned to
0.12.x in pyproject.toml). Files follow the Iceberg v2 spec: delete files go in ``deletes``
manifests, carry ``file_path``/``pos`` with the reserved field ids, and bound ``file_path`` so
readers skip them for data files they do not reference.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PATH_ID, POS_ID = 2147483546, 2147483545

DELETE_SCHEMA = pa.schema(
    [
        pa.field("file_path", pa.string(), False, {"PARQUET:field_id": str(PATH_ID)}),
        pa.field("pos", pa.int64(), False, {"PARQUET:field_id": str(POS_ID)}),
    ]
)


def write_position_deletes(table: Any, positions: pa.Table, files: dict[str, Any]) -> list[Any]:
    """Write ``positions`` (``file_path``, ``pos``) as delete files, one per partition.

    ``files`` maps each referenced data file's path to its ``DataFile`` (for spec and partition).
    Rows are sorted by path and position, as the spec asks.
    """
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

    if positions.num_rows == 0:
        return []
    order = [("file_path", "ascending"), ("pos", "ascending")]
    positions = positions.cast(DELETE_SCHEMA).sort_by(order)
    groups: dict[tuple[int, Any], list[str]] = defaultdict(list)
    for path in positions.column("file_path").unique().to_pylist():
        data_file = files[path]
        groups[(data_file.spec_id or 0, data_file.partition)].append(path)
    out = []
    for (spec_id, partition), paths in groups.items():
        part = positions if len(groups) == 1 else _select_paths(positions, paths)
        location = table.location_provider().new_data_location(f"{uuid.uuid4()}-deletes.parquet")
        with table.io.new_output(location).create(overwrite=True) as sink:
            pq.write_table(part, sink, compression="zstd")
        size = len(table.io.new_input(location))
        lo, hi = min(paths).encode(), max(paths).encode()
        delete_file = DataFile.from_args(
            content=DataFileContent.POSITION_DELETES,
            file_path=location,
            file_format=FileFormat.PARQUET,
            partition=partition,
            record_count=part.num_rows,
            file_size_in_bytes=size,
            lower_bounds={PATH_ID: lo},
            upper_bounds={PATH_ID: hi},
            sort_order_id=None,
            equality_ids=None,
            key_metadata=None,
        )
        delete_file.spec_id = spec_id
        out.append(delete_file)
    return out


def _select_paths(positions: pa.Table, paths: list[str]) -> pa.Table:
    import pyarrow.compute as pc

    return positions.filter(pc.is_in(positions.column("file_path"), pa.array(paths)))


def transaction(table: Any, autocommit: bool = False) -> Any:
    """``table.transaction()``, but reading the staged metadata does not deep-copy it each time.

    pyiceberg's ``Transaction.table_metadata`` re-applies the staged updates to a deep copy of
    the whole metadata (every snapshot) on each access, and a commit reads it ~20 times: that
    was most of a small commit's cost, growing with the snapshot count. Here the result is kept
    until another update is staged (the metadata models are immutable).
    """
    global _TX_CLASS
    if _TX_CLASS is None:
        from pyiceberg.table import Transaction

        class CachedTransaction(Transaction):
            _cached: tuple[int, Any] | None = None

            @property
            def table_metadata(self) -> Any:
                staged = len(self._updates)
                if self._cached is None or self._cached[0] != staged:
                    self._cached = (staged, super().table_metadata)
                return self._cached[1]

        _TX_CLASS = CachedTransaction
    return _TX_CLASS(table, autocommit=autocommit)


_TX_CLASS: Any = None


def live_entries(table: Any) -> list[tuple[Any, list[Any]]]:
    """(manifest, live entries) for every manifest of ``table``'s current snapshot."""
    snap = table.current_snapshot()
    if snap is None:
        return []
    return [
        (manifest, manifest.fetch_manifest_entry(io=table.io, discard_deleted=True))
        for manifest in snap.manifests(io=table.io)
    ]


def live_files(table: Any) -> list[Any]:
    """Every live file (data and delete) of ``table``'s current snapshot."""
    return [entry.data_file for _, entries in live_entries(table) for entry in entries]


def write_data_files(tx: Any, rows: pa.Table) -> list[Any]:
    """Write ``rows`` (already in the table's Arrow schema) as data files of the table."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    if rows.num_rows == 0:
        return []
    files = list(_dataframe_to_data_files(tx.table_metadata, rows, tx._table.io))
    for f in files:  # not a stored field: pyiceberg sets it when reading manifests
        f.spec_id = tx.table_metadata.default_spec_id
    return files


def commit_row_delta(
    tx: Any,
    added: Iterable[Any],
    removed: Iterable[Any] = (),
    properties: dict[str, str] | None = None,
    merge_manifests: bool = False,
    operation: str = "overwrite",
    parent_entries: list[tuple[Any, list[Any]]] | None = None,
) -> None:
    """Stage one snapshot on ``tx``: add ``added``, remove ``removed`` (data or delete files).

    ``merge_manifests`` rewrites every live entry into one manifest per content type and spec, so
    planning stays cheap after many small commits (compaction passes it). ``parent_entries``
    (from :func:`live_entries` of the table this transaction started from) saves reading the
    manifests again.
    """
    from pyiceberg.table.snapshots import Operation

    producer = _row_delta_class()(
        Operation(operation), tx, tx._table.io, snapshot_properties=properties or {}
    )
    producer.setup(list(added), set(removed), merge_manifests, parent_entries)
    producer.commit()


_CLASS: Any = None


def _row_delta_class() -> Any:
    """The producer class, built on first use so pyiceberg is imported lazily."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from pyiceberg.manifest import (
        DataFileContent,
        ManifestContent,
        ManifestEntry,
        ManifestEntryStatus,
        ManifestWriterV2,
    )
    from pyiceberg.table.update.snapshot import _SnapshotProducer

    class DeleteManifestWriter(ManifestWriterV2):
        def content(self) -> Any:
            return ManifestContent.DELETES

        @property
        def _meta(self) -> dict[str, str]:
            return {**super()._meta, "content": "deletes"}

    class RowDelta(_SnapshotProducer):  # type: ignore[type-arg]
        def setup(
            self, added: list[Any], removed: set[Any], merge: bool, entries: list[Any] | None
        ) -> None:
            self._added_data_files = added
            self._deleted_data_files = removed
            self._merge = merge
            self._parent_entries = entries

        def _validate_concurrency(self) -> None:
            """One writer per table (the runner's claim): nothing to validate against."""

        def _deleted_entries(self) -> list[Any]:
            return []

        def _existing_manifests(self) -> list[Any]:
            return []

        def _writer(self, spec_id: int, content: Any) -> Any:
            if content == ManifestContent.DELETES:
                return DeleteManifestWriter(
                    self.spec(spec_id),
                    self.schema(),
                    self.new_manifest_output(),
                    self._snapshot_id,
                    self._compression,
                )
            return self.new_manifest_writer(self.spec(spec_id))

        def _write(self, spec_id: int, content: Any, entries: list[Any]) -> Any:
            with self._writer(spec_id, content) as writer:
                for entry in entries:
                    writer.add_entry(entry)
            return writer.to_manifest_file()

        def _manifests(self) -> list[Any]:
            out = []
            by_kind: dict[tuple[int, Any], list[Any]] = defaultdict(list)
            for f in self._added_data_files:
                kind = (
                    ManifestContent.DATA
                    if f.content == DataFileContent.DATA
                    else ManifestContent.DELETES
                )
                by_kind[(f.spec_id or 0, kind)].append(
                    ManifestEntry.from_args(
                        status=ManifestEntryStatus.ADDED,
                        snapshot_id=self._snapshot_id,
                        sequence_number=None,
                        file_sequence_number=None,
                        data_file=f,
                    )
                )
            for (spec_id, kind), entries in by_kind.items():
                out.append(self._write(spec_id, kind, entries))
            out.extend(self._carried_over())
            return out

        def _carried_over(self) -> list[Any]:
            """Live manifests of the parent, without removed files (merged if asked)."""
            parent = self._transaction.table_metadata.snapshot_by_name(self._target_branch)
            if parent is None:
                return []
            removed = self._deleted_data_files
            kept: list[Any] = []
            merged: dict[tuple[int, Any], list[Any]] = defaultdict(list)
            if self._parent_entries is not None:
                known = dict(self._parent_entries)
            for manifest in parent.manifests(io=self._io):
                if not self._merge and not removed:
                    kept.append(manifest)
                    continue
                entries = (
                    known[manifest]
                    if self._parent_entries is not None and manifest in known
                    else manifest.fetch_manifest_entry(io=self._io, discard_deleted=True)
                )
                live = [e for e in entries if e.data_file not in removed]
                if not self._merge and len(live) == len(entries):
                    kept.append(manifest)
                    continue
                key = (manifest.partition_spec_id, manifest.content)
                merged[key].extend(_existing(e, ManifestEntry, ManifestEntryStatus) for e in live)
                if not self._merge and merged[key]:
                    kept.append(self._write(key[0], key[1], merged.pop(key)))
            for (spec_id, kind), entries in merged.items():
                if entries:
                    kept.append(self._write(spec_id, kind, entries))
            return kept

    _CLASS = RowDelta
    return _CLASS


def _existing(entry: Any, entry_cls: Any, status: Any) -> Any:
    return entry_cls.from_args(
        status=status.EXISTING,
        snapshot_id=entry.snapshot_id,
        sequence_number=entry.sequence_number,
        file_sequence_number=entry.file_sequence_number,
        data_file=entry.data_file,
    )
