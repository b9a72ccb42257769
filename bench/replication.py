"""Benchmark: PostgreSQL → Iceberg replication: initial load, CDC backlog, steady state.

    python bench/replication.py                                  # all sections, issue defaults
    python bench/replication.py --only load --rows 2000000 --repeat 3 --profile
    python bench/replication.py --only cdc --cdc-rows 1000000 --updates 200000
    python bench/replication.py --only steady --steady-seconds 120

Everything runs against a private PostgreSQL 16 (:class:`EmbeddedPostgres` in a
``tempfile.mkdtemp()`` directory, stopped by PID at the end); the machine's shared servers are
never touched. Every contender runs in its own subprocess; its peak RSS is that process's
``ru_maxrss`` from ``os.wait4``.

1. **Initial load** of ``transactions`` (11 columns, ``--rows`` rows from ``generate_series``):
   zetl_nb (``create_integration`` → ``lab.wait``), the practical limit (the fastest Arrow read
   here plus one pyiceberg ``append`` into a ``SqlCatalog`` table), and dlt 1.31 with its pyarrow
   and connectorx backends. dlt and connectorx run in their own virtualenv (created on first use
   under ``~/.cache/zetl-bench-peers`` from ``bench/requirements-peers.txt``); a peer that cannot
   be installed is skipped with the reason. zetl_nb's runs carry phase timers (where the load
   time goes); ``--profile`` adds one run under cProfile (of the replication thread).
2. **CDC backlog**: ``--updates`` single-row UPDATE transactions (a procedure that COMMITs per
   row, ``synchronous_commit=off`` in that session) against a ``--cdc-rows`` table under an
   ACTIVE integration; time until ``lab.wait`` returns, from the first update and from the last
   commit; source and target checksums must match. Phase timers per run; ``--profile`` adds
   one more backlog under cProfile.
3. **Steady state**: ``--steady-seconds`` of 1,000 single-row changes/s (80 % updates, 20 %
   inserts, from a separate process) while a probe row is updated once a second with a new value:
   freshness = source commit of the probe until ``lab.sql`` shows it. Commit time per target
   commit over time (first vs last minute).

Each section prints a Markdown table (used in ``docs/benchmarks.md``).

This file is the entry point; the sections live beside it: ``initial_load.py``, ``cdc.py`` and
``steady.py``, with the shared setup in ``common.py`` and worker instrumentation in
``instrument.py``. Workers are this script again, with ``--worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdc import section_cdc, worker_cdc
from common import execute, loadavg
from initial_load import section_load, worker_zetl_load
from steady import section_steady, worker_steady, worker_steady_writer

WORKERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "zetl-load": worker_zetl_load,
    "cdc": worker_cdc,
    "steady": worker_steady,
    "steady-writer": worker_steady_writer,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="initial-load table rows")
    p.add_argument("--cdc-rows", type=int, default=1_000_000, help="CDC and steady table rows")
    p.add_argument("--updates", type=int, default=200_000, help="CDC backlog transactions")
    p.add_argument("--steady-seconds", type=int, default=600)
    p.add_argument("--rate", type=int, default=1_000, help="steady-state changes/s")
    p.add_argument("--only", choices=["load", "cdc", "steady"])
    p.add_argument("--repeat", type=int, default=3, help="initial-load rounds (best of)")
    p.add_argument("--cdc-repeat", type=int, default=2, help="CDC backlogs (best of)")
    p.add_argument("--profile", action="store_true", help="cProfile zetl_nb's load and CDC")
    p.add_argument("--timeout", type=float, default=900.0, help="per worker wait, seconds")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    # Internal: run one measurement in this process (started by the sections, see WORKERS).
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--dsn", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p


def _code_version() -> str:
    import zetl_nb

    src = Path(zetl_nb.__file__).resolve().parent.parent
    done = subprocess.run(
        ["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return f"zetl_nb from {src} ({done.stdout.strip() or 'not a git work tree'})"


def main() -> None:
    a = _parser().parse_args()
    if a.worker:
        a.seconds = a.steady_seconds
        print("RESULT " + json.dumps(WORKERS[a.worker](a), default=str), flush=True)
        return
    from zetl_nb.services.postgres import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="zetl-bench-"))
    pg = EmbeddedPostgres(work / "pg" / "data")
    pg.start()
    print(f"{_code_version()}; private PostgreSQL 16 on {pg.url} (PID {pg.pid}) in {work}")
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load {loadavg()}")
    try:
        execute(pg.dsn(), "ALTER SYSTEM SET max_wal_size = '4GB'", "SELECT pg_reload_conf()")
        sections = {"load": section_load, "cdc": section_cdc, "steady": section_steady}
        for name, run in sections.items():
            if a.only in (None, name):
                run(a, pg, work)
    finally:
        pg.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
