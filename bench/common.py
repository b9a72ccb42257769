"""Shared setup of bench/replication.py's sections: the source table, the Lab, worker runs.

Constants and SQL for the ``transactions`` table, psycopg2 helpers, the worker subprocess runner
(its ``RESULT`` line and peak RSS), the Glue target and integration every zetl_nb worker uses,
checksums, and small reporting helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Workers are started as `python bench/replication.py --worker ...`: the entry point dispatches.
SCRIPT = HERE / "replication.py"
TABLE = "transactions"
ACCOUNT, REGION = "123456789012", "us-east-1"
TARGET_DB = "lakehouse"
TARGET_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{TARGET_DB}"
PG_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO"
PROBE_ID = 0  # the steady-state probe row (outside the checksums: ``WHERE id > 0``)

CREATE_SQL = """
CREATE TABLE transactions (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL, product_id int NOT NULL,
    quantity int NOT NULL, amount numeric(12,2) NOT NULL, discount numeric(5,2),
    status text NOT NULL, channel text NOT NULL, note text,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"""
# Deterministic rows (no random()), so every contender reads the same bytes. (%% is psycopg2's %.)
ROWS_SQL = """
SELECT g, 1 + g * 7919 %% 100000, 1 + g * 31 %% 5000, 1 + g %% 10,
       g * 7907 %% 1000000 / 100.0, CASE WHEN g %% 5 = 0 THEN g %% 5000 / 100.0 END,
       (ARRAY['new','paid','shipped','refunded'])[1 + g %% 4],
       (ARRAY['web','store','app'])[1 + g %% 3],
       CASE WHEN g %% 3 <> 0 THEN 'order note ' || md5(g::text) END,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
       timestamptz '2026-01-01 00:05:00+00' + g * interval '1 second'
FROM generate_series(%s::bigint, %s::bigint) AS g"""
# The CDC backlog generator (see cdc.py); make_table installs it in every database it creates.
# One transaction per UPDATE, server-side: as fast as PostgreSQL commits. 2654435761 is prime to
# any --cdc-rows below it, so consecutive i hit distinct, scattered keys.
PROCEDURE_SQL = """
CREATE PROCEDURE bench_updates(n bigint, total bigint, first bigint) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN first .. first + n - 1 LOOP
        UPDATE transactions SET quantity = quantity + 1, amount = amount + 0.01,
               updated_at = clock_timestamp()
        WHERE id = 1 + i * 2654435761 % total;
        COMMIT;
    END LOOP;
END $$"""
CHECKSUM_SQL = (
    "SELECT count(*), sum(quantity), sum(id * quantity), sum(amount) FROM {table} WHERE id > 0"
)


# -- PostgreSQL ----------------------------------------------------------------------------------


def connect(dsn: str) -> Any:
    """An autocommit psycopg2 connection in UTC with ISO dates."""
    import psycopg2

    conn = psycopg2.connect(dsn, options=PG_OPTIONS)
    conn.autocommit = True
    return conn


def execute(dsn: str, *statements: str) -> None:
    """Run ``statements`` on a connection of their own (autocommit)."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def make_table(admin_dsn: str, dsn: str, database: str, rows: int, probe: bool = False) -> float:
    """(Re)create ``database`` with ``transactions`` of ``rows`` rows; returns seconds taken.

    ``probe``: add the steady-state probe row, id 0 (outside the checksums: ``WHERE id > 0``).
    """
    start = time.perf_counter()
    if database != "postgres":
        execute(admin_dsn, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        execute(admin_dsn, f"CREATE DATABASE {database}")
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(CREATE_SQL)
            for lo in range(1, rows + 1, 500_000):
                cur.execute(f"INSERT INTO {TABLE} {ROWS_SQL}", (lo, min(lo + 499_999, rows)))
            if probe:
                cur.execute(f"INSERT INTO {TABLE} {ROWS_SQL}", (PROBE_ID, PROBE_ID))
            cur.execute("DROP PROCEDURE IF EXISTS bench_updates")
            cur.execute(PROCEDURE_SQL)
            cur.execute(f"VACUUM ANALYZE {TABLE}")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()
    return time.perf_counter() - start


def drop_replication_leftovers(dsn: str) -> None:
    """Slots and publications a failed zetl_nb worker left behind (they would pin WAL)."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE NOT active AND database = current_database()"
            )
            cur.execute("SELECT pubname FROM pg_publication WHERE pubname LIKE 'zetl\\_%'")
            for (name,) in cur.fetchall():
                cur.execute(f'DROP PUBLICATION "{name}"')
    finally:
        conn.close()


def checksums(dsn: str, lab: Any, target: str) -> tuple[list[str], list[str]]:
    """``CHECKSUM_SQL`` on the source table and on its Iceberg copy ``target``, as strings."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(CHECKSUM_SQL.format(table=TABLE))
            source = [str(v) for v in cur.fetchone()]
    finally:
        conn.close()
    return source, [str(v) for v in lab.sql(CHECKSUM_SQL.format(table=target)).fetchone()]


# -- workers and reporting -----------------------------------------------------------------------


def run_worker(cmd: list[str], timeout: float) -> tuple[dict[str, Any] | None, float, str]:
    """Run a worker; its ``RESULT`` JSON, its peak RSS in MB, and why it failed (if it did)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=HERE.parent)
        timer = threading.Timer(timeout, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode("utf-8", "replace")
    result = None
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    why = "" if result else f"exit {proc.returncode}: {(stderr or stdout).strip()[-1500:]}"
    return result, usage.ru_maxrss / 1024, why


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def loadavg() -> str:
    """The 1/5/15-minute load averages, for the printed context of every section."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def verdict(ok: bool) -> str:
    """How a result compares with its target, as printed in the tables."""
    return "met" if ok else "MISSED"


# -- zetl_nb Lab ---------------------------------------------------------------------------------


def prepare_target(lab: Any) -> None:
    """The Glue target database, its integration resource property and resource policy."""
    glue = lab.client("glue")
    glue.create_database(
        DatabaseInput={"Name": TARGET_DB, "LocationUri": f"file://{lab.home}/warehouse/lh"}
    )
    glue.create_integration_resource_property(
        ResourceArn=TARGET_ARN,
        TargetProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/bench"},
    )
    resources = [f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog", TARGET_ARN]
    statements = [
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "glue:CreateInboundIntegration"),
        ({"Service": "glue.amazonaws.com"}, "glue:AuthorizeInboundIntegration"),
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": who, "Action": action, "Resource": resources}
            for who, action in statements
        ],
    }
    glue.put_resource_policy(PolicyInJson=json.dumps(policy))


@contextlib.contextmanager
def integration(a: argparse.Namespace, name: str) -> Iterator[tuple[Any, str, str, float]]:
    """A fresh Lab with an integration of ``a.dsn``'s table: (lab, arn, target, t0)."""
    import duckdb  # noqa: F401 - imports out of the timed part, as for every contender
    import psycopg2  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyiceberg.io.pyarrow
    import pyiceberg.table  # noqa: F401

    from zetl_nb import Lab

    lab = Lab(a.out / "home", prerequisite_recheck_seconds=0.5, embedded_postgres=False)
    arn = None
    try:
        prepare_target(lab)
        source = lab.add_database("bench", a.dsn)
        database = a.dsn.rsplit("/", 1)[1]
        rds = lab.client("rds")
        t0 = time.perf_counter()
        arn = rds.create_integration(
            IntegrationName=name,
            SourceArn=source,
            TargetArn=TARGET_ARN,
            DataFilter=f"include: {database}.public.{TABLE}",
        )["IntegrationArn"]
        yield lab, arn, f"{TARGET_DB}.{database}_public_{TABLE}", t0
    finally:
        if arn is not None:  # drops the slot and the publication
            with contextlib.suppress(Exception):
                lab.client("rds").delete_integration(IntegrationIdentifier=arn)
                lab.wait_for_status(arn, "deleted", timeout=60)
        lab.close()
