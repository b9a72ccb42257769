"""Benchmark: TPC-H-style queries over tables replicated by a real integration, after CDC.

    python bench/query_tpch.py                        # SF 0.25 (~1.5M lineitems), 5 runs/query
    python bench/query_tpch.py --sf 0.05 --repeat 3   # a quick run
    python bench/query_tpch.py --json /tmp/tpch.json  # also write the results as JSON

One run does everything:

1. A private PostgreSQL 16 (:class:`EmbeddedPostgres` in a ``tempfile.mkdtemp()`` directory,
   stopped by PID at the end) gets the eight TPC-H-like tables from a seeded generator
   (``bench/tpch_data.py``).
2. A Lab replicates the database into Iceberg (``create_integration`` → ``lab.wait``).
3. CDC: TPC-H's refresh functions (new orders with their lines, deleted orders with their lines)
   and order-pipeline updates, committed as ``--rounds`` x 6 transactions while the integration
   replicates; ``lab.wait``; source and target must then hold the same rows (count and sums per
   table). The Iceberg tables now carry position-delete files: the report counts them.
4. The writing Lab is closed and the source stopped; the queries run, interleaved, warm (one
   unrecorded run first), median of ``--repeat``, three ways over the same data:

   - **lab.sql**: a read-only ``Lab`` (``lab.sql(query)``, wall time: it also checks every
     table's metadata for new snapshots);
   - **read_parquet**: plain DuckDB views ``SELECT * FROM read_parquet([data files])`` over the
     same data files: the practical limit. It ignores the position deletes, so it sees the
     deleted rows and the old images of updated rows: its counts are higher (printed);
   - **native**: DuckDB tables created from ``lab.sql``'s rows (the Iceberg tables' current
     state), in DuckDB's own storage, in memory.

   ``lab.sql`` and the native tables must return identical results; the read_parquet results
   differ where deleted rows count.

Targets (issue 5): lab.sql / read_parquet ≤ 1.25x, lab.sql / native ≤ 2x. Prints Markdown tables
for ``docs/benchmarks.md`` and a ``RESULT`` JSON line (``--json`` writes it to a file too).
``--profile`` times three more view definitions over the same files, each one change away from
the next (``bench/tpch_views.py``), to show where lab.sql's time goes beside read_parquet.

lab.sql answers from in-memory copies (``zetl_nb.query.copies``) once they are built: the first
query of each table starts its copy in the background; the run times those first queries and
the wait until every table is in memory, reports each table's read path, rows, memory and first
copy time, and replays lineitem's and orders' snapshots through the copy code to time the
per-snapshot upkeep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TARGET_ARN, TARGET_DB, connect, execute, loadavg, prepare_target, verdict
from tpch_data import KINDS, QUERIES, TABLES, Generator, cdc_workload, create_and_load

SOURCE_DB = "tpch"
TARGETS = {t: f"{TARGET_DB}.{SOURCE_DB}_public_{t}" for t in TABLES}
CONTENDERS = ("lab.sql", "read_parquet", "native")
# Sums per table that source and target must agree on (besides count(*)).
CHECKS = {
    "lineitem": "sum(l_orderkey * l_linenumber), sum(l_extendedprice), sum(l_receiptdate - "
    "DATE '1992-01-01'), count(*) FILTER (WHERE l_linestatus = 'F')",
    "orders": "sum(o_orderkey), sum(o_totalprice), count(*) FILTER (WHERE o_orderstatus = 'F')",
    "customer": "sum(c_custkey), sum(c_acctbal)",
    "part": "sum(p_partkey), sum(p_retailprice)",
}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sf", type=float, default=0.25, help="scale factor (0.25: ~1.5M lineitems)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per query (median)")
    p.add_argument("--rounds", type=int, default=10, help="CDC rounds (6 transactions each)")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--timeout", type=float, default=900.0, help="per lab.wait, seconds")
    p.add_argument("--json", type=Path, help="write the results here too")
    p.add_argument("--profile", action="store_true", help="also time diagnostic view variants")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args()


def _code_version() -> str:
    """Where zetl_nb was imported from, its git state, and a hash of its sources.

    The hash identifies the code measured even when it is an uncommitted work tree or a copy.
    """
    import hashlib

    import zetl_nb

    package = Path(zetl_nb.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    done = subprocess.run(
        ["git", "-C", str(package), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    )
    git = done.stdout.strip() or "not a git work tree"
    return f"zetl_nb from {package.parent} ({git}, sources sha256 {digest.hexdigest()[:12]})"


# -- replicate --------------------------------------------------------------------------------


def replicate(a: argparse.Namespace, pg: Any, home: Path, out: dict[str, Any]) -> None:
    """Seed the source, replicate it, apply the CDC workload; fills ``out`` with what happened."""
    from zetl_nb import Lab

    execute(pg.dsn(), f"DROP DATABASE IF EXISTS {SOURCE_DB}", f"CREATE DATABASE {SOURCE_DB}")
    dsn = pg.dsn(SOURCE_DB)
    gen = Generator(a.sf, a.seed)
    start = time.perf_counter()
    tables = gen.tables()
    generated = time.perf_counter()
    conn = connect(dsn)
    out["source_rows"] = create_and_load(conn, tables)
    del tables
    loaded = time.perf_counter()
    print(
        f"generated in {generated - start:.1f} s, COPY into PostgreSQL {loaded - generated:.1f} s:"
        f" {', '.join(f'{t} {n:,}' for t, n in out['source_rows'].items())}",
        flush=True,
    )
    lab = Lab(home, prerequisite_recheck_seconds=0.5, embedded_postgres=False)
    try:
        prepare_target(lab)
        source = lab.add_database("bench", dsn)
        t0 = time.perf_counter()
        arn = lab.client("rds").create_integration(
            IntegrationName="bench-tpch",
            SourceArn=source,
            TargetArn=TARGET_ARN,
            DataFilter=f"include: {SOURCE_DB}.public.*",
        )["IntegrationArn"]
        lab.wait(arn, timeout=a.timeout)
        out["initial_load_seconds"] = time.perf_counter() - t0
        print(f"initial load (create_integration → lab.wait) {out['initial_load_seconds']:.1f} s")
        t0 = time.perf_counter()
        out["cdc"], out["cdc_transactions"] = cdc_workload(conn, gen, a.rounds)
        committed = time.perf_counter()
        lab.wait(arn, timeout=a.timeout)
        out["cdc_seconds"] = {
            "commit": committed - t0,
            "then_wait": time.perf_counter() - committed,
        }
        print(
            f"CDC: {out['cdc_transactions']} transactions in {committed - t0:.1f} s, applied "
            f"{time.perf_counter() - committed:.1f} s later: "
            + ", ".join(f"{k} {v:,}" for k, v in out["cdc"].items()),
            flush=True,
        )
        out["checks"] = _compare(conn, lab)
        out["iceberg"] = _files(lab)
    finally:
        conn.close()
        lab.close()  # the integration stays (its slot too): the source stops next


def _compare(conn: Any, lab: Any) -> dict[str, Any]:
    """count(*) and CHECKS per table, source and target; raises when they differ."""
    checks: dict[str, Any] = {}
    for table in TABLES:
        sql = f"SELECT count(*), {CHECKS.get(table, '0')} FROM {{}}"
        with conn.cursor() as cur:
            cur.execute(sql.format(table))
            source = [str(v) for v in cur.fetchone()]
        target = [str(v) for v in lab.sql(sql.format(TARGETS[table])).fetchone()]
        if source != target:
            raise SystemExit(f"{table}: source {source} != target {target}")
        checks[table] = source
    return checks


def _files(lab: Any) -> dict[str, dict[str, int]]:
    """Data files, position-delete files and rows in them, per table (current snapshot)."""
    stats = {}
    for table in TABLES:
        ns, name = TARGETS[table].split(".")
        tasks = list(lab.catalog.catalog.load_table((ns, name)).scan().plan_files())
        deletes = {d.file_path: d.record_count for t in tasks for d in t.delete_files}
        stats[table] = {
            "data_files": len(tasks),
            "data_rows": sum(t.file.record_count for t in tasks),
            "delete_files": len(deletes),
            "delete_rows": sum(deletes.values()),
        }
    return stats


# -- query ------------------------------------------------------------------------------------


def _local(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def contenders(lab: Any, variants: bool) -> dict[str, Any]:
    """A callable per contender: query text → Arrow table."""
    import duckdb

    parquet, native = duckdb.connect(), duckdb.connect()
    for con in (parquet, native):
        con.execute(f'CREATE SCHEMA "{TARGET_DB}"')
    for table in TABLES:
        ns, name = TARGETS[table].split(".")
        tasks = lab.catalog.catalog.load_table((ns, name)).scan().plan_files()
        paths = ", ".join("'" + _local(t.file.file_path) + "'" for t in tasks)
        parquet.execute(
            f'CREATE VIEW "{ns}"."{name}" AS SELECT * FROM read_parquet([{paths}])'
        )  # fmt: skip
        rows = lab.sql(f"SELECT * FROM {TARGETS[table]}").to_arrow()
        native.register("__rows", rows)
        native.execute(f'CREATE TABLE "{ns}"."{name}" AS SELECT * FROM __rows')
        native.unregister("__rows")
    runners = {
        "lab.sql": lambda q: lab.sql(q).to_arrow(),
        "read_parquet": lambda q: parquet.sql(q).to_arrow_table(),
        "native": lambda q: native.sql(q).to_arrow_table(),
    }
    if variants:
        import tpch_views

        tables = {}
        for t in TABLES:
            ns, name = TARGETS[t].split(".")
            tables[TARGETS[t]] = lab.catalog.catalog.load_table((ns, name))
        for variant in tpch_views.VARIANTS:
            con = tpch_views.build(variant, tables, _local)
            runners[variant] = lambda q, con=con: con.sql(q).to_arrow_table()
    return runners


def copy_into_memory(lab: Any, out: dict[str, Any]) -> None:
    """First query of every table (answered from Parquet while its copy is built in the
    background), then the time until every copy serves; read paths and memory."""
    engine = lab._query_engine()
    start = time.perf_counter()
    first = {}
    for t in TABLES:
        begin = time.perf_counter()
        lab.sql(f"SELECT count(*) FROM {TARGETS[t]}")
        first[t] = time.perf_counter() - begin
    memory = engine.wait_for_copies()
    out["copies"] = {
        "first_queries": first,
        "all_in_memory_s": time.perf_counter() - start,
        "tables": memory,
        "read_paths": {t: engine.read_path(TARGETS[t]) for t in TABLES},
        "budget_mb": engine.copies.budget / 1e6,
    }


def run_queries(a: argparse.Namespace, lab: Any, out: dict[str, Any]) -> None:
    """Every query x contender, interleaved per round; medians, row counts, result checks."""
    copy_into_memory(lab, out)
    runners = contenders(lab, a.profile)
    out["counts"] = {
        name: {t: run(f"SELECT count(*) FROM {TARGETS[t]}").column(0)[0].as_py() for t in TABLES}
        for name, run in runners.items()
    }
    out["load_before_queries"] = loadavg()
    texts = {q: sql.format(**TARGETS) for q, sql in QUERIES.items()}
    times: dict[str, dict[str, list[float]]] = {q: {c: [] for c in runners} for q in texts}
    engine: dict[str, list[float]] = {q: [] for q in texts}  # lab.sql minus its refresh
    results: dict[str, dict[str, Any]] = {q: {} for q in texts}
    for r in range(a.repeat + 1):  # round 0 warms up (file cache, plans), not recorded
        for q, sql in texts.items():
            for name, run in runners.items():
                start = time.perf_counter()
                if name == "lab.sql":
                    res = lab.sql(sql)
                    table, inner = res.to_arrow(), res.elapsed
                else:
                    table = run(sql)
                seconds = time.perf_counter() - start
                if r == 0:
                    results[q][name] = table
                    continue
                times[q][name].append(seconds)
                if name == "lab.sql":
                    engine[q].append(inner)
    out["load_after_queries"] = loadavg()
    from tpch_copy import replay

    out["copy_upkeep"] = {}
    for t in ("lineitem", "orders"):
        ns, name = TARGETS[t].split(".")
        out["copy_upkeep"][t] = replay(lab.catalog.catalog.load_table((ns, name)), _local)
    out["queries"] = {}
    for q in texts:
        med = {c: statistics.median(v) for c, v in times[q].items()}
        same_parquet = _same(results[q]["lab.sql"], results[q]["read_parquet"])
        for name in runners:  # every contender but read_parquet returns the current rows
            if name != "read_parquet" and not _same(results[q]["lab.sql"], results[q][name]):
                raise SystemExit(f"{q}: lab.sql and {name} returned different results")
        out["queries"][q] = {
            "median": med,
            "runs": times[q],
            "lab_sql_engine_median": statistics.median(engine[q]),
            "ratio_read_parquet": med["lab.sql"] / med["read_parquet"],
            "ratio_native": med["lab.sql"] / med["native"],
            "same_as_read_parquet": same_parquet,
            "result_rows": results[q]["lab.sql"].num_rows,
        }


def _same(x: Any, y: Any) -> bool:
    """Equal results; doubles (avg) within 1e-9 relative: parallel sums may round differently."""
    if x.shape != y.shape:
        return False
    for row_x, row_y in zip(x.to_pylist(), y.to_pylist(), strict=True):
        for (_, u), (_, v) in zip(row_x.items(), row_y.items(), strict=True):
            close = (
                isinstance(u, float) and isinstance(v, float) and math.isclose(u, v, rel_tol=1e-9)
            )
            if u != v and not close:
                return False
    return True


# -- report -----------------------------------------------------------------------------------


def report(a: argparse.Namespace, out: dict[str, Any]) -> None:
    print(f"\n## Replicated tables after CDC (load {out['load_before_queries']})\n")
    print("| table | rows (lab.sql) | read_parquet sees | native | data files | delete files "
          "| rows in delete files |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in TABLES:
        c, s = out["counts"], out["iceberg"][t]
        print(
            f"| {t} | {c['lab.sql'][t]:,} | {c['read_parquet'][t]:,} "
            f"(+{c['read_parquet'][t] - c['lab.sql'][t]:,}) | {c['native'][t]:,} "
            f"| {s['data_files']} | {s['delete_files']} | {s['delete_rows']:,} |"
        )
    print(
        f"\n## Queries: median of {a.repeat} warm runs (load {out['load_before_queries']} → "
        f"{out['load_after_queries']})\n"
    )
    print(
        "| query | what | lab.sql | of which query | read_parquet | native "
        "| lab.sql / read_parquet | lab.sql / native | rows | same as read_parquet |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for q, r in out["queries"].items():
        m = r["median"]
        print(
            f"| {q} | {KINDS[q]} | {m['lab.sql'] * 1e3:.1f} ms "
            f"| {r['lab_sql_engine_median'] * 1e3:.1f} ms | {m['read_parquet'] * 1e3:.1f} ms "
            f"| {m['native'] * 1e3:.1f} ms | {r['ratio_read_parquet']:.2f}x "
            f"| {r['ratio_native']:.2f}x | {r['result_rows']} "
            f"| {'yes' if r['same_as_read_parquet'] else 'no'} |"
        )
    variants = [c for c in out["queries"]["scan"]["median"] if c not in CONTENDERS]
    if variants:
        _report_variants(out, variants)
    _report_copies(out)
    if "copy_upkeep" in out:
        print("\nIn-memory copy upkeep (bench/tpch_copy.py `replay` through zetl_nb.query.copies:")
        print("the oldest kept snapshot, then each later one in order, one transaction each):\n")
        print("| table | snapshots | first copy | later snapshot, median | max | rows | memory |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for t, u in out["copy_upkeep"].items():
            print(
                f"| {t} | {u['snapshots']} | {u['first'] * 1e3:.0f} ms "
                f"| {u['median_later'] * 1e3:.1f} ms | {u['max_later'] * 1e3:.1f} ms "
                f"| {u['rows']:,} | {u['memory_mb']:.0f} MB |"
            )
    summary = _summary(out)
    out["summary"] = summary
    print("\n| target | geometric mean | worst query | verdict (every query) |")
    print("|---|---:|---:|---|")
    for key, label, limit in (
        ("read_parquet", "lab.sql / read_parquet ≤ 1.25x", 1.25),
        ("native", "lab.sql / native ≤ 2x", 2.0),
    ):
        s = summary[key]
        print(
            f"| {label} | {s['geomean']:.2f}x | {s['worst']:.2f}x ({s['worst_query']}) "
            f"| {verdict(s['worst'] <= limit)} ({s['met']} of {len(out['queries'])} met) |"
        )
    if "profile" in out:
        print(f"\nEXPLAIN ANALYZE of {out['profile']['query']} through lab.sql: in the JSON")


def _report_copies(out: dict[str, Any]) -> None:
    c = out["copies"]
    print(
        f"\nIn-memory copies (budget {c['budget_mb']:.0f} MB): every table in memory "
        f"{c['all_in_memory_s']:.2f} s after the first queries began\n"
    )
    print("| table | read path | first query | rows | memory | first copy |")
    print("|---|---|---:|---:|---:|---:|")
    for t in TABLES:
        m = c["tables"].get(TARGETS[t], {})
        print(
            f"| {t} | {c['read_paths'][t]} | {c['first_queries'][t] * 1e3:.1f} ms "
            f"| {m.get('rows', 0):,} | {m.get('memory_mb', 0):.1f} MB "
            f"| {m.get('first_copy_s', 0) * 1e3:.0f} ms |"
        )


def _report_variants(out: dict[str, Any], variants: list[str]) -> None:
    print("\nWhere the time goes (`--profile`): the same files through other view definitions")
    print("(bench/tpch_views.py), median ms; lab.sql without its per-query refresh:\n")
    names = ["read_parquet", *variants, "lab.sql (query)", "native"]
    print("| query | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for q, r in out["queries"].items():
        m = dict(r["median"], **{"lab.sql (query)": r["lab_sql_engine_median"]})
        print(f"| {q} | " + " | ".join(f"{m[n] * 1e3:.1f}" for n in names) + " |")


def _summary(out: dict[str, Any]) -> dict[str, Any]:
    summary = {}
    for key, limit in (("read_parquet", 1.25), ("native", 2.0)):
        ratios = {q: r[f"ratio_{key}"] for q, r in out["queries"].items()}
        worst = max(ratios, key=lambda q: ratios[q])
        summary[key] = {
            "geomean": statistics.geometric_mean(ratios.values()),
            "worst": ratios[worst],
            "worst_query": worst,
            "met": sum(v <= limit for v in ratios.values()),
        }
    return summary


def main() -> None:
    a = _args()
    import duckdb
    import pyiceberg

    from zetl_nb import Lab
    from zetl_nb.services.postgres import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="zetl-bench-tpch-"))
    out: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python "
        f"{sys.version.split()[0]}, duckdb {duckdb.__version__}, pyiceberg {pyiceberg.__version__}",
        "code": _code_version(),
        "sf": a.sf,
        "repeat": a.repeat,
        "load_at_start": loadavg(),
    }
    pg = EmbeddedPostgres(work / "pg" / "data")
    pg.start()
    print(f"{out['code']}; private PostgreSQL 16 on {pg.url} (PID {pg.pid}) in {work}")
    print(f"{out['machine']}; load {out['load_at_start']}", flush=True)
    try:
        execute(pg.dsn(), "ALTER SYSTEM SET max_wal_size = '4GB'", "SELECT pg_reload_conf()")
        replicate(a, pg, work / "home", out)
    finally:
        pg.stop()  # nothing else runs while the queries are timed
    try:
        with Lab(work / "home", read_only=True) as lab:
            run_queries(a, lab, out)
        report(a, out)
        line = json.dumps(out, default=str)
        print("RESULT " + line, flush=True)
        if a.json:
            a.json.write_text(json.dumps(out, default=str, indent=1))
    finally:
        if not a.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
