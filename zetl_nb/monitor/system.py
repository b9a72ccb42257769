"""The monitoring tables the query layer shows as views: journals → tables, and the two
``svv_`` views built from the control store and the catalog.

Extra tables beside Redshift's five views: ``zetl_logs`` (the log streams), ``zetl_metrics``
(datapoints), ``zetl_events`` (EventBridge events), ``zetl_lag``, ``zetl_status`` (every status
row of every target) and ``zetl_alarms``.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..engine.store import Integration
from ..target.catalog import LocalCatalog
from . import logs, views
from . import status as st
from .recorder import Applied, IntegrationInfo

log = logging.getLogger(__name__)

_TS_MS = pa.timestamp("ms", tz="UTC")

EVENTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("time_ms", pa.int64()),
        ("source", pa.string()),
        ("detail_type", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("resources", pa.string()),
        ("detail", pa.string()),
        ("integration_arn", pa.string()),
        ("table_name", pa.string()),
    ]
)


def event_record(event: Mapping[str, Any], at: float) -> dict[str, Any]:
    """An EventBridge event as a journal record (``detail`` and ``resources`` as JSON)."""
    detail = event.get("detail") or {}
    return {
        "id": event["id"],
        "time_ms": int(at * 1000),
        "source": event["source"],
        "detail_type": event["detail-type"],
        "account": event["account"],
        "region": event["region"],
        "resources": json.dumps(event.get("resources") or []),
        "detail": json.dumps(detail, default=str),
        "integration_arn": detail.get("integrationArn"),
        "table_name": detail.get("tableName"),
    }


def event_from_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge event a journal record holds."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(row["time_ms"] / 1000, tz=UTC)
    return {
        "version": "0",
        "id": row["id"],
        "detail-type": row["detail_type"],
        "source": row["source"],
        "account": row["account"],
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": row["region"],
        "resources": json.loads(row["resources"] or "[]"),
        "detail": json.loads(row["detail"] or "{}"),
    }


def events_table(journal: pa.Table) -> pa.Table:
    """``zetl_events``."""
    time_col = journal.column("time_ms").cast(_TS_MS)
    out = journal.drop_columns(["time_ms"])
    return out.add_column(1, "time", time_col)


def logs_table(journal: pa.Table) -> pa.Table:
    """``zetl_logs``: every log event of every stream, with the group and stream names."""
    n = journal.num_rows
    front = pa.table(
        {
            "log_group": pa.array([logs.LOG_GROUP] * n, pa.string()),
            "log_stream": journal.column("log_stream"),
            "timestamp": journal.column("timestamp").cast(_TS_MS),
            "ingestion_time": journal.column("ingestion_time").cast(_TS_MS),
        }
    )
    rest = journal.drop_columns(["log_stream", "timestamp", "ingestion_time"])
    for name in rest.column_names:
        front = front.append_column(name, rest.column(name))
    return front.sort_by("timestamp")


def metrics_table(journal: pa.Table) -> pa.Table:
    """``zetl_metrics``: one row per datapoint."""
    time_col = journal.column("timestamp_ms").cast(_TS_MS)
    idx = journal.column_names.index("timestamp_ms")
    return journal.drop_columns(["timestamp_ms"]).add_column(idx, "timestamp", time_col)


def alarms_table(alarms: Sequence[Mapping[str, Any]]) -> pa.Table:
    """``zetl_alarms`` from ``describe_alarms`` entries."""
    schema = pa.schema(
        [
            ("alarm_name", pa.string()),
            ("state_value", pa.string()),
            ("state_reason", pa.string()),
            ("state_updated", pa.timestamp("us", tz="UTC")),
            ("namespace", pa.string()),
            ("metric_name", pa.string()),
            ("comparison_operator", pa.string()),
            ("threshold", pa.float64()),
            ("evaluation_periods", pa.int64()),
            ("description", pa.string()),
        ]
    )
    rows = [
        {
            "alarm_name": a["AlarmName"],
            "state_value": a["StateValue"],
            "state_reason": a["StateReason"],
            "state_updated": a["StateUpdatedTimestamp"],
            "namespace": a.get("Namespace"),
            "metric_name": a.get("MetricName") or "metric math",
            "comparison_operator": a["ComparisonOperator"],
            "threshold": a["Threshold"],
            "evaluation_periods": a["EvaluationPeriods"],
            "description": a.get("AlarmDescription"),
        }
        for a in alarms
    ]
    return pa.Table.from_pylist(rows, schema=schema)


class TableStats:
    """Rows, size and checkpoint of replicated tables, re-read only when a table changed.

    The table's current metadata location is looked up in the catalog's SQLite file directly
    (one cheap query), so tables that did not change are not loaded again on every query.
    """

    def __init__(self, catalog: LocalCatalog) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[str, str], tuple[str | None, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str], str] | None = None

    def refresh(self) -> None:
        """Look up every table's metadata location once (before a series of :meth:`get`)."""
        self._current = self._locations()

    def _locations(self) -> dict[tuple[str, str], str] | None:
        try:
            uri = f"file:{self.catalog.db_path}?mode=ro"
            with sqlite3.connect(uri, uri=True) as db:
                rows = db.execute(
                    "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                    "WHERE catalog_name = ?",
                    (self.catalog.name,),
                ).fetchall()
            return {(r[0], r[1]): r[2] for r in rows}
        except sqlite3.Error:
            return None  # an unknown catalog layout: load the tables instead

    def get(self, namespace: str, table: str) -> dict[str, Any]:
        """``{"rows", "size_mb", "checkpoint"}``; empty if the table does not exist."""
        locations = self._current
        location = None if locations is None else locations.get((namespace, table))
        if locations is not None and location is None:
            return {}
        key = (namespace, table)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and location is not None and cached[0] == location:
                return cached[1]
        try:
            stats = _stats(self.catalog.load_table(namespace, table))
        except Exception:
            log.debug("no stats for %s.%s", namespace, table, exc_info=True)
            return {}
        with self._lock:
            self._cache[key] = (location, stats)
        return stats


def _stats(table: Any) -> dict[str, Any]:
    from ..target.writer import read_checkpoint

    snap = table.current_snapshot()
    props = (snap.summary.additional_properties or {}) if snap and snap.summary else {}
    records = int(props.get("total-records", 0)) - int(props.get("total-position-deletes", 0))
    size = int(props.get("total-files-size", 0))
    seq, position = read_checkpoint(table)
    checkpoint = None if seq is None else json.dumps(position, sort_keys=True, default=str)
    return {
        "rows": max(0, records),
        "size_mb": math.ceil(size / 1_048_576),
        "checkpoint": checkpoint,
    }


def svv_integration(
    integrations: Sequence[Integration],
    infos: Mapping[str, IntegrationInfo],
    docs: Mapping[str, list[dict[str, Any]]],
    lag_rows: Sequence[Mapping[str, Any]],
    marks: Mapping[str, Mapping[str, Any]],
    checkpoints: Mapping[str, str | None],
) -> pa.Table:
    """``svv_integration``: one row per live integration."""
    lags = {r["integration_arn"]: r for r in lag_rows if r.get("table_name") is None}
    rows = []
    for integ in integrations:
        info, mark = infos[integ.arn], marks.get(integ.integration_id)
        connected = mark is not None or not is_redshift_target(integ.target_arn)
        state = views.integration_state(integ.status, connected)
        if state is None:
            continue
        states = [d.get("State") for d in docs.get(integ.arn, [])]
        lag_s = (lags.get(integ.arn) or {}).get("lag_seconds")
        rows.append(
            {
                "integration_id": integ.integration_id,
                "target_database": mark["database"] if mark else info.target_database,
                "source": info.source,
                "state": state,
                "current_lag": None if lag_s is None else int(lag_s * 1000),
                "last_replicated_checkpoint": checkpoints.get(integ.arn),
                "total_tables_replicated": states.count("Synced"),
                "total_tables_failed": states.count("Failed"),
                "creation_time": mark["created"] if mark else integ.create_time,
                "refresh_interval": int(integ.refresh_interval or 0) * 60,
                "source_database": (mark or {}).get("source_database") or info.source_database,
                "is_history_mode": False,
            }
        )
    return views.from_rows(views.SVV_INTEGRATION, rows)


def svv_integration_table_state(
    integrations: Sequence[Integration],
    docs: Mapping[str, list[dict[str, Any]]],
    applied: Mapping[tuple[str, str], Applied],
    marks: Mapping[str, Mapping[str, Any]],
    stats: TableStats,
) -> pa.Table:
    """``svv_integration_table_state``: one row per table of a live integration."""
    stats.refresh()
    rows = []
    for integ in integrations:
        mark = marks.get(integ.integration_id)
        for doc in docs.get(integ.arn, []):
            ns, name = str(doc.get("Namespace")), str(doc.get("TableName"))
            found = stats.get(ns, name) if doc.get("State") != "Deleted" else {}
            last = applied.get((integ.arn, name))
            rows.append(
                {
                    "integration_id": integ.integration_id,
                    "target_database": mark["database"] if mark else ns,
                    "schema_name": ns,
                    "table_name": name,
                    "table_state": doc.get("State"),
                    "table_last_replicated_checkpoint": found.get("checkpoint")
                    or (last.position if last else None),
                    "reason": doc.get("Reason") or None,
                    "last_updated_timestamp": doc.get("LastUpdated"),
                    "table_rows": found.get("rows"),
                    "table_size": found.get("size_mb"),
                    "is_history_mode": False,
                }
            )
    return views.from_rows(views.SVV_INTEGRATION_TABLE_STATE, rows)


def status_table(journal: pa.Table) -> pa.Table:
    """``zetl_status``: every status row of every target, in the Iceberg tables' schema."""
    return st.to_iceberg(journal).sort_by("end_time")


def is_redshift_target(target_arn: str) -> bool:
    """A Redshift namespace (provisioned or serverless) as the integration's target."""
    return target_arn.startswith(("arn:aws:redshift:", "arn:aws:redshift-serverless:"))


def latest_only(table: pa.Table, limit: int | None) -> pa.Table:
    """The newest ``limit`` rows of a time-sorted table (all if ``limit`` is None)."""
    if limit is None or table.num_rows <= limit:
        return table
    return table.slice(table.num_rows - limit, limit)


def filter_equal(table: pa.Table, column: str, value: Any) -> pa.Table:
    """Rows whose ``column`` equals ``value``."""
    return table.filter(pc.fill_null(pc.equal(table.column(column), value), False))
