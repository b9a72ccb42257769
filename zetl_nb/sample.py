"""Sample DynamoDB tables for the labs: the seed's ``products`` and a single-table ``invoices``.

- ``products`` (hash key ``product_id``, S): 200 products with a name, a category, a price (N)
  and a nested JSON ``description`` (maps in maps, lists, a string set). Categories carry their own
  spec fields (``pages`` for books, ``battery_hours`` for electronics, ...), so items disagree
  about their schema the way real ones do.
- ``invoices`` (``pk`` S, ``sk`` S): a single-table design. Each invoice ``INV#0001`` has a header
  item (``sk = "HEADER"``) and 1-5 billing lines (``sk = "LINE#001"`` ...), told apart by the
  sort key's prefix; lines name products of the ``products`` table, and a header's ``total`` is
  the sum of its lines' ``amount``.

The items come from a seeded generator, so an installed ``zetl_nb`` recreates them anywhere;
``sample_data/<table>.jsonl`` holds the same items, one ``{"Item": ...}`` in DynamoDB JSON per line
(the line format of DynamoDB's export to S3), written by ``python -m zetl_nb.sample sample_data``.

>>> from zetl_nb.sample import load_dynamodb_samples
>>> arns = load_dynamodb_samples(lab)                     # doctest: +SKIP
>>> arns["products"]                                       # doctest: +SKIP
'arn:aws:dynamodb:us-east-1:123456789012:table/products'
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lab import Lab

__all__ = [
    "BATCH_SIZE",
    "SAMPLE_TABLES",
    "SEED",
    "SampleTable",
    "create_sample_table",
    "invoice_items",
    "load_dynamodb_samples",
    "product_items",
    "write_items",
    "write_sample_files",
]

#: The generator's seed: the same items on every machine and Python version.
SEED = 20261122
#: BatchWriteItem's limit of put/delete requests per call.
BATCH_SIZE = 25
_STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}

Item = dict[str, Any]

# -- the generator ---------------------------------------------------------------------------------

_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # category: (nouns, materials)
    "Electronics": (
        ("Headphones", "Speaker", "Keyboard", "Webcam", "Charger", "Smartwatch"),
        ("aluminium", "plastic", "glass"),
    ),
    "Home & Kitchen": (
        ("Kettle", "Blender", "Frying Pan", "Knife Set", "Coffee Grinder", "Toaster"),
        ("steel", "cast iron", "ceramic", "bamboo"),
    ),
    "Books": (
        ("Cookbook", "Travel Guide", "Novel", "Field Guide", "Atlas", "Poetry Collection"),
        ("paper", "hardcover"),
    ),
    "Sports & Outdoors": (
        ("Tent", "Backpack", "Yoga Mat", "Water Bottle", "Headlamp", "Trekking Poles"),
        ("nylon", "polyester", "steel", "rubber"),
    ),
    "Toys": (
        ("Puzzle", "Building Blocks", "Kite", "Board Game", "Plush Bear", "Train Set"),
        ("wood", "plastic", "cotton"),
    ),
}
_BRANDS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Woodgrove", "Litware", "Adatum")
_ADJECTIVES = ("Classic", "Compact", "Pro", "Eco", "Deluxe", "Travel", "Essential", "Ultra")
_COLORS = ("black", "white", "red", "blue", "green", "grey", "orange")
_FEATURES = (
    "two-year warranty",
    "recycled packaging",
    "dishwasher safe",
    "water resistant",
    "lightweight",
    "gift wrapping available",
    "made in Portugal",
    "replacement parts available",
)
_TAGS = ("bestseller", "new", "gift", "sale", "eco", "limited", "premium")
_CITIES = (
    ("Lisbon", "PT"),
    ("Seattle", "US"),
    ("Berlin", "DE"),
    ("Lyon", "FR"),
    ("Osaka", "JP"),
    ("Toronto", "CA"),
)
_STREETS = ("Main St", "Harbour Rd", "Oak Ave", "Station Sq", "Mill Lane")


def _n(value: Decimal | int | float) -> dict[str, str]:
    """A DynamoDB number: its exact decimal text."""
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """A price in [low, high) ending in .49 or .99, as shops price."""
    return Decimal(rng.randrange(low, high)) + Decimal(rng.choice(("0.49", "0.99")))


def _specs(rng: random.Random, category: str, materials: Sequence[str]) -> Item:
    specs: Item = {
        "color": _s(rng.choice(_COLORS)),
        "material": _s(rng.choice(materials)),
        "weight_g": _n(rng.randrange(80, 5000, 10)),
        "dimensions_cm": {
            "M": {
                "length": _n(Decimal(rng.randrange(50, 900)) / 10),
                "width": _n(Decimal(rng.randrange(50, 600)) / 10),
                "height": _n(Decimal(rng.randrange(10, 400)) / 10),
            }
        },
    }
    if category == "Electronics":
        specs["battery_hours"] = _n(rng.randrange(4, 60))
        links = rng.sample(("USB-C", "Bluetooth", "Wi-Fi"), 2)
        specs["connectivity"] = {"L": [_s(c) for c in links]}
    elif category == "Books":
        specs["pages"] = _n(rng.randrange(120, 900))
        specs["language"] = _s(rng.choice(("en", "pt", "de", "fr")))
    elif category == "Toys":
        specs["min_age_years"] = _n(rng.choice((3, 6, 8, 12)))
    return specs


def _product(rng: random.Random, number: int) -> Item:
    category = list(_CATEGORIES)[(number - 1) % len(_CATEGORIES)]
    nouns, materials = _CATEGORIES[category]
    brand, noun = rng.choice(_BRANDS), rng.choice(nouns)
    name = f"{brand} {rng.choice(_ADJECTIVES)} {noun}"
    description: Item = {
        "brand": _s(brand),
        "summary": _s(f"The {name.lower()}: {rng.choice(_FEATURES)}, {rng.choice(_FEATURES)}."),
        "features": {"L": [_s(f) for f in rng.sample(_FEATURES, rng.randint(2, 4))]},
        "tags": {"SS": sorted(rng.sample(_TAGS, rng.randint(1, 3)))},
        "specs": {"M": _specs(rng, category, materials)},
        "shipping": {
            "M": {"free": {"BOOL": rng.random() < 0.4}, "days": _n(rng.choice((1, 2, 3, 5)))}
        },
    }
    if rng.random() < 0.5:  # only some products carry a warranty: a sparse nested map
        description["warranty"] = {
            "M": {"years": _n(rng.choice((1, 2, 3))), "type": _s(rng.choice(("limited", "full")))}
        }
    return {
        "product_id": _s(f"p{number:04d}"),
        "name": _s(name),
        "category": _s(category),
        "price": _n(_money(rng, 3, 400)),
        "description": {"M": description},
    }


def product_items(count: int = 200, seed: int = SEED) -> list[Item]:
    """The ``products`` items (``p0001`` ...), in DynamoDB JSON, the same on every call."""
    rng = random.Random(seed)
    return [_product(rng, i) for i in range(1, count + 1)]


def _invoice(rng: random.Random, number: int, products: Sequence[Item]) -> list[Item]:
    pk = _s(f"INV#{number:04d}")
    lines: list[Item] = []
    for line_no, product in enumerate(rng.sample(list(products), rng.randint(1, 5)), start=1):
        quantity = rng.randint(1, 4)
        unit = Decimal(product["price"]["N"])
        lines.append(
            {
                "pk": pk,
                "sk": _s(f"LINE#{line_no:03d}"),
                "product_id": product["product_id"],
                "product_name": product["name"],
                "quantity": _n(quantity),
                "unit_price": _n(unit),
                "amount": _n(unit * quantity),
            }
        )
    city, country = rng.choice(_CITIES)
    day = 1 + (number * 7) % 28
    header: Item = {
        "pk": pk,
        "sk": _s("HEADER"),
        "customer_id": _s(f"c{rng.randint(1, 1000):04d}"),
        "invoice_date": _s(f"2026-{1 + number % 12:02d}-{day:02d}"),
        "status": _s(rng.choice(("paid", "paid", "open", "overdue"))),
        "currency": _s("USD"),
        "line_count": _n(len(lines)),
        "total": _n(sum((Decimal(line["amount"]["N"]) for line in lines), Decimal(0))),
        "billing_address": {
            "M": {
                "street": _s(f"{rng.randint(1, 250)} {rng.choice(_STREETS)}"),
                "city": _s(city),
                "country": _s(country),
            }
        },
    }
    return [header, *lines]


def invoice_items(count: int = 50, seed: int = SEED) -> list[Item]:
    """The ``invoices`` items: per invoice its header, then its lines (products of the sample)."""
    rng = random.Random(seed + 1)
    products = product_items(seed=seed)
    return [item for n in range(1, count + 1) for item in _invoice(rng, n, products)]


@dataclass(frozen=True)
class SampleTable:
    """A sample table: its name, key schema (name, type, HASH/RANGE) and its items."""

    name: str
    keys: tuple[tuple[str, str, str], ...]
    items: Callable[[], list[Item]]

    def create_params(self) -> dict[str, Any]:
        """``CreateTable`` parameters: on-demand, with a NEW_AND_OLD_IMAGES stream."""
        return {
            "TableName": self.name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": n, "KeyType": k} for n, _, k in self.keys],
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t} for n, t, _ in self.keys
            ],
            "StreamSpecification": dict(_STREAM),
        }


SAMPLE_TABLES: dict[str, SampleTable] = {
    "products": SampleTable("products", (("product_id", "S", "HASH"),), product_items),
    "invoices": SampleTable("invoices", (("pk", "S", "HASH"), ("sk", "S", "RANGE")), invoice_items),
}

# -- loading into DynamoDB -------------------------------------------------------------------------


def _batch(client: Any, table: str, items: Sequence[Item]) -> None:
    """One BatchWriteItem, re-sending unprocessed items with a short backoff."""
    requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
    delay = 0.05
    while requests:
        out = client.batch_write_item(RequestItems={table: requests})
        requests = out.get("UnprocessedItems", {}).get(table, [])
        if requests:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def write_items(client: Any, table: str, items: Iterable[Item], threads: int = 1) -> int:
    """Put ``items`` into ``table`` with BatchWriteItem (25 per call) on ``threads`` threads.

    boto3's low-level clients are thread-safe, so one client serves every thread. Returns the
    number of items written.
    """
    batches: list[list[Item]] = []
    for item in items:
        if not batches or len(batches[-1]) == BATCH_SIZE:
            batches.append([])
        batches[-1].append(item)
    if threads <= 1:
        for chunk in batches:
            _batch(client, table, chunk)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="zetl-sample") as pool:
            list(pool.map(lambda chunk: _batch(client, table, chunk), batches))
    return sum(len(chunk) for chunk in batches)


def create_sample_table(client: Any, spec: SampleTable, account: str, region: str) -> str | None:
    """Create ``spec``'s table ready for a zero-ETL integration; ``None`` if it already exists.

    Ready means what the Glue guide asks of a source: a NEW_AND_OLD_IMAGES stream, point-in-time
    recovery on, and the resource policy letting ``glue.amazonaws.com`` export and describe it.
    """
    from .sources.dynamodb import required_policy

    try:
        client.create_table(**spec.create_params())
    except client.exceptions.ResourceInUseException:
        return None
    client.get_waiter("table_exists").wait(
        TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    arn = str(client.describe_table(TableName=spec.name)["Table"]["TableArn"])
    client.update_continuous_backups(
        TableName=spec.name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    client.put_resource_policy(
        ResourceArn=arn, Policy=json.dumps(required_policy(arn, account, region))
    )
    return arn


def load_dynamodb_samples(
    lab: Lab, tables: Sequence[str] = ("products", "invoices")
) -> dict[str, str]:
    """Create and fill the sample tables in ``lab``'s DynamoDB; returns table name → table ARN.

    Each table gets a NEW_AND_OLD_IMAGES stream, PITR and the Glue resource policy, so an
    integration over it needs no fixes on the source side. Idempotent: a table that already
    exists is left exactly as it is (not refilled, not reconfigured).

    >>> arns = load_dynamodb_samples(lab, tables=["products"])      # doctest: +SKIP
    >>> glue.create_integration(IntegrationName="products", SourceArn=arns["products"],
    ...                         TargetArn=target_arn)                # doctest: +SKIP
    """
    from .core.errors import ZetlError

    unknown = [t for t in tables if t not in SAMPLE_TABLES]
    if unknown:
        raise ZetlError(
            f"no sample table {', '.join(map(repr, unknown))}; choose from {sorted(SAMPLE_TABLES)}."
        )
    client = lab.client("dynamodb")
    arns: dict[str, str] = {}
    for name in tables:
        spec = SAMPLE_TABLES[name]
        arn = create_sample_table(client, spec, lab.config.account_id, lab.config.region)
        if arn is None:
            arns[name] = str(client.describe_table(TableName=name)["Table"]["TableArn"])
            continue
        write_items(client, name, spec.items())
        arns[name] = arn
    return arns


# -- the files in sample_data/ ---------------------------------------------------------------------


def write_sample_files(directory: str | Path) -> list[Path]:
    """Write ``<table>.jsonl`` for every sample table into ``directory``; returns the paths.

    One ``{"Item": {...}}`` per line, DynamoDB JSON with sorted keys, so the files are stable.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in SAMPLE_TABLES.values():
        path = out / f"{spec.name}.jsonl"
        lines = (json.dumps({"Item": item}, sort_keys=True) for item in spec.items())
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m zetl_nb.sample DIRECTORY``: (re)write the sample files."""
    parser = argparse.ArgumentParser(
        prog="python -m zetl_nb.sample",
        description="Write the DynamoDB sample tables as JSON lines.",
    )
    parser.add_argument("directory", type=Path, help="where to write <table>.jsonl")
    for path in write_sample_files(parser.parse_args(argv).directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
