"""Journals, Iceberg status tables and the Redshift views, without a running engine."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from zetl_nb.engine.store import Integration
from zetl_nb.monitor import status as st
from zetl_nb.monitor import system, views
from zetl_nb.monitor.journal import Journal, JournalDir
from zetl_nb.monitor.recorder import IntegrationInfo
from zetl_nb.target.catalog import LocalCatalog

SCHEMA = pa.schema([("n", pa.int64()), ("s", pa.string())])


def test_journal_reads_only_new_whole_lines(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", SCHEMA)
    assert j.read().num_rows == 0
    j.append([{"n": 1}, {"n": 2, "s": "x", "ignored": {"a": 1}}])
    assert j.read().to_pylist() == [{"n": 1, "s": None}, {"n": 2, "s": "x"}]
    with open(j.path, "a") as fh:
        fh.write('{"n": 3')  # a line still being written
    assert j.read().num_rows == 2
    with open(j.path, "a") as fh:
        fh.write("}\n")
    assert j.read().column("n").to_pylist() == [1, 2, 3]
    other = Journal(j.path, SCHEMA)  # another process reading the same file
    assert other.read().num_rows == 3
    j.path.unlink()
    Journal(j.path, SCHEMA).append([{"n": 9}])  # replaced: read from the start again
    assert j.read().column("n").to_pylist() == [9]


def test_journal_dir_names_streams(tmp_path: Path) -> None:
    d = JournalDir(tmp_path / "logs", SCHEMA)
    d.journal("a").append([{"n": 1}])
    d.journal("b").append([{"n": 2}, {"n": 3}])
    table = d.read("stream")
    assert sorted(zip(table["stream"].to_pylist(), table["n"].to_pylist(), strict=True)) == [
        ("a", 1),
        ("b", 2),
        ("b", 3),
    ]


def test_the_status_table_is_one_lab_wide_iceberg_table(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path)
    tables = st.StatusTables(catalog, maintain_every=3)
    shop = st.status_row(
        st.CDC, st.SUCCEEDED, target_database="shop", inserted_rows=4, start_time=1.0, end_time=2.0
    )
    redshift = st.status_row(st.INTEGRATION_STATE, "ACTIVE", target_database=None)
    for _ in range(4):  # the third append also rewrites the table into one file
        assert tables.append([shop, redshift]) == 2
    data = tables.read()
    assert data.schema == st.SCHEMA and data.num_rows == 8
    assert catalog.namespaces() == ["zetl_system"]
    ours = tables.read("shop")
    assert ours.column("inserted_rows").to_pylist() == [4, 4, 4, 4]
    assert ours.column("start_time")[0].as_py().timestamp() == 1.0
    table = catalog.load_table("zetl_system", "integration_status")
    assert int(table.current_snapshot().summary["total-data-files"]) <= 2
    catalog.catalog.drop_table(("zetl_system", "integration_status"))
    catalog.drop_namespace("zetl_system")  # dropped by a user: it comes back on the next append
    assert tables.append([shop]) == 1
    assert tables.read().num_rows == 1


def integration(target: str, status: str = "ACTIVE") -> Integration:
    return Integration(
        arn="arn:aws:rds:us-east-1:123456789012:integration:abc",
        api="rds",
        name="orders",
        source_arn="arn:aws:rds:us-east-1:123456789012:cluster:db",
        target_arn=target,
        create_time=time.time(),
        status=status,
    )


INFO = IntegrationInfo(
    "arn:aws:rds:us-east-1:123456789012:integration:abc",
    "abc",
    "orders",
    "MySQL",
    None,
    "lakehouse",
    "",
)


@pytest.mark.parametrize(
    ("target", "status", "marked", "state"),
    [
        (
            "arn:aws:glue:us-east-1:123456789012:database/lakehouse",
            "CREATING",
            False,
            "SchemaDiscoveryState",
        ),
        (
            "arn:aws:glue:us-east-1:123456789012:database/lakehouse",
            "ACTIVE",
            False,
            "CdcRefreshState",
        ),
        (
            "arn:aws:glue:us-east-1:123456789012:database/lakehouse",
            "NEEDS_ATTENTION",
            False,
            "ErrorState",
        ),
        (
            "arn:aws:redshift-serverless:us-east-1:123456789012:namespace/n1",
            "ACTIVE",
            False,
            "PendingDbConnectState",
        ),
        ("arn:aws:redshift:us-east-1:123456789012:namespace:n1", "ACTIVE", True, "CdcRefreshState"),
        ("arn:aws:redshift:us-east-1:123456789012:namespace:n1", "FAILED", False, "ErrorState"),
    ],
)
def test_svv_integration_state(target: str, status: str, marked: bool, state: str) -> None:
    integ = integration(target, status)
    marks = {"abc": {"database": "rsdb", "created": 5.0}} if marked else {}
    table = system.svv_integration([integ], {integ.arn: INFO}, {}, [], marks, {})
    row = table.to_pylist()[0]
    assert row["state"] == state
    assert row["target_database"] == ("rsdb" if marked else "lakehouse")
    assert table.schema == views.SVV_INTEGRATION


def test_deleting_integrations_are_not_shown() -> None:
    integ = integration("arn:aws:glue:us-east-1:123456789012:database/lakehouse", "DELETING")
    assert system.svv_integration([integ], {integ.arn: INFO}, {}, [], {}, {}).num_rows == 0


def test_views_from_status_rows_use_aws_columns() -> None:
    common = {"integration_id": "abc", "target_database": "lakehouse", "source": "MySQL"}
    rows = [
        st.status_row(
            st.FULL_LOAD,
            st.SUCCEEDED,
            table_name="t",
            inserted_rows=10,
            updated_rows=0,
            deleted_rows=0,
            bytes_ingested=99,
            source_seq=7,
            start_time=1.0,
            end_time=2.0,
            **common,
        ),
        st.status_row(st.CDC, st.FAILED, table_name="t", start_time=3.0, end_time=3.0, **common),
        st.status_row(
            st.TABLE_STATE,
            "Synced",
            table_name="t",
            start_time=2.0,
            end_time=2.0,
            source_position='{"pos": 1}',
            **common,
        ),
    ]
    journal = pa.Table.from_pylist(rows, schema=st.JOURNAL_SCHEMA)
    activity = views.sys_integration_table_activity(journal, {"abc": "rsdb"})
    assert activity.schema == views.SYS_INTEGRATION_TABLE_ACTIVITY
    (only,) = activity.to_pylist()  # the failed commit is not an ingestion
    assert (only["inserted_rows"], only["bytes_ingested"], only["transaction_id"]) == (10, 99, 7)
    assert (only["target_database"], only["schema_name"]) == ("rsdb", "lakehouse")
    assert only["checkpoint_name"] == "checkpoints/snapshot_7.json"
    summary = views.sys_integration_activity(journal, {}).to_pylist()[0]
    assert summary["checkpoint_type"] == "snapshot"
    assert summary["integration_end_time"] == datetime(1970, 1, 1, 0, 0, 2)  # UTC, no zone
    change = views.sys_integration_table_state_change(journal, {}).to_pylist()
    assert [(c["new_state"], c["table_last_replicated_checkpoint"]) for c in change] == [
        ("Synced", '{"pos": 1}')
    ]
