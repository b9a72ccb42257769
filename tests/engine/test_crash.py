"""Crash suite: SIGKILL a replicating process at random points; after a restart the target
equals the source row by row, with no duplicates.

CI runs ``ZETL_CRASH_ITERATIONS`` (default 3) kills; the soak command in the README runs 20.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from repl_support import TARGET_DB, prepare_target

from zetl_nb import Lab

REPLICATOR = textwrap.dedent("""
    import sys, time, zetl_nb
    lab = zetl_nb.Lab(sys.argv[1], prerequisite_recheck_seconds=0.5)
    arn = sys.argv[2]
    if sys.argv[3] == "sync":
        lab.wait(arn, timeout=240)
        print("synced", flush=True)
        lab.close()
    else:
        print("running", flush=True)
        while True:
            time.sleep(1)
""")


def _writer(url: str, table: str, stop: threading.Event, seed: int) -> None:
    import psycopg2

    rnd = random.Random(seed)
    conn = psycopg2.connect(url)
    next_id = 10_000
    while not stop.is_set():
        with conn, conn.cursor() as cur:
            for _ in range(rnd.randint(1, 20)):
                action = rnd.random()
                if action < 0.4:
                    cur.execute(
                        f"INSERT INTO {table} VALUES (%s, %s, 'w')", (next_id, rnd.randint(0, 99))
                    )
                    next_id += 1
                elif action < 0.8:
                    cur.execute(
                        f"UPDATE {table} SET qty = %s WHERE id = %s",
                        (rnd.randint(0, 99), rnd.randint(0, next_id)),
                    )
                else:
                    cur.execute(f"DELETE FROM {table} WHERE id = %s", (rnd.randint(0, next_id),))
        time.sleep(0.005)
    conn.close()


def _start(home: Path, arn: str, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLICATOR, str(home), arn, mode], stdout=subprocess.PIPE, text=True
    )
    return proc


def test_kill_dash_nine_never_loses_or_duplicates(tmp_path: Path) -> None:
    from zetl_nb.services.postgres import EmbeddedPostgres

    iterations = int(os.environ.get("ZETL_CRASH_ITERATIONS", "3"))
    pg = EmbeddedPostgres(tmp_path / "pg" / "data")
    pg.start()
    home = tmp_path / "home"
    table = "crash_orders"
    try:
        import psycopg2

        with psycopg2.connect(pg.url) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, qty int, note text)")
            cur.execute(
                f"INSERT INTO {table} SELECT g, g % 100, 'seed' FROM generate_series(1, 5000) g"
            )
        with Lab(home) as lab:
            prepare_target(lab)
            lab.add_database("crashdb", pg.url)
            arn = lab.client("rds").create_integration(
                IntegrationName="crash",
                TargetArn=f"arn:aws:glue:us-east-1:123456789012:database/{TARGET_DB}",
                SourceArn="arn:aws:rds:us-east-1:123456789012:cluster:crashdb",
                DataFilter=f"include: postgres.public.{table}",
            )["IntegrationArn"]
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(pg.url, table, stop, 7), daemon=True)
        writer.start()
        rnd = random.Random(11)
        try:
            for _ in range(iterations):
                proc = _start(home, arn, "run")
                assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
                time.sleep(rnd.uniform(0.5, 4.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        finally:
            stop.set()
            writer.join(timeout=30)
        proc = _start(home, arn, "sync")
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "synced" in out
        with psycopg2.connect(pg.url) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT id, qty, note FROM {table} ORDER BY id")
            expected: list[Any] = cur.fetchall()
        with Lab(home) as lab:
            got = lab.sql(
                f"SELECT id, qty, note FROM {TARGET_DB}.postgres_public_{table} ORDER BY id"
            ).fetchall()
            dupes = lab.sql(
                f"SELECT count(*) - count(DISTINCT id) FROM {TARGET_DB}.postgres_public_{table}"
            ).fetchall()
        assert dupes == [(0,)]
        assert got == [tuple(r) for r in expected]
    finally:
        pg.stop()
