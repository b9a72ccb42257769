"""Benchmark: request latency of the embedded DynamoDB endpoint while it saves its state.

    python bench/dynamodb_endpoint_save.py                  # 100,000 items, 40 s of probes
    python bench/dynamodb_endpoint_save.py --items 20000 --seconds 20

A fresh endpoint (moto's server in its child process, real boto3 over HTTP) is filled with
``--items`` small items by BatchWriteItem, then one PutItem every 50 ms for ``--seconds``: each
marks the state dirty, so the endpoint keeps saving its snapshot meanwhile. Prints the count and
p50 / p99 / max latency of the probes: a save that blocks requests shows as the max.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from zetl_nb.services.dynamodb import DynamoDBEndpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zetl-bench-save-") as tmp:
        endpoint = DynamoDBEndpoint(Path(tmp) / "dynamodb")
        endpoint.start()
        try:
            run(endpoint.client("dynamodb"), args.items, args.seconds)
        finally:
            endpoint.stop()


def run(ddb: Any, items: int, seconds: float) -> None:
    ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    started = time.perf_counter()
    for first in range(0, items, 25):
        puts = [
            {
                "PutRequest": {
                    "Item": {"id": {"S": f"k{i}"}, "v": {"N": str(i)}, "d": {"S": "x" * 50}}
                }
            }
            for i in range(first, min(items, first + 25))
        ]
        ddb.batch_write_item(RequestItems={"t": puts})
    print(f"loaded {items:,} items in {time.perf_counter() - started:.1f} s", flush=True)
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        ddb.put_item(TableName="t", Item={"id": {"S": f"p{len(latencies)}"}, "v": {"N": "1"}})
        latencies.append(time.perf_counter() - t)
        time.sleep(0.05)
    latencies.sort()
    n = len(latencies)
    print(
        f"PutItem while saving: n={n} p50={latencies[n // 2] * 1e3:.1f} ms "
        f"p99={latencies[int(n * 0.99)] * 1e3:.1f} ms max={latencies[-1] * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
