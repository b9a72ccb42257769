"""Replayed changes that change nothing: the initial copy already holds them.

DynamoDB's hand-off reads the stream from a little before the scan started, and the scan runs
while the table is written, so a record up to ``ChangeBatch.replay_until`` may describe a state
the copy already has. Applying it again is harmless (whole images), but counting it would report
an insert or update that never happened to the target. The scan read each item once, after some
prefix of its records in that window; the longest prefix whose result is the row the copy holds
(or its absence) is dropped, and the records after it are counted as the changes they are. When
a key returned to an earlier state the longest such prefix is taken: the end state is the same
either way, and the copy may have read it last. This path runs once per hand-off, for the few
records written during the scan, so it works row by row.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..core.changes import ChangeBatch


def drop_replayed(table: Any, batch: ChangeBatch, keys: list[str]) -> tuple[ChangeBatch, int]:
    """``batch`` without the window's no-op records, and how many were dropped."""
    from .toast import target_values
    from .writer import _filter

    if batch.replay_until is None or not len(batch):
        return batch, 0
    window = pc.less_equal(batch.seq, pa.scalar(batch.replay_until, batch.seq.type))
    if not pc.any(window).as_py():
        return batch, 0
    rows = batch.rows.to_pylist()
    ops = batch.ops.to_pylist()
    key_of = [tuple(r[k] for k in keys) for r in rows]
    history: dict[tuple[Any, ...], list[int]] = {}
    for i, inside in enumerate(window.to_pylist()):
        if inside:
            history.setdefault(key_of[i], []).append(i)
    copied = target_values(
        table, keys, sorted(history, key=repr), [f.name for f in table.schema().fields]
    )
    keep = [True] * len(rows)
    for key, records in history.items():
        # The copy read this key once, after some prefix of its records: the longest prefix
        # whose result is the target's row is in the copy; the records after it are news.
        target = copied.get(key)
        state_after = [None if ops[i] == "d" else rows[i] for i in records]
        seen = [j for j, state in enumerate(state_after) if _same(target, state)]
        for i in records[: seen[-1] + 1] if seen else []:
            keep[i] = False
    dropped = keep.count(False)
    if not dropped:
        return batch, 0
    return _filter(batch, pa.array(keep, pa.bool_())), dropped


def _same(target: dict[str, Any] | None, image: dict[str, Any] | None) -> bool:
    """The image is the target's row (columns it lacks must be empty there); None: no row."""
    if target is None or image is None:
        return target is image
    return all(target.get(col) == value for col, value in image.items()) and all(
        value is None for col, value in target.items() if col not in image
    )
