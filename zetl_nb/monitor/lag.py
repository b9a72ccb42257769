"""Lag: how far each integration and table is behind its source, in seconds and in position.

A runner is *caught up* when it has applied everything its source had when it last looked
(``caught_up_at``, refreshed on every idle poll of the change stream). So:

- ``lag_seconds`` = now - the last time the runner was caught up (about the poll interval while
  it keeps up; it grows while a backlog is applied, and during the initial load it is the time
  since the integration was created); 0 once a ``ContinuousSync=false`` load has finished;
- ``lag_position`` = the source's position now - the position it had when last caught up, in the
  source's ``seq`` units (PostgreSQL: WAL bytes; MySQL/MariaDB and DynamoDB: their sequence);
- a ``Synced`` table lags as its integration does; a table being loaded lags by the time since
  it started loading; ``Failed`` and ``Deleted`` tables have no lag.

The writing Lab samples lag every second and keeps the last sample in ``<home>/monitor/lag.json``,
which a read-only Lab reads (``observed_at`` says when it was taken).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..engine.store import Integration
from .recorder import Applied

SCHEMA = pa.schema(
    [
        ("integration_id", pa.string()),
        ("integration_arn", pa.string()),
        ("integration_name", pa.string()),
        ("table_name", pa.string()),
        ("state", pa.string()),
        ("lag_seconds", pa.float64()),
        ("lag_position", pa.int64()),
        ("source_seq", pa.int64()),
        ("applied_seq", pa.int64()),
        ("applied_position", pa.string()),
        ("last_synced", pa.timestamp("us", tz="UTC")),
        ("observed_at", pa.timestamp("us", tz="UTC")),
    ]
)
_TIMES = ("last_synced", "observed_at")


def sample(
    integrations: Sequence[Integration],
    table_docs: Mapping[str, list[dict[str, Any]]],
    runners: Mapping[str, Any],
    applied: Mapping[tuple[str, str], Applied],
    now: float,
) -> list[dict[str, Any]]:
    """Lag rows (integration rows have ``table_name`` None); times in epoch seconds."""
    rows: list[dict[str, Any]] = []
    for integ in integrations:
        if integ.status == "DELETING":
            continue
        docs = table_docs.get(integ.arn, [])
        lag_s, lag_pos, src, synced = _integration_lag(integ, runners.get(integ.arn), now)
        if synced is None:
            seen = [a.at for (arn, _), a in applied.items() if arn == integ.arn]
            synced = max(seen) if seen else None
        base = {
            "integration_id": integ.integration_id,
            "integration_arn": integ.arn,
            "integration_name": integ.name,
            "source_seq": src,
            "observed_at": now,
        }
        rows.append(
            {
                **base,
                "table_name": None,
                "state": integ.status,
                "lag_seconds": lag_s,
                "lag_position": lag_pos,
                "last_synced": synced,
            }
        )
        for doc in docs:
            rows.append(_table_row(base, doc, applied, lag_s, lag_pos, now))
    return rows


def _integration_lag(
    integ: Integration, runner: Any, now: float
) -> tuple[float | None, int | None, int | None, float | None]:
    """(lag seconds, lag position, source seq, last caught-up time) of one integration."""
    if runner is None:
        return None, None, None, None
    src = _seq(getattr(runner, "source_seq", None))
    caught_seq = _seq(getattr(runner, "caught_up_seq", None))
    caught_at = getattr(runner, "caught_up_at", None) or None
    if getattr(runner, "finished", False):
        return 0.0, 0, src, caught_at
    if caught_at is None:
        return max(0.0, now - integ.create_time), None, src, None
    position = max(0, src - caught_seq) if src is not None and caught_seq is not None else None
    return max(0.0, now - caught_at), position, src, caught_at


def _table_row(
    base: dict[str, Any],
    doc: Mapping[str, Any],
    applied: Mapping[tuple[str, str], Applied],
    lag_s: float | None,
    lag_pos: int | None,
    now: float,
) -> dict[str, Any]:
    table, state = doc.get("TableName"), doc.get("State")
    last = applied.get((base["integration_arn"], str(table)))
    if state == "Synced":
        t_lag, t_pos = lag_s, lag_pos
    elif state in ("ResyncInitiated", "ResyncRequired"):
        t_lag, t_pos = max(0.0, now - float(doc.get("LastUpdated") or now)), None
    else:
        t_lag, t_pos = None, None
    return {
        **base,
        "table_name": table,
        "state": state,
        "lag_seconds": t_lag,
        "lag_position": t_pos,
        "applied_seq": last.seq if last and last.seq is not None else doc.get("Seq"),
        "applied_position": last.position if last else None,
        "last_synced": last.at if last else None,
    }


def _seq(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Lag rows as the ``zetl_lag`` table."""
    columns = []
    for f in SCHEMA:
        values = [r.get(f.name) for r in rows]
        if f.name in _TIMES:
            micros = [None if v is None else int(v * 1_000_000) for v in values]
            columns.append(pa.array(micros, pa.int64()).cast(f.type))
        else:
            columns.append(pa.array(values, f.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def save(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write the latest sample atomically (read-only Labs read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(list(rows), default=str))
    tmp.replace(path)


def load(path: Path) -> list[dict[str, Any]]:
    """The last sample the writing Lab saved (empty if none)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [dict(r) for r in data] if isinstance(data, list) else []
