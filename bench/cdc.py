"""CDC backlog drain (section 2 of bench/replication.py).

Run through the entry point: ``python bench/replication.py --only cdc``. ``section_cdc`` runs in
the parent process; it starts ``worker_cdc`` as ``replication.py --worker cdc``. The backlog comes
from the ``bench_updates`` procedure (``common.PROCEDURE_SQL``, installed by ``make_table``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    SCRIPT,
    checksums,
    connect,
    drop_replication_leftovers,
    integration,
    loadavg,
    make_table,
    run_worker,
    verdict,
)
from instrument import Timers, instrument_apply, profile_stats

# -- worker (child process) ----------------------------------------------------------------------


def worker_cdc(a: argparse.Namespace) -> dict[str, Any]:
    """``--cdc-repeat`` backlogs of ``--updates`` single-row transactions, integration ACTIVE."""
    import cProfile

    timers, profiler = Timers(), cProfile.Profile()
    instrument_apply(timers, profiler if a.profile else None)
    runs = []
    with integration(a, "bench-cdc") as (lab, arn, target, t0):
        lab.wait(arn, timeout=a.timeout)
        load_seconds = time.perf_counter() - t0
        conn = connect(a.dsn)
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")  # this session only: no fsync per row
            for r in range(a.cdc_repeat):
                timers.reset()
                first = time.perf_counter()
                cur.execute("CALL bench_updates(%s, %s, %s)", (a.updates, a.rows, r * a.updates))
                committed = time.perf_counter()
                lab.wait(arn, timeout=a.timeout)
                done = time.perf_counter()
                runs.append(
                    {
                        "generate": committed - first,
                        "after_commit": done - committed,
                        "from_first": done - first,
                        "commits": [(round(s, 2), n, f) for _, s, n, f, _ in timers.log],
                        "timers": timers.table(done - first),
                    }
                )
        conn.close()
        source, replica = checksums(a.dsn, lab, target)
    result = {"load_seconds": load_seconds, "runs": runs, "source": source, "target": replica}
    if a.profile:
        result["cprofile"] = profile_stats(profiler, "cumulative")
    return result


# -- section (parent process) --------------------------------------------------------------------


def section_cdc(a: argparse.Namespace, pg: Any, work: Path) -> None:
    dsn = pg.dsn("bench_cdc")
    took = make_table(pg.dsn("postgres"), dsn, "bench_cdc", a.cdc_rows, probe=True)
    print(f"\n## CDC backlog: {a.cdc_rows:,}-row table ({took:.1f} s), load {loadavg()}\n")
    cmd = [sys.executable, str(SCRIPT), "--worker", "cdc", "--dsn", dsn, "--rows", str(a.cdc_rows)]
    cmd += ["--updates", str(a.updates), "--timeout", str(a.timeout)]
    timed = [*cmd, "--cdc-repeat", str(a.cdc_repeat), "--out", str(work / "cdc")]
    res, rss, why = run_worker(timed, a.timeout * (2 + a.cdc_repeat))
    drop_replication_leftovers(dsn)
    if res is None:
        print(f"CDC run failed: {why}")
        return
    _print_cdc(a, res, rss)
    if a.profile:  # an extra backlog under cProfile, apart from the timed ones
        profiled = [*cmd, "--cdc-repeat", "1", "--profile", "--out", str(work / "cdc-profile")]
        res, rss, why = run_worker(profiled, a.timeout * 3)
        drop_replication_leftovers(dsn)
        print(
            f"\n### One more backlog under cProfile: {res['runs'][0]['from_first']:.1f} s\n"
            if res
            else f"\nprofile run failed: {why}"
        )
        print("\n```\n" + "\n".join(res["cprofile"]) + "\n```" if res else "")


def _print_cdc(a: argparse.Namespace, res: dict[str, Any], rss: float) -> None:
    print(f"initial load {res['load_seconds']:.1f} s; worker peak RSS {rss:.0f} MB\n")
    print(
        "| run | updates committed in | then lab.wait | first update to applied "
        "| changes/s applied | target commits |"
    )
    print("|---|---|---|---|---|---|")
    for i, run in enumerate(res["runs"], 1):
        made = f"{run['generate']:.2f} s ({a.updates / run['generate']:,.0f}/s)"
        rate = a.updates / run["from_first"]
        print(
            f"| {i} | {made} | {run['after_commit']:.2f} s | {run['from_first']:.2f} s "
            f"| {rate:,.0f} | {len(run['commits'])} |"
        )
    best = max(a.updates / run["from_first"] for run in res["runs"])
    print(f"\n- best {best:,.0f} changes/s (target >= 30,000/s: {verdict(best >= 30_000)})")
    same = "equal" if res["source"] == res["target"] else "DIFFERENT"
    print(
        f"- checksum count, sum(quantity), sum(id*quantity), sum(amount): source "
        f"{res['source']}, target {res['target']}: {same}"
    )
    for i, run in enumerate(res["runs"], 1):
        each = ", ".join(f"{n:,} in {s:.1f} s" for s, n, _ in run["commits"])
        print(f"- run {i}, changes per target commit: {each}")
    print(f"\nTime inside the replication thread, run {len(res['runs'])}:\n")
    print("\n".join(res["runs"][-1]["timers"]))
