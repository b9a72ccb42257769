"""Apply change batches to Iceberg tables, exactly once.

Each batch is coalesced per primary key (the last image wins, deletes are kept), then applied as
one Iceberg snapshot, merge-on-read: the final images go to a new data file, and the old image of
every touched key is deleted by position (located through a primary-key index, see
:mod:`.keyindex` and :mod:`.rowdelta`), so a batch costs what it changes, not what the table
holds. Every snapshot carries the checkpoint in its summary (``zetl.seq``, ``zetl.position``), so
the data and the position commit atomically: after a crash, :func:`read_checkpoint` says where the
table is, and replayed rows at or below it are skipped. :meth:`TableWriter.maintain` compacts.

Rows the target type cannot hold go to the dead-letter table with the reason, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..core.changes import ChangeBatch, TableSchema
from ..core.errors import ZetlError
from .deadletters import DeadLetters

SEQ_KEY = "zetl.seq"
POSITION_KEY = "zetl.position"
LOADING_KEY = "zetl.loading"


class SchemaIncompatible(ZetlError):
    """The source's new schema cannot be reached by Iceberg schema evolution: resync."""


@dataclass
class Counts:
    """Rows applied by one batch, by source operation."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    skipped: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.dead_lettered += other.dead_lettered
        self.skipped += other.skipped
        return self


def read_checkpoint(table: Any) -> tuple[int | None, dict[str, Any] | None]:
    """The (seq, position) committed with the table's current snapshot; (None, None) if none."""
    snap = table.current_snapshot()
    if snap is None:
        return None, None
    props = snap.summary.additional_properties if snap.summary else {}
    if SEQ_KEY not in props:
        return None, None
    return int(props[SEQ_KEY]), json.loads(props.get(POSITION_KEY, "null"))


def _props(seq: int, position: Mapping[str, Any]) -> dict[str, str]:
    return {SEQ_KEY: str(seq), POSITION_KEY: json.dumps(dict(position), sort_keys=True)}


class TableWriter:
    """The one writer of one replicated Iceberg table."""

    def __init__(
        self,
        table: Any,
        schema: TableSchema,
        dead_letters: DeadLetters,
        integration_arn: str,
        additive: bool = False,
    ) -> None:
        self.table = table
        #: Schemas only grow (DynamoDB items): a missing column is never a rename.
        self.additive = additive
        self.schema = schema
        self.dead_letters = dead_letters
        self.integration_arn = integration_arn
        self.seq, self.position = read_checkpoint(table)
        self._index: Any = None  # KeyIndex of the current snapshot, built on first use

    @property
    def name(self) -> str:
        return str(self.table.name()[-1])

    # -- initial load -------------------------------------------------------------------------
    def load(
        self,
        batches: Iterable[pa.RecordBatch],
        seq: int,
        position: Mapping[str, Any],
        chunk_rows: int = 1_000_000,
    ) -> int:
        """Replace the table's content with ``batches`` (the initial copy); returns row count.

        The checkpoint is committed with the last chunk, so a crash mid-load leaves a table
        without a checkpoint, which the next start empties and loads again.
        """
        target = self.table.schema().as_arrow()
        total = 0
        with self.table.transaction() as tx:
            self._truncate(tx, {LOADING_KEY: "true"})
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in batches:
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= chunk_rows:
                    total += self._append_chunk(tx, pending, target, None)
                    pending, pending_rows = [], 0
            total += self._append_chunk(tx, pending, target, _props(seq, position))
        self.seq, self.position = seq, dict(position)
        return total

    def _append_chunk(
        self,
        tx: Any,
        batches: list[pa.RecordBatch],
        target: pa.Schema,
        props: dict[str, str] | None,
    ) -> int:
        rows = self._split_rejects(_concat(batches)) if batches else target.empty_table()
        good, bad = self._conform(rows, target)
        if bad is not None:
            self.dead_letters.add(self.integration_arn, self.name, bad[0], bad[1], "r", 0)
        if good.num_rows or props is not None:
            tx.append(good, snapshot_properties=props or {LOADING_KEY: "true"})
        return int(good.num_rows)

    # -- change data capture ------------------------------------------------------------------
    def apply(self, batch: ChangeBatch) -> Counts:
        """Apply one batch (skipping rows already applied); one Iceberg commit."""
        counts = Counts()
        batch_seq = int(pc.max(batch.seq).as_py()) if len(batch) else 0
        if (
            batch.truncate
            and self.seq is not None
            and batch.truncate_seq is not None
            and (batch.truncate_seq <= self.seq)
        ):
            from dataclasses import replace

            batch = replace(batch, truncate=False)  # a replayed TRUNCATE, already applied
        if self.seq is not None and len(batch):
            fresh = pc.greater(batch.seq, pa.scalar(self.seq, batch.seq.type))
            counts.skipped = len(batch) - int(pc.sum(fresh).as_py() or 0)
            batch = _filter(batch, fresh)
        if batch.replay_until is not None:
            from .replay import drop_replayed

            batch, unchanged = drop_replayed(self.table, batch, list(self.schema.primary_key))
            counts.skipped += unchanged
        if batch.schema != self.schema and not self._covers(batch.schema):
            self.evolve(batch.schema)
        if batch.rejects:
            counts.dead_lettered += len(batch.rejects)
            batch = self._reject(batch, batch_seq)
        if not len(batch) and not batch.truncate:
            return counts
        keys = list(self.schema.primary_key)
        rows = batch.rows
        if batch.unchanged:
            from .toast import resolve_unchanged

            rows = resolve_unchanged(self.table, batch, keys)
        final, delete_keys = coalesce(rows, batch.ops, keys, batch.old_keys)
        target = self.table.schema().as_arrow()
        good, bad = self._conform(final.drop_columns(["__op", "__seq"]), target)
        if bad is not None:
            self.dead_letters.add(self.integration_arn, self.name, bad[0], bad[1], "c", batch_seq)
        ops = batch.ops
        counts.inserted = int(pc.sum(pc.equal(ops, "c")).as_py() or 0)
        counts.updated = int(pc.sum(pc.equal(ops, "u")).as_py() or 0)
        counts.deleted = int(pc.sum(pc.equal(ops, "d")).as_py() or 0)
        counts.dead_lettered += 0 if bad is None else bad[0].num_rows
        props = _props(max(batch_seq, batch.truncate_seq or 0, self.seq or 0), batch.position)
        touched = pa.concat_tables([final.select(keys), delete_keys.select(keys)])
        self._merge_on_read(good, touched, props, batch.truncate)
        self.seq, self.position = int(props[SEQ_KEY]), dict(batch.position)
        return counts

    def _covers(self, schema: TableSchema) -> bool:
        """Additive writers: every column of ``schema`` is already in the table, same type."""
        if not self.additive:
            return False
        have = {c.name: c.type for c in self.schema.columns}
        return all(have.get(c.name) == c.type for c in schema.columns)

    def _split_rejects(self, rows: pa.Table) -> pa.Table:
        """Dead-letter snapshot rows the source flagged (``REJECT_COLUMN``); return the rest."""
        from ..sources.base import REJECT_COLUMN

        if REJECT_COLUMN not in rows.column_names:
            return rows
        flag = rows.column(REJECT_COLUMN)
        bad = pc.is_valid(flag)
        if pc.any(bad).as_py():
            rejected = rows.filter(bad)
            reasons = rejected.column(REJECT_COLUMN).to_pylist()
            self.dead_letters.add(
                self.integration_arn,
                self.name,
                rejected.drop_columns([REJECT_COLUMN]),
                reasons,
                "r",
                0,
            )
        return rows.filter(pc.invert(bad)).drop_columns([REJECT_COLUMN])

    def _reject(self, batch: ChangeBatch, seq: int) -> ChangeBatch:
        """Send the rows the source could not represent to the dead letters; keep the rest."""
        from dataclasses import replace

        idx = sorted(batch.rejects)
        bad = batch.rows.take(pa.array(idx, pa.int64()))
        reasons = [batch.rejects[i] for i in idx]
        self.dead_letters.add(self.integration_arn, self.name, bad, reasons, "c", seq)
        keep = pa.array([i not in batch.rejects for i in range(len(batch))])
        return replace(_filter(batch, keep), rejects={})

    def maintain(
        self,
        max_files: int = 32,
        max_delete_files: int = 16,
        keep_seconds: float = 600.0,
        keep_last: int = 20,
        max_snapshots: int = 100,
    ) -> bool:
        """Keep commit and read time flat under continuous CDC (see :mod:`.compaction`).

        Compacts when the table has more than ``max_files`` data files or ``max_delete_files``
        delete files, in a commit that carries the same checkpoint, then expires snapshots.
        Returns whether it compacted.
        """
        from .compaction import compact, expire, summary_counts

        if self.table.current_snapshot() is None or self.seq is None:
            return False
        data_files, delete_files = summary_counts(self.table)
        compacted = False
        if data_files > max_files or delete_files > max_delete_files:
            before = self.table.current_snapshot().snapshot_id
            index = self._index if self._index and self._index.snapshot_id == before else None
            rewritten, written = compact(self.table, _props(self.seq, self.position or {}))
            compacted = bool(rewritten)
            self._index = index
            if index is not None:  # rows of the rewritten files moved; the others did not
                index.drop_files(rewritten)
                index.add_files(self.table, written)
                snap = self.table.current_snapshot()
                index.snapshot_id = snap.snapshot_id if snap else None
        expire(self.table, keep_seconds, keep_last, max_snapshots)
        return compacted

    def _merge_on_read(
        self, rows: pa.Table, touched: pa.Table, props: dict[str, str], truncate: bool
    ) -> None:
        """One commit: ``rows`` as new data files; touched keys' old images deleted by position."""
        from .keyindex import KeyIndex
        from .rowdelta import (
            commit_row_delta,
            transaction,
            write_data_files,
            write_position_deletes,
        )

        keys = list(self.schema.primary_key)
        try:
            with transaction(self.table) as tx:
                if truncate:
                    self._truncate(tx, props)
                    index = KeyIndex.empty(self.table, keys)
                else:
                    index = self._key_index(keys)
                positions = index.locate(touched) if touched.num_rows and len(index) else None
                data_files = write_data_files(tx, rows)
                deletes = (
                    write_position_deletes(self.table, positions, index.files)
                    if positions is not None
                    else []
                )
                if data_files or deletes:
                    commit_row_delta(tx, data_files + deletes, properties=props)
            if touched.num_rows:
                index.forget(touched)
            index.add_files(self.table, data_files)
            snap = self.table.current_snapshot()
            index.snapshot_id = snap.snapshot_id if snap else None
            self._index = index
        except BaseException:
            self._index = None
            raise

    def _key_index(self, keys: list[str]) -> Any:
        """The key index of the current snapshot, built again when anything else committed."""
        from .keyindex import KeyIndex

        snap = self.table.current_snapshot()
        current = snap.snapshot_id if snap else None
        if self._index is None or self._index.snapshot_id != current or self._index.keys != keys:
            self._index = KeyIndex.build(self.table, keys)
        return self._index

    def _truncate(self, tx: Any, props: dict[str, str]) -> None:
        """Stage the removal of every data and delete file (TRUNCATE, or a fresh load)."""
        from .rowdelta import commit_row_delta, live_files

        files = live_files(self.table)
        if files:
            commit_row_delta(tx, [], set(files), props, operation="delete")
        self._index = None

    def evolve(self, new: TableSchema) -> None:
        """Add new columns and promote types; SchemaIncompatible when Iceberg cannot.

        A column that disappears while another appears is taken for a rename (undefined on AWS):
        the table resyncs rather than guess. A column that only disappears stays, NULL from now.
        """
        from pyiceberg.exceptions import ValidationError

        gone = set(self.schema.names) - set(new.names)
        added = set(new.names) - set(self.schema.names)
        if gone and added and not self.additive:
            raise SchemaIncompatible(
                f"{self.name}: columns {sorted(gone)} were replaced by {sorted(added)} "
                "(a rename): resync"
            )
        try:
            with self.table.update_schema() as update:
                update.union_by_name(new.arrow_schema())
        except (ValidationError, ValueError, TypeError) as exc:
            raise SchemaIncompatible(f"{self.name}: {exc}") from exc
        self.table.refresh()
        if self.additive and gone:  # keep the columns this batch did not mention
            newer = {c.name: c for c in new.columns}
            kept = tuple(newer.pop(c.name, c) for c in self.schema.columns)
            new = TableSchema(new.table, kept + tuple(newer.values()), new.primary_key)
        self.schema = new

    # -- helpers ------------------------------------------------------------------------------
    def _conform(
        self, rows: pa.Table, target: pa.Schema
    ) -> tuple[pa.Table, tuple[pa.Table, list[str]] | None]:
        """Cast ``rows`` to the table's schema; rows that cannot be cast are split off."""
        try:
            return _cast(rows, target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        ok, reasons = [], []
        for i in range(rows.num_rows):
            try:
                _cast(rows.slice(i, 1), target)
                ok.append(True)
                reasons.append("")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                ok.append(False)
                reasons.append(str(exc))
        mask = pa.array(ok)
        bad = rows.filter(pc.invert(mask))
        return _cast(rows.filter(mask), target), (bad, [r for r in reasons if r])


def _cast(rows: pa.Table, target: pa.Schema) -> pa.Table:
    arrays = []
    for f in target:
        if f.name in rows.column_names:
            arrays.append(rows.column(f.name).cast(f.type, safe=True))
        else:
            arrays.append(pa.nulls(rows.num_rows, f.type))
    return pa.Table.from_arrays(arrays, schema=target)


def _filter(batch: ChangeBatch, mask: pa.Array) -> ChangeBatch:
    from dataclasses import replace

    return replace(
        batch,
        ops=batch.ops.filter(mask),
        rows=batch.rows.filter(mask),
        seq=batch.seq.filter(mask),
        old_keys=batch.old_keys.filter(mask) if batch.old_keys is not None else None,
        unchanged={k: v.filter(mask) for k, v in batch.unchanged.items()},
        rejects=_remap(batch.rejects, mask),
    )


def _remap(rejects: Mapping[int, str], mask: pa.Array) -> dict[int, str]:
    """Reject row indices after filtering the batch with ``mask``."""
    if not rejects:
        return {}
    kept = [i for i, keep in enumerate(mask.to_pylist()) if keep]
    return {new: rejects[old] for new, old in enumerate(kept) if old in rejects}


def coalesce(
    rows: pa.Table, ops: pa.Array, keys: list[str], old_keys: pa.Table | None = None
) -> tuple[pa.Table, pa.Table]:
    """The final image per key (inserts/updates) and the keys to delete, from one batch.

    Updates that change the primary key delete the old key first. Applying the result — delete
    the keys of ``final`` and ``deletes``, append ``final`` — equals applying every change in
    order. Works on any key type Arrow can sort (no hash join, so decimals and timestamps work).
    """
    n = rows.num_rows
    order = pc.multiply(pa.array(range(n), pa.int64()), 2)
    table = rows.append_column("__op", ops).append_column("__seq", pc.add(order, 1))
    if old_keys is not None and n:
        moved = pc.invert(pc.is_null(old_keys.column(keys[0])))
        if pc.any(moved).as_py():
            gone = table.filter(moved)
            for k in keys:
                gone = gone.set_column(
                    gone.column_names.index(k), k, old_keys.filter(moved).column(k)
                )
            gone = gone.set_column(
                gone.column_names.index("__op"), "__op", pa.array(["d"] * gone.num_rows, ops.type)
            )
            # The old key's delete comes just before the new image.
            gone = gone.set_column(
                gone.column_names.index("__seq"), "__seq", pc.subtract(gone.column("__seq"), 1)
            )
            table = pa.concat_tables([table, gone])
    table = table.sort_by([(k, "ascending") for k in keys] + [("__seq", "ascending")])
    last = _last_in_group(table, keys)
    winners = table.filter(last)
    is_delete = pc.equal(winners.column("__op"), "d")
    return winners.filter(pc.invert(is_delete)), winners.filter(is_delete)


def _last_in_group(table: pa.Table, keys: list[str]) -> pa.Array:
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.bool_())
    differs = pa.array([False] * (n - 1), pa.bool_())
    for k in keys:
        col = table.column(k).combine_chunks()
        differs = pc.or_(differs, pc.not_equal(col.slice(0, n - 1), col.slice(1)))
    return pa.concat_arrays([differs, pa.array([True])])


def key_filter(keys_table: pa.Table, keys: list[str]) -> Any:
    """An Iceberg row filter matching exactly the given keys."""
    from pyiceberg import expressions

    ex: Any = expressions  # pyiceberg's expression constructors confuse mypy's plugin-less view
    if len(keys) == 1:
        values = [v for v in keys_table.column(keys[0]).unique().to_pylist() if v is not None]
        return ex.In(keys[0], values)
    terms = [
        ex.And(*(ex.EqualTo(k, row[k]) for k in keys))
        for row in keys_table.select(keys).to_pylist()
    ]
    expr = terms[0]
    for term in terms[1:]:
        expr = ex.Or(expr, term)
    return expr


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table from snapshot batches, some of which may carry the reject column."""
    from ..sources.base import REJECT_COLUMN

    if any(REJECT_COLUMN in b.schema.names for b in batches):
        batches = [
            b
            if REJECT_COLUMN in b.schema.names
            else b.append_column(REJECT_COLUMN, pa.nulls(b.num_rows, pa.string()))
            for b in batches
        ]
    return pa.Table.from_batches(batches)
