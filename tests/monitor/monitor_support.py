"""Fixtures for the monitoring tests: a real Lab with its embedded PostgreSQL as the source.

The source helpers are the replication suite's (``tests/engine/repl_support.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from repl_support import ACCOUNT, REGION, TARGET_DB, SourceDB, new_lab, uid

__all__ = ["ACCOUNT", "REGION", "TARGET_DB", "SourceDB", "end_integrations", "pg", "uid"]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SourceDB]:
    """A Lab whose alarms are evaluated only when a test asks (no background evaluation)."""
    lab = new_lab(tmp_path_factory.mktemp("monitor-home"))
    lab.monitor.evaluate_every = None
    try:
        yield SourceDB("postgres", lab, "zetl-aurora-postgres", lab.postgres.url)
    finally:
        lab.close()


@pytest.fixture
def end_integrations(pg: SourceDB) -> Iterator[None]:
    """Delete the test's integrations afterwards: replication slots are limited."""
    yield
    lab: Any = pg.lab
    rds = lab.client("rds")
    glue = lab.client("glue")
    for client in (rds, glue):
        for integ in client.describe_integrations()["Integrations"]:
            if integ["Status"].upper() != "DELETING":
                client.delete_integration(IntegrationIdentifier=integ["IntegrationArn"])
            lab.wait_for_status(integ["IntegrationArn"], "deleted", timeout=60)
    names = [a["AlarmName"] for a in lab.monitor.describe_alarms()["MetricAlarms"]]
    lab.monitor.delete_alarms(names)
