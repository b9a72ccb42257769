"""The contenders of bench/replication.py's initial load that are not zetl_nb: dlt and the limit.

Started by bench/replication.py, one process per run; prints one ``RESULT {json}`` line with
``seconds`` (imports and interpreter start excluded, as for zetl_nb) and ``rows``.

``--tool dlt --backend pyarrow|connectorx`` (peers virtualenv only: bench/requirements-peers.txt)
    dlt 1.31's ``sql_database`` source with that backend, its defaults otherwise → the
    ``filesystem`` destination on a local ``bucket_url`` with ``table_format="iceberg"``.

``--tool limit --reader csv|csv2|connectorx|copy-only`` (any interpreter with psycopg2, pyarrow,
pyiceberg; connectorx only in the peers virtualenv)
    The practical limit: the fastest read of the whole table into typed Arrow we know here, then
    one pyiceberg ``append`` into a new ``SqlCatalog`` table. ``csv``: ``COPY ... CSV`` streamed
    through a pipe into ``pyarrow.csv`` with every column typed by the parser; ``csv2``: two of
    those over halves of the key range in parallel; ``connectorx``: ``read_sql(...,
    return_type="arrow", partition_on="id", partition_num=2)``; ``copy-only``: the COPY into
    ``/dev/null``, nothing parsed (what PostgreSQL and psycopg2 alone cost).

    ~/.cache/zetl-bench-peers/bin/python bench/peers_dlt.py --tool dlt --backend pyarrow \\
        --dsn postgresql://postgres@127.0.0.1:PORT/postgres --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

TABLE = "transactions"
PG_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO"


def run_dlt(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network from a benchmark
    import dlt

    # What dlt imports lazily, imported before the clock starts.
    import psycopg  # noqa: F401 - SQLAlchemy 2.1's default driver for postgresql://
    import pyarrow  # noqa: F401
    import pyiceberg.catalog.sql
    import pyiceberg.io.pyarrow  # noqa: F401
    from dlt.sources.sql_database import sql_database

    if args.backend == "connectorx":
        import connectorx  # noqa: F401

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.backend}",
        pipelines_dir=str(args.out / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(args.out / "bucket").as_uri()),
        dataset_name="bench",
    )
    source = sql_database(credentials=args.dsn, table_names=[TABLE], backend=args.backend)
    start = time.perf_counter()
    info = pipeline.run(source, table_format="iceberg", loader_file_format="parquet")
    seconds = time.perf_counter() - start
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(TABLE, 0)
    return {"seconds": seconds, "rows": int(rows), "tool": f"dlt {dlt.__version__}"}


def _connect(dsn: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(dsn, options=PG_OPTIONS)
    conn.autocommit = True
    return conn


def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="UTC")
    return {
        "id": pa.int64(),
        "customer_id": pa.int64(),
        "product_id": pa.int32(),
        "quantity": pa.int32(),
        "amount": pa.decimal128(12, 2),
        "discount": pa.decimal128(5, 2),
        "status": pa.string(),
        "channel": pa.string(),
        "note": pa.string(),
        "created_at": stamp,
        "updated_at": stamp,
    }


def _copy_csv(dsn: str, where: str = "") -> Any:
    """``COPY ... CSV`` streamed through a pipe into pyarrow's CSV reader, typed by the parser."""
    import pyarrow.csv as csv

    conn = _connect(dsn)
    sql = f"COPY (SELECT * FROM {TABLE} {where}) TO STDOUT WITH (FORMAT csv)"
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []

    def copy() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out, conn.cursor() as cur:
                cur.copy_expert(sql, out)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=copy)
    thread.start()
    types = _arrow_types()
    with os.fdopen(read_fd, "rb") as source:
        table = csv.open_csv(
            source,
            csv.ReadOptions(column_names=list(types), block_size=4 << 20),
            csv.ParseOptions(newlines_in_values=True),  # text may hold newlines in general
            csv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        ).read_all()
    thread.join()
    conn.close()
    if failed:
        raise failed[0]
    return table


def _copy_only(dsn: str) -> None:
    conn = _connect(dsn)
    sql = f"COPY (SELECT * FROM {TABLE}) TO STDOUT WITH (FORMAT csv)"
    with open(os.devnull, "wb", buffering=1 << 20) as sink, conn.cursor() as cur:
        cur.copy_expert(sql, sink)
    conn.close()


def _copy_csv_halves(dsn: str) -> Any:
    import pyarrow as pa

    conn = _connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"SELECT (min(id) + max(id)) / 2 FROM {TABLE}")
        (mid,) = cur.fetchone()
    conn.close()
    halves: list[Any] = [None, None]

    def read(i: int, where: str) -> None:
        halves[i] = _copy_csv(dsn, where)

    threads = [
        threading.Thread(target=read, args=(i, where))
        for i, where in enumerate([f"WHERE id <= {mid}", f"WHERE id > {mid}"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if None in halves:
        raise RuntimeError("a COPY thread failed")
    return pa.concat_tables(halves)


def _connectorx(dsn: str) -> Any:
    import connectorx as cx
    import pyarrow as pa

    table = cx.read_sql(
        dsn, f"SELECT * FROM {TABLE}", return_type="arrow", partition_on="id", partition_num=2
    )
    return table.cast(pa.schema(list(_arrow_types().items())))  # the same types as the others


def run_limit(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg2  # noqa: F401 - imports out of the timed part
    import pyarrow.csv  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401
    from pyiceberg.catalog.sql import SqlCatalog

    if args.reader == "connectorx":
        import connectorx  # noqa: F401
    readers = {"csv": _copy_csv, "csv2": _copy_csv_halves, "connectorx": _connectorx}
    start = time.perf_counter()
    if args.reader == "copy-only":
        _copy_only(args.dsn)
        return {"seconds": time.perf_counter() - start, "rows": None}
    table = readers[args.reader](args.dsn)
    read = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        "bench", uri=f"sqlite:///{args.out}/catalog.db", warehouse=(args.out / "wh").as_uri()
    )
    catalog.create_namespace("bench")
    catalog.create_table(("bench", TABLE), table.schema).append(table)
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "read_seconds": read,
        "write_seconds": done - start - read,
        "rows": table.num_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tool", choices=["dlt", "limit"], required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", choices=["pyarrow", "connectorx"], default="pyarrow")
    parser.add_argument("--reader", choices=["csv", "csv2", "connectorx", "copy-only"])
    args = parser.parse_args()
    result = run_dlt(args) if args.tool == "dlt" else run_limit(args)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
