"""Benchmark: the MySQL/MariaDB source's snapshot and binlog change capture.

    python bench/mysql_source.py               # 1M-row snapshot, 200k-update backlog drain
    python bench/mysql_source.py --baselines   # also pymysql SSCursor and python-mysql-replication

Runs against a private MariaDB (``PrivateMariaDB``) in a temporary directory; the machine's shared
server is not touched. Measures:

- snapshot: ``MySQLSource.snapshot(...).read(table)`` of a 1,000,000-row, 7-column table
  (bigint key, varchar, int, decimal(10,2), datetime(6), double, tinyint(1)) into Arrow;
  baseline: pymysql ``SSCursor`` rows → ``pa.array`` per column.
- change capture: 200,000 single-row ``UPDATE`` transactions (a stored procedure, autocommit)
  drained from the position before them with ``poll(100_000, 1.0)``; baseline:
  python-mysql-replication's ``BinLogStreamReader`` (blocking, GTID resume) over the same backlog.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql

from zetl_nb.core.changes import TableId
from zetl_nb.services.mariadb import PrivateMariaDB
from zetl_nb.sources.mysql import MySQLSource


def _sql(port: int, *statements: str) -> Any:
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
        rows = cur.fetchall()
    conn.close()
    return rows


def snapshot(source: MySQLSource, rows: int) -> float:
    table = TableId("bench", None, "big")
    reader = source.snapshot([table])
    t0 = time.perf_counter()
    n = sum(batch.num_rows for batch in reader.read(table))
    elapsed = time.perf_counter() - t0
    reader.close()
    assert n == rows, n
    return rows / elapsed


def snapshot_baseline(port: int, rows: int) -> float:
    conn = pymysql.connect(
        host="127.0.0.1", port=port, user="root", cursorclass=pymysql.cursors.SSCursor
    )
    cur = conn.cursor()
    t0 = time.perf_counter()
    cur.execute("SELECT id, name, qty, price, created, score, flag FROM bench.big")
    n = 0
    while chunk := cur.fetchmany(50_000):
        _ = [pa.array(col) for col in zip(*chunk, strict=True)]
        n += len(chunk)
    elapsed = time.perf_counter() - t0
    conn.close()
    assert n == rows
    return rows / elapsed


def cdc(source: MySQLSource, port: int, updates: int) -> tuple[float, dict[str, Any]]:
    _sql(port, "FLUSH BINARY LOGS")  # a resume scans its binlog file up to the GTID: start fresh
    start = source.current_position()
    _sql(port, f"CALL bench.gen({updates})")
    target = source.seq_of(source.current_position())
    stream = source.stream(start)
    t0 = time.perf_counter()
    changes = seq = polls = 0
    while seq < target:
        polls += 1
        for batch in stream.poll(100_000, 1.0):
            changes += len(batch)
            seq = max(seq, batch.seq[-1].as_py())
    elapsed = time.perf_counter() - t0
    stream.close()
    assert changes == updates, changes
    return updates / elapsed, start


def cdc_baseline(port: int, start: dict[str, Any], updates: int) -> float:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import UpdateRowsEvent

    reader = BinLogStreamReader(
        {"host": "127.0.0.1", "port": port, "user": "root", "passwd": ""},
        server_id=9901,
        blocking=True,
        is_mariadb=True,
        auto_position=start["gtid"],
        only_events=[UpdateRowsEvent],
        enable_logging=False,
    )
    t0 = time.perf_counter()
    n = 0
    for event in reader:
        n += len(event.rows)
        if n >= updates:
            break
    elapsed = time.perf_counter() - t0
    reader.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baselines", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = PrivateMariaDB(Path(tmp) / "data")
        server.start()
        try:
            port = server.port
            _sql(
                port,
                "CREATE DATABASE bench",
                "CREATE TABLE bench.big (id BIGINT PRIMARY KEY, name VARCHAR(50), qty INT, "
                "price DECIMAL(10,2), created DATETIME(6), score DOUBLE, flag TINYINT(1))",
                "INSERT INTO bench.big SELECT seq, CONCAT('name-', seq), seq % 1000, seq / 7, "
                "'2024-01-01' + INTERVAL seq SECOND, seq * 1.5, seq % 2 "
                f"FROM bench.seq_1_to_{args.rows}",
                "CREATE TABLE bench.u (id INT PRIMARY KEY, v INT NOT NULL, name VARCHAR(30), "
                "amount DECIMAL(10,2), at DATETIME)",
                "INSERT INTO bench.u SELECT seq, 0, CONCAT('n', seq), seq / 3, "
                "'2024-01-01' + INTERVAL seq MINUTE FROM bench.seq_1_to_10000",
                "CREATE PROCEDURE bench.gen(n INT) BEGIN DECLARE i INT DEFAULT 0; "
                "WHILE i < n DO UPDATE bench.u SET v = v + 1, at = at + INTERVAL 1 SECOND "
                "WHERE id = 1 + (i % 10000); SET i = i + 1; END WHILE; END",
            )
            source = MySQLSource(server.url, server_id=9900)
            snaps = [snapshot(source, args.rows) for _ in range(args.runs)]
            drains = [cdc(source, port, args.updates) for _ in range(args.runs)]
            print("| measure | median | runs |\n|---|---|---|")
            print(
                f"| snapshot, {args.rows:,} rows → Arrow | {statistics.median(snaps):,.0f} rows/s "
                f"| {', '.join(f'{s:,.0f}' for s in snaps)} |"
            )
            rates = [r for r, _ in drains]
            print(
                f"| CDC backlog, {args.updates:,} single-row updates | "
                f"{statistics.median(rates):,.0f} changes/s | "
                f"{', '.join(f'{r:,.0f}' for r in rates)} |"
            )
            if args.baselines:
                base = snapshot_baseline(port, args.rows)
                print(f"| baseline: pymysql SSCursor → Arrow | {base:,.0f} rows/s | 1 |")
                lib = cdc_baseline(port, drains[-1][1], args.updates)
                print(f"| baseline: python-mysql-replication | {lib:,.0f} changes/s | 1 |")
            source.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
