"""Benchmark: `import zetl_nb`, Lab start, and control-plane call latency.

    python bench/control_plane.py            # prints a Markdown table for docs/benchmarks.md

Measures, on this machine:
- `import zetl_nb` in a fresh interpreter vs. a bare interpreter (`python -c pass`), the
  practical limit;
- `Lab()` open on a new home, and the first DynamoDB call (starts the embedded moto server);
- `describe_integrations` and `get_database` per call: in-process (`lab.client`), over HTTP to
  `zetl-nb serve` with real boto3, and, as the practical limit of an HTTP round trip here, moto's
  own `dynamodb.describe_table` through the same endpoint.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _startup(code: str, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _per_call(fn: Callable[[], Any], runs: int = 200) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - t0) / runs


def main() -> None:
    import boto3

    from zetl_nb import Lab
    from zetl_nb.api.server import LocalEndpoint

    bare = _startup("pass")
    imported = _startup("import zetl_nb")
    rows = [("`import zetl_nb` (fresh interpreter)", imported, bare, "`python -c pass`")]
    home = Path(tempfile.mkdtemp(prefix="zetl-bench-"))
    t0 = time.perf_counter()
    lab = Lab(home)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    ddb = lab.client("dynamodb")
    ddb.list_tables()
    dynamo_start = time.perf_counter() - t0
    glue = lab.client("glue")
    glue.create_database(DatabaseInput={"Name": "bench", "LocationUri": "/tmp/bench"})
    ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    )
    with LocalEndpoint(lab) as url:

        def remote(name: str) -> Any:
            return boto3.client(
                name,
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
            )

        rglue, rddb = remote("glue"), remote("dynamodb")
        limit = _per_call(lambda: rddb.describe_table(TableName="t"))
        for op, local_fn, remote_fn in [
            ("describe_integrations", glue.describe_integrations, rglue.describe_integrations),
            (
                "get_database",
                lambda: glue.get_database(Name="bench"),
                lambda: rglue.get_database(Name="bench"),
            ),
        ]:
            rows.append(
                (
                    f"`glue.{op}` in-process",
                    _per_call(local_fn),
                    limit,
                    "moto `describe_table` over HTTP",
                )
            )
            rows.append(
                (
                    f"`glue.{op}` over HTTP (boto3 → serve)",
                    _per_call(remote_fn),
                    limit,
                    "moto `describe_table` over HTTP",
                )
            )
    lab.close()
    print(
        f"Lab() on a new home: {opened * 1000:.0f} ms; "
        f"embedded DynamoDB endpoint start: {dynamo_start * 1000:.0f} ms\n"
    )
    print("| measure | time | practical limit | ratio | limit is |")
    print("|---|---|---|---|---|")
    for name, value, ref, what in rows:
        print(
            f"| {name} | {value * 1000:.2f} ms | {ref * 1000:.2f} ms | {value / ref:.2f}x | "
            f"{what} |"
        )


if __name__ == "__main__":
    main()
