"""Time travel: which snapshot ``as_of`` means, reading it, and diffing two snapshots.

``as_of`` is a snapshot id, a ``datetime`` (naive ones are local time, as
``datetime.timestamp()`` reads them), an ISO-8601 string, or epoch seconds (int or float). An
int that is a snapshot id of the table is taken as one; otherwise numbers are epoch seconds. A
time selects the snapshot that was current then (the table's snapshot log), as Iceberg's
``FOR TIMESTAMP AS OF`` does. Snapshots expired by maintenance cannot be read; the error lists
the ones that can.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .errors import SnapshotNotFoundError
from .scan import FastPathUnavailable, read_arrow, read_mode, select_sql, snapshot_files
from .views import ident, materialize

AsOf = int | float | str | dt.datetime | None

#: Epoch seconds above this are not plausible times (year 5138): a mistyped snapshot id.
_MAX_EPOCH_SECONDS = 10**11
_ORDER = "CASE _change_type WHEN 'delete' THEN 0 WHEN 'update_preimage' THEN 1 "
_ORDER += "WHEN 'update_postimage' THEN 2 ELSE 3 END"


def snapshot_rows(table: Any) -> list[dict[str, Any]]:
    """The table's readable snapshots, oldest first: id, parent, time, operation, counts."""
    rows = []
    current = table.metadata.current_snapshot_id
    for snap in sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number)):
        summary = snap.summary
        props = summary.additional_properties if summary is not None else {}
        rows.append(
            {
                "snapshot_id": snap.snapshot_id,
                "parent_id": snap.parent_snapshot_id,
                "committed_at": dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, dt.UTC),
                "operation": str(summary.operation.value) if summary is not None else None,
                "total_records": _int(props.get("total-records")),
                "added_records": _int(props.get("added-records")),
                "deleted_records": _int(props.get("deleted-records"))
                or _int(props.get("added-position-deletes")),
                "schema_id": snap.schema_id,
                "is_current": snap.snapshot_id == current,
            }
        )
    return rows


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _listing(table: Any, name: str) -> str:
    rows = snapshot_rows(table)
    if not rows:
        return f"Table {name} has no snapshots yet (nothing was committed)."
    shown = rows if len(rows) <= 8 else [*rows[:3], None, *rows[-4:]]
    lines = [
        "  ..."
        if r is None
        else f"  {r['snapshot_id']}  {r['committed_at'].isoformat(timespec='milliseconds')}"
        f"  {r['operation']}"
        for r in shown
    ]
    return (
        f"Available snapshots of {name} ({len(rows)}; lab.snapshots({name!r}) lists them):\n"
        + "\n".join(lines)
    )


def resolve_snapshot(table: Any, name: str, as_of: AsOf) -> int | None:
    """The snapshot id ``as_of`` selects (None: the table has no snapshot yet)."""
    if as_of is None:
        snap = table.current_snapshot()
        return int(snap.snapshot_id) if snap is not None else None
    if isinstance(as_of, bool):
        raise SnapshotNotFoundError(f"as_of={as_of!r} is neither a snapshot id nor a time.")
    if isinstance(as_of, int) and table.snapshot_by_id(as_of) is not None:
        return as_of
    when = _epoch_ms(as_of, table, name)
    chosen = None
    for entry in table.metadata.snapshot_log:
        if entry.timestamp_ms <= when:
            chosen = entry.snapshot_id
    if chosen is None:
        oldest = min(table.snapshots(), key=lambda s: s.timestamp_ms, default=None)
        # Expiry clears the survivor's parent id, but sequence numbers start at 1 and stay.
        expired = oldest is not None and (oldest.sequence_number or 0) > 1
        why = (
            "the snapshots before its oldest one were expired by table maintenance"
            if expired
            else "its first commit is later"
        )
        raise SnapshotNotFoundError(
            f"Table {name} had no readable snapshot at {_show(when)}: {why}. "
            f"Pass a later time or a snapshot id.\n{_listing(table, name)}"
        )
    if table.snapshot_by_id(chosen) is None:
        raise SnapshotNotFoundError(
            f"The snapshot of {name} current at {_show(when)} ({chosen}) was expired by table "
            f"maintenance and cannot be read. Pass a later time or snapshot id.\n"
            f"{_listing(table, name)}"
        )
    return int(chosen)


def _epoch_ms(as_of: int | float | str | dt.datetime, table: Any, name: str) -> int:
    if isinstance(as_of, dt.datetime):
        return int(as_of.timestamp() * 1000)
    if isinstance(as_of, str):
        try:
            return int(dt.datetime.fromisoformat(as_of.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise SnapshotNotFoundError(
                f"as_of={as_of!r} is not an ISO-8601 time (e.g. '2026-11-03T14:00:00Z'), a "
                f"datetime, epoch seconds or a snapshot id.\n{_listing(table, name)}"
            ) from None
    if isinstance(as_of, int | float):
        if abs(as_of) >= _MAX_EPOCH_SECONDS:
            raise SnapshotNotFoundError(
                f"{as_of} is not a snapshot id of {name}, and as epoch seconds it is not a "
                f"plausible time (epoch milliseconds? divide by 1000).\n{_listing(table, name)}"
            )
        return int(as_of * 1000)
    raise SnapshotNotFoundError(
        f"as_of={as_of!r} must be a snapshot id, a datetime, an ISO-8601 string or epoch seconds."
    )


def _show(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def snapshot_schema(table: Any, snapshot_id: int | None) -> Any:
    """The schema a snapshot was written with (the current one for an empty table)."""
    snap = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snap is None or snap.schema_id is None:
        return table.schema()
    return table.schemas().get(snap.schema_id, table.schema())


def read_select(
    con: Any, table: Any, snapshot_id: int | None, schema: Any, temps: list[str]
) -> str:
    """A DuckDB ``SELECT`` of ``table`` at ``snapshot_id`` in ``schema``.

    The fast path is a query over the snapshot's files; otherwise pyiceberg reads the snapshot
    into an internal table, whose name is added to ``temps`` for the caller to drop.
    """
    mode, _ = read_mode(table)
    if mode != "pyiceberg":
        try:
            files = snapshot_files(table, snapshot_id)
            return select_sql(files, schema, by_field_id=mode == "field-id")
        except FastPathUnavailable:
            pass
    key = f"timetravel.{'.'.join(table.name())}.{snapshot_id}.{len(temps)}"
    temps.append(key)
    return materialize(con, key, read_arrow(table, snapshot_id, schema))


def diff_sql(before: str, after: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    """Rows that differ between two selects of the same columns, with ``_change_type``.

    Without ``keys``: ``insert`` (only after) and ``delete`` (only before), as multisets. With
    keys, a key on both sides whose row changed gives ``update_preimage`` and
    ``update_postimage`` rows (Delta Lake's change-feed vocabulary).
    """
    cols = ", ".join(f"x.{ident(c)}" for c in columns)
    head = (
        f"WITH a AS ({before}), b AS ({after}), "
        "removed AS (SELECT * FROM a EXCEPT ALL SELECT * FROM b), "
        "added AS (SELECT * FROM b EXCEPT ALL SELECT * FROM a) "
    )
    if not keys:
        return (
            head + f"SELECT 'delete' AS _change_type, {cols} FROM removed AS x "
            f"UNION ALL SELECT 'insert', {cols} FROM added AS x ORDER BY {_ORDER}"
        )
    on = " AND ".join(f"x.{ident(k)} IS NOT DISTINCT FROM y.{ident(k)}" for k in keys)
    parts = [
        f"SELECT 'delete' AS _change_type, {cols} FROM removed AS x ANTI JOIN added AS y ON {on}",
        f"SELECT 'update_preimage', {cols} FROM removed AS x SEMI JOIN added AS y ON {on}",
        f"SELECT 'update_postimage', {cols} FROM added AS x SEMI JOIN removed AS y ON {on}",
        f"SELECT 'insert', {cols} FROM added AS x ANTI JOIN removed AS y ON {on}",
    ]
    order = ", ".join(ident(k) for k in keys)
    return head + " UNION ALL ".join(parts) + f" ORDER BY {order}, {_ORDER}"
