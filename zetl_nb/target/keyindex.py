"""Where each live row of a table is: primary key → (data file, row position).

Merge-on-read needs the position of the old image of every key a batch touches. The index is a
Polars frame (key columns, ``__file``, ``__pos``) built from the table's current snapshot — key
columns of every data file minus its position deletes — and kept current by the one writer after
each of its commits. It is memory only: a restart or anything the writer does not track
(initial load, compaction, truncate) drops it, and the next batch builds it again from the
table, so it can never disagree with what is committed. 1M int64 keys: ~20 MB, built in ~0.2 s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FILE, POS = "__file", "__pos"


class KeyIndex:
    """Primary key → (file, position) for the live rows of one table snapshot."""

    def __init__(self, keys: list[str], snapshot_id: int | None) -> None:
        import polars as pl

        self.keys = keys
        self.snapshot_id = snapshot_id
        self.paths: list[str] = []
        self.files: dict[str, Any] = {}  # path -> DataFile
        self._ids: dict[str, int] = {}
        self.frame = pl.DataFrame()

    @classmethod
    def build(cls, table: Any, keys: list[str]) -> KeyIndex:
        """The index of ``table``'s current snapshot."""
        import polars as pl

        snap = table.current_snapshot()
        index = cls(keys, snap.snapshot_id if snap else None)
        if snap is None:
            index.frame = _empty(table, keys)
            return index
        frames, deletes = [], {}
        for task in table.scan().plan_files():
            frames.append(index._read_keys(table, task.file))
            for d in task.delete_files:
                deletes[d.file_path] = d
        frame = pl.concat(frames) if frames else _empty(table, keys)
        if deletes:
            gone = index._positions(table, deletes.values())
            frame = frame.join(gone, on=[FILE, POS], how="anti")
        index.frame = frame
        return index

    @classmethod
    def empty(cls, table: Any, keys: list[str]) -> KeyIndex:
        """The index of an empty table (after a TRUNCATE in the same commit)."""
        index = cls(keys, None)
        index.frame = _empty(table, keys)
        return index

    def add_files(self, table: Any, data_files: Iterable[Any]) -> None:
        """Index rows of files just committed (read back: row order within a file is theirs)."""
        import polars as pl

        new = [self._read_keys(table, f) for f in data_files]
        if new:
            self.frame = pl.concat([self.frame, *new], how="vertical_relaxed")

    def locate(self, keys: pa.Table) -> pa.Table:
        """``file_path``/``pos`` of the live rows whose key is in ``keys``."""

        probe = _frame(keys.select(self.keys)).unique()
        hits = self.frame.join(probe, on=self.keys, how="semi", nulls_equal=False)
        paths = pa.array(self.paths, pa.string())
        file_ids = hits[FILE].to_arrow().cast(pa.int64())
        return pa.table({"file_path": paths.take(file_ids), "pos": hits[POS].to_arrow()})

    def drop_files(self, paths: Iterable[str]) -> None:
        """Drop the entries of data files that are no longer part of the table."""
        import polars as pl

        ids = [self._ids[p] for p in paths if p in self._ids]
        if ids:
            self.frame = self.frame.filter(~pl.col(FILE).is_in(pl.Series(ids, dtype=pl.UInt32)))
        for p in paths:
            self.files.pop(p, None)

    def forget(self, keys: pa.Table) -> None:
        """Drop index entries of ``keys`` (their rows were just deleted)."""
        probe = _frame(keys.select(self.keys)).unique()
        self.frame = self.frame.join(probe, on=self.keys, how="anti", nulls_equal=False)

    def __len__(self) -> int:
        return int(self.frame.height)

    # -- helpers -------------------------------------------------------------------------------
    def _id(self, data_file: Any) -> int:
        path = data_file.file_path
        if path not in self._ids:
            self._ids[path] = len(self.paths)
            self.paths.append(path)
        self.files[path] = data_file
        return self._ids[path]

    def _read_keys(self, table: Any, data_file: Any) -> Any:
        import polars as pl

        file_id = self._id(data_file)
        with table.io.new_input(data_file.file_path).open() as f:
            keys = pq.read_table(f, columns=self.keys)
        frame = _frame(keys)
        return frame.with_columns(
            pl.lit(file_id, pl.UInt32).alias(FILE),
            pl.int_range(0, frame.height, dtype=pl.Int64).alias(POS),
        )

    def _positions(self, table: Any, delete_files: Iterable[Any]) -> Any:
        import polars as pl

        parts = []
        for d in delete_files:
            with table.io.new_input(d.file_path).open() as f:
                parts.append(pq.read_table(f, columns=["file_path", "pos"]))
        deletes = pa.concat_tables(parts)
        ids = pl.DataFrame({"file_path": self.paths, FILE: range(len(self.paths))}).with_columns(
            pl.col(FILE).cast(pl.UInt32)
        )
        frame = pl.from_arrow(deletes)
        assert isinstance(frame, pl.DataFrame)
        return frame.join(ids, on="file_path", how="inner").select(
            pl.col(FILE), pl.col("pos").cast(pl.Int64).alias(POS)
        )


def _frame(keys: pa.Table) -> Any:
    import polars as pl

    frame = pl.from_arrow(keys.combine_chunks() if keys.num_rows else keys)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _empty(table: Any, keys: list[str]) -> Any:
    import polars as pl

    arrow = table.schema().as_arrow()
    frame = _frame(pa.schema([arrow.field(k) for k in keys]).empty_table())
    columns = (pl.lit(0, pl.UInt32).alias(FILE), pl.lit(0, pl.Int64).alias(POS))
    return frame.with_columns(*columns).clear()
