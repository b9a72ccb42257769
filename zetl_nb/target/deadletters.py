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


class DeadLetters:
    """Appends rejected rows to ``<database>.zetl_system.dead_letters``."""

    def __init__(self, catalog: Any, database: str) -> None:
        self.catalog = catalog
        self.identifier = (database, SYSTEM_NAMESPACE, "dead_letters")
        self._lock = threading.Lock()
        self._table: Any = None

    def table(self) -> Any:
        with self._lock:
            if self._table is None:
                ns = self.identifier[:2]
                self.catalog.create_namespace_if_not_exists(ns)
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
        self.table().append(data)
