"""Monitoring over real replication: a Lab, its embedded PostgreSQL, real integrations."""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from monitor_support import ACCOUNT, REGION, SourceDB, end_integrations, pg, uid

from zetl_nb import Lab
from zetl_nb.monitor import ZERO_ETL_RULE, AlarmWarning
from zetl_nb.monitor import views as v

__all__ = ["end_integrations", "pg"]

pytestmark = pytest.mark.usefixtures("end_integrations")


def rows_of(table: pa.Table, **equal: Any) -> list[dict[str, Any]]:
    for column, value in equal.items():
        table = table.filter(pc.fill_null(pc.equal(table.column(column), value), False))
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def seeded(pg: SourceDB, n: int = 50) -> tuple[str, str, str]:
    """A source table with ``n`` rows, replicated: (source table, integration ARN, target)."""
    t = uid()
    pg.pk_table(t)
    pg.execute(*(f"INSERT INTO {t} VALUES ({i}, {i}, 1.00, 'r{i}')" for i in range(1, n + 1)))
    arn = pg.integrate(t)
    pg.lab.wait(arn, timeout=60)
    return t, arn, pg.target_name(t)


def test_status_tables_count_what_was_applied(pg: SourceDB) -> None:
    t, arn, target = seeded(pg)
    pg.execute(
        f"INSERT INTO {t} VALUES (100, 1, 1.00, 'new'), (101, 1, 1.00, 'new')",
        f"UPDATE {t} SET qty = 0 WHERE id <= 3",
        f"DELETE FROM {t} WHERE id = 50",
    )
    pg.lab.wait(arn, timeout=60)
    pg.lab.monitor.flush()
    status = pg.lab.monitor.status("lakehouse")  # the Iceberg table itself, for this target
    mine = rows_of(status, integration_arn=arn, table_name=target)
    full = [r for r in mine if r["operation"] == "FULL_LOAD"]
    cdc = [r for r in mine if r["operation"] == "CDC"]
    assert [(r["status"], r["load_type"], r["inserted_rows"]) for r in full] == [
        ("SUCCEEDED", "FULL", 50)
    ]
    counts = ("inserted_rows", "updated_rows", "deleted_rows")
    totals = tuple(sum(r[k] for r in cdc) for k in counts)
    assert totals == (2, 3, 1)
    assert all(r["load_type"] == "CDC" and r["bytes_ingested"] > 0 for r in cdc)
    assert all(r["start_time"] <= r["end_time"] and r["source_seq"] for r in full + cdc)
    assert json.loads(cdc[-1]["source_position"])  # the position the commit carries
    history = sorted(rows_of(status, integration_arn=arn), key=lambda r: r["end_time"])
    states = [r["status"] for r in history if r["operation"] == "INTEGRATION_STATE"]
    assert states[:2] == ["CREATING", "ACTIVE"]
    # The same counts through the Redshift view, and the target's row count in svv_.
    tables = pg.lab.monitor.system_tables()
    activity = rows_of(tables["sys_integration_table_activity"], table_name=target)
    assert sum(r["inserted_rows"] for r in activity) == 52
    assert sum(r["updated_rows"] for r in activity) == 3
    assert sum(r["deleted_rows"] for r in activity) == 1
    state = rows_of(tables["svv_integration_table_state"], table_name=target)[0]
    assert (state["table_state"], state["table_rows"]) == ("Synced", len(pg.rows(t)))
    assert state["table_last_replicated_checkpoint"] == cdc[-1]["source_position"]


def test_views_have_aws_columns_and_states(pg: SourceDB) -> None:
    _, arn, target = seeded(pg, 5)
    tables = pg.lab.monitor.system_tables()
    for name, schema in v.SCHEMAS.items():
        assert tables[name].schema == schema, name
    for name in ("zetl_logs", "zetl_metrics", "zetl_events", "zetl_lag"):
        assert name in tables
    integration_id = arn.rsplit(":", 1)[1]
    row = rows_of(tables["svv_integration"], integration_id=integration_id)[0]
    assert row["state"] == "CdcRefreshState"  # a Glue-database target is connected from the start
    assert (row["source"], row["source_database"], row["target_database"]) == (
        "PostgreSQL",
        "postgres",
        "lakehouse",
    )
    assert (row["total_tables_replicated"], row["total_tables_failed"]) == (1, 0)
    assert row["current_lag"] is not None and row["current_lag"] >= 0
    assert json.loads(row["last_replicated_checkpoint"])
    changes = rows_of(tables["sys_integration_table_state_change"], table_name=target)
    assert [c["new_state"] for c in changes] == ["ResyncInitiated", "Synced"]
    activity = rows_of(tables["sys_integration_activity"], integration_id=integration_id)
    assert [(a["checkpoint_type"], a["modified_tables"]) for a in activity] == [("snapshot", 1)]


def test_logs_metrics_and_events_follow_the_guide(pg: SourceDB) -> None:
    completed: list[dict[str, Any]] = []
    pg.lab.monitor.subscribe(
        {
            "source": ["aws.glue-zero-etl"],
            "detail-type": [{"prefix": "AWS Glue Zero ETL Ingestion"}],
        },
        completed.append,
    )
    t, arn, target = seeded(pg, 10)
    pg.execute(f"INSERT INTO {t} VALUES (11, 1, 1.00, 'x')")
    pg.lab.wait(arn, timeout=60)
    integration_id = arn.rsplit(":", 1)[1]
    monitor = pg.lab.monitor
    # Logs: one stream per integration, the guide's message types and fields.
    out = monitor.get_log_events(
        logGroupName="/aws-glue/zeroETL-integrations/logs/", logStreamName=integration_id
    )
    messages = [json.loads(e["message"]) for e in out["events"]]
    kinds = [m["messageType"] for m in messages]
    assert kinds[:3] == ["IngestionStarted", "IngestionProcessingStats", "IngestionCompleted"]
    stats = [m["details"] for m in messages if m["messageType"] == "IngestionProcessingStats"]
    assert [(s["insert_count"], s["update_count"], s["delete_count"]) for s in stats] == [
        (10, 0, 0),
        (1, 0, 0),
    ]
    done = [m for m in messages if m["messageType"] == "IngestionCompleted"][-1]
    assert done["integrationArn"] == arn and int(done["details"]["lastSyncedTimestamp"]) > 0
    # Metrics: AWS/Glue/ZeroETL with integrationArn, loadType and tableName.
    now = time.time()
    for load, expected in (("FULL", 10.0), ("CDC", 1.0)):
        got = monitor.get_metric_statistics(
            Namespace="AWS/Glue/ZeroETL",
            MetricName="InsertCount",
            Dimensions=[
                {"Name": "integrationArn", "Value": arn},
                {"Name": "loadType", "Value": load},
                {"Name": "tableName", "Value": target},
            ],
            StartTime=datetime.fromtimestamp(now - 600, tz=UTC),
            EndTime=datetime.fromtimestamp(now + 1, tz=UTC),
            Period=3600,
            Statistics=["Sum"],
        )
        assert [d["Sum"] for d in got["Datapoints"]] == [expected], load
    # Events: EventBridge's shape, delivered to the matching subscriber, kept as a table.
    mine = [e for e in completed if e["detail"]["integrationArn"] == arn]
    types = Counter(e["detail-type"] for e in mine)
    assert types["AWS Glue Zero ETL Ingestion Completed"] == 2
    assert types["AWS Glue Zero ETL Ingestion In Progress"] >= 1  # the copy's progress
    first = mine[0]
    assert set(first) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (first["account"], first["region"], first["resources"]) == (ACCOUNT, REGION, [arn])
    assert all(e["detail"]["tableName"] == target for e in mine)
    kept = monitor.events(ZERO_ETL_RULE)
    assert {e["id"] for e in mine} <= {e["id"] for e in kept}
    table = monitor.system_tables()["zetl_events"]
    assert len(rows_of(table, integration_arn=arn)) >= len(mine)


def test_a_failed_table_is_logged_counted_and_announced(pg: SourceDB) -> None:
    good, bad = uid(), uid("nopk")
    pg.pk_table(good)
    pg.execute(f"CREATE TABLE {bad} (id int, note text)", f"INSERT INTO {bad} VALUES (1, 'a')")
    failures: list[dict[str, Any]] = []
    pg.lab.monitor.subscribe(
        {"detail-type": ["AWS Glue Zero ETL Ingestion Failed"]}, failures.append
    )
    arn = pg.integrate(good, bad)
    pg.lab.wait(arn, timeout=60)
    tables = pg.lab.monitor.system_tables()
    target = pg.target_name(bad)
    logs = rows_of(tables["zetl_logs"], integration_arn=arn, message_type="IngestionFailed")
    assert [(r["table_name"], r["error_code"]) for r in logs] == [(target, "client_error")]
    assert "primary key" in logs[0]["error_message"]
    assert [e["detail"]["tableName"] for e in failures if e["resources"] == [arn]] == [target]
    change = rows_of(tables["sys_integration_table_state_change"], table_name=target)[-1]
    assert change["new_state"] == "Failed" and "primary key" in change["state_change_reason"]
    svv = rows_of(tables["svv_integration"], integration_id=arn.rsplit(":", 1)[1])[0]
    assert (svv["total_tables_replicated"], svv["total_tables_failed"]) == (1, 1)
    failed = rows_of(tables["zetl_metrics"], metric_name="IngestionFailed", integration_arn=arn)
    assert [r["value"] for r in failed] == [1.0]


def test_resync_is_recorded(pg: SourceDB) -> None:
    t, arn, target = seeded(pg, 3)
    resynced: list[dict[str, Any]] = []
    pg.lab.monitor.subscribe({"detail-type": [{"suffix": "Integration Resynced"}]}, resynced.append)
    pg.execute(
        f"ALTER TABLE {t} ALTER COLUMN qty TYPE text USING qty::text",
        f"INSERT INTO {t} VALUES (4, 'four', 4.00, 'txt')",
    )
    deadline = time.monotonic() + 60
    while not resynced and time.monotonic() < deadline:
        time.sleep(0.1)
        pg.lab.monitor.flush()
    pg.lab.wait(arn, timeout=60)
    assert [e["detail"]["tableName"] for e in resynced] == [target]
    tables = pg.lab.monitor.system_tables()
    states = [
        r["new_state"]
        for r in rows_of(tables["sys_integration_table_state_change"], table_name=target)
    ]
    assert states[-3:] == ["ResyncRequired", "ResyncInitiated", "Synced"]
    ops = [r["operation"] for r in rows_of(tables["zetl_status"], table_name=target)]
    assert "RESYNC" in ops and ops.count("FULL_LOAD") == 2


def test_status_alarm_fires_as_an_event_and_a_notice(pg: SourceDB) -> None:
    glue = pg.lab.client("glue")
    db = uid("bare")  # no integration resource property, no catalog policy: NEEDS_ATTENTION
    glue.create_database(DatabaseInput={"Name": db, "LocationUri": f"file://{pg.lab.home}/{db}"})
    attention: list[dict[str, Any]] = []
    alarms: list[dict[str, Any]] = []
    monitor = pg.lab.monitor
    monitor.subscribe(
        {"detail-type": ["AWS Glue Zero ETL Integration Needs Attention"]}, attention.append
    )
    monitor.subscribe({"source": ["aws.cloudwatch"]}, alarms.append)
    arn = pg.lab.client("rds").create_integration(
        IntegrationName=uid("att").replace("_", "-"),
        SourceArn=pg.cluster_arn,
        TargetArn=f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{db}",
        DataFilter=pg.filter_for("whatever"),
    )["IntegrationArn"]
    pg.lab.wait_for_status(arn, "needs_attention", timeout=30)
    names = monitor.enable_recommended_alarms(arn)
    assert len(names) == 2 and names[0].endswith("-status")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        changes = monitor.evaluate_alarms()
    fired = {c["detail"]["alarmName"]: c["detail"]["state"]["value"] for c in changes}
    assert fired[names[0]] == "ALARM"
    assert any(issubclass(w.category, AlarmWarning) and names[0] in str(w.message) for w in caught)
    monitor.flush()
    assert [e["detail"]["state"]["value"] for e in alarms] == ["ALARM"]
    assert alarms[0]["detail-type"] == "CloudWatch Alarm State Change"
    assert attention and attention[0]["detail"]["integrationArn"] == arn
    described = monitor.describe_alarms(AlarmNames=[names[0]])["MetricAlarms"][0]
    assert described["StateValue"] == "ALARM" and described["Threshold"] == 1.0
    # The CDC alarm: no CDC rows for all its periods (all after its creation) → ALARM.
    with pytest.warns(AlarmWarning, match="cdc-rows"):
        later = monitor.evaluate_alarms(now=time.time() + 6 * 60)
    assert {c["detail"]["alarmName"]: c["detail"]["state"]["value"] for c in later}.get(
        names[1]
    ) == "ALARM"


def test_read_only_lab_builds_the_tables_from_disk(pg: SourceDB) -> None:
    _, arn, target = seeded(pg, 7)
    pg.lab.monitor.flush()
    time.sleep(1.2)  # the writer saves its lag sample every second
    writer = pg.lab.monitor.system_tables()
    with Lab(pg.lab.home, read_only=True) as ro:
        assert ro.monitor._thread is None
        reader = ro.monitor.system_tables()
    for name in (
        "sys_integration_table_activity",
        "sys_integration_table_state_change",
        "zetl_logs",
        "zetl_events",
        "svv_integration_table_state",
    ):
        assert rows_of(reader[name], table_name=target) == rows_of(writer[name], table_name=target)
    lag = rows_of(reader["zetl_lag"], integration_arn=arn)
    assert {r["table_name"] for r in lag} == {None, target}
    assert rows_of(reader["svv_integration"], integration_id=arn.rsplit(":", 1)[1])


def test_create_database_from_integration_names_the_target(pg: SourceDB) -> None:
    _, arn, target = seeded(pg, 2)
    integration_id = arn.rsplit(":", 1)[1]
    pg.lab.monitor.mark_database_created(integration_id, "analytics", "postgres")
    assert pg.lab.monitor.databases()[integration_id] == "analytics"
    tables = pg.lab.monitor.system_tables()
    row = rows_of(tables["svv_integration"], integration_id=integration_id)[0]
    assert (row["target_database"], row["state"]) == ("analytics", "CdcRefreshState")
    activity = rows_of(tables["sys_integration_table_activity"], table_name=target)
    assert {a["target_database"] for a in activity} == {"analytics"}
    with Lab(pg.lab.home, read_only=True) as ro:  # the mark is kept in the home
        assert ro.monitor.databases()[integration_id] == "analytics"
    pg.lab.monitor.mark_database_dropped(integration_id)
    row = rows_of(pg.lab.monitor.system_tables()["svv_integration"], integration_id=integration_id)
    assert row[0]["target_database"] == "lakehouse"
