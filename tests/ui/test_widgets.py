"""The ipywidgets adapters, without a browser: widgets are made, user input is simulated by
setting widget values and clicking buttons (what a frontend's comm messages do), and what they
show is read back. Plus: a light ``import zetl_nb.ui`` and the error when ipywidgets is missing.
"""

from __future__ import annotations

import html
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import api_message, delete_all, integrate, new_database, open_lab, products_arn

import zetl_nb.ui
from zetl_nb import Lab, MissingDependencyError


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory.mktemp("widgets") / "home") as lab:
        yield lab
        delete_all(lab)


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def visible(widget: Any) -> bool:
    return widget.layout.display != "none"


def test_the_wizard_widget_drives_its_state(lab: Lab) -> None:
    root = zetl_nb.ui.create_integration(lab)
    view, state = root.view, root.state
    assert "Choose source type" in view.header.value
    view.kind.value = "dynamodb"  # as the frontend sets it
    assert state.source_type == "dynamodb"
    view.next.click()
    assert state.step == 1 and visible(view.pages[1]) and not visible(view.pages[0])
    assert products_arn(lab) in [v for _, v in view.source.options]
    view.source.value = products_arn(lab)
    view.new_db.value = "widget_lake"
    view.create_db.click()
    assert view.target.value == state.target_arn and state.target_arn.endswith("widget_lake")
    for _ in range(3):
        view.next.click()
    assert state.current.key == "details"
    view.name.value = "bad--name"
    expected = api_message(
        lab.client("glue").create_integration,
        IntegrationName="bad--name",
        SourceArn=products_arn(lab),
        TargetArn=state.target_arn,
    )
    assert html.escape(expected) in "".join(b.value for b in view.issues["name"])
    view.name.value = "widget-run"
    assert all(not b.value for b in view.issues["name"])
    view.next.click()
    assert "glue.create_integration(" in view.review.value
    view.create.click()
    arn = state.integration_arn
    assert arn is not None and visible(view.after)
    until(lambda: state.status == "NEEDS_ATTENTION")  # the new database lacks LocationUri
    assert visible(view.fix_button)
    view.fix_button.click()
    assert "Fix it for me will make these changes" in view.plan.value and visible(view.apply)
    view.apply.click()
    until(lambda: state.status == "ACTIVE")
    assert "ACTIVE" in view.status.value
    root.close()


def test_the_dashboard_widget_refreshes_in_the_background_and_stops_when_closed(
    lab: Lab,
) -> None:
    arn = integrate(lab, new_database(lab), name="dashboard-widget")
    root = zetl_nb.ui.dashboard(lab, interval=0.1)
    view, state = root.view, root.state
    assert root.refresher.running
    until(lambda: any(r.arn == arn for r in state.rows))
    until(lambda: "dashboard-widget" in view.table.value)
    assert "ACTIVE" in view.table.value and "zetl-badge" in view.table.value
    view.pick.value = arn
    until(lambda: state.detail is not None and state.detail.arn == arn)
    until(lambda: "Recent logs" in view.detail.value and "<svg" in view.detail.value)
    view.delete_button.click()
    assert visible(view.delete_box) and "dashboard-widget" in view.d_question.value
    root.close()
    assert not root.refresher.running
    refreshed = state.refreshed_at
    time.sleep(0.3)
    assert state.refreshed_at == refreshed  # no more refreshes
    assert lab.client("glue").describe_integrations(IntegrationIdentifier=arn)["Integrations"]


def test_the_query_widget_runs_in_the_background(lab: Lab) -> None:
    root = zetl_nb.ui.query(lab)
    view, state = root.view, root.state
    assert "svv_integration" in [v for _, v in view.names.options]
    view.sql.value = "SELECT 42 AS answer"
    assert state.sql == "SELECT 42 AS answer"
    view.run.click()
    until(lambda: state.rowcount == 1 and not state.running)
    until(lambda: "answer" in view.result.value)
    assert "1 rows" in view.summary.value
    view.sql.value = "SELECT * FROM nowhere"
    view.run.click()
    until(lambda: state.error is not None and "QueryError" in view.summary.value)
    view.dialect.value = "redshift"
    assert state.dialect == "redshift"


def test_a_missing_ipywidgets_names_the_fix(monkeypatch: pytest.MonkeyPatch, lab: Lab) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now fails
    with pytest.raises(MissingDependencyError, match=r"pip install ipywidgets"):
        zetl_nb.ui.query(lab)


def test_the_widget_functions_are_not_shadowed_by_modules() -> None:
    import zetl_nb.ui.dashboard_state
    import zetl_nb.ui.query_state
    import zetl_nb.ui.wizard_state  # importing the submodules sets attributes on the package

    for name in zetl_nb.ui.__all__:
        assert callable(getattr(zetl_nb.ui, name)), name


def test_importing_the_ui_stays_light() -> None:
    code = (
        "import sys, zetl_nb.ui; heavy = ('ipywidgets', 'boto3', 'pyarrow', 'duckdb', "
        "'pyiceberg'); print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(zetl_nb.ui.__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]"
