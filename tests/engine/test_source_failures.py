"""Source prerequisites and failures: NEEDS_ATTENTION with a code, fix-it, recovery by itself."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from repl_support import TARGET_DB, prepare_target

from zetl_nb import Lab
from zetl_nb.services.postgres import EmbeddedPostgres

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:failing"
TARGET = f"arn:aws:glue:us-east-1:123456789012:database/{TARGET_DB}"


@pytest.fixture
def pg() -> Iterator[EmbeddedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="zetl-fail-"))
    server = EmbeddedPostgres(root / "pg" / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _sql(pg: EmbeddedPostgres, *statements: str) -> None:
    conn = psycopg2.connect(pg.url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
    conn.close()


def _lab(tmp: Path, pg: EmbeddedPostgres) -> Lab:
    lab = Lab(tmp / "home", prerequisite_recheck_seconds=0.3)
    prepare_target(lab)
    lab.add_database("failing", pg.url)
    return lab


def _integrate(lab: Lab) -> str:
    out: dict[str, Any] = lab.client("rds").create_integration(
        IntegrationName="failing",
        SourceArn=CLUSTER,
        TargetArn=TARGET,
        DataFilter="include: postgres.public.items",
    )
    return str(out["IntegrationArn"])


def test_wal_level_needs_attention_then_fix_and_restart(
    tmp_path: Path, pg: EmbeddedPostgres
) -> None:
    _sql(
        pg,
        "ALTER SYSTEM SET wal_level = replica",
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items VALUES (1, 'a')",
    )
    pg.stop()
    # EmbeddedPostgres writes wal_level=logical into its own include file; ALTER SYSTEM wins.
    pg.start()
    with _lab(tmp_path, pg) as lab:
        arn = _integrate(lab)
        integ = lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=60)
        codes = [e["ErrorCode"] for e in integ.errors]
        assert "SourceWalLevelNotLogical" in codes
        plan = lab.fix_prerequisites(arn)
        assert any("restart" in p["Description"].lower() for p in plan)
        lab.fix_prerequisites(arn, apply=True)
        pg.stop()
        pg.start()
        lab.wait_for_status(arn, "ACTIVE", timeout=90)
        lab.wait(arn, timeout=90)
        assert lab.sql(f"SELECT * FROM {TARGET_DB}.postgres_public_items").fetchall() == [(1, "a")]


def test_source_down_then_back_recovers_without_loss(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    _sql(
        pg,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items VALUES (1, 'a')",
    )
    with _lab(tmp_path, pg) as lab:
        arn = _integrate(lab)
        lab.wait(arn, timeout=90)
        pg.stop()
        integ = lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=90)
        assert integ.errors[0]["ErrorCode"] == "SourceUnavailable"
        pg.start()
        _sql(pg, "INSERT INTO items VALUES (2, 'b')", "UPDATE items SET name = 'A' WHERE id = 1")
        lab.wait_for_status(arn, "ACTIVE", timeout=120)
        lab.wait(arn, timeout=90)
        rows = lab.sql(f"SELECT * FROM {TARGET_DB}.postgres_public_items ORDER BY id").fetchall()
        assert rows == [(1, "A"), (2, "b")]


def test_lost_slot_resyncs_instead_of_losing_data(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    _sql(
        pg,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items VALUES (1, 'a')",
    )
    with _lab(tmp_path, pg) as lab:
        arn = _integrate(lab)
        lab.wait(arn, timeout=90)
        slot = "zetl_" + arn.rsplit(":", 1)[1].replace("-", "")
        runner = lab.engine.runners[arn]
        runner.stop()  # release the slot so it can be dropped, as an operator might
        _sql(pg, f"SELECT pg_drop_replication_slot('{slot}')", "INSERT INTO items VALUES (2, 'b')")
        lab.engine.runners.pop(arn)
        lab.engine.kick()
        lab.wait(arn, timeout=120)
        rows = lab.sql(f"SELECT * FROM {TARGET_DB}.postgres_public_items ORDER BY id").fetchall()
        assert rows == [(1, "a"), (2, "b")]
