"""CloudWatch-style metrics: the guide's metrics as datapoints, and statistics over them.

Namespace ``AWS/Glue/ZeroETL``, dimensions ``integrationArn``, ``loadType`` (``FULL``/``CDC``)
and ``tableName``: ``InsertCount``, ``UpdateCount``, ``DeleteCount``, ``IngestionSucceeded``,
``IngestionFailed``, ``LastSyncTimestamp`` (epoch milliseconds). zetl_nb adds one metric of its
own, ``ZetlNb/ZeroETL`` ``IntegrationUnhealthy`` (1 while an integration is NEEDS_ATTENTION or
FAILED, else 0; dimension ``integrationArn``), so the status alarm has something to watch.

:func:`get_metric_statistics` answers in CloudWatch's response shape. One deliberate difference:
CloudWatch returns only the series whose dimension set equals the request's; here every series
whose dimensions *include* the requested ones is aggregated (so one query covers every table of
an integration). Pass ``exact_dimensions=True`` for CloudWatch's behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import AwsError

NAMESPACE = "AWS/Glue/ZeroETL"
STATUS_NAMESPACE = "ZetlNb/ZeroETL"
INSERT_COUNT, UPDATE_COUNT, DELETE_COUNT = "InsertCount", "UpdateCount", "DeleteCount"
SUCCEEDED, FAILED, LAST_SYNC = "IngestionSucceeded", "IngestionFailed", "LastSyncTimestamp"
UNHEALTHY = "IntegrationUnhealthy"
METRIC_NAMES = (INSERT_COUNT, UPDATE_COUNT, DELETE_COUNT, SUCCEEDED, FAILED, LAST_SYNC)
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
#: Dimension name → journal column.
DIMENSIONS = {
    "integrationArn": "integration_arn",
    "loadType": "load_type",
    "tableName": "table_name",
}

SCHEMA = pa.schema(
    [
        ("namespace", pa.string()),
        ("metric_name", pa.string()),
        ("integration_arn", pa.string()),
        ("load_type", pa.string()),
        ("table_name", pa.string()),
        ("timestamp_ms", pa.int64()),
        ("value", pa.float64()),
        ("unit", pa.string()),
    ]
)


def datapoint(
    name: str,
    value: float,
    at: float,
    integration_arn: str,
    load_type: str | None = None,
    table_name: str | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """One journal record (``at`` in epoch seconds)."""
    unit = "Count" if name not in (LAST_SYNC, UNHEALTHY) else "None"
    return {
        "namespace": namespace,
        "metric_name": name,
        "integration_arn": integration_arn,
        "load_type": load_type,
        "table_name": table_name,
        "timestamp_ms": int(at * 1000),
        "value": float(value),
        "unit": unit,
    }


def epoch(value: Any, field: str) -> float:
    """Epoch seconds from a datetime, ISO string or number (what boto3 accepts)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return epoch(datetime.fromisoformat(value.replace("Z", "+00:00")), field)
        except ValueError:
            pass
    raise AwsError(
        "InvalidParameterValue", f"{field} '{value}' is not a time: pass a datetime or epoch."
    )


def select(
    table: pa.Table,
    namespace: str,
    metric_name: str,
    dimensions: Sequence[Mapping[str, str]] | None,
    start: float,
    end: float,
    exact_dimensions: bool = False,
) -> pa.Table:
    """Datapoints of one metric in [start, end), filtered by dimensions."""
    mask = pc.and_(
        pc.equal(table.column("namespace"), namespace),
        pc.equal(table.column("metric_name"), metric_name),
    )
    ts = table.column("timestamp_ms")
    mask = pc.and_(mask, pc.greater_equal(ts, int(start * 1000)))
    mask = pc.and_(mask, pc.less(ts, int(end * 1000)))
    given = {}
    for dim in dimensions or []:
        column = DIMENSIONS.get(dim.get("Name", ""))
        if column is None:
            return table.schema.empty_table()  # no series carries that dimension
        given[column] = dim.get("Value")
        mask = pc.and_(mask, pc.equal(table.column(column), dim.get("Value")))
    if exact_dimensions:
        for column in DIMENSIONS.values():
            if column not in given:
                mask = pc.and_(mask, pc.is_null(table.column(column)))
    return table.filter(pc.fill_null(mask, False))


def bucket_stats(points: pa.Table, start: float, period: float) -> dict[int, dict[str, float]]:
    """Per period index (from ``start``): every statistic of the values in it."""
    if not points.num_rows:
        return {}
    offset = pc.subtract(points.column("timestamp_ms"), int(start * 1000))
    index = pc.floor(pc.divide(pc.cast(offset, pa.float64()), period * 1000))
    grouped = (
        pa.table({"k": pc.cast(index, pa.int64()), "v": points.column("value")})
        .group_by("k")
        .aggregate([("v", "count"), ("v", "sum"), ("v", "min"), ("v", "max"), ("v", "mean")])
    )
    out = {}
    for row in grouped.to_pylist():
        out[int(row["k"])] = {
            "SampleCount": float(row["v_count"]),
            "Sum": row["v_sum"],
            "Minimum": row["v_min"],
            "Maximum": row["v_max"],
            "Average": row["v_mean"],
        }
    return out


def get_metric_statistics(table: pa.Table, **params: Any) -> dict[str, Any]:
    """CloudWatch ``GetMetricStatistics`` over the datapoints in ``table``."""
    for required in ("Namespace", "MetricName", "StartTime", "EndTime", "Period"):
        if required not in params:
            raise AwsError("MissingParameter", f"The parameter {required} must be specified.")
    stats = list(params.get("Statistics") or [])
    if not stats:
        raise AwsError(
            "InvalidParameterCombination",
            f"Statistics must list at least one of {', '.join(STATISTICS)}.",
        )
    unknown = [s for s in stats if s not in STATISTICS]
    if unknown:
        raise AwsError(
            "InvalidParameterValue", f"Unknown statistic {unknown[0]}; use one of {STATISTICS}."
        )
    period = params["Period"]
    if not isinstance(period, (int, float)) or period <= 0:
        raise AwsError("InvalidParameterValue", f"Period must be a positive number; got {period}.")
    start = epoch(params["StartTime"], "StartTime")
    end = epoch(params["EndTime"], "EndTime")
    if end <= start:
        raise AwsError("InvalidParameterValue", "EndTime must be after StartTime.")
    points = select(
        table,
        params["Namespace"],
        params["MetricName"],
        params.get("Dimensions"),
        start,
        end,
        bool(params.get("exact_dimensions", False)),
    )
    units = points.column("unit").unique().to_pylist() if points.num_rows else []
    unit = params.get("Unit") or (units[0] if len(units) == 1 else "None")
    datapoints = []
    for k, values in sorted(bucket_stats(points, start, period).items()):
        dp: dict[str, Any] = {
            "Timestamp": datetime.fromtimestamp(start + k * period, tz=UTC),
            "Unit": unit,
        }
        dp.update({s: values[s] for s in stats})
        datapoints.append(dp)
    return {"Label": params["MetricName"], "Datapoints": datapoints}


def statistic(values: Mapping[str, float] | None, stat: str) -> float | None:
    """One statistic of one period (None: no data), as alarms read it."""
    if not values:
        return None
    v = values.get(stat)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
