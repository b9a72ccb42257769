"""Benchmark: the DynamoDB source through the public Lab API, against the endpoint's own limit.

    python bench/dynamodb_source.py                    # 100,000 items, 10,000 changes, 20 probes
    python bench/dynamodb_source.py --items 2000       # a small run (changes: items / 10)
    python bench/dynamodb_source.py --stream-after-seed   # no seeding backlog in the stream

Everything runs on a fresh Lab home with its embedded DynamoDB endpoint (moto's server in a
child process, real boto3 over HTTP). Items are the sample ``products`` generator's
(``zetl_nb.sample.product_items``: five top-level attributes, a nested ``description`` that FULL
unnest turns into ~20 columns). Sections:

- seeding (not a result, but it bounds how big a run can be): ``--items`` items written with
  BatchWriteItem (25 per call) on ``--threads`` threads into a table with a NEW_AND_OLD_IMAGES
  stream, PITR and the Glue resource policy;
- (a) initial load: ``create_integration`` → ``lab.wait`` (scan, Iceberg write, and the hand-off's
  replay of the stream, which holds the seeding's records unless ``--stream-after-seed``), split
  into phases from the Lab's event bus; against a bare parallel Scan (4 segments, 4 threads, same
  endpoint, same run): the practical limit, since the source cannot read faster than moto serves;
- (b) stream CDC: ``--changes`` puts (new items), UpdateItems and deletes on distinct keys, then
  ``refresh_now`` → ``lab.wait``; changes/s applied, with the target checked against the expected
  count and sum of prices;
- (c) freshness: ``--probes`` times, one PutItem → ``refresh_now`` → ``lab.wait`` → visible through
  ``lab.sql``; p50 / p99 of write-to-visible.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import ACCOUNT, REGION, TARGET_ARN, TARGET_DB, loadavg, pct, prepare_target

from zetl_nb import Lab
from zetl_nb.sample import BATCH_SIZE, product_items, write_items
from zetl_nb.sources.dynamodb import required_policy

TABLE = "bench_products"
TARGET = f"{TARGET_DB}.{TABLE}"
SEGMENTS = 4
STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
Row = dict[str, Any]


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=100_000, help="items in the table (100,000)")
    p.add_argument("--changes", type=int, help="CDC changes (default: items / 10)")
    p.add_argument("--probes", type=int, default=20, help="freshness probes (20)")
    p.add_argument("--threads", type=int, default=4, help="writer threads for seeding and CDC")
    p.add_argument(
        "--stream-after-seed",
        action="store_true",
        help="enable the stream after seeding (the initial load has no stream backlog to replay)",
    )
    p.add_argument("--out", type=Path, help="Lab home parent (default: a temporary directory)")
    a = p.parse_args(argv)
    a.changes = a.changes if a.changes is not None else max(10, a.items // 10)
    return a


# -- timing helpers --------------------------------------------------------------------------------


class Phases:
    """Wall-clock marks from the Lab's event bus (handlers run in the engine's threads)."""

    def __init__(self, lab: Lab) -> None:
        self.marks: dict[str, float] = {}
        self.counts = {"Inserted": 0, "Updated": 0, "Deleted": 0}
        self._lock = threading.Lock()
        lab.bus.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        with self._lock:
            if event.kind == "progress":
                self.marks.setdefault("first_batch", time.perf_counter())
            elif event.kind == "table_state" and event.detail.get("State") == "Synced":
                self.marks.setdefault("synced", time.perf_counter())
            elif event.kind == "batch":
                for key in self.counts:
                    self.counts[key] += int(event.detail.get(key) or 0)

    def take_counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self.counts)
            self.counts = dict.fromkeys(self.counts, 0)
        return counts


@contextmanager
def timed(out: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


# -- source side -----------------------------------------------------------------------------------


def create_table(ddb: Any, stream: bool) -> str:
    """The source table with PITR and the Glue resource policy (the guide's prerequisites)."""
    params: dict[str, Any] = {
        "TableName": TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "product_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "product_id", "AttributeType": "S"}],
    }
    if stream:
        params["StreamSpecification"] = STREAM
    ddb.create_table(**params)
    arn = str(ddb.describe_table(TableName=TABLE)["Table"]["TableArn"])
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    ddb.put_resource_policy(
        ResourceArn=arn, Policy=json.dumps(required_policy(arn, ACCOUNT, REGION))
    )
    return arn


def bare_scan(ddb: Any) -> int:
    """A parallel Scan (one thread per segment) that only counts what it receives."""

    def segment(i: int) -> int:
        kwargs: dict[str, Any] = {"TableName": TABLE, "Segment": i, "TotalSegments": SEGMENTS}
        n = 0
        while True:
            page = ddb.scan(**kwargs)
            n += len(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return n
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(SEGMENTS) as pool:
        return sum(pool.map(segment, range(SEGMENTS)))


def latest_iterators(lab: Lab) -> list[str]:
    """A LATEST iterator per shard: where the stream ends now (moto has one shard per table)."""
    streams = lab.client("dynamodbstreams")
    arn = lab.client("dynamodb").describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    return [
        streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"], ShardIteratorType="LATEST")[
            "ShardIterator"
        ]
        for s in shards
    ]


def bare_stream_read(lab: Lab, iterators: Sequence[str]) -> int:
    """GetRecords (Limit 1000) from ``iterators`` to the end, counting records only."""
    streams = lab.client("dynamodbstreams")
    n = 0
    for iterator in iterators:
        it: str | None = iterator
        while it:
            page = streams.get_records(ShardIterator=it, Limit=1000)
            if not page["Records"]:
                break
            n += len(page["Records"])
            it = page.get("NextShardIterator")
    return n


def delete_items(ddb: Any, keys: Sequence[str], threads: int) -> None:
    def batch(chunk: Sequence[str]) -> None:
        requests: list[Any] = [{"DeleteRequest": {"Key": {"product_id": {"S": k}}}} for k in chunk]
        while requests:
            out = ddb.batch_write_item(RequestItems={TABLE: requests})
            requests = out.get("UnprocessedItems", {}).get(TABLE, [])

    chunks = [keys[i : i + BATCH_SIZE] for i in range(0, len(keys), BATCH_SIZE)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(batch, chunks))


def update_prices(ddb: Any, prices: dict[str, Decimal], threads: int) -> None:
    def update(key: str) -> None:
        ddb.update_item(
            TableName=TABLE,
            Key={"product_id": {"S": key}},
            UpdateExpression="SET price = :p",
            ExpressionAttributeValues={":p": {"N": str(prices[key])}},
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(update, prices))


# -- the sections ----------------------------------------------------------------------------------


def seed(lab: Lab, a: argparse.Namespace, items: list[Row], r: dict[str, Any]) -> str:
    ddb = lab.client("dynamodb")
    arn = create_table(ddb, stream=not a.stream_after_seed)
    with timed(r, "seed_s"):
        write_items(ddb, TABLE, items, threads=a.threads)
    if a.stream_after_seed:
        ddb.update_table(TableName=TABLE, StreamSpecification=STREAM)
    return arn


def initial_load(lab: Lab, a: argparse.Namespace, arn: str, r: dict[str, Any]) -> str:
    ddb = lab.client("dynamodb")
    with timed(r, "scan_s"):
        r["scanned"] = bare_scan(ddb)
    phases = Phases(lab)
    r["phases"] = phases
    t0 = time.perf_counter()
    integ = lab.client("glue").create_integration(
        IntegrationName="bench-ddb", SourceArn=arn, TargetArn=TARGET_ARN
    )["IntegrationArn"]
    lab.wait_for_status(integ, "ACTIVE", timeout=60)
    r["active_s"] = time.perf_counter() - t0
    lab.wait(integ, timeout=max(900.0, a.items / 20))
    r["load_s"] = time.perf_counter() - t0
    r["first_batch_s"] = phases.marks.get("first_batch", float("nan")) - t0
    r["synced_s"] = phases.marks.get("synced", float("nan")) - t0
    r["load_counts"] = phases.take_counts()
    r["loaded_rows"] = lab.sql(f"SELECT count(*) FROM {TARGET}").fetchall()[0][0]
    return str(integ)


def cdc(
    lab: Lab, a: argparse.Namespace, integ: str, spare: list[Row], r: dict[str, Any]
) -> dict[str, Decimal]:
    """Distinct keys: 40 % new items, 40 % price updates, 20 % deletes. Returns expected prices."""
    ddb = lab.client("dynamodb")
    expected = r.pop("expected")
    n_put = a.changes * 2 // 5
    n_upd = a.changes * 2 // 5
    n_del = a.changes - n_put - n_upd
    keys = list(expected)
    updates = {k: Decimal(1000 + i) + Decimal("0.25") for i, k in enumerate(keys[:n_upd])}
    deletes = keys[len(keys) - n_del :]
    puts = spare[:n_put]
    iterators = latest_iterators(lab)
    with timed(r, "cdc_write_s"):
        write_items(ddb, TABLE, puts, threads=a.threads)
        update_prices(ddb, updates, a.threads)
        delete_items(ddb, deletes, a.threads)
    expected.update(updates)
    expected.update({p["product_id"]["S"]: Decimal(p["price"]["N"]) for p in puts})
    for k in deletes:
        del expected[k]
    r["cdc_mix"] = (n_put, n_upd, n_del)
    phases: Phases = r["phases"]
    phases.take_counts()
    with timed(r, "cdc_s"):
        lab.refresh_now(integ)
        lab.wait(integ, timeout=max(600.0, a.changes / 10))
    r["cdc_counts"] = phases.take_counts()
    got = lab.sql(f"SELECT count(*), sum(price) FROM {TARGET}").fetchall()[0]
    want_sum = float(sum(expected.values(), Decimal(0)))
    r["cdc_check"] = got[0] == len(expected) and abs(got[1] - want_sum) < 1e-6 * max(1, want_sum)
    r["cdc_check_detail"] = f"target {got[0]:,} rows / sum {got[1]:,.2f}; " + (
        f"expected {len(expected):,} / {want_sum:,.2f}"
    )
    with timed(r, "stream_read_s"):  # after the engine is done: nothing competes with it
        r["stream_records"] = bare_stream_read(lab, iterators)
    return dict(expected)


def freshness(lab: Lab, a: argparse.Namespace, integ: str, r: dict[str, Any]) -> None:
    ddb = lab.client("dynamodb")
    times: list[float] = []
    slow_paths = 0
    for i in range(a.probes):
        price = f"{i}.5"
        t0 = time.perf_counter()
        ddb.put_item(TableName=TABLE, Item={"product_id": {"S": "probe"}, "price": {"N": price}})
        lab.refresh_now(integ)
        lab.wait(integ, timeout=60)
        query = f"SELECT price FROM {TARGET} WHERE product_id = 'probe'"
        deadline = time.monotonic() + 30
        while lab.sql(query).fetchall() != [(float(price),)]:
            slow_paths += 1  # visible only after lab.wait returned: worth reporting
            if time.monotonic() > deadline:
                raise TimeoutError(f"probe {i} not visible 30 s after lab.wait")
            time.sleep(0.01)
        times.append(time.perf_counter() - t0)
    r["probes"] = times
    r["probe_retries"] = slow_paths


# -- report ----------------------------------------------------------------------------------------


def report(a: argparse.Namespace, r: dict[str, Any], argv: Sequence[str]) -> None:
    import boto3
    import moto

    n = a.items
    stream_note = (
        "stream enabled after seeding: nothing to replay"
        if a.stream_after_seed
        else f"stream enabled from creation: the hand-off replays {n:,} seeding records"
    )
    rows_out = [
        "# DynamoDB source benchmark",
        "",
        "| | |",
        "|---|---|",
        f"| command | `{shlex.join(['python', 'bench/dynamodb_source.py', *argv])}` |",
        f"| machine | {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, moto {moto.__version__}, boto3 {boto3.__version__} |",
        f"| load average (1/5/15 min) | start {r['load_start']}, end {loadavg()} |",
        f"| dataset | {n:,} items of `zetl_nb.sample.product_items` (5 attributes, nested "
        f"`description`; {r['target_columns']} columns after FULL unnest), one table, "
        f"hash key `product_id` |",
        f"| stream | {stream_note} |",
        f"| seeding | {n:,} items, BatchWriteItem of {BATCH_SIZE}, {a.threads} threads: "
        f"{r['seed_s']:.1f} s ({rate(n, r['seed_s'])} items/s) |",
        f"| peak RSS | this process (engine + bench) {r['rss_self']:.0f} MB "
        f"({r['rss_seeded']:.0f} MB of it already after generating and seeding the items); "
        f"moto endpoint (child) {r['rss_child']:.0f} MB |",
        "",
        "## (a) Initial load",
        "",
        "| what | seconds | items/s | of the limit |",
        "|---|---:|---:|---:|",
    ]
    scan_rate = r["scanned"] / r["scan_s"]
    rows_out.append(
        f"| bare parallel Scan ({SEGMENTS} segments, {SEGMENTS} threads, boto3, counts only): "
        f"the limit | {r['scan_s']:.1f} | {scan_rate:,.0f} | 100 % |"
    )
    phases = [
        ("create_integration → ACTIVE (prerequisites checked)", r["active_s"], False),
        ("create_integration → scan + unnest done (first batch)", r["first_batch_s"], True),
        ("create_integration → table Synced (Iceberg written)", r["synced_s"], True),
        ("**create_integration → lab.wait returns** (+ stream hand-off)", r["load_s"], True),
    ]
    for label, seconds, with_rate in phases:
        items_s = n / seconds if with_rate and seconds > 0 else float("nan")
        share = f"{items_s / scan_rate:.0%}" if with_rate else ""
        shown = f"{items_s:,.0f}" if with_rate else ""
        rows_out.append(f"| {label} | {seconds:.1f} | {shown} | {share} |")
    c = r["load_counts"]
    rows_out += [
        "",
        f"Rows in the target after the load: {r['loaded_rows']:,} (expected {n:,}); changes "
        f"counted by the engine during load + replay: {c['Inserted']:,} inserted, "
        f"{c['Updated']:,} updated, {c['Deleted']:,} deleted.",
    ]
    rows_out += cdc_report(r) + probe_report(r)
    print("\n".join(rows_out), flush=True)


def cdc_report(r: dict[str, Any]) -> list[str]:
    puts, updates, deletes = r["cdc_mix"]
    total = puts + updates + deletes
    c = r["cdc_counts"]
    return [
        "",
        "## (b) Stream CDC",
        "",
        "| changes (puts / updates / deletes) | writing them | refresh_now → lab.wait | "
        "changes/s applied | engine counted (ins / upd / del) | target check |",
        "|---|---:|---:|---:|---|---|",
        f"| {total:,} ({puts:,} / {updates:,} / {deletes:,}) | {r['cdc_write_s']:.1f} s "
        f"({rate(total, r['cdc_write_s'])}/s) | {r['cdc_s']:.2f} s | "
        f"{rate(total, r['cdc_s'])} | {c['Inserted']:,} / {c['Updated']:,} / {c['Deleted']:,} "
        f"| {'ok' if r['cdc_check'] else 'MISMATCH'}: {r['cdc_check_detail']} |",
        "",
        f"The limit: a bare GetRecords read (boto3, Limit 1000) of the same "
        f"{r['stream_records']:,} stream records, afterwards: {r['stream_read_s']:.2f} s, "
        f"{rate(r['stream_records'], r['stream_read_s'])} records/s; the engine applied "
        f"{r['stream_read_s'] / r['cdc_s']:.0%} of that rate.",
    ]


def probe_report(r: dict[str, Any]) -> list[str]:
    t = r["probes"]
    if not t:
        return []
    return [
        "",
        "## (c) Write → visible in `lab.sql` (PutItem, refresh_now, lab.wait, query)",
        "",
        "| probes | p50 | p99 | min | max | queries that missed right after lab.wait |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {len(t)} | {pct(t, 0.5) * 1000:.0f} ms | {pct(t, 0.99) * 1000:.0f} ms | "
        f"{min(t) * 1000:.0f} ms | {max(t) * 1000:.0f} ms | {r['probe_retries']} |",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = _args(argv)
    r: dict[str, Any] = {"load_start": loadavg()}
    all_items = product_items(a.items + a.changes)  # the tail is CDC's new items
    items, spare = all_items[: a.items], all_items[a.items :]
    r["expected"] = {i["product_id"]["S"]: Decimal(i["price"]["N"]) for i in items}
    out = a.out or Path(tempfile.mkdtemp(prefix="zetl-bench-ddb-"))
    lab = Lab(out / "home", prerequisite_recheck_seconds=0.5)
    try:
        prepare_target(lab)
        arn = seed(lab, a, items, r)
        del items, all_items  # the spare items and the expected prices are all CDC needs
        r["rss_seeded"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        integ = initial_load(lab, a, arn, r)
        r["target_columns"] = len(lab.sql(f"DESCRIBE {TARGET}").fetchall())
        cdc(lab, a, integ, spare, r)
        freshness(lab, a, integ, r)
    finally:
        lab.close()  # stops (and reaps) the moto child, so RUSAGE_CHILDREN covers it
    r["rss_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r["rss_child"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report(a, r, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
