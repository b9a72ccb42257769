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
    """``--cdc-repeat`` live runs and as many true backlogs of ``--updates`` single-row updates.

    Live: the updates are committed while zetl_nb replicates, so the rate cannot exceed the
    source's. Backlog: the Lab is closed (as when a notebook kernel stops), the updates are
    committed, and the reopened Lab drains them from its checkpoint: that is the drain rate.
    """
    import cProfile

    timers, profiler = Timers(), cProfile.Profile()
    instrument_apply(timers, profiler if a.profile else None)
    runs, drains = [], []
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
                runs.append(_run_record(timers, committed - first, done - committed, done - first))
            for r in range(a.cdc_repeat):
                lab, drain = _drain(a, lab, arn, cur, timers, (a.cdc_repeat + r) * a.updates)
                drains.append(drain)
        conn.close()
        source, replica = checksums(a.dsn, lab, target)
        lab.client("rds").delete_integration(IntegrationIdentifier=arn)
        lab.wait_for_status(arn, "deleted", timeout=60)
        lab.close()
    result = {
        "load_seconds": load_seconds,
        "runs": runs,
        "drains": drains,
        "source": source,
        "target": replica,
    }
    if a.profile:
        result["cprofile"] = profile_stats(profiler, "cumulative")
    return result


def _drain(
    a: argparse.Namespace, lab: Any, arn: str, cur: Any, timers: Timers, offset: int
) -> tuple[Any, dict[str, Any]]:
    """Close the Lab, commit the backlog, reopen and time until ``lab.wait`` returns."""
    from zetl_nb import Lab

    home = lab.home
    lab.close()
    first = time.perf_counter()
    cur.execute("CALL bench_updates(%s, %s, %s)", (a.updates, a.rows, offset))
    committed = time.perf_counter()
    timers.reset()
    lab = Lab(home, prerequisite_recheck_seconds=0.5, embedded_postgres=False)
    lab.wait(arn, timeout=a.timeout)
    done = time.perf_counter()
    return lab, _run_record(timers, committed - first, done - committed, done - committed)


def _run_record(timers: Timers, generate: float, after: float, total: float) -> dict[str, Any]:
    return {
        "generate": generate,
        "after_commit": after,
        "from_first": total,
        "commits": [(round(s, 2), n, f) for _, s, n, f, _ in timers.log],
        "timers": timers.table(total),
    }


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
    print("Live (updates committed while replicating; bounded by the source's commit rate):\n")
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
    print("\nBacklog (Lab closed while the source commits; reopen → `lab.wait` returns):\n")
    print("| run | updates committed in | reopen to applied | changes/s drained | target commits |")
    print("|---|---|---|---|---|")
    for i, run in enumerate(res["drains"], 1):
        made = f"{run['generate']:.2f} s"
        rate = a.updates / run["from_first"]
        print(f"| {i} | {made} | {run['from_first']:.2f} s | {rate:,.0f} | {len(run['commits'])} |")
    best = max(a.updates / run["from_first"] for run in res["drains"])
    print(f"\n- best drain {best:,.0f} changes/s (target >= 30,000/s: {verdict(best >= 30_000)})")
    same = "equal" if res["source"] == res["target"] else "DIFFERENT"
    print(
        f"- checksum count, sum(quantity), sum(id*quantity), sum(amount): source "
        f"{res['source']}, target {res['target']}: {same}"
    )
    for name, group in (("live", res["runs"]), ("backlog", res["drains"])):
        for i, run in enumerate(group, 1):
            each = ", ".join(f"{n:,} in {s:.1f} s" for s, n, _ in run["commits"])
            print(f"- {name} run {i}, changes per target commit: {each}")
    print(f"\nTime inside the replication thread, backlog run {len(res['drains'])}:\n")
    print("\n".join(res["drains"][-1]["timers"]))
