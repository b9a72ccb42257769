"""CloudWatch metric alarms over the zero-ETL metrics, evaluated locally.

An alarm is what ``cloudwatch.put_metric_alarm`` takes: one metric (``Namespace``,
``MetricName``, ``Statistic``, ``Dimensions``, ``Period``) or a ``Metrics`` list whose one
returned expression sums other metrics (``"m1+m2+m3"``, the only metric math supported), with
``EvaluationPeriods``, ``DatapointsToAlarm``, ``Threshold``, ``ComparisonOperator`` and
``TreatMissingData``. States are ``OK``, ``ALARM`` and ``INSUFFICIENT_DATA``.

Evaluation looks at the last ``EvaluationPeriods`` periods ending now: ALARM when at least
``DatapointsToAlarm`` of them breach; INSUFFICIENT_DATA when none has data (``ignore`` keeps the
state); OK otherwise. A period with no data is treated as ``TreatMissingData`` says, except that
one which began before the alarm was created never breaches (so enabling an alarm does not fire
it on history it never watched).

The two alarms the guide's talk recommends are built by :func:`recommended_alarms`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ..core.errors import AwsError
from . import metrics as m

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_OPERATORS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_MISSING = ("missing", "notBreaching", "breaching", "ignore")
_EXPRESSION = re.compile(r"\s*[a-z][A-Za-z0-9_]*(\s*\+\s*[a-z][A-Za-z0-9_]*)*\s*")


def _bad(message: str) -> AwsError:
    return AwsError("ValidationError", message)


@dataclass
class Alarm:
    """One alarm: its ``put_metric_alarm`` parameters and its current state."""

    params: dict[str, Any]
    created: float
    state: str = "INSUFFICIENT_DATA"
    reason: str = "Unchecked: Initial alarm creation"
    updated: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return str(self.params["AlarmName"])

    def to_doc(self) -> dict[str, Any]:
        """JSON-ready, for ``alarms.json``."""
        return {
            "params": self.params,
            "created": self.created,
            "state": self.state,
            "reason": self.reason,
            "updated": self.updated,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Alarm:
        return cls(dict(doc["params"]), doc["created"], doc["state"], doc["reason"], doc["updated"])


def parse_alarm(params: Mapping[str, Any], now: float | None = None) -> Alarm:
    """Validate ``put_metric_alarm`` parameters into an :class:`Alarm`."""
    p = {k: v for k, v in params.items() if v is not None}
    for required in ("AlarmName", "EvaluationPeriods", "ComparisonOperator"):
        if required not in p:
            raise _bad(f"put_metric_alarm needs {required}.")
    if p["ComparisonOperator"] not in _OPERATORS:
        raise _bad(f"ComparisonOperator must be one of {sorted(_OPERATORS)}.")
    if "Threshold" not in p:
        raise _bad("put_metric_alarm needs Threshold (a number).")
    p.setdefault("TreatMissingData", "missing")
    if p["TreatMissingData"] not in _MISSING:
        raise _bad(f"TreatMissingData must be one of {list(_MISSING)}.")
    n = p["EvaluationPeriods"]
    if not isinstance(n, int) or n < 1:
        raise _bad("EvaluationPeriods must be a whole number ≥ 1.")
    k = p.setdefault("DatapointsToAlarm", n)
    if not isinstance(k, int) or not 1 <= k <= n:
        raise _bad("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
    if "Metrics" in p:
        if "MetricName" in p:
            raise _bad("Give either MetricName (one metric) or Metrics (metric math), not both.")
        _check_metrics(p["Metrics"])
    else:
        for required in ("MetricName", "Namespace", "Period"):
            if required not in p:
                raise _bad(f"put_metric_alarm needs {required} (or Metrics).")
        if p.get("Statistic") not in m.STATISTICS:
            raise _bad(f"Statistic must be one of {list(m.STATISTICS)}.")
        _check_period(p["Period"])
        p.setdefault("Dimensions", [])
    p.setdefault("ActionsEnabled", True)
    return Alarm(p, time.time() if now is None else now)


def _check_period(period: Any) -> None:
    if not isinstance(period, (int, float)) or isinstance(period, bool) or period <= 0:
        raise _bad(f"Period must be a positive number of seconds; got {period!r}.")


def _check_metrics(queries: Any) -> None:
    if not isinstance(queries, list) or not queries:
        raise _bad("Metrics must be a non-empty list of MetricDataQuery.")
    ids = {q.get("Id") for q in queries if "MetricStat" in q}
    returned = [q for q in queries if q.get("ReturnData", True)]
    if len(returned) != 1:
        raise _bad("Exactly one entry of Metrics must have ReturnData true.")
    periods = set()
    for q in queries:
        if "MetricStat" in q:
            stat = q["MetricStat"]
            if stat.get("Stat") not in m.STATISTICS:
                raise _bad(f"MetricStat.Stat must be one of {list(m.STATISTICS)}.")
            _check_period(stat.get("Period"))
            periods.add(stat["Period"])
        elif "Expression" in q:
            expr = q["Expression"]
            if not _EXPRESSION.fullmatch(expr) or not set(_terms(expr)) <= ids:
                raise _bad(
                    f"Expression '{expr}' is not supported: zetl_nb evaluates sums of MetricStat "
                    "ids, e.g. 'm1+m2+m3'."
                )
        else:
            raise _bad("Each entry of Metrics needs MetricStat or Expression.")
    if len(periods) != 1:
        raise _bad("Every MetricStat in Metrics must use the same Period.")


def _terms(expr: str) -> list[str]:
    return [t.strip() for t in expr.split("+")]


def period_of(alarm: Alarm) -> float:
    """The alarm's evaluation period in seconds."""
    p = alarm.params
    if "Metrics" in p:
        return float(next(q["MetricStat"]["Period"] for q in p["Metrics"] if "MetricStat" in q))
    return float(p["Period"])


def period_values(alarm: Alarm, table: pa.Table, now: float) -> list[float | None]:
    """The alarm's value in each of its last ``EvaluationPeriods`` periods (None: no data)."""
    n = int(alarm.params["EvaluationPeriods"])
    period = period_of(alarm)
    start = now - n * period

    def series(metric: Mapping[str, Any], stat: str) -> list[float | None]:
        points = m.select(
            table, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"), start, now
        )
        buckets = m.bucket_stats(points, start, period)
        return [m.statistic(buckets.get(i), stat) for i in range(n)]

    p = alarm.params
    if "Metrics" not in p:
        return series(p, p["Statistic"])
    stats = {
        q["Id"]: series(q["MetricStat"]["Metric"], q["MetricStat"]["Stat"])
        for q in p["Metrics"]
        if "MetricStat" in q
    }
    result = next(q for q in p["Metrics"] if q.get("ReturnData", True))
    terms = _terms(result["Expression"]) if "Expression" in result else [result["Id"]]
    out: list[float | None] = []
    for i in range(n):
        present = [stats[t][i] for t in terms if stats[t][i] is not None]
        out.append(sum(v for v in present if v is not None) if present else None)
    return out


def evaluate(alarm: Alarm, table: pa.Table, now: float | None = None) -> tuple[str, str] | None:
    """The alarm's new (state, reason) from the metrics in ``table``; None if unchanged."""
    now = time.time() if now is None else now
    p = alarm.params
    values = period_values(alarm, table, now)
    period = period_of(alarm)
    n = len(values)
    check, words = _OPERATORS[p["ComparisonOperator"]]
    threshold = float(p["Threshold"])
    treat = p["TreatMissingData"]
    breaching = present = 0
    for i, v in enumerate(values):
        began = now - (n - i) * period
        if v is None:
            if began < alarm.created or treat in ("missing", "ignore"):
                continue
            present += 1
            breaching += treat == "breaching"
            continue
        present += 1
        breaching += bool(check(v, threshold))
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    if breaching >= int(p["DatapointsToAlarm"]):
        state = "ALARM"
        reason = (
            f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] "
            f"was {words} the threshold ({threshold:g})."
        )
    elif present == 0:
        if treat == "ignore":
            return None
        state, reason = "INSUFFICIENT_DATA", f"Insufficient Data: {n} datapoints were unknown."
    else:
        state = "OK"
        reason = (
            f"Threshold Crossed: {n - breaching} out of the last {n} datapoints [{shown}] "
            f"was not {words} the threshold ({threshold:g})."
        )
    if state == alarm.state:
        return None
    return state, reason


def describe(alarm: Alarm, region: str, account: str) -> dict[str, Any]:
    """The alarm in ``describe_alarms``' ``MetricAlarms`` shape."""
    p = alarm.params
    out: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm_arn(alarm.name, region, account),
        "AlarmDescription": p.get("AlarmDescription", ""),
        "AlarmConfigurationUpdatedTimestamp": _dt(alarm.created),
        "ActionsEnabled": p["ActionsEnabled"],
        "StateValue": alarm.state,
        "StateReason": alarm.reason,
        "StateUpdatedTimestamp": _dt(alarm.updated),
        "EvaluationPeriods": p["EvaluationPeriods"],
        "DatapointsToAlarm": p["DatapointsToAlarm"],
        "Threshold": float(p["Threshold"]),
        "ComparisonOperator": p["ComparisonOperator"],
        "TreatMissingData": p["TreatMissingData"],
    }
    keys = ("MetricName", "Namespace", "Statistic", "Dimensions", "Period", "Unit", "Metrics")
    out.update({k: p[k] for k in keys if k in p})
    return out


def alarm_arn(name: str, region: str, account: str) -> str:
    """``arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME``."""
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def state_change_detail(
    alarm: Alarm, old_state: str, old_reason: str, old_at: float
) -> dict[str, Any]:
    """The ``detail`` of CloudWatch's ``CloudWatch Alarm State Change`` event."""
    p = alarm.params
    if "Metrics" in p:
        metrics = p["Metrics"]
    else:
        metrics = [
            {
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": p["Namespace"],
                        "name": p["MetricName"],
                        "dimensions": {d["Name"]: d["Value"] for d in p["Dimensions"]},
                    },
                    "period": p["Period"],
                    "stat": p["Statistic"],
                },
                "returnData": True,
            }
        ]
    return {
        "alarmName": alarm.name,
        "state": {"value": alarm.state, "reason": alarm.reason, "timestamp": _iso(alarm.updated)},
        "previousState": {"value": old_state, "reason": old_reason, "timestamp": _iso(old_at)},
        "configuration": {"description": p.get("AlarmDescription", ""), "metrics": metrics},
    }


def recommended_alarms(
    integration_arn: str | None = None,
    label: str | None = None,
    rows_per_minute: float = 1.0,
    minutes: float = 5.0,
    period_seconds: float = 60.0,
) -> list[dict[str, Any]]:
    """The talk's two alarms as ``put_metric_alarm`` parameters (not yet enabled).

    1. ``<label>-status``: the integration is NEEDS_ATTENTION or FAILED.
    2. ``<label>-cdc-rows``: fewer than ``rows_per_minute`` CDC rows (inserted + updated +
       deleted) per minute for ``minutes`` minutes; no CDC at all counts as breaching.

    Without ``integration_arn`` they watch every integration together.
    """
    label = label or "zero-etl-all-integrations"
    dims = [{"Name": "integrationArn", "Value": integration_arn}] if integration_arn else []
    periods = max(1, math.ceil(minutes * 60 / period_seconds))
    cdc_dims = [*dims, {"Name": "loadType", "Value": "CDC"}]
    metrics: list[dict[str, Any]] = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {"Namespace": m.NAMESPACE, "MetricName": name, "Dimensions": cdc_dims},
                "Period": period_seconds,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }
        for i, name in enumerate((m.INSERT_COUNT, m.UPDATE_COUNT, m.DELETE_COUNT), start=1)
    ]
    metrics.append(
        {"Id": "rows", "Expression": "m1+m2+m3", "Label": "CDC rows", "ReturnData": True}
    )
    return [
        {
            "AlarmName": f"{label}-status",
            "AlarmDescription": "The zero-ETL integration is NEEDS_ATTENTION or FAILED.",
            "Namespace": m.STATUS_NAMESPACE,
            "MetricName": m.UNHEALTHY,
            "Statistic": "Maximum",
            "Dimensions": dims,
            "Period": period_seconds,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "ignore",
        },
        {
            "AlarmName": f"{label}-cdc-rows",
            "AlarmDescription": (
                f"Fewer than {rows_per_minute:g} CDC rows per minute for {minutes:g} minutes."
            ),
            "Metrics": metrics,
            "EvaluationPeriods": periods,
            "Threshold": rows_per_minute * period_seconds / 60,
            "ComparisonOperator": "LessThanThreshold",
            "TreatMissingData": "breaching",
        },
    ]


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _iso(at: float) -> str:
    return _dt(at).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
