"""The dashboard's state against a real Lab: rows, lag, counts, load progress, detail, Modify
(inline messages are the API's own) and Delete with confirmation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from ui_support import (
    PRODUCTS_ROWS,
    api_message,
    delete_all,
    integrate,
    new_database,
    open_lab,
    products_arn,
    uid,
)

from zetl_nb import Lab
from zetl_nb.core.events import Event
from zetl_nb.ui import DashboardState
from zetl_nb.ui.dashboard_state import Progress
from zetl_nb.ui.refresher import AutoRefresh


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory.mktemp("dashboard") / "home") as lab:
        yield lab


@pytest.fixture
def board(lab: Lab) -> Iterator[DashboardState]:
    state = DashboardState(lab)
    state.start()
    yield state
    state.close()
    delete_all(lab)


def test_rows_show_status_lag_last_sync_and_counts(board: DashboardState, lab: Lab) -> None:
    arn = integrate(lab, new_database(lab))
    board.refresh()
    row = board.row(arn)
    assert (row.status, row.service, row.source) == ("ACTIVE", "glue", "products")
    assert row.inserted == PRODUCTS_ROWS and row.updated == row.deleted == 0
    assert row.lag_seconds is not None and row.lag_seconds < 30
    assert row.last_sync is not None
    assert row.refresh_interval == "15"

    ddb = lab.client("dynamodb")  # one update, one delete, one insert: still 200 items
    ddb.update_item(
        TableName="products",
        Key={"product_id": {"S": "p0001"}},
        UpdateExpression="SET price = :p",
        ExpressionAttributeValues={":p": {"N": "1.5"}},
    )
    ddb.delete_item(TableName="products", Key={"product_id": {"S": "p0002"}})
    ddb.put_item(TableName="products", Item={"product_id": {"S": "p9999"}, "name": {"S": "new"}})
    lab.refresh_now(arn)
    lab.wait(arn, timeout=60)
    board.refresh()
    row = board.row(arn)
    assert (row.inserted, row.updated, row.deleted) == (PRODUCTS_ROWS + 1, 1, 1)


def test_progress_during_the_initial_load(board: DashboardState, lab: Lab) -> None:
    seen: list[list[Progress]] = []
    arns: list[str] = []

    def during(event: Event) -> None:  # subscribed after the board: it has seen the event
        if arns and event.detail.get("IntegrationArn") == arns[0]:
            seen.append(board.progress(arns[0]))

    stop = lab.bus.subscribe(during, kind="progress")
    try:
        glue = lab.client("glue")
        arn = glue.create_integration(
            IntegrationName=uid("progress-"),
            SourceArn=products_arn(lab),
            TargetArn=new_database(lab),
        )["IntegrationArn"]
        arns.append(arn)
        lab.wait_for_status(arn, "ACTIVE")
        lab.wait(arn, timeout=60)
    finally:
        stop()
    assert seen, "no progress events"
    last = seen[-1]
    assert [(p.table, p.done, p.estimated) for p in last] == [
        ("products", PRODUCTS_ROWS, PRODUCTS_ROWS)
    ]
    assert last[0].fraction == 1.0
    assert all(p.done <= PRODUCTS_ROWS for snap in seen for p in snap)
    board.refresh()
    assert board.row(arn).progress == []  # the load completed


def test_detail_has_tables_logs_events_and_series(board: DashboardState, lab: Lab) -> None:
    arn = integrate(lab, new_database(lab))
    for _ in range(3):
        board.refresh()
    detail = board.select(arn)
    assert detail is not None and detail.arn == arn
    assert [(t["TableName"], t["State"]) for t in detail.tables] == [("products", "Synced")]
    assert "IngestionCompleted" in [x.message_type for x in detail.logs]
    assert f"{PRODUCTS_ROWS} inserted, 0 updated, 0 deleted" in [x.text for x in detail.logs]
    kinds = [e.detail_type for e in detail.events]
    assert any(k.endswith("Ingestion Completed") for k in kinds)
    assert sum(v for _, v in detail.rows_applied) == PRODUCTS_ROWS
    assert len(detail.rows_applied) == 60  # 10 s periods over 10 minutes
    assert len(detail.lag) == 3  # one sample per refresh
    board.refresh()
    assert board.detail is not None and len(board.detail.lag) == 4


def test_modify_validates_inline_and_applies(board: DashboardState, lab: Lab) -> None:
    arn = integrate(lab, new_database(lab))
    board.refresh()
    form = board.begin_modify(arn)
    assert form.fields == ("description", "refresh_interval")
    assert form.refresh_interval == "15"
    issues = board.set_modify("refresh_interval", "7")
    expected = api_message(
        lab.client("glue").modify_integration,
        IntegrationIdentifier=arn,
        IntegrationConfig={"RefreshInterval": "7"},
    )
    assert issues["refresh_interval"].message == expected
    assert not board.submit_modify()
    status = lab.client("glue").describe_integrations(IntegrationIdentifier=arn)
    assert status["Integrations"][0]["Status"] == "ACTIVE"  # the dry run changed nothing
    board.set_modify("refresh_interval", "30")
    board.set_modify("description", "every half hour")
    assert board.modify is not None and board.modify.issues == {}
    assert board.submit_modify(), board.modify and board.modify.issues
    assert board.modify is None
    integ = lab.wait_for_status(arn, "ACTIVE")
    assert (integ.refresh_interval, integ.description) == ("30", "every half hour")
    with pytest.raises(AttributeError):
        board.begin_modify(arn).set("data_filter", "include: *.*")  # not for DynamoDB


def test_delete_asks_for_confirmation(board: DashboardState, lab: Lab) -> None:
    arn = integrate(lab, new_database(lab))
    board.refresh()
    question = board.request_delete(arn)
    assert board.row(arn).name in question and "kept" in question
    board.refresh()
    assert board.row(arn).status == "ACTIVE"  # asking deleted nothing
    board.cancel_delete()
    assert board.pending_delete is None and not board.confirm_delete()
    board.request_delete(arn)
    assert board.confirm_delete()
    lab.wait_for_status(arn, "deleted")
    board.refresh()
    assert arn not in [r.arn for r in board.rows]


def test_fix_it_for_me_from_the_dashboard(board: DashboardState, lab: Lab) -> None:
    arn = lab.client("glue").create_integration(
        IntegrationName=uid("unready-"),
        SourceArn=products_arn(lab),
        TargetArn=new_database(lab, ready=False),
    )["IntegrationArn"]
    lab.wait_for_status(arn, "NEEDS_ATTENTION")
    board.refresh()
    row = board.row(arn)
    assert row.status == "NEEDS_ATTENTION" and row.errors
    plan = board.preview_fixes(arn)
    assert plan and board.row(arn).status == "NEEDS_ATTENTION"
    assert board.apply_fixes() == plan
    lab.wait_for_status(arn, "ACTIVE")
    board.refresh()
    assert board.row(arn).status == "ACTIVE" and board.row(arn).errors == []


def test_the_bus_wakes_the_dashboard(board: DashboardState, lab: Lab) -> None:
    woken = threading.Event()
    board.on_activity = woken.set
    integrate(lab, new_database(lab))
    assert woken.is_set()


def test_auto_refresh_runs_in_the_background_until_stopped() -> None:
    calls: list[float] = []
    refresher = AutoRefresh(lambda: calls.append(time.monotonic()), interval=0.05)
    refresher.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 3 and refresher.running
    refresher.stop()
    assert not refresher.running
    count = len(calls)
    time.sleep(0.2)
    assert len(calls) == count


def test_auto_refresh_gives_up_after_repeated_failures() -> None:
    errors: list[BaseException] = []

    def broken() -> None:
        raise RuntimeError("the Lab was closed")

    refresher = AutoRefresh(broken, interval=0.01, on_error=errors.append, max_failures=3)
    refresher.start()
    deadline = time.monotonic() + 5
    while refresher.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not refresher.running and len(errors) == 3


def test_an_aurora_style_integration_is_listed_modified_and_deleted_through_rds(
    board: DashboardState, lab: Lab
) -> None:
    rds = lab.client("rds")
    arn = rds.create_integration(
        IntegrationName=uid("orders-"),
        SourceArn=lab.databases()[lab.config.embedded_cluster],
        TargetArn=new_database(lab),
        DataFilter="include: postgres.public.ui_nothing",
    )["IntegrationArn"]
    lab.wait_for_status(arn, "ACTIVE")
    board.refresh()
    row = board.row(arn)
    assert (row.service, row.status) == ("rds", "ACTIVE")  # RDS's "active", as Glue spells it
    assert row.data_filter == "include: postgres.public.ui_nothing"
    form = board.begin_modify(arn)
    assert form.fields == ("description", "data_filter")
    issues = board.set_modify("data_filter", "include: ui_nothing")
    expected = api_message(
        rds.modify_integration, IntegrationIdentifier=arn, DataFilter="include: ui_nothing"
    )
    assert issues["data_filter"].message == expected
    board.set_modify("data_filter", "include: postgres.public.ui_other")
    assert board.submit_modify()
    assert lab.wait_for_status(arn, "ACTIVE").data_filter == "include: postgres.public.ui_other"
    board.request_delete(arn)
    assert board.confirm_delete()
    lab.wait_for_status(arn, "deleted")
