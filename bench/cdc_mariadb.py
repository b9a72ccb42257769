"""Benchmark: draining a MariaDB CDC backlog into Iceberg through the public Lab API.

    python3 bench/cdc_mariadb.py                  # 1M-row table, 2 backlogs of 200k updates
    python3 bench/cdc_mariadb.py --rows 10000 --updates 2000 --runs 1

The MariaDB counterpart of the backlog part of ``bench/cdc.py`` (PostgreSQL). A private MariaDB
(``PrivateMariaDB``: row-based binlog with GTIDs) runs in a temporary directory next to a Lab home;
the machine's shared servers are not touched. ``bench.transactions`` gets ``--rows`` rows from
MariaDB's sequence engine, an integration loads it, and then, ``--runs`` times: the Lab is closed
(as when a notebook kernel stops), ``--updates`` single-row UPDATE transactions are committed on
scattered keys, the Lab is reopened and timed until ``lab.wait`` returns. Drained changes/s =
updates / (reopen to applied). Source and target checksums are compared at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
from common import CHECKSUM_SQL, TABLE, TARGET_ARN, TARGET_DB, loadavg, pct, prepare_target, verdict
from instrument import Timers, instrument_apply

from zetl_nb import Lab
from zetl_nb.core.changes import TableId
from zetl_nb.services.mariadb import PrivateMariaDB
from zetl_nb.sources.mysql_stream import BinlogStream
from zetl_nb.target.naming import target_table_name

DATABASE = "bench"
SOURCE = f"{DATABASE}.{TABLE}"
TARGET = f"{TARGET_DB}.{target_table_name(TableId(DATABASE, None, TABLE))}"
DRAIN_TARGET = 20_000  # changes/s

CREATE_SQL = f"""
CREATE TABLE {SOURCE} (
    id bigint PRIMARY KEY, quantity int NOT NULL, amount decimal(12,2) NOT NULL,
    note varchar(64), updated_at datetime(6) NOT NULL)"""
# Deterministic rows, the same formulas as common.ROWS_SQL's columns of the same names.
FILL_SQL = f"""
INSERT INTO {SOURCE}
SELECT seq, 1 + seq % 10, seq * 7907 % 1000000 / 100,
       CASE WHEN seq % 3 <> 0 THEN CONCAT('order note ', MD5(seq)) END,
       TIMESTAMP '2026-01-01 00:05:00' + INTERVAL seq SECOND
FROM {DATABASE}.seq_1_to_{{rows}}"""
# The backlog generator: called with autocommit on, every UPDATE in it is its own transaction.
# 2654435761 is prime, so consecutive i hit distinct, scattered keys of any table below it.
PROCEDURE_SQL = f"""
CREATE PROCEDURE {DATABASE}.bench_updates(n bigint, total bigint, start_at bigint)
BEGIN
    DECLARE i bigint DEFAULT start_at;
    WHILE i < start_at + n DO
        UPDATE {SOURCE} SET quantity = quantity + 1, amount = amount + 0.01,
               updated_at = NOW(6)
        WHERE id = 1 + i * 2654435761 % total;
        SET i = i + 1;
    END WHILE;
END"""


def open_lab(home: Path) -> Lab:
    return Lab(home, prerequisite_recheck_seconds=0.5, embedded_postgres=False)


def connect(port: int) -> Any:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)


def make_source(port: int, rows: int) -> float:
    """``bench.transactions`` with ``rows`` rows and the update procedure; seconds taken."""
    start = time.perf_counter()
    conn = connect(port)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
            cur.execute(CREATE_SQL)
            cur.execute(FILL_SQL.format(rows=rows))
            cur.execute(PROCEDURE_SQL)
    finally:
        conn.close()
    return time.perf_counter() - start


def commit_updates(port: int, n: int, rows: int, offset: int) -> float:
    """``n`` single-row UPDATE transactions from key index ``offset``; seconds taken."""
    conn = connect(port)
    try:
        with conn.cursor() as cur:
            start = time.perf_counter()
            cur.execute(f"CALL {DATABASE}.bench_updates(%s, %s, %s)", (n, rows, offset))
            return time.perf_counter() - start
    finally:
        conn.close()


def checksums(port: int, lab: Lab) -> tuple[list[str], list[str]]:
    """``CHECKSUM_SQL`` on the source table and on its Iceberg copy, as strings."""
    conn = connect(port)
    try:
        with conn.cursor() as cur:
            cur.execute(CHECKSUM_SQL.format(table=SOURCE))
            source = [str(v) for v in cur.fetchone()]
    finally:
        conn.close()
    return source, [str(v) for v in lab.sql(CHECKSUM_SQL.format(table=TARGET)).fetchone()]


class Session:
    """The Lab of one benchmark: reopened for every backlog, the integration deleted at the end."""

    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.lab: Lab | None = open_lab(home)
        self.arn: str | None = None

    def create_integration(self) -> tuple[str, float]:
        """Target, source and integration; the ARN and the time just before creating it."""
        lab = self.reopen()
        prepare_target(lab)
        source = lab.add_database("bench", self.url)
        t0 = time.perf_counter()
        self.arn = lab.client("rds").create_integration(
            IntegrationName="bench-cdc-mariadb",
            SourceArn=source,
            TargetArn=TARGET_ARN,
            DataFilter=f"include: {SOURCE}",
        )["IntegrationArn"]
        return str(self.arn), t0

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
            self.lab = None

    def reopen(self) -> Lab:
        if self.lab is None:
            self.lab = open_lab(self.home)
        return self.lab

    def finish(self) -> None:
        """Delete the integration (if created) and close the Lab; never raises on cleanup."""
        if self.arn is not None:
            with contextlib.suppress(Exception):
                lab = self.reopen()
                lab.client("rds").delete_integration(IntegrationIdentifier=self.arn)
                lab.wait_for_status(self.arn, "deleted", timeout=60)
        self.close()


@contextlib.contextmanager
def private_mariadb(work: Path) -> Iterator[PrivateMariaDB]:
    """A private MariaDB in ``work/mariadb``, stopped (by its PID) on the way out."""
    server = PrivateMariaDB(work / "mariadb" / "data")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def drain(a: argparse.Namespace, session: Session, port: int, timers: Timers, r: int) -> Any:
    """One backlog: close the Lab, commit the updates, reopen and time until ``lab.wait``."""
    assert session.arn is not None
    session.close()
    generate = commit_updates(port, a.updates, a.rows, r * a.updates)
    timers.reset()
    start = time.perf_counter()
    lab = session.reopen()
    lab.wait(session.arn, timeout=a.timeout)
    seconds = time.perf_counter() - start
    return {
        "generate": generate,
        "seconds": seconds,
        "commits": [(s, n) for _, s, n, _, _ in timers.log],
        "timers": timers.table(seconds),
    }


def run(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    timers = Timers()
    instrument_apply(timers)
    timers.wrap(BinlogStream, "poll", "binlog read + decode (poll)")
    with private_mariadb(work) as server:
        port = server.port
        made = make_source(port, a.rows)
        print(f"source: {a.rows:,}-row `{SOURCE}` made in {made:.1f} s (private MariaDB :{port})")
        session = Session(work / "home", server.url + DATABASE)
        try:
            arn, t0 = session.create_integration()
            session.reopen().wait(arn, timeout=a.timeout)
            load = time.perf_counter() - t0
            print(f"initial load {load:.1f} s ({a.rows / load:,.0f} rows/s)")
            drains = []
            for r in range(a.runs):
                drains.append(drain(a, session, port, timers, r))
                print(f"backlog {r + 1}: drained in {drains[-1]['seconds']:.2f} s", flush=True)
            source, target = checksums(port, session.reopen())
        finally:
            session.finish()
    return {"load": load, "drains": drains, "source": source, "target": target}


def report(a: argparse.Namespace, res: dict[str, Any]) -> None:
    print("\nBacklog (Lab closed while the source commits; reopen → `lab.wait` returns):\n")
    print("| run | updates committed in | reopen to applied | changes/s drained | target commits |")
    print("|---|---|---|---|---|")
    for i, run in enumerate(res["drains"], 1):
        made = f"{run['generate']:.2f} s ({a.updates / run['generate']:,.0f}/s)"
        rate = a.updates / run["seconds"]
        print(f"| {i} | {made} | {run['seconds']:.2f} s | {rate:,.0f} | {len(run['commits'])} |")
    best = max(a.updates / run["seconds"] for run in res["drains"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = verdict(best >= DRAIN_TARGET)
    same = "equal" if res["source"] == res["target"] else "DIFFERENT"
    print(f"\n- best drain {best:,.0f} changes/s (target >= {DRAIN_TARGET:,}/s: {ok})")
    print(f"- initial load of {a.rows:,} rows: {res['load']:.1f} s")
    print(
        f"- checksum count, sum(quantity), sum(id*quantity), sum(amount): source "
        f"{res['source']}, target {res['target']}: {same}"
    )
    print(f"- machine: {os.cpu_count()} cores, load average {loadavg()} (1/5/15 min)")
    print(f"- peak RSS of this process (Lab, replication, client): {rss:,.0f} MB")
    for i, run in enumerate(res["drains"], 1):
        print(f"- backlog run {i}, target commits: {_commits(run['commits'])}")
    print(f"\nTime inside the replication thread, backlog run {len(res['drains'])}:\n")
    print("\n".join(res["drains"][-1]["timers"]))


def _commits(commits: list[tuple[float, int]]) -> str:
    """Every commit's changes and seconds, or their spread when there are many."""
    if len(commits) <= 20:
        return ", ".join(f"{n:,} changes in {s:.1f} s" for s, n in commits)
    changes, seconds = [float(n) for _, n in commits], [s for s, _ in commits]
    return (
        f"{len(commits)}; changes each min/median/max {min(changes):,.0f}/"
        f"{pct(changes, 0.5):,.0f}/{max(changes):,.0f}; seconds each median "
        f"{pct(seconds, 0.5):.2f}, p95 {pct(seconds, 0.95):.2f}, max {max(seconds):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per lab.wait")
    a = parser.parse_args()
    if not 0 < a.updates <= a.rows:
        parser.error("--updates must be between 1 and --rows (each run updates distinct keys)")
    print(f"# CDC backlog drain, MariaDB → Iceberg (load {loadavg()}, {os.cpu_count()} cores)\n")
    with tempfile.TemporaryDirectory(prefix="zetl-bench-cdc-mariadb-") as tmp:
        res = run(a, Path(tmp))
    report(a, res)


if __name__ == "__main__":
    main()
