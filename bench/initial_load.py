"""Initial load: zetl_nb vs the practical limit and dlt (section 1 of bench/replication.py).

Run through the entry point: ``python bench/replication.py --only load``. The contenders other
than zetl_nb live in ``bench/peers_dlt.py``, run by the peers virtualenv's interpreter where needed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import (
    HERE,
    SCRIPT,
    drop_replication_leftovers,
    integration,
    loadavg,
    make_table,
    run_worker,
    verdict,
)
from instrument import Timers, module_with, profile_method, profile_stats

PEERS_DIR = Path(os.environ.get("ZETL_BENCH_PEERS", "~/.cache/zetl-bench-peers")).expanduser()


# -- worker (child process) ----------------------------------------------------------------------


def _instrument_load(timers: Timers, profiler: Any | None) -> None:
    """Phase timers (a few dozen calls: no measurable cost); cProfile only with ``--profile``."""
    import pyiceberg.table

    from zetl_nb.engine.replication import RelationalRunner
    from zetl_nb.target.writer import TableWriter

    pg = "zetl_nb.sources.postgres"
    snapshot = module_with("PostgresSnapshot", f"{pg}_snapshot", pg)
    timers.wrap_iter(snapshot.PostgresSnapshot, "read", "source read: COPY + CSV parse + casts")
    timers.wrap(snapshot, "cast_text", "  of which cast_text (decimal, timestamptz)")
    timers.wrap(TableWriter, "_conform", "Arrow cast to the table schema (_conform)")
    timers.wrap(pyiceberg.table.Transaction, "append", "pyiceberg append (Parquet write)")
    timers.wrap(pyiceberg.table.Transaction, "commit_transaction", "pyiceberg commit")
    if profiler is not None:
        profile_method(RelationalRunner, "_load", profiler)


def worker_zetl_load(a: argparse.Namespace) -> dict[str, Any]:
    """One initial load through the public API; phase marks from ``lab.bus``."""
    import cProfile

    timers, profiler = Timers(), cProfile.Profile()
    _instrument_load(timers, profiler if a.profile else None)
    with integration(a, "bench-load") as (lab, arn, target, t0):
        marks: dict[str, float] = {}

        def mark(event: Any) -> None:
            key = {"progress": "first batch read", "table_state": "table loaded"}.get(event.kind)
            if event.kind == "state" and event.detail.get("To") == "ACTIVE":
                key = "ACTIVE"
            if key and (key not in marks or key == "table loaded"):
                marks[key] = time.perf_counter() - t0

        lab.bus.subscribe(mark)
        lab.wait(arn, timeout=a.timeout)
        seconds = time.perf_counter() - t0
        rows, amount = lab.sql(f"SELECT count(*), sum(amount) FROM {target}").fetchone()
    result: dict[str, Any] = {"seconds": seconds, "rows": rows, "amount": str(amount)}
    result["marks"] = marks
    result["timers"] = timers.table(seconds)
    if a.profile:
        result["cprofile"] = profile_stats(profiler, "tottime")
    return result


# -- section (parent process) --------------------------------------------------------------------


def _peers_python() -> tuple[Path | None, str]:
    """The peers virtualenv's interpreter, created and installed on first use; else a reason."""
    requirements = HERE / "requirements-peers.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    python, stamp = PEERS_DIR / "bin" / "python", PEERS_DIR / ".requirements.sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python, ""
    print(f"creating the peers virtualenv {PEERS_DIR} (dlt, connectorx) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(PEERS_DIR)],
        [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(step[:4])}` failed: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(step[:4])}` failed: {' / '.join(tail)}"
    stamp.write_text(digest)
    return python, ""


Runs = dict[str, list[tuple[dict[str, Any], float]]]  # contender → [(result, peak RSS MB)]


def _contenders(a: argparse.Namespace, dsn: str) -> list[tuple[str, list[str] | str]]:
    """(name, command, or the reason it is skipped)."""
    peers_script = str(HERE / "peers_dlt.py")
    limit = [peers_script, "--tool", "limit", "--dsn", dsn, "--reader"]
    ours: list[tuple[str, list[str] | str]] = [
        ("zetl_nb", [sys.executable, str(SCRIPT), "--worker", "zetl-load", "--dsn", dsn]),
        ("limit: COPY CSV -> pyarrow.csv", [sys.executable, *limit, "csv"]),
        ("limit: 2 COPY CSV in parallel (key halves)", [sys.executable, *limit, "csv2"]),
    ]
    peers, why = _peers_python()
    dlt = [str(peers), peers_script, "--tool", "dlt", "--dsn", dsn, "--backend"]
    theirs = [
        ("limit: connectorx, 2 partitions", [str(peers), *limit, "connectorx"]),
        ("dlt 1.31 pyarrow backend", [*dlt, "pyarrow"]),
        ("dlt 1.31 connectorx backend", [*dlt, "connectorx"]),
    ]
    return ours + [(name, cmd if peers else why) for name, cmd in theirs]


def section_load(a: argparse.Namespace, pg: Any, work: Path) -> None:
    dsn = pg.dsn("postgres")
    took = make_table(dsn, dsn, "postgres", a.rows)
    print(f"\n## Initial load: {a.rows:,} rows generated in {took:.1f} s, load {loadavg()}\n")
    results: Runs = defaultdict(list)
    skipped: dict[str, str] = {}
    contenders = _contenders(a, dsn)
    for r in range(a.repeat):  # interleaved rounds: noise from other work spreads over all
        for i, (name, cmd) in enumerate(contenders):
            if isinstance(cmd, str) or name in skipped:
                skipped.setdefault(name, str(cmd))
                continue
            out = work / f"load-{r}-{i}"
            res, rss, why = run_worker([*cmd, "--out", str(out)], a.timeout)
            shutil.rmtree(out, ignore_errors=True)
            drop_replication_leftovers(dsn)
            if res is None or res.get("rows") != a.rows:
                skipped[name] = why or f"loaded {res and res.get('rows')} rows, not {a.rows}"
                continue
            results[name].append((res, rss))
            print(f"  round {r + 1}: {name}: {res['seconds']:.2f} s, {rss:.0f} MB", flush=True)
    print(f"\nload average after the rounds: {loadavg()}")
    _print_load(a, results, skipped)
    copy = [sys.executable, str(HERE / "peers_dlt.py"), "--tool", "limit", "--reader"]
    copy += ["copy-only", "--dsn", dsn, "--out", str(work / "copy")]
    alone = [res["seconds"] for res, _, _ in (run_worker(copy, a.timeout) for _ in range(2)) if res]
    print("- PostgreSQL COPY alone (CSV into /dev/null): " + ", ".join(f"{t:.2f} s" for t in alone))
    if a.profile:
        cmd = contenders[0][1]
        assert isinstance(cmd, list)
        res, rss, why = run_worker([*cmd, "--profile", "--out", str(work / "profile")], a.timeout)
        drop_replication_leftovers(dsn)
        _print_profile(res, rss, why)


def _print_load(a: argparse.Namespace, results: Runs, skipped: dict[str, str]) -> None:
    best = {name: min(runs, key=lambda run: run[0]["seconds"])[0] for name, runs in results.items()}
    zetl = best["zetl_nb"]["seconds"] if "zetl_nb" in best else None
    print("\n| contender | best | all runs | rows/s (best) | peak RSS | zetl_nb is faster by |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        secs = best[name]["seconds"]
        times = ", ".join(f"{run['seconds']:.2f}" for run, _ in runs)
        ratio = f"{secs / zetl:.2f}x" if zetl else "n/a"
        rss = max(m for _, m in runs)
        print(
            f"| {name} | {secs:.2f} s | {times} s | {a.rows / secs:,.0f} | {rss:.0f} MB | {ratio} |"
        )
    for name, why in skipped.items():
        print(f"| {name} | skipped: {why.strip().splitlines()[-1][:300] if why else '?'} | | | | |")
    print()
    for name, res in best.items():
        if "read_seconds" in res:
            read, write = res["read_seconds"], res["write_seconds"]
            print(f"- {name}: read {read:.2f} s + pyiceberg create and append {write:.2f} s")
    if zetl is None:
        return
    marks = ", ".join(
        f"{k} {v:.2f} s" for k, v in sorted(best["zetl_nb"]["marks"].items(), key=lambda kv: kv[1])
    )
    print(f"- zetl_nb, best run, after create_integration: {marks}, lab.wait returned {zetl:.2f} s")
    print("\nzetl_nb's best run, time inside the replication thread:\n")
    print("\n".join(best["zetl_nb"]["timers"]))
    print()
    for name, want in (("dlt 1.31 pyarrow backend", 3.0), ("dlt 1.31 connectorx backend", 1.2)):
        if name in best:
            got = best[name]["seconds"] / zetl
            print(f"- zetl_nb vs {name}: {got:.2f}x (target >= {want}x: {verdict(got >= want)})")
    limits = [name for name in best if name.startswith("limit")]
    if limits:
        fastest = min(limits, key=lambda name: best[name]["seconds"])
        share = best[fastest]["seconds"] / zetl
        print(
            f"- practical limit = {fastest}: zetl_nb reaches {share:.0%} of it "
            f"(target >= 60%: {verdict(share >= 0.6)})"
        )


def _print_profile(res: dict[str, Any] | None, rss: float, why: str) -> None:
    if res is None:
        print(f"\nprofile run failed: {why}")
        return
    print(f"\n### zetl_nb load under cProfile: {res['seconds']:.2f} s, {rss:.0f} MB\n")
    print("\n".join(res["timers"]))
    print("\ncProfile of the replication thread (own time):\n\n```")
    print("\n".join(line for line in res["cprofile"] if line.strip()))
    print("```")
