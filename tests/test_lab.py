"""The Lab itself: fix-it-for-me, persistence, the home lock, events, state guards, FAILED."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ACCOUNT, REGION, Harness, catalog_policy_all, unique

from zetl_nb import HomeLockedError, Lab, ReadOnlyLabError
from zetl_nb.core.states import IntegrationState


def local(lab: Lab) -> Harness:
    return Harness("local", lab.home, {s: lab.client(s) for s in ("glue", "rds", "dynamodb")}, lab)


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    with Lab(tmp_path / "home", prerequisite_recheck_seconds=0.2) as lab:
        yield lab


def test_fix_it_for_me_shows_the_plan_then_applies_it(lab: Lab) -> None:
    h = local(lab)
    table = h.table(ready=False)
    db = h.database(ready=False)
    arn = h.integration(SourceArn=table, TargetArn=db)["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION")
    plan = lab.fix_prerequisites(arn)
    assert [p["Operation"] for p in plan] == [
        "UpdateContinuousBackups",
        "PutResourcePolicy",
        "UpdateDatabase",
        "CreateIntegrationResourceProperty",
        "PutResourcePolicy",
    ]
    assert all(p["Description"] and p["Parameters"] for p in plan)
    # Showing the plan changed nothing.
    pitr = h.ddb.describe_continuous_backups(TableName=table.rsplit("/", 1)[1])
    assert (
        pitr["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
            "PointInTimeRecoveryStatus"
        ]
        == "DISABLED"
    )
    assert lab.integration(arn).status == "NEEDS_ATTENTION"
    lab.fix_prerequisites(arn, apply=True)
    assert lab.wait_for_status(arn, "ACTIVE", timeout=10).errors == []
    assert lab.fix_prerequisites(arn) == []


def test_fix_keeps_existing_policy_statements(lab: Lab) -> None:
    import json

    h = local(lab)
    table = h.table(ready=False)
    other = {
        "Sid": "Mine",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "dynamodb:GetItem",
        "Resource": table,
    }
    h.ddb.put_resource_policy(
        ResourceArn=table, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other]})
    )
    arn = h.integration(SourceArn=table)["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION")
    lab.fix_prerequisites(arn, apply=True)
    lab.wait_for_status(arn, "ACTIVE")
    policy = json.loads(h.ddb.get_resource_policy(ResourceArn=table)["Policy"])
    assert "Mine" in [s.get("Sid") for s in policy["Statement"]]


def test_state_history_and_events(lab: Lab) -> None:
    events: list[Any] = []
    lab.bus.subscribe(events.append, kind="state")
    h = local(lab)
    arn = h.integration()["IntegrationArn"]
    lab.wait_for_status(arn, "ACTIVE")
    h.glue.delete_integration(IntegrationIdentifier=arn)
    lab.wait_for_status(arn, "deleted")
    statuses = [c.status for c in lab.store.history(arn)]
    assert statuses == ["CREATING", "ACTIVE", "DELETING", "deleted"]
    times = [c.at for c in lab.store.history(arn)]
    assert times == sorted(times)
    seen = [(e.detail["From"], e.detail["To"]) for e in events if e.detail["IntegrationArn"] == arn]
    assert seen == [
        (None, "CREATING"),
        ("CREATING", "ACTIVE"),
        ("ACTIVE", "DELETING"),
        ("DELETING", "deleted"),
    ]


def test_state_guards_while_the_engine_is_paused(lab: Lab) -> None:
    h = local(lab)
    lab.engine.stop()
    arn = h.integration()["IntegrationArn"]
    with pytest.raises(h.glue.exceptions.InvalidIntegrationStateFault) as exc:
        h.glue.modify_integration(IntegrationIdentifier=arn, Description="x")
    assert "CREATING" in str(exc.value)
    assert h.glue.delete_integration(IntegrationIdentifier=arn)["Status"] == "DELETING"
    with pytest.raises(h.glue.exceptions.InvalidIntegrationStateFault):
        h.glue.delete_integration(IntegrationIdentifier=arn)
    lab.engine.start()
    lab.wait_for_status(arn, "deleted")


def test_needs_attention_past_the_retry_window_fails(tmp_path: Path) -> None:
    with Lab(
        tmp_path / "h", prerequisite_recheck_seconds=0.1, retry_window_days=0.5 / 86400
    ) as lab:
        h = local(lab)
        arn = h.integration(SourceArn=h.table(ready=False))["IntegrationArn"]
        lab.wait_for_status(arn, "NEEDS_ATTENTION")
        failed = lab.wait_for_status(arn, "FAILED", timeout=10)
        assert failed.errors and failed.errors[0]["ErrorCode"].startswith("Source")


def test_quota_per_target(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from zetl_nb.engine import control

    monkeypatch.setattr(control, "MAX_PER_TARGET", 3)
    h = local(lab)
    db = h.database()
    for _ in range(3):
        h.integration(TargetArn=db)
    with pytest.raises(ClientError) as exc:
        h.integration(TargetArn=db)
    assert exc.value.response["Error"]["Code"] == "ResourceNumberLimitExceededException"
    assert "per target" in str(exc.value)


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Lab(home, prerequisite_recheck_seconds=0.2) as lab:
        h = local(lab)
        table, db = h.table(), h.database()
        arn = h.integration(SourceArn=table, TargetArn=db, Description="keep me")["IntegrationArn"]
        lab.wait_for_status(arn, "ACTIVE")
        h.glue.create_integration_table_properties(
            ResourceArn=db, TableName="t", TargetTableConfig={"UnnestSpec": "NOUNNEST"}
        )
        h.ddb.put_item(TableName=table.rsplit("/", 1)[1], Item={"pk": {"S": "k1"}})
        lab.add_database("shop", "mysql://root@127.0.0.1:3306/shop")
    with Lab(home, prerequisite_recheck_seconds=0.2) as lab:
        h = local(lab)
        integ = h.glue.describe_integrations(IntegrationIdentifier=arn)["Integrations"][0]
        assert integ["Description"] == "keep me" and integ["Status"] == "ACTIVE"
        assert h.glue.get_integration_table_properties(ResourceArn=db, TableName="t")[
            "TargetTableConfig"
        ] == {"UnnestSpec": "NOUNNEST"}
        item = h.ddb.get_item(TableName=table.rsplit("/", 1)[1], Key={"pk": {"S": "k1"}})
        assert item["Item"] == {"pk": {"S": "k1"}}
        assert lab.databases()["shop"] == f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:shop"
        assert h.glue.get_resource_policy()["PolicyInJson"]
        # Still meets its prerequisites after the restart (PITR and policy came back too).
        lab.engine.recheck_all()
        time.sleep(0.5)
        assert lab.integration(arn).status == "ACTIVE"


def test_one_writer_per_home_and_read_only_attach(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, zetl_nb
        lab = zetl_nb.Lab({str(home)!r})
        lab.client("glue").create_database(DatabaseInput={{"Name": "shared"}})
        print("ready", flush=True)
        sys.stdin.readline()
        lab.close()
    """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(HomeLockedError) as exc:
            Lab(home)
        assert str(holder.pid) in str(exc.value) and "read_only=True" in str(exc.value)
        with Lab(home, read_only=True) as reader:
            glue = reader.client("glue")
            assert glue.get_database(Name="shared")["Database"]["Name"] == "shared"
            with pytest.raises(ReadOnlyLabError):
                glue.create_database(DatabaseInput={"Name": unique("nope")})
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    with Lab(home) as lab:  # released: a new writer may open it
        assert lab.client("glue").get_database(Name="shared")


def test_add_database_validation(lab: Lab) -> None:
    from zetl_nb import ConfigError

    with pytest.raises(ConfigError, match="postgresql://"):
        lab.add_database("shop", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="letters"):
        lab.add_database("bad name", "mysql://root@127.0.0.1/shop")
    arn = lab.add_database("shop", "postgresql://postgres@127.0.0.1:5432/postgres")
    assert lab.databases()["shop"] == arn
    assert lab.database_url("shop").startswith("postgresql://")


def test_databases_from_config_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "zetl.toml").write_text(
        'region = "eu-west-1"\n[databases.orders]\nurl = "mysql://root@127.0.0.1:3306/o"\n'
    )
    with Lab(home) as lab:
        assert lab.databases()["orders"] == "arn:aws:rds:eu-west-1:123456789012:cluster:orders"


def test_integration_states_enum_is_exported() -> None:
    assert IntegrationState("NEEDS_ATTENTION").rds == "needs_attention"


def test_catalog_policy_helper_is_accepted(lab: Lab) -> None:
    import json

    out = lab.client("glue").put_resource_policy(PolicyInJson=json.dumps(catalog_policy_all()))
    assert out["PolicyHash"]


def test_embedded_postgres_starts_on_demand_and_stops_with_the_lab(tmp_path: Path) -> None:
    import psycopg2

    with Lab(tmp_path / "home") as lab:
        assert lab._postgres is None  # registered, not started
        url = lab.database_url("zetl-aurora-postgres")
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            assert cur.fetchone() == ("logical",)
        pid = lab.postgres.pid
    stat = Path(f"/proc/{pid}/stat")
    # Gone, or a zombie waiting for init to reap it (pg_ctl daemonizes the postmaster).
    assert not stat.exists() or stat.read_text().split()[2] == "Z"


def test_dynamodb_streams_client_is_real_boto3(lab: Lab) -> None:
    h = local(lab)
    table = h.table(ready=False)
    name = table.rsplit("/", 1)[1]
    h.ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    streams = lab.client("dynamodbstreams")
    stream_arn = h.ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["eventName"] for r in streams.get_records(ShardIterator=it)["Records"]] == ["INSERT"]


def test_real_aws_mode_uses_boto3_endpoints(tmp_path: Path) -> None:
    with Lab(tmp_path / "home", dynamodb_endpoint="aws", region="eu-west-1") as lab:
        assert lab.dynamodb_url == "https://dynamodb.eu-west-1.amazonaws.com"
        for service in ("dynamodb", "dynamodbstreams", "s3"):
            url = lab.client(service).meta.endpoint_url
            assert url.startswith("https://") and "amazonaws.com" in url, url
        assert lab._dynamodb is None  # no embedded endpoint was started
