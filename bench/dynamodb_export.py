"""Benchmark: a DynamoDB full export (AWS's S3 layout, DYNAMODB_JSON) read into Arrow, FULL unnest.

    python3 bench/dynamodb_export.py                    # 1,000,000 items, 8 data files
    python3 bench/dynamodb_export.py --items 50000 --python-path

Issue 4, deliverable 9: items/s of ``read_full_export`` (manifests, MD5 checks, gunzip, JSON,
UnnestSpec FULL to Arrow in one merged schema) against the practical limit, pyarrow alone:
``pyarrow.json.read_json`` of the same gzipped files, no unnesting (a struct of DynamoDB
descriptors per row). The export is written by ``tests/sources/dynamodb_export_fixtures.py`` in
a temporary directory: products-like items (id S, price N, name S, a description M with four
fields, a tags SS). Each contender runs in a child process of its own, so its peak RSS is its
own. ``--python-path`` adds ``read_full_export(arrow=False)`` (items parsed line by line with
orjson, then ``unnest``) and a parse-only row (gunzip + orjson per line, no unnest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "sources"))  # the export fixtures

from common import loadavg  # noqa: E402
from dynamodb_export_fixtures import write_full_export  # noqa: E402

KEYS = ["id"]
COLORS = ("red", "green", "blue", "black", "white")


def product(i: int) -> dict[str, Any]:
    """Item ``i`` of the products table (deterministic: every run reads the same bytes)."""
    return {
        "id": {"S": f"p{i:07d}"},
        "price": {"N": f"{i * 7919 % 100000 / 100:.2f}"},
        "name": {"S": f"Product {i} {COLORS[i % 5]} widget"},
        "description": {
            "M": {
                "color": {"S": COLORS[i % 5]},
                "weight_kg": {"N": str(i % 400 / 8)},
                "material": {"S": ("steel", "oak", "cotton", "glass")[i % 4]},
                "in_stock": {"BOOL": i % 3 != 0},
            }
        },
        "tags": {"SS": sorted({"sale", f"cat{i % 17}", f"brand{i % 29}"})},
    }


class Products(Sequence[dict[str, Any]]):
    """Items ``start..stop`` made on demand (a million dicts would not fit comfortably)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Products: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | Products:
        if isinstance(index, slice):
            lo, hi, _ = index.indices(len(self))
            return Products(self.start + lo, self.start + max(lo, hi))
        return product(self.start + index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (product(i) for i in range(self.start, self.stop))


def expected_price_sum(n: int) -> float:
    return sum(i * 7919 % 100000 / 100 for i in range(n))


# -- contenders (each runs in a child: --worker NAME) ---------------------------------------------
def data_files(root: Path) -> list[Path]:
    from zetl_nb.sources.dynamodb_export import read_manifest

    return [f.path for f in read_manifest(root).files]


def run_pyarrow(root: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.json as pj

    rows = 0
    for path in data_files(root):
        rows += pj.read_json(pa.input_stream(str(path), compression="gzip")).num_rows
    return {"rows": rows}


def run_zetl(root: Path, arrow: bool) -> dict[str, Any]:
    import pyarrow.compute as pc

    from zetl_nb.sources.dynamodb_export import read_full_export

    rows, price, columns = 0, 0.0, []
    for table in read_full_export(root, KEYS, "FULL", arrow=arrow):
        rows += table.num_rows
        price += pc.sum(table.column("price")).as_py() or 0.0
        columns = table.column_names
    return {"rows": rows, "price_sum": price, "columns": columns}


def run_zetl_python(root: Path) -> dict[str, Any]:
    return run_zetl(root, False)


def run_orjson(root: Path) -> dict[str, Any]:
    import gzip

    import orjson

    rows = 0
    for path in data_files(root):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            orjson.loads(line)["Item"]
            rows += 1
    return {"rows": rows}


CONTENDERS = {
    "pyarrow": ("pyarrow.json.read_json alone (no unnest): the limit", run_pyarrow),
    "zetl": ("zetl_nb read_full_export, FULL (Arrow path)", lambda r: run_zetl(r, True)),
    "zetl-python": ("zetl_nb read_full_export(arrow=False): orjson + unnest", run_zetl_python),
    "orjson": ("gunzip + orjson per line, no unnest (parse only)", run_orjson),
}


def worker(name: str, root: Path) -> None:
    run = CONTENDERS[name][1]
    # Imports are not what is measured.
    import orjson  # noqa: F401
    import pyarrow.compute
    import pyarrow.json  # noqa: F401

    import zetl_nb.sources.dynamodb_export  # noqa: F401

    start = time.perf_counter()
    result = run(root)
    result["seconds"] = time.perf_counter() - start
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def measure(name: str, root: Path, repeat: int) -> dict[str, Any]:
    """The best of ``repeat`` runs of a contender, each in a fresh child process."""
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--dir", str(root)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


# -- main ------------------------------------------------------------------------------------------
def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import pyarrow

    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8, help="data files (partitions)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; best kept")
    parser.add_argument("--python-path", action="store_true", help="add the slow Python path")
    parser.add_argument("--keep", type=Path, help="write the export here and keep it")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.dir)
        return

    base = args.keep or Path(tempfile.mkdtemp(prefix="zetl-bench-export-"))
    try:
        print(f"machine: {machine()}; load average before: {loadavg()}")
        start = time.perf_counter()
        root = write_full_export(base, Products(0, args.items), files=args.files)
        size = sum(p.stat().st_size for p in (root / "data").iterdir())
        print(
            f"fixture: {args.items:,} items in {args.files} gzipped files, {size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - start:.1f} s ({root.relative_to(base)})\n"
        )
        names = ["pyarrow", "zetl"] + (["zetl-python", "orjson"] if args.python_path else [])
        results = {name: measure(name, root, args.repeat) for name in names}
        report(results, args.items)
        print(f"\nload average after: {loadavg()}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def report(results: dict[str, dict[str, Any]], items: int) -> None:
    limit = items / results["pyarrow"]["seconds"]
    print("| contender | seconds | items/s | share of the limit | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for name, res in results.items():
        assert res["rows"] == items, (name, res["rows"])
        rate = items / res["seconds"]
        print(
            f"| {CONTENDERS[name][0]} | {res['seconds']:.2f} | {rate:,.0f} | "
            f"{rate / limit:.2f}x | {res['rss_mb']:,.0f} MB |"
        )
    zetl = results["zetl"]
    expected = expected_price_sum(items)
    ok = abs(zetl["price_sum"] - expected) <= 1e-6 * max(1.0, expected)
    print(f"\nzetl_nb columns: {', '.join(zetl['columns'])}")
    verdict = "ok" if ok else "MISMATCH"
    print(f"price checksum {zetl['price_sum']:.2f} vs expected {expected:.2f}: {verdict}")
    ratio = results["pyarrow"]["seconds"] / zetl["seconds"]
    print(f"ratio zetl_nb / pyarrow alone (items/s): {ratio:.2f}")


if __name__ == "__main__":
    main()
