"""The status table: one row per operation of every integration, in Iceberg.

The Glue guide's "system table": every full load, CDC commit, resync, failure and state change of
an integration is a row of the Iceberg table ``zetl_system.integration_status`` (queryable in
DuckDB under that name; ``target_database`` says which target a row is about). The monitor thread
appends rows in batches (:class:`StatusTables`), so writing status never blocks or fails a data
commit.

One Lab-wide system namespace rather than one inside each target database: pyiceberg's SQL
catalog counts a nested namespace as content, so ``DeleteDatabase`` of a target would fail, and a
Redshift target has no local namespace at all (``docs/aws-parity.md``, "Monitoring").

``operation`` is ``FULL_LOAD``, ``CDC``, ``RESYNC``, ``TABLE_STATE`` or ``INTEGRATION_STATE``;
``status`` is ``SUCCEEDED``/``FAILED``/``STARTED`` for operations and the new state for state
changes (``previous_status`` the old one); counts are the rows the operation applied.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..target.catalog import CREATE_TIME, LocalCatalog

log = logging.getLogger(__name__)

#: The Lab-wide system namespace (a Glue database) and the status table in it.
SYSTEM_NAMESPACE, STATUS_TABLE = "zetl_system", "integration_status"
FULL_LOAD, CDC, RESYNC = "FULL_LOAD", "CDC", "RESYNC"
TABLE_STATE, INTEGRATION_STATE = "TABLE_STATE", "INTEGRATION_STATE"
SUCCEEDED, FAILED, STARTED = "SUCCEEDED", "FAILED", "STARTED"
#: Rewrite a status table into one file (and expire its snapshots) every this many appends.
MAINTAIN_EVERY = 50

_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("record_id", pa.string()),
    ("integration_arn", pa.string()),
    ("integration_id", pa.string()),
    ("integration_name", pa.string()),
    ("source", pa.string()),
    ("target_database", pa.string()),
    ("operation", pa.string()),
    ("load_type", pa.string()),
    ("table_name", pa.string()),
    ("status", pa.string()),
    ("previous_status", pa.string()),
    ("inserted_rows", pa.int64()),
    ("updated_rows", pa.int64()),
    ("deleted_rows", pa.int64()),
    ("dead_lettered_rows", pa.int64()),
    ("bytes_ingested", pa.int64()),
    ("start_time", pa.int64()),  # epoch µs in the journal; timestamptz in Iceberg
    ("end_time", pa.int64()),
    ("source_seq", pa.int64()),
    ("source_position", pa.string()),
    ("error", pa.string()),
]
#: The journal's schema (times as epoch microseconds).
JOURNAL_SCHEMA = pa.schema(_COLUMNS)
_TIMES = ("start_time", "end_time")
#: The Iceberg table's schema.
SCHEMA = pa.schema([(n, pa.timestamp("us", tz="UTC") if n in _TIMES else t) for n, t in _COLUMNS])


def status_row(operation: str, status: str, **fields: Any) -> dict[str, Any]:
    """One status record; times (``start_time``/``end_time``) in epoch seconds."""
    row: dict[str, Any] = {name: None for name, _ in _COLUMNS}
    row.update(fields)
    row["record_id"] = uuid.uuid4().hex
    row["operation"], row["status"] = operation, status
    for name in _TIMES:
        if row[name] is not None:
            row[name] = int(row[name] * 1_000_000)
    return row


def to_iceberg(rows: pa.Table) -> pa.Table:
    """Journal rows in the Iceberg table's schema (µs integers → timestamps)."""
    return pa.Table.from_arrays([rows.column(f.name).cast(f.type) for f in SCHEMA], schema=SCHEMA)


class StatusTables:
    """Appends status rows to ``zetl_system.integration_status``; only the monitor thread writes."""

    def __init__(self, catalog: LocalCatalog, maintain_every: int = MAINTAIN_EVERY) -> None:
        self.catalog = catalog
        self.maintain_every = maintain_every
        self.identifier = (SYSTEM_NAMESPACE, STATUS_TABLE)
        self._table: Any = None
        self._commits = 0
        self._lock = threading.Lock()

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Append ``rows`` in one commit; returns how many were written (0 on failure)."""
        if not rows:
            return 0
        data = to_iceberg(pa.Table.from_pylist(rows, schema=JOURNAL_SCHEMA))
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._append(data)
                    return int(data.num_rows)
                except Exception:  # status must never take replication down
                    self._table = None  # e.g. the table was dropped: open (create) it again
                    if attempt == 2:
                        log.warning("could not append %d status rows", data.num_rows, exc_info=True)
        return 0

    def _append(self, data: pa.Table) -> None:
        if self._table is None:
            cat = self.catalog.catalog
            cat.create_namespace_if_not_exists(
                SYSTEM_NAMESPACE,
                {
                    "comment": "zetl_nb monitoring: the status of every zero-ETL integration",
                    CREATE_TIME: repr(time.time()),
                },
            )
            self._table = cat.create_table_if_not_exists(self.identifier, SCHEMA)
        self._table.append(data)
        self._commits += 1
        if self._commits % self.maintain_every == 0:
            self._maintain(self._table)

    def _maintain(self, table: Any) -> None:
        """Rewrite the table as one file and expire old snapshots (appends make many)."""
        from ..target.compaction import expire, summary_counts

        try:
            data_files, _ = summary_counts(table)
            if data_files > 1:
                table.overwrite(table.scan().to_arrow())
            expire(table, keep_seconds=60.0, keep_last=5, max_snapshots=20)
        except Exception:
            log.warning("maintenance of %s failed", table.name(), exc_info=True)

    def read(self, database: str | None = None) -> pa.Table:
        """The status rows written so far (about one target database, if given)."""
        cat = self.catalog.catalog
        if not cat.table_exists(self.identifier):
            return SCHEMA.empty_table()
        rows = cat.load_table(self.identifier).scan().to_arrow()
        if database is None:
            return rows
        keep = pc.fill_null(pc.equal(rows.column("target_database"), database), False)
        return rows.filter(keep)
