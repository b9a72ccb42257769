"""The Glue guide's CloudWatch log messages, one log stream per integration.

Log group ``/aws-glue/zeroETL-integrations/logs/``; the stream is the integration id; on disk
``<home>/monitor/logs/aws-glue/zeroETL-integrations/logs/<integration id>.jsonl``. The four
message types and their fields are the guide's::

    {"integrationArn": "...", "messageType": "IngestionStarted",
     "details": {"tableName": "t", "message": "Ingestion Job started"}}
    {... "IngestionProcessingStats", "details": {"tableName", "insert_count", "update_count",
                                                 "delete_count"}}
    {... "IngestionFailed", "details": {"tableName", "errorMessage", "error_code"}}
    {... "IngestionCompleted", "details": {"tableName", "message", "lastSyncedTimestamp"}}

``error_code`` is ``client_error`` (the data or the setup is at fault) or ``system_error``.
``lastSyncedTimestamp`` is epoch milliseconds as a string, as in the guide's example.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import AwsError
from .metrics import epoch

LOG_GROUP = "/aws-glue/zeroETL-integrations/logs/"
STARTED, STATS = "IngestionStarted", "IngestionProcessingStats"
FAILED, COMPLETED = "IngestionFailed", "IngestionCompleted"
MESSAGE_TYPES = (STARTED, STATS, FAILED, COMPLETED)

SCHEMA = pa.schema(
    [
        ("timestamp", pa.int64()),
        ("ingestion_time", pa.int64()),
        ("event_id", pa.string()),
        ("message_type", pa.string()),
        ("integration_arn", pa.string()),
        ("table_name", pa.string()),
        ("insert_count", pa.int64()),
        ("update_count", pa.int64()),
        ("delete_count", pa.int64()),
        ("error_message", pa.string()),
        ("error_code", pa.string()),
        ("last_synced_timestamp", pa.string()),
        ("message", pa.string()),
    ]
)


def _record(arn: str, kind: str, details: dict[str, Any], at: float) -> dict[str, Any]:
    ms = int(at * 1000)
    message = {"integrationArn": arn, "messageType": kind, "details": details}
    return {
        "timestamp": ms,
        "ingestion_time": ms,
        "event_id": uuid.uuid4().hex,
        "message_type": kind,
        "integration_arn": arn,
        "table_name": details.get("tableName"),
        "insert_count": details.get("insert_count"),
        "update_count": details.get("update_count"),
        "delete_count": details.get("delete_count"),
        "error_message": details.get("errorMessage"),
        "error_code": details.get("error_code"),
        "last_synced_timestamp": details.get("lastSyncedTimestamp"),
        "message": json.dumps(message, separators=(",", ":")),
    }


def ingestion_started(arn: str, table: str, at: float) -> dict[str, Any]:
    """``IngestionStarted``."""
    return _record(arn, STARTED, {"tableName": table, "message": "Ingestion Job started"}, at)


def processing_stats(
    arn: str, table: str, inserted: int, updated: int, deleted: int, at: float
) -> dict[str, Any]:
    """``IngestionProcessingStats``."""
    details = {
        "tableName": table,
        "insert_count": inserted,
        "update_count": updated,
        "delete_count": deleted,
    }
    return _record(arn, STATS, details, at)


def ingestion_failed(
    arn: str, table: str | None, message: str, code: str, at: float
) -> dict[str, Any]:
    """``IngestionFailed``; ``code`` is ``client_error`` or ``system_error``."""
    details = {"tableName": table, "errorMessage": message, "error_code": code}
    return _record(arn, FAILED, details, at)


def ingestion_completed(arn: str, table: str, synced_at: float, at: float) -> dict[str, Any]:
    """``IngestionCompleted`` with ``lastSyncedTimestamp`` (epoch ms, as a string)."""
    details = {
        "tableName": table,
        "message": "Ingestion Job completed",
        "lastSyncedTimestamp": str(int(synced_at * 1000)),
    }
    return _record(arn, COMPLETED, details, at)


def get_log_events(table: pa.Table, **params: Any) -> dict[str, Any]:
    """CloudWatch Logs ``GetLogEvents`` over the log table (``log_stream`` column included)."""
    group = params.get("logGroupName")
    stream = params.get("logStreamName")
    if group not in (LOG_GROUP, LOG_GROUP.rstrip("/")):
        raise AwsError(
            "ResourceNotFoundException",
            f"The specified log group does not exist: {group}. zero-ETL logs are in {LOG_GROUP}.",
        )
    if not stream:
        raise AwsError(
            "InvalidParameterException", "logStreamName is required: the integration id."
        )
    rows = table.filter(pc.equal(table.column("log_stream"), stream))
    if "startTime" in params:
        start_ms = int(epoch(params["startTime"], "startTime") * 1000)
        rows = rows.filter(pc.greater_equal(rows.column("timestamp"), start_ms))
    if "endTime" in params:
        end_ms = int(epoch(params["endTime"], "endTime") * 1000)
        rows = rows.filter(pc.less(rows.column("timestamp"), end_ms))
    rows = rows.sort_by("timestamp")
    limit = int(params.get("limit", 10_000))
    start = 0 if params.get("startFromHead") else max(0, rows.num_rows - limit)
    rows = rows.slice(start, limit)
    events = [
        {"timestamp": r["timestamp"], "message": r["message"], "ingestionTime": r["ingestion_time"]}
        for r in rows.select(["timestamp", "message", "ingestion_time"]).to_pylist()
    ]
    return {"events": events, "nextForwardToken": "f/end", "nextBackwardToken": "b/end"}
