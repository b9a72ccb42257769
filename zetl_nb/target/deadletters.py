"""The dead-letter table: rows the target could not hold, kept with the reason.

It lives in the target's system namespace, ``(<database>, "zetl_system")``, as the Iceberg table
``dead_letters``: integration, table, op, seq, reason, the record as JSON, and when.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

SYSTEM_NAMESPACE = "zetl_system"
SCHEMA = pa.schema(
    [
        ("integration_arn", pa.string()),
        ("table_name", pa.string()),
        ("op", pa.string()),
        ("seq", pa.int64()),
        ("reason", pa.string()),
        ("record", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(catalog: Any, database: str) -> threading.Lock:
    # Every runner writing into one target shares its dead-letter table: one writer at a time.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((id(catalog), database), threading.Lock())


class DeadLetters:
    """Appends rejected rows to ``<database>.zetl_system.dead_letters``, once per record.

    Replaying a batch after a restart must not file the same record twice, so a record already
    there for the same integration, table and seq is skipped.
    """

    def __init__(self, catalog: Any, database: str) -> None:
        self.catalog = catalog
        self.identifier = (database, SYSTEM_NAMESPACE, "dead_letters")
        self._lock = _lock_for(catalog, database)
        self._table: Any = None

    def table(self) -> Any:
        with self._lock:
            return self._open()

    def _open(self) -> Any:
        if self._table is None:
            self.catalog.create_namespace_if_not_exists(self.identifier[:2])
            self._table = self.catalog.create_table_if_not_exists(self.identifier, SCHEMA)
        return self._table

    def add(
        self,
        integration_arn: str,
        table_name: str,
        rows: pa.Table,
        reasons: list[str],
        op: str,
        seq: int,
    ) -> None:
        now = datetime.now(tz=UTC)
        records = [json.dumps(r, default=str, sort_keys=True) for r in rows.to_pylist()]
        n = len(records)
        data = pa.table(
            {
                "integration_arn": [integration_arn] * n,
                "table_name": [table_name] * n,
                "op": [op] * n,
                "seq": [seq] * n,
                "reason": (reasons + [""] * n)[:n],
                "record": records,
                "recorded_at": [now] * n,
            },
            schema=SCHEMA,
        )
        with self._lock:
            table = self._open()
            table.refresh()
            data = data.filter(_new_records(table, integration_arn, table_name, seq, records))
            if data.num_rows:
                table.append(data)


def _new_records(table: Any, arn: str, name: str, seq: int, records: list[str]) -> pa.Array:
    """Which of ``records`` are not filed yet for this integration, table and seq."""
    from pyiceberg import expressions

    e: Any = expressions  # constructors confuse mypy without the pydantic plugin

    ex = e.And(
        e.And(e.EqualTo("integration_arn", arn), e.EqualTo("table_name", name)),
        e.EqualTo("seq", seq),
    )
    filed = (
        set(
            table.scan(row_filter=ex, selected_fields=("record",))
            .to_arrow()
            .column("record")
            .to_pylist()
        )
        if table.current_snapshot()
        else set()
    )
    return pa.array([r not in filed for r in records])
