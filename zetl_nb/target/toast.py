"""Unchanged TOASTed values: PostgreSQL does not resend a large value an update left alone.

For each such row the value is the key's latest earlier image in the same batch, or else the
value in the target. This path is rare (only rows that carry the marker), so it works row by row.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..core.changes import ChangeBatch


def resolve_unchanged(table: Any, batch: ChangeBatch, keys: list[str]) -> pa.Table:
    """``batch.rows`` with every unchanged-marked value filled in."""
    rows = batch.rows
    marked = {col: mask.to_pylist() for col, mask in batch.unchanged.items()}
    flagged = {i for mask in marked.values() for i, m in enumerate(mask) if m}
    if not flagged:
        return rows
    key_lists = [rows.column(k).to_pylist() for k in keys]
    key_of = [tuple(col[i] for col in key_lists) for i in range(rows.num_rows)]
    # A primary-key update that left a large value alone: the value lives under the old key.
    source_of = list(key_of)
    if batch.old_keys is not None:
        old_lists = [batch.old_keys.column(k).to_pylist() for k in keys]
        for i in range(rows.num_rows):
            if old_lists[0][i] is not None:
                source_of[i] = tuple(col[i] for col in old_lists)
    wanted = {source_of[i] for i in flagged}
    chain = wanted | {key_of[i] for i in flagged}
    current = target_values(table, keys, sorted(wanted, key=repr), list(marked))
    for col, mask in marked.items():
        values = rows.column(col).to_pylist()
        seen: dict[tuple[Any, ...], Any] = {}
        for i, key in enumerate(key_of):
            if key not in chain and source_of[i] not in chain:
                continue
            if mask[i]:
                src = source_of[i]
                values[i] = seen[src] if src in seen else current.get(src, {}).get(col)
            seen[key] = values[i]
        idx = rows.column_names.index(col)
        rows = rows.set_column(idx, rows.field(col), pa.array(values, rows.field(col).type))
    return rows


def target_values(
    table: Any, keys: list[str], wanted: list[tuple[Any, ...]], cols: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The target's current rows for the ``wanted`` keys (key columns and ``cols``), by key."""
    from .writer import key_filter

    if not wanted:
        return {}
    probe = pa.table({k: [w[i] for w in wanted] for i, k in enumerate(keys)})
    present = [c for c in cols if c in table.schema().column_names and c not in keys]
    found = table.scan(
        row_filter=key_filter(probe, keys), selected_fields=tuple(keys + present)
    ).to_arrow()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in found.to_pylist():
        out[tuple(rec[k] for k in keys)] = rec
    return out
