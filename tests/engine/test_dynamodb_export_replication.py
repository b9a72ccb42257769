"""DynamoDB → Iceberg through AWS's export path, with a real Lab and the real runner.

The table lives on the Lab's moto endpoint (real boto3 over HTTP) and has no stream. Its
exports are written in AWS's format by ``TableExporter`` (tests/sources/dynamodb_export_fixtures)
from the table's items (full) and the changes the test makes through it (incremental), since
moto's ``ExportTableToPointInTime`` is not faithful. The Lab gets the exporter through its
``_dynamodb_exporter`` hook (with ``dynamodb_export_bucket`` set it would be an ``S3Exporter``).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from repl_support import TARGET_ARN, prepare_target, uid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sources"))  # the fixtures

from dynamodb_export_fixtures import TableExporter

from zetl_nb import Lab
from zetl_nb.engine.store import ControlStore
from zetl_nb.sources.dynamodb_export import parse_time
from zetl_nb.sources.dynamodb_exporter import S3Exporter

KEY = "product_id"
#: 15 minutes (RefreshInterval and AWS's shortest export window) are 1 s; a day is 96 s.
SCALE = 900


@pytest.fixture
def exporters(monkeypatch: pytest.MonkeyPatch) -> dict[str, TableExporter]:
    """Exporters by table ARN, handed to every Lab of the test (also one opened later)."""
    found: dict[str, TableExporter] = {}
    monkeypatch.setattr(Lab, "_dynamodb_exporter", lambda self, integ: found[integ.source_arn])
    return found


@pytest.fixture
def lab(tmp_path: Path, exporters: dict[str, TableExporter]) -> Iterator[Lab]:
    with Lab(tmp_path / "home", prerequisite_recheck_seconds=0.2, time_scale=SCALE) as lab:
        prepare_target(lab)
        yield lab


def make_table(
    lab: Lab, exporters: dict[str, TableExporter], items: int = 0
) -> tuple[str, str, TableExporter]:
    """A table without a stream, seeded through its exporter."""
    ddb = lab.client("dynamodb")
    name = uid("Products")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    exporter = TableExporter(lab.home.parent / "exports" / name, [KEY], ddb)
    exporters[arn] = exporter
    for i in range(items):
        exporter.put(name, item(i))
    return name, arn, exporter


def item(i: int, price: float | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        KEY: {"S": f"p{i:04d}"},
        "price": {"N": str(price if price is not None else i + 0.5)},
        "details": {"M": {"color": {"S": "red"}, "size": {"N": str(i)}}},
    }
    out.update(extra)
    return out


def key(i: int) -> dict[str, Any]:
    return {KEY: {"S": f"p{i:04d}"}}


def integrate(lab: Lab, table_arn: str, **config: str) -> str:
    """Create the integration and meet its prerequisites (PITR, resource policy): never a
    stream, which export mode does not read."""
    arn: str = lab.client("glue").create_integration(
        IntegrationName=f"ddbx-{uuid.uuid4().hex[:8]}",
        SourceArn=table_arn,
        TargetArn=TARGET_ARN,
        **({"IntegrationConfig": config} if config else {}),
    )["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=20)
    planned = [fix["Operation"] for fix in lab.fix_prerequisites(arn, apply=True)]
    assert "UpdateTable" not in planned  # no stream to enable
    lab.wait_for_status(arn, "ACTIVE", timeout=20)
    return arn


def sync(lab: Lab, arn: str) -> None:
    lab.refresh_now(arn)
    lab.wait(arn, timeout=60)


def rows(lab: Lab, table: str) -> dict[str, float]:
    target = "lakehouse." + table.lower()
    return dict(lab.sql(f"SELECT {KEY}, price FROM {target} ORDER BY 1").fetchall())


def counted(lab: Lab) -> list[dict[str, Any]]:
    """Applied batches, as the runner reports them."""
    applied: list[dict[str, Any]] = []
    lab.bus.subscribe(lambda event: applied.append(event.detail), "batch")
    return applied


def totals(applied: list[dict[str, Any]]) -> tuple[int, int, int]:
    return (
        sum(e["Inserted"] for e in applied),
        sum(e["Updated"] for e in applied),
        sum(e["Deleted"] for e in applied),
    )


def test_load_from_a_full_export_then_incremental_exports(
    lab: Lab, exporters: dict[str, TableExporter]
) -> None:
    name, table_arn, exporter = make_table(lab, exporters, items=30)
    applied = counted(lab)
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    assert rows(lab, name) == {f"p{i:04d}": i + 0.5 for i in range(30)}
    assert exporter.requests[0] == ("full", None, None)
    assert totals(applied) == (0, 0, 0)  # each seeded item counts once, in the load

    exporter.put(name, item(100))
    exporter.put(name, item(3, price=99.0))
    exporter.delete(name, key(4))
    sync(lab, arn)
    got = rows(lab, name)
    assert got["p0100"] == 100.5 and got["p0003"] == 99.0 and "p0004" not in got
    assert len(got) == 30
    assert totals(applied) == (1, 1, 1)
    windows = [(a, b) for kind, a, b in exporter.requests[1:]]
    assert windows and all(kind == "incremental" for kind, _, _ in exporter.requests[1:])
    assert all(prev[1] == nxt[0] for prev, nxt in pairwise(windows))
    assert all(b - a >= timedelta(seconds=1) for a, b in windows)  # AWS's 15 minutes, scaled
    assert lab.integration(arn).status == "ACTIVE" and not lab.integration(arn).errors
    # No download is left behind (but one refresh may be under way: they run every second).
    assert len(exporter.discarded) >= len(exporter.requests) - 1 >= 1
    assert not any(folder.exists() for folder in exporter.discarded)


def test_new_attributes_add_columns_and_partition_columns_convert(
    lab: Lab, exporters: dict[str, TableExporter]
) -> None:
    name, table_arn, exporter = make_table(lab, exporters)
    exporter.put(name, item(1, created={"S": "2024-03-01T23:00:00+02:00"}))
    lab.client("glue").create_integration_table_properties(
        ResourceArn=TARGET_ARN,
        TableName=name,
        TargetTableConfig={
            "PartitionSpec": [
                {"FieldName": "created", "FunctionSpec": "day", "ConversionSpec": "iso"}
            ]
        },
    )
    arn = integrate(lab, table_arn)
    sync(lab, arn)
    exporter.put(name, item(2, created={"S": "2024-03-02"}, rating={"N": "4.5"}))
    sync(lab, arn)
    target = "lakehouse." + name.lower()
    got = lab.sql(f"SELECT {KEY}, created, rating FROM {target} ORDER BY 1").fetchall()
    assert [(k, str(c.astimezone(UTC)), r) for k, c, r in got] == [
        ("p0001", "2024-03-01 21:00:00+00:00", None),
        ("p0002", "2024-03-02 00:00:00+00:00", 4.5),
    ]


def test_restart_resumes_from_the_stored_export_time_without_loss_or_duplicates(
    tmp_path: Path, exporters: dict[str, TableExporter]
) -> None:
    home = tmp_path / "home"
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=SCALE) as lab:
        prepare_target(lab)
        name, table_arn, exporter = make_table(lab, exporters, items=10)
        arn = integrate(lab, table_arn)
        sync(lab, arn)
        loaded = lab.store.get_doc("replication", arn)
        assert loaded is not None and "export_from_time" in loaded["position"]
        exporter.put(name, item(100))
        exporter.put(name, item(1, price=11.0))
        exporter.delete(name, key(4))
        sync(lab, arn)
        moved = lab.store.get_doc("replication", arn)
        assert moved is not None and moved["seq"] > loaded["seq"]
    # A crash after the commits but before the resume position was stored: it is the load's.
    store = ControlStore(home / "control.db")
    store.put_doc("replication", arn, loaded)
    store.close()
    done = len(exporter.requests)
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=SCALE) as lab:
        applied = counted(lab)
        exporter.client = lab.client("dynamodb")
        exporter.put(name, item(50))
        exporter.put(name, item(2, price=22.0))
        exporter.delete(name, key(5))
        sync(lab, arn)
        got = rows(lab, name)
        target = "lakehouse." + name.lower()
        counts = lab.sql(f"SELECT count(*), count(DISTINCT {KEY}) FROM {target}").fetchall()
    _, start, _ = exporter.requests[done]
    assert start == parse_time(loaded["position"]["export_from_time"])  # exported again
    assert counts == [(10, 10)]
    assert got["p0001"] == 11.0 and got["p0002"] == 22.0 and got["p0050"] == 50.5
    assert "p0004" not in got and "p0005" not in got and got["p0100"] == 100.5
    assert totals(applied) == (1, 1, 1)  # the first Lab's three changes were skipped by seq


def test_a_refresh_interval_of_days_applies_one_export_per_day(
    tmp_path: Path, exporters: dict[str, TableExporter]
) -> None:
    # 3 days on a Lab clock where a day is 3.3 s: AWS's 24-hour export limit cuts the refresh.
    scale = 25920
    with Lab(tmp_path / "home", prerequisite_recheck_seconds=0.2, time_scale=scale) as lab:
        prepare_target(lab)
        name, table_arn, exporter = make_table(lab, exporters, items=2)
        arn = integrate(lab, table_arn, RefreshInterval="4320")
        sync(lab, arn)
        applied = counted(lab)
        done = len(exporter.requests)
        exporter.put(name, item(10))
        exporter.put(name, item(11))
        time.sleep(3.6)  # the next Lab day
        exporter.put(name, item(12))
        sync(lab, arn)
        assert len(rows(lab, name)) == 5
    windows = [(a, b) for _, a, b in exporter.requests[done:]]
    assert len(windows) == 2 and windows[0][1] == windows[1][0]
    assert windows[0][1] - windows[0][0] == timedelta(milliseconds=86400_000 // scale)
    assert [e["Inserted"] for e in applied] == [2, 1]  # one commit per day, in order
    assert applied[0]["Seq"] < applied[1]["Seq"]


def test_an_export_bucket_gives_dynamodb_sources_an_s3_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    integ = SimpleNamespace(
        integration_id="0123abcd",
        source_arn="arn:aws:dynamodb:us-east-1:123456789012:table/products",
        target_arn=TARGET_ARN,
        refresh_interval=None,
    )
    monkeypatch.setenv("ZETL_DYNAMODB_EXPORT_BUCKET", "my-exports")
    with Lab(tmp_path / "home", time_scale=60) as lab:
        assert lab.config.dynamodb_export_prefix == "zetl-nb/"
        source = lab._dynamodb_source(integ, "products")
        assert isinstance(source.exporter, S3Exporter)
        assert (source.exporter.bucket, source.exporter.prefix) == ("my-exports", "zetl-nb/")
        assert source.exporter.download_dir == lab.home / "dynamodb-exports" / "0123abcd"
        assert (source.min_export_seconds, source.max_export_seconds) == (15.0, 1440.0)
    monkeypatch.delenv("ZETL_DYNAMODB_EXPORT_BUCKET")
    with Lab(tmp_path / "other", time_scale=60) as lab:
        assert lab._dynamodb_source(integ, "products").exporter is None  # Scan and Streams
