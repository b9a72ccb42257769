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
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
TABLE = "transactions"
ACCOUNT, REGION = "123456789012", "us-east-1"
TARGET_DB = "lakehouse"
TARGET_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{TARGET_DB}"
PEERS_DIR = Path(os.environ.get("ZETL_BENCH_PEERS", "~/.cache/zetl-bench-peers")).expanduser()
PG_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO"
PROBE_ID, PROBE_TIMEOUT, PROBE_POLL = 0, 60.0, 0.05
UPDATE_SQL = (
    "UPDATE transactions SET quantity = quantity + 1, amount = amount + 0.01, "
    "updated_at = clock_timestamp() WHERE id = %s"
)

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


# -- shared helpers ------------------------------------------------------------------------------


def _connect(dsn: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(dsn, options=PG_OPTIONS)
    conn.autocommit = True
    return conn


def _execute(dsn: str, *statements: str) -> None:
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _make_table(admin_dsn: str, dsn: str, database: str, rows: int, probe: bool = False) -> float:
    """(Re)create ``database`` with ``transactions`` of ``rows`` rows; returns seconds taken.

    ``probe``: add the steady-state probe row, id 0 (outside the checksums: ``WHERE id > 0``).
    """
    start = time.perf_counter()
    if database != "postgres":
        _execute(admin_dsn, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        _execute(admin_dsn, f"CREATE DATABASE {database}")
    conn = _connect(dsn)
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


def _drop_replication_leftovers(dsn: str) -> None:
    """Slots and publications a failed zetl_nb worker left behind (they would pin WAL)."""
    conn = _connect(dsn)
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


def _run(cmd: list[str], timeout: float) -> tuple[dict[str, Any] | None, float, str]:
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


def _pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class _Timers:
    """Wall time spent in wrapped functions, summed over calls (instrumentation, not code)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        # Per apply: (end, seconds, changes, data files after it, 1-minute load average).
        self.log: list[tuple[float, float, int, int, float]] = []
        self._lock = threading.Lock()

    def add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] += seconds
            self.calls[label] += 1

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()
            self.log.clear()

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - start)

        setattr(owner, attr, timed)

    def wrap_iter(self, owner: Any, attr: str, label: str) -> None:
        """Time spent producing the items of a generator function (not consuming them)."""
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            items = iter(fn(*args, **kwargs))
            while True:
                start = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    self.add(label, time.perf_counter() - start)
                yield item

        setattr(owner, attr, timed)

    def table(self, wall: float) -> list[str]:
        rows = [
            "| phase (replication thread) | seconds | share of wall | calls |",
            "|---|---|---|---|",
        ]
        for label, secs in self.seconds.items():
            rows.append(f"| {label} | {secs:.2f} | {secs / wall:.0%} | {self.calls[label]} |")
        return rows


# -- zetl_nb workers -----------------------------------------------------------------------------


def _prepare_target(lab: Any) -> None:
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
def _integration(a: argparse.Namespace, name: str) -> Iterator[tuple[Any, str, str, float]]:
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
        _prepare_target(lab)
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


def _module_with(attr: str, *names: str) -> Any:
    """The first of ``names`` (modules) defining ``attr``: the source package is being split."""
    import importlib

    for name in names:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            if hasattr(module, attr):
                return module
    raise LookupError(f"none of {names} defines {attr}")


def _instrument_load(timers: _Timers, profiler: Any | None) -> None:
    """Phase timers (a few dozen calls: no measurable cost); cProfile only with ``--profile``."""
    import pyiceberg.table

    from zetl_nb.engine.replication import RelationalRunner
    from zetl_nb.target.writer import TableWriter

    pg = "zetl_nb.sources.postgres"
    snapshot = _module_with("PostgresSnapshot", f"{pg}_snapshot", pg)
    timers.wrap_iter(snapshot.PostgresSnapshot, "read", "source read: COPY + CSV parse + casts")
    timers.wrap(snapshot, "cast_text", "  of which cast_text (decimal, timestamptz)")
    timers.wrap(TableWriter, "_conform", "Arrow cast to the table schema (_conform)")
    timers.wrap(pyiceberg.table.Transaction, "append", "pyiceberg append (Parquet write)")
    timers.wrap(pyiceberg.table.Transaction, "commit_transaction", "pyiceberg commit")
    if profiler is not None:
        _profile(RelationalRunner, "_load", profiler)


def _profile(owner: Any, attr: str, profiler: Any) -> None:
    """Run ``owner.attr`` under ``profiler``; cProfile follows the calling (runner) thread."""
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profiler.disable()

    setattr(owner, attr, profiled)


def _stats(profiler: Any, sort: str) -> list[str]:
    import io
    import pstats

    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats(sort).print_stats(20)
    return [line for line in text.getvalue().splitlines() if line.strip()]


def worker_zetl_load(a: argparse.Namespace) -> dict[str, Any]:
    """One initial load through the public API; phase marks from ``lab.bus``."""
    import cProfile

    timers, profiler = _Timers(), cProfile.Profile()
    _instrument_load(timers, profiler if a.profile else None)
    with _integration(a, "bench-load") as (lab, arn, target, t0):
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
        result["cprofile"] = _stats(profiler, "tottime")
    return result


def _instrument_apply(timers: _Timers, profiler: Any | None = None) -> None:
    import pyiceberg.table

    from zetl_nb.engine.replication import RelationalRunner
    from zetl_nb.target import writer

    pg = "zetl_nb.sources.postgres"
    stream = _module_with("PostgresStream", f"{pg}_stream", pg)
    timers.wrap(stream.PostgresStream, "poll", "pgoutput read + decode (poll)")
    timers.wrap(writer, "coalesce", "coalesce per key")
    timers.wrap(pyiceberg.table.Transaction, "delete", "pyiceberg delete (copy-on-write rewrite)")
    timers.wrap(pyiceberg.table.Transaction, "append", "pyiceberg append (Parquet write)")
    timers.wrap(pyiceberg.table.Transaction, "commit_transaction", "pyiceberg commit")
    timers.wrap(writer.TableWriter, "maintain", "maintain (compaction, expiry)")
    timers.wrap(RelationalRunner, "_save_position", "save position (control.db)")
    apply = writer.TableWriter.apply

    def logged(self: Any, batch: Any) -> Any:
        start = time.perf_counter()
        try:
            return apply(self, batch)
        finally:
            end = time.perf_counter()
            timers.add("apply total (one target commit each)", end - start)
            snap = self.table.current_snapshot()
            summary = snap.summary.additional_properties if snap and snap.summary else {}
            files = int(summary.get("total-data-files", 0))
            timers.log.append((end, end - start, len(batch), files, os.getloadavg()[0]))

    writer.TableWriter.apply = logged  # type: ignore[method-assign]
    if profiler is not None:
        _profile(RelationalRunner, "_apply", profiler)


def _checksums(dsn: str, lab: Any, target: str) -> tuple[list[str], list[str]]:
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(CHECKSUM_SQL.format(table=TABLE))
            source = [str(v) for v in cur.fetchone()]
    finally:
        conn.close()
    return source, [str(v) for v in lab.sql(CHECKSUM_SQL.format(table=target)).fetchone()]


def worker_cdc(a: argparse.Namespace) -> dict[str, Any]:
    """``--cdc-repeat`` backlogs of ``--updates`` single-row transactions, integration ACTIVE."""
    import cProfile

    timers, profiler = _Timers(), cProfile.Profile()
    _instrument_apply(timers, profiler if a.profile else None)
    runs = []
    with _integration(a, "bench-cdc") as (lab, arn, target, t0):
        lab.wait(arn, timeout=a.timeout)
        load_seconds = time.perf_counter() - t0
        conn = _connect(a.dsn)
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
        source, replica = _checksums(a.dsn, lab, target)
    result = {"load_seconds": load_seconds, "runs": runs, "source": source, "target": replica}
    if a.profile:
        result["cprofile"] = _stats(profiler, "cumulative")
    return result


def worker_steady(a: argparse.Namespace) -> dict[str, Any]:
    """1,000 changes/s from a writer process; a probe row updated once a second."""
    timers = _Timers()
    _instrument_apply(timers)
    with _integration(a, "bench-steady") as (lab, arn, target, _):
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
        source, replica = _checksums(a.dsn, lab, target)
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
    conn = _connect(a.dsn)
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
    conn = _connect(a.dsn)
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


WORKERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "zetl-load": worker_zetl_load,
    "cdc": worker_cdc,
    "steady": worker_steady,
    "steady-writer": worker_steady_writer,
}


# -- sections ------------------------------------------------------------------------------------

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
    took = _make_table(dsn, dsn, "postgres", a.rows)
    print(f"\n## Initial load: {a.rows:,} rows generated in {took:.1f} s, load {_loadavg()}\n")
    results: Runs = defaultdict(list)
    skipped: dict[str, str] = {}
    contenders = _contenders(a, dsn)
    for r in range(a.repeat):  # interleaved rounds: noise from other work spreads over all
        for i, (name, cmd) in enumerate(contenders):
            if isinstance(cmd, str) or name in skipped:
                skipped.setdefault(name, str(cmd))
                continue
            out = work / f"load-{r}-{i}"
            res, rss, why = _run([*cmd, "--out", str(out)], a.timeout)
            shutil.rmtree(out, ignore_errors=True)
            _drop_replication_leftovers(dsn)
            if res is None or res.get("rows") != a.rows:
                skipped[name] = why or f"loaded {res and res.get('rows')} rows, not {a.rows}"
                continue
            results[name].append((res, rss))
            print(f"  round {r + 1}: {name}: {res['seconds']:.2f} s, {rss:.0f} MB", flush=True)
    print(f"\nload average after the rounds: {_loadavg()}")
    _print_load(a, results, skipped)
    copy = [sys.executable, str(HERE / "peers_dlt.py"), "--tool", "limit", "--reader"]
    copy += ["copy-only", "--dsn", dsn, "--out", str(work / "copy")]
    alone = [res["seconds"] for res, _, _ in (_run(copy, a.timeout) for _ in range(2)) if res]
    print("- PostgreSQL COPY alone (CSV into /dev/null): " + ", ".join(f"{t:.2f} s" for t in alone))
    if a.profile:
        cmd = contenders[0][1]
        assert isinstance(cmd, list)
        res, rss, why = _run([*cmd, "--profile", "--out", str(work / "profile")], a.timeout)
        _drop_replication_leftovers(dsn)
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
            print(f"- zetl_nb vs {name}: {got:.2f}x (target >= {want}x: {_verdict(got >= want)})")
    limits = [name for name in best if name.startswith("limit")]
    if limits:
        fastest = min(limits, key=lambda name: best[name]["seconds"])
        share = best[fastest]["seconds"] / zetl
        print(
            f"- practical limit = {fastest}: zetl_nb reaches {share:.0%} of it "
            f"(target >= 60%: {_verdict(share >= 0.6)})"
        )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _print_profile(res: dict[str, Any] | None, rss: float, why: str) -> None:
    if res is None:
        print(f"\nprofile run failed: {why}")
        return
    print(f"\n### zetl_nb load under cProfile: {res['seconds']:.2f} s, {rss:.0f} MB\n")
    print("\n".join(res["timers"]))
    print("\ncProfile of the replication thread (own time):\n\n```")
    print("\n".join(line for line in res["cprofile"] if line.strip()))
    print("```")


def section_cdc(a: argparse.Namespace, pg: Any, work: Path) -> None:
    dsn = pg.dsn("bench_cdc")
    took = _make_table(pg.dsn("postgres"), dsn, "bench_cdc", a.cdc_rows, probe=True)
    print(f"\n## CDC backlog: {a.cdc_rows:,}-row table ({took:.1f} s), load {_loadavg()}\n")
    cmd = [sys.executable, str(SCRIPT), "--worker", "cdc", "--dsn", dsn, "--rows", str(a.cdc_rows)]
    cmd += ["--updates", str(a.updates), "--timeout", str(a.timeout)]
    timed = [*cmd, "--cdc-repeat", str(a.cdc_repeat), "--out", str(work / "cdc")]
    res, rss, why = _run(timed, a.timeout * (2 + a.cdc_repeat))
    _drop_replication_leftovers(dsn)
    if res is None:
        print(f"CDC run failed: {why}")
        return
    _print_cdc(a, res, rss)
    if a.profile:  # an extra backlog under cProfile, apart from the timed ones
        profiled = [*cmd, "--cdc-repeat", "1", "--profile", "--out", str(work / "cdc-profile")]
        res, rss, why = _run(profiled, a.timeout * 3)
        _drop_replication_leftovers(dsn)
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
    print(f"\n- best {best:,.0f} changes/s (target >= 30,000/s: {_verdict(best >= 30_000)})")
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


def section_steady(a: argparse.Namespace, pg: Any, work: Path) -> None:
    dsn = pg.dsn("bench_steady")
    took = _make_table(pg.dsn("postgres"), dsn, "bench_steady", a.cdc_rows, probe=True)
    print(
        f"\n## Steady state: {a.steady_seconds} s at {a.rate:,} changes/s, {a.cdc_rows:,}-row "
        f"table ({took:.1f} s), load {_loadavg()}\n"
    )
    cmd = [sys.executable, str(SCRIPT), "--worker", "steady", "--dsn", dsn]
    cmd += ["--rows", str(a.cdc_rows), "--rate", str(a.rate)]
    cmd += ["--steady-seconds", str(a.steady_seconds), "--timeout", str(a.timeout)]
    res, rss, why = _run([*cmd, "--out", str(work / "steady")], a.steady_seconds + 3 * a.timeout)
    _drop_replication_leftovers(dsn)
    if res is None:
        print(f"steady run failed: {why}")
        return
    _print_steady(a, res, rss)
    print(f"\nload average at the end: {_loadavg()}")


def _print_steady(a: argparse.Namespace, res: dict[str, Any], rss: float) -> None:
    fresh = [s for _, s in res["probes"] if s is not None]
    lost = len(res["probes"]) - len(fresh)
    window = min(60.0, a.steady_seconds / 2)
    commits = res["commits"]
    first = [c[1] for c in commits if c[0] <= window]
    last = [c[1] for c in commits if c[0] >= a.steady_seconds - window]
    w, cost = res["writer"], res["query_cost"]
    p50, p99 = _pct(fresh, 0.5), _pct(fresh, 0.99)
    flat = bool(first and last) and statistics.median(last) <= 1.5 * statistics.median(first)
    rows = [
        ("source changes", f"{w['changes']:,} in {w['seconds']:.0f} s ({w['rate']:,.0f}/s)", ""),
        ("probes seen", f"{len(fresh)} ({lost} not within {PROBE_TIMEOUT:.0f} s)", ""),
        ("freshness p50", f"{p50:.2f} s", f"<= 1 s: {_verdict(p50 <= 1)}"),
        ("freshness p90 / max", f"{_pct(fresh, 0.9):.2f} s / {_pct(fresh, 1.0):.2f} s", ""),
        ("freshness p99", f"{p99:.2f} s", f"<= 3 s: {_verdict(p99 <= 3)}"),
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
                    f"{statistics.median(part):.2f} / {_pct(part, 0.95):.2f} / {max(part):.2f} s",
                    "",
                )
            )
    rows += [
        ("commit time flat (last p50 <= 1.5 first p50)", "yes" if flat else "no", _verdict(flat)),
        (
            "probe query `lab.sql`",
            f"p50 {_pct(cost, 0.5) * 1000:.0f} ms, {len(cost)} runs",
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


# -- main ----------------------------------------------------------------------------------------


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
    # Internal: run one measurement in this process (started by the sections above).
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
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load {_loadavg()}")
    try:
        _execute(pg.dsn(), "ALTER SYSTEM SET max_wal_size = '4GB'", "SELECT pg_reload_conf()")
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
