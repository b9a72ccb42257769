"""The monitor's tables as plain DuckDB views, before each query that names them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from evolved_support import lab  # noqa: F401 - pytest fixtures

from zetl_nb import Lab
from zetl_nb.query.duck import QueryEngine
from zetl_nb.query.errors import QueryError
from zetl_nb.target.catalog import LocalCatalog


class Provider:
    """Stands in for ``lab.monitor.system_tables`` (the real one is used in the Lab test)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: str | None = None
        self.tables: dict[str, pa.Table] = {
            "SVV_INTEGRATION": pa.table({"integration_id": ["a"], "state": ["CdcRefreshState"]}),
            "zetl_lag": pa.table({"lag_seconds": [0.5]}),
        }

    def __call__(self) -> dict[str, pa.Table]:
        self.calls += 1
        if self.fail:
            raise RuntimeError(self.fail)
        return self.tables


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[QueryEngine, Provider]]:
    provider = Provider()
    engine = QueryEngine(LocalCatalog(tmp_path), system_tables=provider)
    yield engine, provider
    engine.close()


def test_views_follow_the_provider(engine: Any) -> None:
    eng, provider = engine
    assert eng.sql("SELECT state FROM svv_integration").fetchall() == [("CdcRefreshState",)]
    assert eng.sql("SELECT * FROM main.zetl_lag").fetchall() == [(0.5,)]
    provider.tables = {
        "svv_integration": pa.table({"integration_id": ["a"], "state": ["ErrorState"]}),
        "zetl_events": pa.table({"detail_type": ["x"]}),
    }
    assert eng.sql("SELECT state FROM svv_integration").fetchall() == [("ErrorState",)]
    assert eng.sql("SELECT count(*) FROM zetl_events").fetchone() == (1,)
    with pytest.raises(QueryError, match="zetl_lag does not exist"):
        eng.sql("SELECT * FROM zetl_lag")
    kinds = eng.sql(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'svv_integration'"
    )
    assert kinds.fetchall() == [("VIEW",)]


def test_the_provider_is_asked_only_for_queries_that_name_a_view(engine: Any) -> None:
    eng, provider = engine
    eng.sql("SELECT 1")
    first = provider.calls
    eng.sql("SELECT 2")
    assert provider.calls == first
    eng.sql("SELECT * FROM SVV_INTEGRATION")
    assert provider.calls == first + 1
    eng.connect().execute("SELECT * FROM zetl_lag")
    assert provider.calls == first + 2


def test_a_failing_monitor_breaks_only_its_views(engine: Any) -> None:
    eng, provider = engine
    provider.fail = "status journal unreadable"
    with pytest.raises(QueryError, match="monitoring tables could not be read: status journal"):
        eng.sql("SELECT * FROM svv_integration")
    with pytest.raises(QueryError, match="status journal"):
        eng.sql("SELECT count(*) FROM sys_integration_activity")
    assert eng.sql("SELECT 41 + 1").fetchone() == (42,)
    provider.fail = None
    assert eng.sql("SELECT count(*) FROM svv_integration").fetchone() == (1,)


def test_the_labs_monitor_views_are_queryable(lab: Lab) -> None:
    names = [
        "svv_integration",
        "svv_integration_table_state",
        "sys_integration_activity",
        "sys_integration_table_activity",
        "sys_integration_table_state_change",
    ]
    for name in names:
        res = lab.sql(f"SELECT * FROM {name}")
        assert res.columns, name
    cols = lab.sql("SELECT * FROM svv_integration").columns
    assert cols[:4] == ["integration_id", "target_database", "source", "state"]
