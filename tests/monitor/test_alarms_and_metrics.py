"""Metric statistics in CloudWatch's shape, and alarm evaluation, on hand-made datapoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from zetl_nb.core.errors import AwsError
from zetl_nb.monitor import alarms as al
from zetl_nb.monitor import metrics as m

ARN, OTHER = "arn:aws:glue:us-east-1:123456789012:integration:a", "arn:other"
T0 = 1_800_000_000.0  # a fixed "now" for the tests


def points(*rows: tuple[str, float, float, str, str | None, str | None]) -> pa.Table:
    """(metric, value, at, integration, loadType, table) → a datapoint table."""
    return pa.Table.from_pylist(
        [m.datapoint(n, v, at, i, lt, t) for n, v, at, i, lt, t in rows], schema=m.SCHEMA
    )


DATA = points(
    ("InsertCount", 5, T0 + 1, ARN, "CDC", "t1"),
    ("InsertCount", 7, T0 + 30, ARN, "CDC", "t2"),
    ("InsertCount", 100, T0 + 40, ARN, "FULL", "t2"),
    ("InsertCount", 3, T0 + 70, OTHER, "CDC", "t1"),
    ("UpdateCount", 2, T0 + 75, ARN, "CDC", "t1"),
)


def stats(**kw: Any) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "Namespace": m.NAMESPACE,
        "MetricName": "InsertCount",
        "StartTime": datetime.fromtimestamp(T0, tz=UTC),
        "EndTime": T0 + 120,
        "Period": 60,
        "Statistics": ["Sum", "SampleCount", "Maximum", "Minimum", "Average"],
    }
    params.update(kw)
    out: list[dict[str, Any]] = m.get_metric_statistics(DATA, **params)["Datapoints"]
    return out


def test_statistics_per_period() -> None:
    got = stats()
    assert [d["Timestamp"] for d in got] == [
        datetime.fromtimestamp(T0, tz=UTC),
        datetime.fromtimestamp(T0 + 60, tz=UTC),
    ]
    first = got[0]
    assert (first["Sum"], first["SampleCount"], first["Maximum"], first["Minimum"]) == (
        112.0,
        3.0,
        100.0,
        5.0,
    )
    assert first["Average"] == pytest.approx(112 / 3) and first["Unit"] == "Count"


def test_dimensions_select_series() -> None:
    cdc = [{"Name": "integrationArn", "Value": ARN}, {"Name": "loadType", "Value": "CDC"}]
    assert [d["Sum"] for d in stats(Dimensions=cdc, Statistics=["Sum"])] == [12.0]
    table = [*cdc, {"Name": "tableName", "Value": "t2"}]
    assert [d["Sum"] for d in stats(Dimensions=table, Statistics=["Sum"])] == [7.0]
    # CloudWatch's exact dimension-set matching, on request.
    assert stats(Dimensions=cdc, Statistics=["Sum"], exact_dimensions=True) == []
    exact = stats(Dimensions=table, Statistics=["Sum"], exact_dimensions=True)
    assert [d["Sum"] for d in exact] == [7.0]
    assert stats(Dimensions=[{"Name": "nope", "Value": "x"}]) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Statistics": []}, "InvalidParameterCombination"),
        ({"Statistics": ["p99"]}, "InvalidParameterValue"),
        ({"Period": 0}, "InvalidParameterValue"),
        ({"EndTime": T0 - 1}, "InvalidParameterValue"),
        ({"StartTime": "yesterday"}, "InvalidParameterValue"),
    ],
)
def test_bad_requests(change: dict[str, Any], code: str) -> None:
    with pytest.raises(AwsError) as err:
        stats(**change)
    assert err.value.code == code


def status_alarm(**kw: Any) -> al.Alarm:
    params = al.recommended_alarms(ARN, "x")[0]
    params.update(kw)
    return al.parse_alarm(params, now=T0 - 3600)


def cdc_alarm(created: float = T0 - 3600, **kw: Any) -> al.Alarm:
    params = al.recommended_alarms(ARN, "x", rows_per_minute=10, minutes=3, **kw)[1]
    return al.parse_alarm(params, now=created)


def gauge(*values: tuple[float, float]) -> pa.Table:
    rows = [m.datapoint(m.UNHEALTHY, v, at, ARN, namespace=m.STATUS_NAMESPACE) for at, v in values]
    return pa.Table.from_pylist(rows, schema=m.SCHEMA)


def test_status_alarm_fires_and_clears() -> None:
    alarm = status_alarm()
    assert alarm.state == "INSUFFICIENT_DATA"
    assert al.evaluate(alarm, gauge(), T0) is None  # no data, TreatMissingData=ignore
    state, reason = al.evaluate(alarm, gauge((T0 - 5, 1)), T0) or ("", "")
    assert state == "ALARM" and "greater than or equal to the threshold (1)" in reason
    alarm.state = state
    assert al.evaluate(alarm, gauge((T0 - 5, 1)), T0) is None  # unchanged
    assert (al.evaluate(alarm, gauge((T0 - 5, 0)), T0) or ("",))[0] == "OK"
    other = gauge((T0 - 5, 1)).set_column(2, "integration_arn", pa.array([OTHER]))
    assert al.evaluate(alarm, other, T0) is None  # another integration's gauge


def cdc_rows(*values: tuple[float, str, float]) -> pa.Table:
    rows = [m.datapoint(n, v, at, ARN, "CDC", "t") for at, n, v in values]
    return pa.Table.from_pylist(rows, schema=m.SCHEMA)


def test_cdc_rows_alarm_sums_inserts_updates_deletes_per_minute() -> None:
    alarm = cdc_alarm()
    assert alarm.params["EvaluationPeriods"] == 3 and alarm.params["Threshold"] == 10
    busy = cdc_rows(
        *((T0 - 170 + 60 * i, name, 4) for i in range(3) for name in m.METRIC_NAMES[:3])
    )
    assert al.period_values(alarm, busy, T0) == [12.0, 12.0, 12.0]
    assert (al.evaluate(alarm, busy, T0) or ("",))[0] == "OK"
    slow = cdc_rows((T0 - 170, "InsertCount", 3), (T0 - 50, "DeleteCount", 1))
    assert al.period_values(alarm, slow, T0) == [3.0, None, 1.0]
    assert (al.evaluate(alarm, slow, T0) or ("",))[0] == "ALARM"  # missing = breaching
    assert (al.evaluate(alarm, cdc_rows(), T0) or ("",))[0] == "ALARM"


def test_periods_before_the_alarm_existed_never_breach() -> None:
    alarm = cdc_alarm(created=T0 - 30)
    assert al.evaluate(alarm, cdc_rows(), T0) is None  # still INSUFFICIENT_DATA, not ALARM
    assert (al.evaluate(alarm, cdc_rows(), T0 + 200) or ("",))[0] == "ALARM"


def test_datapoints_to_alarm() -> None:
    params = al.recommended_alarms(ARN, "x")[0]
    params.update(EvaluationPeriods=3, DatapointsToAlarm=2, TreatMissingData="missing")
    alarm = al.parse_alarm(params, now=T0 - 3600)
    one = gauge((T0 - 130, 1), (T0 - 70, 0), (T0 - 10, 0))
    assert (al.evaluate(alarm, one, T0) or ("",))[0] == "OK"
    two = gauge((T0 - 130, 1), (T0 - 70, 0), (T0 - 10, 1))
    assert (al.evaluate(alarm, two, T0) or ("",))[0] == "ALARM"
    alarm.state = "OK"
    assert (al.evaluate(alarm, gauge(), T0) or ("",))[0] == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(
    "change",
    [
        {"ComparisonOperator": "Bigger"},
        {"EvaluationPeriods": 0},
        {"DatapointsToAlarm": 5},
        {"Statistic": "p50"},
        {"Period": -1},
        {"TreatMissingData": "whatever"},
        {"Threshold": None},
    ],
)
def test_invalid_alarms(change: dict[str, Any]) -> None:
    params = al.recommended_alarms(ARN)[0]
    params.update(change)
    with pytest.raises(AwsError) as err:
        al.parse_alarm(params)
    assert err.value.code == "ValidationError"


def test_only_sums_of_ids_are_supported_as_metric_math() -> None:
    params = al.recommended_alarms(ARN)[1]
    params["Metrics"][-1]["Expression"] = "m1*2"
    with pytest.raises(AwsError, match="not supported"):
        al.parse_alarm(params)


def test_describe_and_state_change_shapes() -> None:
    alarm = status_alarm()
    described = al.describe(alarm, "us-east-1", "123456789012")
    assert described["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x-status"
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert (described["Namespace"], described["MetricName"]) == (m.STATUS_NAMESPACE, m.UNHEALTHY)
    old = (alarm.state, alarm.reason, alarm.updated)
    alarm.state, alarm.reason = "ALARM", "because"
    detail = al.state_change_detail(alarm, *old)
    assert detail["state"]["value"] == "ALARM"
    assert detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] == {
        "integrationArn": ARN
    }
