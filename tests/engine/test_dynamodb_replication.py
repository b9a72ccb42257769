"""DynamoDB → Iceberg through the public API: real boto3 over HTTP against the moto endpoint.

Scan + stream hand-off, RefreshInterval on the Lab clock with ``refresh_now``, INSERT / MODIFY /
REMOVE, schema drift, restart from the checkpoint without loss or duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from repl_support import TARGET_ARN, prepare_target, uid

from zetl_nb import Lab
from zetl_nb.sources import dynamodb_source


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "home", prerequisite_recheck_seconds=0.2, time_scale=60) as lab:
        prepare_target(lab)
        yield lab


def make_table(lab: Lab, items: int = 0) -> tuple[str, str]:
    ddb = lab.client("dynamodb")
    name = uid("Products")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "product_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "product_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in range(items):
        ddb.put_item(TableName=name, Item=item(i))
    return name, ddb.describe_table(TableName=name)["Table"]["TableArn"]


def item(i: int, price: float | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "product_id": {"S": f"p{i:04d}"},
        "price": {"N": str(price if price is not None else i + 0.5)},
        "details": {"M": {"color": {"S": "red"}, "size": {"N": str(i)}}},
    }
    out.update(extra)
    return out


def integrate(lab: Lab, table_arn: str, **config: str) -> str:
    glue = lab.client("glue")
    arn: str = glue.create_integration(
        IntegrationName=uid("ddb").replace("_", "-"),
        SourceArn=table_arn,
        TargetArn=TARGET_ARN,
        **({"IntegrationConfig": config} if config else {}),
    )["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=20)  # PITR and the resource policy
    lab.fix_prerequisites(arn, apply=True)
    lab.wait_for_status(arn, "ACTIVE", timeout=20)
    return arn


def sync(lab: Lab, arn: str) -> None:
    """Refresh now (changes wait for the RefreshInterval otherwise) and wait until applied."""
    lab.refresh_now(arn)
    lab.wait(arn, timeout=60)


def rows(lab: Lab, table: str) -> dict[str, float]:
    target = "lakehouse." + table.lower()
    return dict(lab.sql(f"SELECT product_id, price FROM {target} ORDER BY 1").fetchall())


def test_load_then_changes_after_refresh(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=30)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    assert rows(lab, name) == {f"p{i:04d}": i + 0.5 for i in range(30)}
    ddb = lab.client("dynamodb")
    ddb.put_item(TableName=name, Item=item(100))
    ddb.put_item(TableName=name, Item=item(3, price=99.0))
    ddb.delete_item(TableName=name, Key={"product_id": {"S": "p0004"}})
    sync(lab, arn)
    got = rows(lab, name)
    assert got["p0100"] == 100.5 and got["p0003"] == 99.0 and "p0004" not in got
    assert len(got) == 30


def test_changes_wait_for_the_refresh_interval(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=2)
    arn = integrate(lab, table_arn, RefreshInterval="15")  # 15 s on a 60x Lab clock
    sync(lab, arn)
    lab.client("dynamodb").put_item(TableName=name, Item=item(7))
    time.sleep(2)
    assert "p0007" not in rows(lab, name)  # not before the next refresh
    sync(lab, arn)
    assert "p0007" in rows(lab, name)


def test_new_attributes_add_columns(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=2)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    lab.client("dynamodb").put_item(TableName=name, Item=item(9, rating={"N": "4.5"}))
    sync(lab, arn)
    target = "lakehouse." + name.lower()
    got = lab.sql(f"SELECT product_id, rating FROM {target} ORDER BY 1").fetchall()
    assert got == [("p0000", None), ("p0001", None), ("p0009", 4.5)]


def test_restart_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=60) as lab:
        prepare_target(lab)
        name, table_arn = make_table(lab, items=10)
        arn = integrate(lab, table_arn)
        sync(lab, arn)
        ddb = lab.client("dynamodb")
        ddb.put_item(TableName=name, Item=item(1, price=11.0))
        lab.refresh_now(arn)
        lab.wait(arn, timeout=60)
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=60) as lab:
        ddb = lab.client("dynamodb")
        ddb.put_item(TableName=name, Item=item(2, price=22.0))
        ddb.put_item(TableName=name, Item=item(50))
        lab.refresh_now(arn)
        lab.wait(arn, timeout=60)
        got = rows(lab, name)
        target = "lakehouse." + name.lower()
        assert lab.sql(f"SELECT count(*), count(DISTINCT product_id) FROM {target}").fetchall() == [
            (11, 11)
        ]
        assert got["p0001"] == 11.0 and got["p0002"] == 22.0 and got["p0050"] == 50.5


DAY_OF_CREATED = {"FieldName": "created", "FunctionSpec": "day", "ConversionSpec": "iso"}


def partition_by_day_of_created(lab: Lab, table: str) -> None:
    lab.client("glue").create_integration_table_properties(
        ResourceArn=TARGET_ARN,
        TableName=table,
        TargetTableConfig={"PartitionSpec": [DAY_OF_CREATED]},
    )


def iceberg_table(lab: Lab, name: str) -> Any:
    return lab.catalog.catalog.load_table(("lakehouse", name.lower()))


def test_default_partitioning_buckets_the_hash_key(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=20)
    sync(lab, integrate(lab, table_arn))
    spec = iceberg_table(lab, name).spec()
    assert [(f.name, str(f.transform)) for f in spec.fields] == [("product_id_bucket", "bucket[8]")]
    assert len(rows(lab, name)) == 20


def test_partition_spec_with_iso_conversion(lab: Lab) -> None:
    name, table_arn = make_table(lab)
    ddb = lab.client("dynamodb")
    for i, day in enumerate(["2024-03-01T10:00:00Z", "2024-03-01T23:00:00+02:00", "2024-03-02"]):
        ddb.put_item(TableName=name, Item=item(i, created={"S": day}))
    partition_by_day_of_created(lab, name)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    table = iceberg_table(lab, name)
    assert [str(f.transform) for f in table.spec().fields] == ["day"]
    target = "lakehouse." + name.lower()
    got = lab.sql(f"SELECT product_id, created FROM {target} ORDER BY 1").fetchall()
    assert [str(c.astimezone(UTC)) for _, c in got] == [
        "2024-03-01 10:00:00+00:00",
        "2024-03-01 21:00:00+00:00",
        "2024-03-02 00:00:00+00:00",
    ]
    days = {t.file.partition[0] for t in table.scan().plan_files()}
    assert len(days) == 2  # 2024-03-01 and 2024-03-02


def test_failed_conversion_needs_attention(lab: Lab) -> None:
    name, table_arn = make_table(lab)
    lab.client("dynamodb").put_item(TableName=name, Item=item(1, created={"S": "yesterday"}))
    partition_by_day_of_created(lab, name)
    arn = integrate(lab, table_arn)
    integ = lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=30)
    errors = str(integ.errors)
    assert "SourcePartitionConversionFailed" in errors and "yesterday" in errors


def test_changed_unnest_spec_resyncs_the_table(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=3)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    target = "lakehouse." + name.lower()
    assert "details.color" in lab.sql(f"SELECT * FROM {target}").to_arrow().column_names
    lab.client("glue").create_integration_table_properties(
        ResourceArn=TARGET_ARN, TableName=name, TargetTableConfig={"UnnestSpec": "NOUNNEST"}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # picked up at the next rediscovery (every 5 s)
        columns = lab.sql(f"SELECT * FROM {target}").to_arrow().column_names
        if columns == ["product_id", "value"]:
            break
        time.sleep(0.5)
    assert columns == ["product_id", "value"]
    sync(lab, arn)
    got = lab.sql(f"SELECT value.price.N FROM {target} ORDER BY product_id").fetchall()
    assert got == [(0.5,), (1.5,), (2.5,)]


def test_continuous_sync_false_loads_once(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=5)
    glue = lab.client("glue")
    arn: str = glue.create_integration(
        IntegrationName=uid("once").replace("_", "-"),
        SourceArn=table_arn,
        TargetArn=TARGET_ARN,
        IntegrationConfig={"ContinuousSync": False},
    )["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=20)
    lab.fix_prerequisites(arn, apply=True)
    lab.wait_for_status(arn, "ACTIVE", timeout=20)
    lab.wait(arn, timeout=60)
    assert len(rows(lab, name)) == 5
    lab.client("dynamodb").put_item(TableName=name, Item=item(99))
    lab.refresh_now(arn)
    time.sleep(1.5)
    assert len(rows(lab, name)) == 5  # one load, no change capture


def test_an_attribute_name_with_a_colon_fails_the_integration(lab: Lab) -> None:
    name, table_arn = make_table(lab)
    lab.client("dynamodb").put_item(TableName=name, Item=item(1, **{"a:b": {"S": "x"}}))
    arn = integrate(lab, table_arn)
    integ = lab.wait_for_status(arn, "FAILED", timeout=30)
    assert integ.errors[0]["ErrorCode"] == "SourceSchemaNotSupported"
    assert "a:b" in integ.errors[0]["ErrorMessage"]


def test_stream_records_older_than_the_scan_are_not_applied_again(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=10)
    ddb = lab.client("dynamodb")
    ddb.put_item(TableName=name, Item=item(0, price=7.0))
    ddb.delete_item(TableName=name, Key={"product_id": {"S": "p0009"}})
    time.sleep(2.5)  # older than the scan by more than the hand-off margin
    applied: list[dict[str, Any]] = []
    lab.bus.subscribe(lambda event: applied.append(event.detail), "batch")
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    assert rows(lab, name)["p0000"] == 7.0 and len(rows(lab, name)) == 9
    assert applied == []  # the 12 stream records were all in the copy
    ddb.put_item(TableName=name, Item=item(50))
    sync(lab, arn)
    assert [(e["Inserted"], e["Updated"], e["Deleted"]) for e in applied] == [(1, 0, 0)]


def test_records_written_just_before_the_copy_count_once(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wide hand-off margin puts every record of this test inside the replay window, and the
    # stream reads them all again (as after a restart: no LATEST iterators from the copy).
    monkeypatch.setattr(dynamodb_source, "HANDOFF_MARGIN_S", 60.0)
    monkeypatch.setattr(dynamodb_source, "ITERATOR_FRESH_S", 0.0)
    name, table_arn = make_table(lab, items=10)
    ddb = lab.client("dynamodb")
    ddb.put_item(TableName=name, Item=item(0, price=7.0))
    ddb.delete_item(TableName=name, Key={"product_id": {"S": "p0009"}})
    applied: list[dict[str, Any]] = []
    lab.bus.subscribe(lambda event: applied.append(event.detail), "batch")
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    assert rows(lab, name)["p0000"] == 7.0 and len(rows(lab, name)) == 9

    def totals() -> tuple[int, int, int]:
        return tuple(sum(e[k] for e in applied) for k in ("Inserted", "Updated", "Deleted"))  # type: ignore[return-value]

    assert totals() == (0, 0, 0)  # the 12 records replayed, all already in the copy
    ddb.put_item(TableName=name, Item=item(50))
    ddb.put_item(TableName=name, Item=item(1, price=3.0))
    ddb.delete_item(TableName=name, Key={"product_id": {"S": "p0002"}})
    sync(lab, arn)
    assert totals() == (1, 1, 1)  # in the window too, but real changes
    assert rows(lab, name)["p0001"] == 3.0 and "p0002" not in rows(lab, name)


def test_a_refresh_interval_of_days_applies_sequential_daily_batches(tmp_path: Path) -> None:
    # 3 days on a Lab clock where a day is 3.3 s: one refresh every 10 s.
    with Lab(tmp_path / "home", prerequisite_recheck_seconds=0.2, time_scale=25920) as lab:
        prepare_target(lab)
        name, table_arn = make_table(lab, items=2)
        arn = integrate(lab, table_arn, RefreshInterval="4320")
        sync(lab, arn)
        applied: list[dict[str, Any]] = []
        lab.bus.subscribe(lambda event: applied.append(event.detail), "batch")
        ddb = lab.client("dynamodb")
        ddb.put_item(TableName=name, Item=item(10))
        ddb.put_item(TableName=name, Item=item(11))
        time.sleep(3.6)  # the next Lab day
        ddb.put_item(TableName=name, Item=item(12))
        sync(lab, arn)
        assert len(rows(lab, name)) == 5
        # One refresh, two days of changes: two batches, each its own commit.
        assert [e["Inserted"] for e in applied] == [2, 1]
        assert applied[0]["Seq"] < applied[1]["Seq"]


def test_partition_spec_changes_resync_only_when_they_conflict(lab: Lab) -> None:
    name, table_arn = make_table(lab)
    ddb = lab.client("dynamodb")
    ddb.put_item(TableName=name, Item=item(1, created={"S": "2024-03-01T10:00:00Z"}))
    partition_by_day_of_created(lab, name)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    states: list[str] = []
    lab.bus.subscribe(lambda event: states.append(event.detail["State"]), "table_state")
    glue = lab.client("glue")

    def partition_by(function: str, conversion: str) -> None:
        spec = {"FieldName": "created", "FunctionSpec": function, "ConversionSpec": conversion}
        glue.update_integration_table_properties(
            ResourceArn=TARGET_ARN, TableName=name, TargetTableConfig={"PartitionSpec": [spec]}
        )
        time.sleep(6)  # picked up at the next rediscovery (every 5 s)

    # Same partitioning, another conversion: applies to new items, the table stays.
    partition_by("day", "epoch_sec")
    ddb.put_item(TableName=name, Item=item(2, created={"N": "1709330400"}))  # 2024-03-01T22:00Z
    sync(lab, arn)
    assert "ResyncInitiated" not in states
    target = "lakehouse." + name.lower()
    got = lab.sql(f"SELECT created FROM {target} ORDER BY product_id").fetchall()
    assert [str(c.astimezone(UTC)) for (c,) in got] == [
        "2024-03-01 10:00:00+00:00",
        "2024-03-01 22:00:00+00:00",
    ]
    # Another function conflicts with the table's partitioning: a full resync.
    ddb.delete_item(TableName=name, Key={"product_id": {"S": "p0001"}})  # its iso date
    partition_by("month", "epoch_sec")
    sync(lab, arn)
    assert "ResyncInitiated" in states
    assert [str(f.transform) for f in iceberg_table(lab, name).spec().fields] == ["month"]
    assert len(rows(lab, name)) == 1


def test_the_stream_after_a_copy_skips_the_backlog_the_copy_holds(lab: Lab) -> None:
    name, table_arn = make_table(lab, items=25)  # 25 stream records before the copy
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    reader = lab.engine.runners[arn]._stream_obj.reader
    assert reader.records_read == 0  # started at LATEST, not at TRIM_HORIZON
    lab.client("dynamodb").put_item(TableName=name, Item=item(99))
    sync(lab, arn)
    assert reader.records_read == 1 and len(rows(lab, name)) == 26
