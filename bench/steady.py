"""Steady-state freshness under a constant change rate (section 3 of bench/replication.py).

Run through the entry point: ``python bench/replication.py --only steady``. ``section_steady``
starts ``worker_steady``, which starts ``worker_steady_writer`` in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import (
    PROBE_ID,
    ROWS_SQL,
    SCRIPT,
    TABLE,
    checksums,
    connect,
    drop_replication_leftovers,
    integration,
    loadavg,
    make_table,
    pct,
    run_worker,
    verdict,
)
from instrument import Timers, instrument_apply

PROBE_TIMEOUT, PROBE_POLL = 60.0, 0.05
UPDATE_SQL = (
    "UPDATE transactions SET quantity = quantity + 1, amount = amount + 0.01, "
    "updated_at = clock_timestamp() WHERE id = %s"
)


# -- workers (child processes) -------------------------------------------------------------------


def worker_steady(a: argparse.Namespace) -> dict[str, Any]:
    """1,000 changes/s from a writer process; a probe row updated once a second."""
    timers = Timers()
    instrument_apply(timers)
    with integration(a, "bench-steady") as (lab, arn, target, _):
        lab.wait(arn, timeout=a.timeout)
        probe_sql = f"SELECT note FROM {target} WHERE id = {PROBE_ID}"
        timers.reset()
        cmd = [sys.executable, str(SCRIPT), "--worker", "steady-writer", "--dsn", a.dsn]
        cmd += ["--rows", str(a.rows), "--rate", str(a.rate), "--steady-seconds", str(a.seconds)]
        writer = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        start = time.perf_counter()
        probes, query_costs = _probe_loop(a, lab, probe_sql, start)
        out, _ = writer.communicate(timeout=a.timeout)
        lab.wait(arn, timeout=a.timeout)
        source, replica = checksums(a.dsn, lab, target)
    written = json.loads(out.strip().splitlines()[-1].removeprefix("RESULT "))
    commits = [(end - start, *rest) for end, *rest in timers.log]
    return {
        "probes": probes,
        "commits": commits,
        "query_cost": query_costs,
        "writer": written,
        "source": source,
        "target": replica,
        "timers": timers.table(time.perf_counter() - start),
    }


def _probe_loop(
    a: argparse.Namespace, lab: Any, probe_sql: str, start: float
) -> tuple[list[tuple[float, float | None]], list[float]]:
    """Once a second: commit a new probe value, then poll ``lab.sql`` until it shows."""
    conn = connect(a.dsn)
    probes: list[tuple[float, float | None]] = []
    costs: list[float] = []
    tick, k = start, 0
    with conn.cursor() as cur:
        while time.perf_counter() < start + a.seconds:
            time.sleep(max(0.0, tick - time.perf_counter()))
            k += 1
            value = f"probe {k} {time.time():.6f}"
            cur.execute("UPDATE transactions SET note = %s WHERE id = %s", (value, PROBE_ID))
            committed = time.perf_counter()
            seen = None
            while time.perf_counter() < committed + PROBE_TIMEOUT:
                q0 = time.perf_counter()
                row = lab.sql(probe_sql).fetchone()
                costs.append(time.perf_counter() - q0)
                if row and row[0] == value:
                    seen = time.perf_counter() - committed
                    break
                time.sleep(PROBE_POLL)
            probes.append((committed - start, seen))
            tick = max(tick + 1.0, time.perf_counter())
    conn.close()
    return probes, costs


def worker_steady_writer(a: argparse.Namespace) -> dict[str, Any]:
    """``--rate`` single-row autocommit changes/s: 4 updates of scattered keys, then 1 insert."""
    conn = connect(a.dsn)
    total, done, inserted = int(a.rate * a.seconds), 0, 0
    with conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")  # background load; the probe commits synced
        start = time.perf_counter()
        while done < total:
            due = min(total, int((time.perf_counter() - start) * a.rate) + 1)
            while done < due:
                if done % 5 == 4:
                    inserted += 1
                    g = a.rows + inserted
                    cur.execute(f"INSERT INTO {TABLE} {ROWS_SQL}", (g, g))
                else:
                    cur.execute(UPDATE_SQL, (1 + (done * 2654435761) % a.rows,))
                done += 1
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
    conn.close()
    return {"changes": done, "seconds": elapsed, "rate": done / elapsed}


# -- section (parent process) --------------------------------------------------------------------


def section_steady(a: argparse.Namespace, pg: Any, work: Path) -> None:
    dsn = pg.dsn("bench_steady")
    took = make_table(pg.dsn("postgres"), dsn, "bench_steady", a.cdc_rows, probe=True)
    print(
        f"\n## Steady state: {a.steady_seconds} s at {a.rate:,} changes/s, {a.cdc_rows:,}-row "
        f"table ({took:.1f} s), load {loadavg()}\n"
    )
    cmd = [sys.executable, str(SCRIPT), "--worker", "steady", "--dsn", dsn]
    cmd += ["--rows", str(a.cdc_rows), "--rate", str(a.rate)]
    cmd += ["--steady-seconds", str(a.steady_seconds), "--timeout", str(a.timeout)]
    res, rss, why = run_worker(
        [*cmd, "--out", str(work / "steady")], a.steady_seconds + 3 * a.timeout
    )
    drop_replication_leftovers(dsn)
    if res is None:
        print(f"steady run failed: {why}")
        return
    _print_steady(a, res, rss)
    print(f"\nload average at the end: {loadavg()}")


def _print_steady(a: argparse.Namespace, res: dict[str, Any], rss: float) -> None:
    fresh = [s for _, s in res["probes"] if s is not None]
    lost = len(res["probes"]) - len(fresh)
    window = min(60.0, a.steady_seconds / 2)
    commits = res["commits"]
    first = [c[1] for c in commits if c[0] <= window]
    last = [c[1] for c in commits if c[0] >= a.steady_seconds - window]
    w, cost = res["writer"], res["query_cost"]
    p50, p99 = pct(fresh, 0.5), pct(fresh, 0.99)
    flat = bool(first and last) and statistics.median(last) <= 1.5 * statistics.median(first)
    rows = [
        ("source changes", f"{w['changes']:,} in {w['seconds']:.0f} s ({w['rate']:,.0f}/s)", ""),
        ("probes seen", f"{len(fresh)} ({lost} not within {PROBE_TIMEOUT:.0f} s)", ""),
        ("freshness p50", f"{p50:.2f} s", f"<= 1 s: {verdict(p50 <= 1)}"),
        ("freshness p90 / max", f"{pct(fresh, 0.9):.2f} s / {pct(fresh, 1.0):.2f} s", ""),
        ("freshness p99", f"{p99:.2f} s", f"<= 3 s: {verdict(p99 <= 3)}"),
        (
            "target commits",
            f"{len(commits)}, {sum(c[2] for c in commits) / max(1, len(commits)):,.0f} "
            "changes each on average",
            "",
        ),
    ]
    for label, part in ((f"first {window:.0f} s", first), (f"last {window:.0f} s", last)):
        if part:
            rows.append(
                (
                    f"commit time p50 / p95 / max, {label}",
                    f"{statistics.median(part):.2f} / {pct(part, 0.95):.2f} / {max(part):.2f} s",
                    "",
                )
            )
    rows += [
        ("commit time flat (last p50 <= 1.5 first p50)", "yes" if flat else "no", verdict(flat)),
        (
            "probe query `lab.sql`",
            f"p50 {pct(cost, 0.5) * 1000:.0f} ms, {len(cost)} runs",
            "",
        ),
        (
            "checksum after `lab.wait`",
            "equal" if res["source"] == res["target"] else "DIFFERENT",
            "",
        ),
        ("worker peak RSS", f"{rss:.0f} MB", ""),
    ]
    print("| measure | value | target |\n|---|---|---|")
    print("\n".join(f"| {m} | {v} | {t} |" for m, v, t in rows))
    by_minute: dict[int, list[tuple[float, ...]]] = defaultdict(list)
    for commit in commits:
        by_minute[int(commit[0] // 60)].append(commit)
    print("\n| minute | commits | commit time p50 | data files (max) | load average |")
    print("|---|---|---|---|---|")
    for m, cs in sorted(by_minute.items()):
        p50 = statistics.median(c[1] for c in cs)
        files, load = max(c[3] for c in cs), statistics.mean(c[4] for c in cs)
        print(f"| {m + 1} | {len(cs)} | {p50:.2f} s | {files} | {load:.1f} |")
    print("\nTime inside the replication thread over the run:\n")
    print("\n".join(res["timers"]))
