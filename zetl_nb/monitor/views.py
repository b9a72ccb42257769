"""Redshift's zero-ETL monitoring views as Arrow tables: AWS's columns, order and types.

Redshift types map to Arrow as ``character(n)`` → ``string``, ``integer`` → ``int32``,
``bigint`` → ``int64``, ``boolean`` → ``bool`` and ``timestamp`` (without time zone, UTC values)
→ ``timestamp[us]``. The state vocabulary and how zetl_nb fills each column are in
``docs/aws-parity.md`` ("Monitoring").
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import status as st

_S, _I, _L, _B = pa.string(), pa.int32(), pa.int64(), pa.bool_()
_T = pa.timestamp("us")

SVV_INTEGRATION = pa.schema(
    [
        ("integration_id", _S),
        ("target_database", _S),
        ("source", _S),
        ("state", _S),
        ("current_lag", _L),
        ("last_replicated_checkpoint", _S),
        ("total_tables_replicated", _I),
        ("total_tables_failed", _I),
        ("creation_time", _T),
        ("refresh_interval", _I),
        ("source_database", _S),
        ("is_history_mode", _B),
    ]
)
SVV_INTEGRATION_TABLE_STATE = pa.schema(
    [
        ("integration_id", _S),
        ("target_database", _S),
        ("schema_name", _S),
        ("table_name", _S),
        ("table_state", _S),
        ("table_last_replicated_checkpoint", _S),
        ("reason", _S),
        ("last_updated_timestamp", _T),
        ("table_rows", _L),
        ("table_size", _L),
        ("is_history_mode", _B),
    ]
)
SYS_INTEGRATION_ACTIVITY = pa.schema(
    [
        ("integration_id", _S),
        ("target_database", _S),
        ("source", _S),
        ("checkpoint_name", _S),
        ("checkpoint_type", _S),
        ("checkpoint_bytes", _L),
        ("last_commit_timestamp", _T),
        ("modified_tables", _I),
        ("integration_start_time", _T),
        ("integration_end_time", _T),
    ]
)
SYS_INTEGRATION_TABLE_ACTIVITY = pa.schema(
    [
        ("integration_id", _S),
        ("checkpoint_name", _S),
        ("target_database", _S),
        ("schema_name", _S),
        ("table_name", _S),
        ("table_id", _I),
        ("record_time", _T),
        ("transaction_id", _L),
        ("inserted_rows", _L),
        ("deleted_rows", _L),
        ("updated_rows", _L),
        ("bytes_ingested", _L),
    ]
)
SYS_INTEGRATION_TABLE_STATE_CHANGE = pa.schema(
    [
        ("integration_id", _S),
        ("database_name", _S),
        ("schema_name", _S),
        ("table_name", _S),
        ("new_state", _S),
        ("table_last_replicated_checkpoint", _S),
        ("state_change_reason", _S),
        ("record_time", _T),
    ]
)
#: View name → schema, in the order the views are documented.
SCHEMAS = {
    "svv_integration": SVV_INTEGRATION,
    "svv_integration_table_state": SVV_INTEGRATION_TABLE_STATE,
    "sys_integration_activity": SYS_INTEGRATION_ACTIVITY,
    "sys_integration_table_activity": SYS_INTEGRATION_TABLE_ACTIVITY,
    "sys_integration_table_state_change": SYS_INTEGRATION_TABLE_STATE_CHANGE,
}

PENDING_DB_CONNECT = "PendingDbConnectState"
SCHEMA_DISCOVERY = "SchemaDiscoveryState"
CDC_REFRESH = "CdcRefreshState"
ERROR_STATE = "ErrorState"
#: Integration status (Glue's spelling) → ``svv_integration.state``.
INTEGRATION_STATES = {
    "CREATING": SCHEMA_DISCOVERY,
    "MODIFYING": SCHEMA_DISCOVERY,
    "ACTIVE": CDC_REFRESH,
    "SYNCING": CDC_REFRESH,
    "NEEDS_ATTENTION": ERROR_STATE,
    "FAILED": ERROR_STATE,
}


def integration_state(status: str, database_connected: bool) -> str | None:
    """``svv_integration.state`` for an integration status; None: not shown (DELETING)."""
    if not database_connected and status not in ("NEEDS_ATTENTION", "FAILED", "DELETING"):
        return PENDING_DB_CONNECT
    return INTEGRATION_STATES.get(status.upper())


def from_rows(schema: pa.Schema, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A view from plain rows keyed by column name (timestamps as epoch seconds or datetimes)."""
    columns = []
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_timestamp(f.type):
            micros = [None if v is None else _micros(v) for v in values]
            columns.append(pa.array(micros, pa.int64()).cast(f.type))
        else:
            columns.append(pa.array(values, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _micros(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    return int(value.timestamp() * 1_000_000)


def _ts(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(_T)  # epoch µs → timestamp without zone (values are UTC)


def _checkpoint_names(rows: pa.Table) -> pa.ChunkedArray:
    kind = pc.if_else(pc.equal(rows.column("operation"), st.FULL_LOAD), "snapshot", "checkpoint")
    seq = pc.cast(pc.fill_null(rows.column("source_seq"), 0), pa.string())
    return pc.binary_join_element_wise("checkpoints/", kind, "_", seq, ".json", "")


def _ingestions(status: pa.Table) -> pa.Table:
    ops = status.column("operation")
    mask = pc.and_(
        pc.is_in(ops, pa.array([st.FULL_LOAD, st.CDC])),
        pc.equal(status.column("status"), st.SUCCEEDED),
    )
    return status.filter(pc.fill_null(mask, False)).sort_by("end_time")


def _databases(rows: pa.Table, databases: Mapping[str, str]) -> pa.ChunkedArray:
    """``target_database``: the Redshift database made FROM INTEGRATION, else the Glue one."""
    if not databases:
        return rows.column("target_database")
    ids = rows.column("integration_id").to_pylist()
    dbs = rows.column("target_database").to_pylist()
    return pa.chunked_array(
        [pa.array([databases.get(i, d) for i, d in zip(ids, dbs, strict=True)], _S)]
    )


def sys_integration_activity(status: pa.Table, databases: Mapping[str, str]) -> pa.Table:
    """One row per completed ingestion (full load of a table, or one CDC commit)."""
    rows = _ingestions(status)
    full = pc.equal(rows.column("operation"), st.FULL_LOAD)
    columns = {
        "integration_id": rows.column("integration_id"),
        "target_database": _databases(rows, databases),
        "source": rows.column("source"),
        "checkpoint_name": _checkpoint_names(rows),
        "checkpoint_type": pc.if_else(full, "snapshot", "cdc"),
        "checkpoint_bytes": rows.column("bytes_ingested"),
        "last_commit_timestamp": _ts(rows.column("end_time")),
        "modified_tables": pa.array([1] * rows.num_rows, _I),
        "integration_start_time": _ts(rows.column("start_time")),
        "integration_end_time": _ts(rows.column("end_time")),
    }
    return _build(SYS_INTEGRATION_ACTIVITY, columns)


def sys_integration_table_activity(status: pa.Table, databases: Mapping[str, str]) -> pa.Table:
    """One row per completed ingestion of one table, with its counts."""
    rows = _ingestions(status)
    names = rows.column("table_name").to_pylist()
    ids = rows.column("integration_id").to_pylist()
    table_ids = [table_id(i, n) for i, n in zip(ids, names, strict=True)]
    columns = {
        "integration_id": rows.column("integration_id"),
        "checkpoint_name": _checkpoint_names(rows),
        "target_database": _databases(rows, databases),
        "schema_name": rows.column("target_database"),
        "table_name": rows.column("table_name"),
        "table_id": pa.array(table_ids, _I),
        "record_time": _ts(rows.column("end_time")),
        "transaction_id": rows.column("source_seq"),
        "inserted_rows": rows.column("inserted_rows"),
        "deleted_rows": rows.column("deleted_rows"),
        "updated_rows": rows.column("updated_rows"),
        "bytes_ingested": rows.column("bytes_ingested"),
    }
    return _build(SYS_INTEGRATION_TABLE_ACTIVITY, columns)


def sys_integration_table_state_change(status: pa.Table, databases: Mapping[str, str]) -> pa.Table:
    """Every table state transition, oldest first."""
    mask = pc.equal(status.column("operation"), st.TABLE_STATE)
    rows = status.filter(pc.fill_null(mask, False)).sort_by("end_time")
    columns = {
        "integration_id": rows.column("integration_id"),
        "database_name": _databases(rows, databases),
        "schema_name": rows.column("target_database"),
        "table_name": rows.column("table_name"),
        "new_state": rows.column("status"),
        "table_last_replicated_checkpoint": rows.column("source_position"),
        "state_change_reason": rows.column("error"),
        "record_time": _ts(rows.column("end_time")),
    }
    return _build(SYS_INTEGRATION_TABLE_STATE_CHANGE, columns)


def table_id(integration_id: str | None, table_name: str | None) -> int:
    """A stable positive 31-bit identifier for a replicated table."""
    return zlib.crc32(f"{integration_id}/{table_name}".encode()) & 0x7FFFFFFF


def _build(schema: pa.Schema, columns: Mapping[str, Any]) -> pa.Table:
    arrays = [pa.chunked_array(_chunks(columns[f.name]), f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _chunks(column: Any) -> list[pa.Array]:
    if isinstance(column, pa.ChunkedArray):
        return list(column.chunks)
    return [column]
