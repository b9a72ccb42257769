"""One integration in detail: its tables, recent logs and events, and series over time.

Everything comes from the public API: ``lab.table_states(arn)``, ``lab.monitor.get_log_events``
(the Glue zero-ETL log group, one stream per integration), ``lab.monitor.events`` (EventBridge
events whose ``resources`` name the integration) and ``lab.monitor.get_metric_statistics``
(``AWS/Glue/ZeroETL`` InsertCount, UpdateCount, DeleteCount).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lab import Lab

LOG_GROUP = "/aws-glue/zeroETL-integrations/logs/"
METRICS_NAMESPACE = "AWS/Glue/ZeroETL"
ROW_METRICS = ("InsertCount", "UpdateCount", "DeleteCount")


@dataclass(frozen=True)
class LogLine:
    """One Glue zero-ETL log message."""

    time: float
    message_type: str
    table: str
    text: str


@dataclass(frozen=True)
class EventLine:
    """One EventBridge event about the integration."""

    time: str
    detail_type: str
    table: str


@dataclass
class Detail:
    """What the detail panel shows for one integration."""

    arn: str
    tables: list[dict[str, Any]] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    events: list[EventLine] = field(default_factory=list)
    #: (period start, rows inserted + updated + deleted in the period), oldest first.
    rows_applied: list[tuple[float, float]] = field(default_factory=list)
    #: (time, lag seconds) as the dashboard observed it, oldest first.
    lag: list[tuple[float, float]] = field(default_factory=list)


def load_detail(
    lab: Lab,
    arn: str,
    lag: list[tuple[float, float]],
    limit: int = 20,
    window: float = 600.0,
    period: float = 10.0,
) -> Detail:
    """The detail of integration ``arn``: the last ``limit`` logs and events, and rows applied
    per ``period`` seconds over the last ``window`` seconds."""
    return Detail(
        arn=arn,
        tables=lab.table_states(arn),
        logs=recent_logs(lab, arn, limit),
        events=recent_events(lab, arn, limit),
        rows_applied=rows_applied(lab, arn, window, period),
        lag=list(lag),
    )


def recent_logs(lab: Lab, arn: str, limit: int = 20) -> list[LogLine]:
    """The integration's last ``limit`` log messages (CloudWatch Logs ``GetLogEvents``)."""
    stream = arn.rsplit(":", 1)[-1]
    found = lab.monitor.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, limit=limit)
    out = []
    for event in found["events"]:
        try:
            message = json.loads(event["message"])
        except (TypeError, ValueError):
            message = {"messageType": "", "details": {"message": str(event["message"])}}
        details = message.get("details") or {}
        out.append(
            LogLine(
                time=event["timestamp"] / 1000,
                message_type=str(message.get("messageType", "")),
                table=str(details.get("tableName", "")),
                text=_log_text(details),
            )
        )
    return out


def _log_text(details: dict[str, Any]) -> str:
    if "insert_count" in details:
        return (
            f"{details['insert_count']} inserted, {details.get('update_count', 0)} updated, "
            f"{details.get('delete_count', 0)} deleted"
        )
    if "errorMessage" in details:
        return str(details["errorMessage"])
    return str(details.get("message", ""))


def recent_events(lab: Lab, arn: str, limit: int = 20) -> list[EventLine]:
    """The last ``limit`` EventBridge events whose resources include the integration."""
    found = lab.monitor.events({"resources": [arn]}, limit=limit)
    return [
        EventLine(
            time=str(e.get("time", "")),
            detail_type=str(e.get("detail-type", "")),
            table=str((e.get("detail") or {}).get("tableName", "") or ""),
        )
        for e in found
    ]


def row_counts(lab: Lab, arn: str, since: float) -> dict[str, int]:
    """Rows inserted, updated and deleted since ``since`` (CloudWatch ``Sum``), by metric."""
    now = time.time() + 1
    start = min(since, now - 1) - 1
    out = {}
    for metric in ROW_METRICS:
        points = _statistics(lab, arn, metric, start, now, period=now - start)
        out[metric] = int(sum(v for _, v in points))
    return out


def rows_applied(
    lab: Lab, arn: str, window: float = 600.0, period: float = 10.0
) -> list[tuple[float, float]]:
    """Rows applied (inserted + updated + deleted) per ``period`` over the last ``window``;
    periods without data are 0, so the series has one point per period."""
    now = time.time()
    start = now - window
    totals = [0.0] * max(1, int(window // period))
    for metric in ROW_METRICS:
        for at, value in _statistics(lab, arn, metric, start, now, period):
            index = int((at - start) // period)
            if 0 <= index < len(totals):
                totals[index] += value
    return [(start + i * period, v) for i, v in enumerate(totals)]


def _statistics(
    lab: Lab, arn: str, metric: str, start: float, end: float, period: float
) -> list[tuple[float, float]]:
    found = lab.monitor.get_metric_statistics(
        Namespace=METRICS_NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": "integrationArn", "Value": arn}],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=["Sum"],
    )
    return [(dp["Timestamp"].timestamp(), float(dp["Sum"])) for dp in found["Datapoints"]]
