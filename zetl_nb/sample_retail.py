"""Retail sample data of the sentiment lab: customers, transactions and product reviews.

A seeded generator (the same rows on every machine and Python version) that reuses the
``products`` of :mod:`zetl_nb.sample`, so product ids (``p0001`` ...) match the DynamoDB table:

- ``customers`` (1,000): ``c0001`` ... with a name, e-mail, city, sign-up date and a loyalty tier
  earned by what they spent (gold: top 10 %, silver: next 30 %);
- ``transactions`` (50,000): purchases from 2025-01-01 to 2026-10-31, in time order; a few
  customers and products account for most of them, as in real shops; some are ``returned``;
- ``reviews`` (6,000): one per reviewed purchase, written 1-30 days after it, with a 1-5 rating
  and text that is clearly positive, negative, neutral or mixed (:mod:`zetl_nb.sample_reviews`).
  Customers have a temper (happy, grumpy, fickle), so a history holds several labels; half of
  the negatively reviewed purchases were returned.

``python -m zetl_nb.sample_retail sample_data`` writes ``customers.csv``, ``transactions.csv.gz``
and ``reviews.csv.gz`` (see ``sample_data/README.md``); :func:`load_retail_postgres` COPYs
customers and transactions into a PostgreSQL database (the lab's "Aurora");
:func:`load_reviews_dynamodb` puts the reviews into the Lab's DynamoDB;
:func:`retail_arrow` gives any table as a typed Arrow table.

>>> data = generate_retail()
>>> len(data.customers), len(data.transactions), len(data.reviews)
(1000, 50000, 6000)
>>> load_retail_postgres(lab.database_url("zetl-aurora-postgres"))      # doctest: +SKIP
{'customers': 1000, 'transactions': 50000}
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import io
import random
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .sample import SEED, SampleTable, create_sample_table, product_items, write_items
from .sample_reviews import LABEL_WEIGHTS, rating_for, review_text

if TYPE_CHECKING:
    from .lab import Lab

__all__ = [
    "COLUMNS",
    "FILES",
    "REVIEWS_TABLE",
    "SEED",
    "RetailData",
    "generate_retail",
    "load_retail_postgres",
    "load_reviews_dynamodb",
    "retail_arrow",
    "retail_csv",
    "review_items",
    "write_retail_samples",
]

Row = tuple[Any, ...]

#: Column names per table, in file and table order.
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "customers": (
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "city",
        "country",
        "signup_date",
        "loyalty_tier",
    ),
    "transactions": (
        "transaction_id",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "channel",
        "status",
        "purchased_at",
    ),
    "reviews": ("review_id", "customer_id", "product_id", "rating", "review_text", "created_at"),
}
#: The file of each table in ``sample_data/``.
FILES: Final = {
    "customers": "customers.csv",
    "transactions": "transactions.csv.gz",
    "reviews": "reviews.csv.gz",
}
_DDL: Final = {
    "customers": "customer_id text PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,"
    " email text NOT NULL, city text NOT NULL, country text NOT NULL, signup_date date NOT NULL,"
    " loyalty_tier text NOT NULL",
    "transactions": "transaction_id bigint PRIMARY KEY, customer_id text NOT NULL,"
    " product_id text NOT NULL, quantity integer NOT NULL, unit_price numeric(10,2) NOT NULL,"
    " amount numeric(12,2) NOT NULL, currency text NOT NULL, channel text NOT NULL,"
    " status text NOT NULL, purchased_at timestamptz NOT NULL",
    "reviews": "review_id text PRIMARY KEY, customer_id text NOT NULL, product_id text NOT NULL,"
    " rating smallint NOT NULL, review_text text NOT NULL, created_at timestamptz NOT NULL",
}
_LABELS: Final = ("positive", "negative", "neutral", "mixed")
_FIRST = (
    "Ana", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kira", "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
_LAST = (
    "Silva", "Schmidt", "Martin", "Tanaka", "Smith", "Costa", "Dubois", "Novak", "Okafor",
    "Larsen", "Garcia", "Rossi", "Kowalski", "Nguyen", "Brown", "Murphy", "Haddad", "Ito",
)  # fmt: skip
_CITIES = (
    ("Lisbon", "PT"), ("Porto", "PT"), ("Seattle", "US"), ("Austin", "US"), ("Berlin", "DE"),
    ("Lyon", "FR"), ("Osaka", "JP"), ("Toronto", "CA"), ("Dublin", "IE"), ("Madrid", "ES"),
)  # fmt: skip
_START = datetime(2025, 1, 1, tzinfo=UTC)
_END = datetime(2026, 11, 1, tzinfo=UTC)
_TEMPERS = (("happy", 60), ("grumpy", 15), ("fickle", 25))
_CHANNELS = (("web", 55), ("app", 30), ("store", 15))


@dataclass(frozen=True)
class RetailData:
    """The generated tables as rows in :data:`COLUMNS` order, plus what the generator meant.

    ``labels[i]`` is the sentiment ``reviews[i]`` was written to express (not in the files: it is
    the answer key to grade a model with); ``products`` are ``(product_id, name, category,
    price)`` of the sample products.
    """

    customers: tuple[Row, ...]
    products: tuple[Row, ...]
    transactions: tuple[Row, ...]
    reviews: tuple[Row, ...]
    labels: tuple[str, ...]

    def rows(self, table: str) -> tuple[Row, ...]:
        """The rows of ``table`` (customers, transactions or reviews)."""
        if table not in COLUMNS:
            from .core.errors import ZetlError

            raise ZetlError(f"no retail table {table!r}; choose from {sorted(COLUMNS)}.")
        rows: tuple[Row, ...] = getattr(self, table)
        return rows


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _customers(rng: random.Random, count: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for n in range(1, count + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country = rng.choice(_CITIES)
        signed_up = date(2021, 1, 1) + timedelta(days=rng.randrange(4 * 365))
        email = f"{first}.{last}{n}@example.com".lower()
        rows.append([f"c{n:04d}", first, last, email, city, country, signed_up.isoformat(), ""])
    return rows


def _transactions(
    rng: random.Random, count: int, customers: Sequence[str], products: Sequence[Row]
) -> list[list[Any]]:
    """Purchases in time order; activity and popularity are heavy-tailed (capped Pareto)."""
    span = int((_END - _START).total_seconds()) - 86_400 - 1  # the last day stays free
    buyers = rng.choices(
        customers, weights=[min(rng.paretovariate(1.6), 12.0) for _ in customers], k=count
    )
    bought = rng.choices(
        products, weights=[min(rng.paretovariate(1.3), 12.0) for _ in products], k=count
    )
    quantities = rng.choices((1, 2, 3, 4), weights=(70, 20, 7, 3), k=count)
    channels = rng.choices([c for c, _ in _CHANNELS], weights=[w for _, w in _CHANNELS], k=count)
    moments = sorted(rng.randrange(span) for _ in range(count))
    rows: list[list[Any]] = []
    for i in range(count):
        product_id, _, _, price = bought[i]
        status = "cancelled" if rng.random() < 0.02 else "completed"
        when = _iso(_START + timedelta(seconds=moments[i]))
        amount = price * quantities[i]
        rows.append(
            [i + 1, buyers[i], product_id, quantities[i], price, amount, "USD", channels[i],
             status, when]
        )  # fmt: skip
    return rows


def _tiers(customers: list[list[Any]], transactions: list[list[Any]]) -> None:
    """Loyalty tier by total spend: gold the top 10 %, silver the next 30 %, else bronze."""
    spend: Counter[str] = Counter()
    for row in transactions:
        if row[8] == "completed":
            spend[row[1]] += row[5]
    ranked = sorted(customers, key=lambda c: (-spend[c[0]], c[0]))
    for rank, row in enumerate(ranked):
        share = rank / len(ranked)
        row[7] = "gold" if share < 0.10 else ("silver" if share < 0.40 else "bronze")


def _reviews(
    rng: random.Random,
    count: int,
    transactions: list[list[Any]],
    products: dict[str, Row],
    tempers: dict[str, str],
) -> tuple[list[Row], list[str]]:
    """One review per sampled purchase (one per customer and product), in time order."""
    picked: dict[tuple[str, str], list[Any]] = {}
    for index in rng.sample(range(len(transactions)), min(len(transactions), count * 2)):
        tx = transactions[index]
        if tx[8] == "completed" and (tx[1], tx[2]) not in picked:
            picked[tx[1], tx[2]] = tx
            if len(picked) == count:
                break
    drafts: list[tuple[str, list[Any], str, int, str]] = []
    for tx in sorted(picked.values(), key=lambda t: t[0]):
        _, name, category, _ = products[tx[2]]
        label = rng.choices(_LABELS, weights=LABEL_WEIGHTS[tempers[tx[1]]])[0]
        text = review_text(rng, label, category, name.split(" ", 2)[2])
        bought = datetime.strptime(tx[9], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        window = min(30 * 86_400, int((_END - bought).total_seconds()))
        written = bought + timedelta(seconds=rng.randrange(86_400, max(window, 86_401)))
        drafts.append((_iso(written), tx, label, rating_for(rng, label), text))
        if label == "negative" and rng.random() < 0.5:
            tx[8] = "returned"
    drafts.sort(key=lambda d: (d[0], d[1][0]))
    rows = [
        (f"r{n:05d}", tx[1], tx[2], rating, text, when)
        for n, (when, tx, _, rating, text) in enumerate(drafts, start=1)
    ]
    return rows, [d[2] for d in drafts]


def generate_retail(
    seed: int = SEED, customers: int = 1000, transactions: int = 50_000, reviews: int = 6000
) -> RetailData:
    """Generate the retail tables (cached: the same object for the same arguments).

    Each table draws from its own seeded stream, so changing how reviews are written leaves
    customers and transactions as they were. Takes about 0.6 s.
    """
    return _generate(seed, customers, transactions, reviews)


@functools.lru_cache(maxsize=4)
def _generate(seed: int, customers: int, transactions: int, reviews: int) -> RetailData:
    rng = [random.Random(seed * 10 + k) for k in range(4)]
    products = tuple(
        (p["product_id"]["S"], p["name"]["S"], p["category"]["S"], Decimal(p["price"]["N"]))
        for p in product_items(seed=seed)
    )
    people = _customers(rng[0], customers)
    ids = [c[0] for c in people]
    tempers = dict(
        zip(ids, rng[1].choices([t for t, _ in _TEMPERS], [w for _, w in _TEMPERS], k=len(ids)),
            strict=True)
    )  # fmt: skip
    txs = _transactions(rng[2], transactions, ids, products)
    review_rows, labels = _reviews(rng[3], reviews, txs, {p[0]: p for p in products}, tempers)
    _tiers(people, txs)
    return RetailData(
        customers=tuple(map(tuple, people)),
        products=products,
        transactions=tuple(map(tuple, txs)),
        reviews=tuple(review_rows),
        labels=tuple(labels),
    )


# -- files -----------------------------------------------------------------------------------------


def retail_csv(table: str, data: RetailData | None = None) -> bytes:
    """``table`` as UTF-8 CSV with a header line (``\\n`` line ends, minimal quoting)."""
    data = data or generate_retail()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[table])
    writer.writerows(data.rows(table))
    return out.getvalue().encode("utf-8")


def write_retail_samples(directory: str | Path, seed: int = SEED) -> list[Path]:
    """Write :data:`FILES` into ``directory``; returns their paths.

    ``.gz`` files are gzip with no name and mtime 0, so the same seed gives the same bytes (with
    the same zlib; compare decompressed content across machines).
    """
    data = generate_retail(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for table, name in FILES.items():
        body = retail_csv(table, data)
        if name.endswith(".gz"):
            body = gzip.compress(body, compresslevel=9, mtime=0)
        path = out / name
        path.write_bytes(body)
        paths.append(path)
    return paths


def retail_arrow(table: str, data: RetailData | None = None) -> Any:
    """``table`` as a ``pyarrow.Table`` with real types (dates, UTC timestamps, decimals)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    types = {
        "transaction_id": pa.int64(),
        "quantity": pa.int32(),
        "rating": pa.int16(),
        "unit_price": pa.decimal128(10, 2),
        "amount": pa.decimal128(12, 2),
        "signup_date": pa.date32(),
        "purchased_at": pa.timestamp("us", tz="UTC"),
        "created_at": pa.timestamp("us", tz="UTC"),
    }
    columns = COLUMNS[table]
    convert = pacsv.ConvertOptions(
        column_types={c: types.get(c, pa.string()) for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(io.BytesIO(retail_csv(table, data)), convert_options=convert)


# -- PostgreSQL ------------------------------------------------------------------------------------


def _load_table(cur: Any, schema: str, table: str, body: bytes) -> int:
    from psycopg2 import sql

    target = sql.Identifier(schema, table)
    cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(_DDL[table])))
    # One loader at a time per table: two COPYs into an empty table would clash on the keys.
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"{schema}.{table}".encode()),))
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(target))
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
    copy = "COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    if not cur.fetchone()[0]:  # empty: COPY straight in
        cur.copy_expert(sql.SQL(copy).format(target, cols), io.BytesIO(body))
        return int(cur.rowcount)
    staged = sql.Identifier(f"zetl_stage_{table}")
    cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(staged, target))
    cur.copy_expert(sql.SQL(copy).format(staged, cols), io.BytesIO(body))
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            target, cols, cols, staged
        )
    )
    return int(cur.rowcount)


def load_retail_postgres(
    url: str,
    tables: Sequence[str] = ("customers", "transactions"),
    *,
    schema: str = "public",
    seed: int = SEED,
) -> dict[str, int]:
    """Create ``tables`` in the PostgreSQL database at ``url`` and fill them; rows added per table.

    Fast (``COPY ... FROM STDIN``) and idempotent: a table is created if missing, rows whose
    primary key is already there are left alone (a second run adds 0 rows and keeps changes a
    lab made since), and every table gets a primary key so zero-ETL can replicate it. One
    transaction for all tables.

    >>> load_retail_postgres("postgresql://postgres@127.0.0.1:5432/shop")   # doctest: +SKIP
    {'customers': 1000, 'transactions': 50000}
    """
    import psycopg2

    unknown = [t for t in tables if t not in COLUMNS]
    if unknown:
        from .core.errors import ZetlError

        raise ZetlError(f"no retail table {unknown[0]!r}; choose from {sorted(COLUMNS)}.")
    data = generate_retail(seed)
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            return {t: _load_table(cur, schema, t, retail_csv(t, data)) for t in tables}
    finally:
        conn.close()


# -- DynamoDB --------------------------------------------------------------------------------------


def review_items(seed: int = SEED) -> list[dict[str, Any]]:
    """The reviews as DynamoDB items (``review_id`` hash key; ``rating`` a number)."""
    items: list[dict[str, Any]] = []
    for review_id, customer, product, rating, text, created in generate_retail(seed).reviews:
        items.append(
            {
                "review_id": {"S": review_id},
                "customer_id": {"S": customer},
                "product_id": {"S": product},
                "rating": {"N": str(rating)},
                "review_text": {"S": text},
                "created_at": {"S": created},
            }
        )
    return items


#: The ``reviews`` DynamoDB table: hash key ``review_id``, stream NEW_AND_OLD_IMAGES.
REVIEWS_TABLE: Final = SampleTable("reviews", (("review_id", "S", "HASH"),), review_items)


def load_reviews_dynamodb(lab: Lab, threads: int = 4) -> str:
    """Create and fill ``reviews`` in ``lab``'s DynamoDB, ready for zero-ETL; returns its ARN.

    Like :func:`zetl_nb.sample.load_dynamodb_samples`: stream, PITR and the Glue resource policy
    are set, and an existing table is left exactly as it is.
    """
    client = lab.client("dynamodb")
    arn = create_sample_table(client, REVIEWS_TABLE, lab.config.account_id, lab.config.region)
    if arn is None:
        return str(client.describe_table(TableName="reviews")["Table"]["TableArn"])
    write_items(client, "reviews", REVIEWS_TABLE.items(), threads=threads)
    return arn


def main(argv: list[str] | None = None) -> int:
    """``python -m zetl_nb.sample_retail DIRECTORY``: (re)write the retail sample files."""
    parser = argparse.ArgumentParser(
        prog="python -m zetl_nb.sample_retail",
        description="Write the retail sample tables (customers, transactions, reviews) as CSV.",
    )
    parser.add_argument("directory", type=Path, help="where to write the files")
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default {SEED})")
    args = parser.parse_args(argv)
    for path in write_retail_samples(args.directory, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
