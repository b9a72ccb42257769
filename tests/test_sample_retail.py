"""The retail sample of the sentiment lab: generator, files, PostgreSQL and DynamoDB loaders.

The PostgreSQL loader runs against a private embedded PostgreSQL (its own data directory under
the test's tmp path); the DynamoDB loader against a Lab's embedded DynamoDB (moto over HTTP).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from zetl_nb import Lab, ZetlError
from zetl_nb.sample import product_items
from zetl_nb.sample_retail import (
    COLUMNS,
    FILES,
    RetailData,
    generate_retail,
    load_retail_postgres,
    load_reviews_dynamodb,
    main,
    retail_arrow,
    retail_csv,
    review_items,
    write_retail_samples,
)
from zetl_nb.services.postgres import EmbeddedPostgres
from zetl_nb.sources.dynamodb import check_prerequisites

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def data() -> RetailData:
    return generate_retail()


def _content(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


# -- files ----------------------------------------------------------------------------------------


def test_files_in_sample_data_are_the_generators_output(tmp_path: Path) -> None:
    for path in write_retail_samples(tmp_path):
        committed = SAMPLE_DATA / path.name
        # Compare content, not gzip bytes: another zlib may compress the same CSV differently.
        assert _content(committed) == _content(path), (
            f"{committed} is stale: run `python -m zetl_nb.sample_retail sample_data`"
        )


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    first = write_retail_samples(tmp_path / "a")
    again = write_retail_samples(tmp_path / "b")
    assert [p.name for p in first] == list(FILES.values())
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    other = generate_retail(seed=7)
    assert other.reviews != generate_retail().reviews
    assert len(other.transactions) == 50_000


def test_cli_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == list(FILES.values())
    rows = list(csv.reader(io.StringIO(gzip.decompress(Path(printed[2]).read_bytes()).decode())))
    assert tuple(rows[0]) == COLUMNS["reviews"] and len(rows) == 6001


# -- the generator ---------------------------------------------------------------------------------


def test_sizes_and_keys(data: RetailData) -> None:
    assert len(data.customers) == 1000 and len(data.products) == 200
    assert len(data.transactions) == 50_000 and len(data.reviews) == 6000
    assert len({c[0] for c in data.customers}) == 1000
    assert [t[0] for t in data.transactions] == list(range(1, 50_001))
    assert [r[0] for r in data.reviews] == [f"r{n:05d}" for n in range(1, 6001)]
    assert [p[0] for p in data.products] == [p["product_id"]["S"] for p in product_items()]


def test_transactions_are_consistent(data: RetailData) -> None:
    customers = {c[0] for c in data.customers}
    prices = {p[0]: p[3] for p in data.products}
    times = [t[9] for t in data.transactions]
    assert times == sorted(times) and times[0] >= "2025-01-01" and times[-1] < "2026-11-01"
    for (
        _,
        customer,
        product,
        quantity,
        unit,
        amount,
        currency,
        channel,
        status,
        _,
    ) in data.transactions:
        assert customer in customers and unit == prices[product]
        assert 1 <= quantity <= 4 and amount == unit * quantity and currency == "USD"
        assert channel in {"web", "app", "store"}
        assert status in {"completed", "cancelled", "returned"}
    assert Counter(t[8] for t in data.transactions)["returned"] > 100


def test_loyalty_tiers_follow_spend(data: RetailData) -> None:
    spend: Counter[str] = Counter()
    for t in data.transactions:
        if t[8] == "completed":
            spend[t[1]] += t[5]
    tiers = {c[0]: c[7] for c in data.customers}
    assert Counter(tiers.values()) == {"gold": 100, "silver": 300, "bronze": 600}
    gold = min(spend[c] for c, t in tiers.items() if t == "gold")
    assert all(spend[c] <= gold for c, t in tiers.items() if t != "gold")


def test_reviews_follow_purchases(data: RetailData) -> None:
    bought: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in data.transactions:
        if t[8] != "cancelled":
            bought[t[1], t[2]].append(t[9])
    pairs = [(r[1], r[2]) for r in data.reviews]
    assert len(set(pairs)) == len(pairs), "one review per customer and product"
    created = [r[5] for r in data.reviews]
    assert created == sorted(created) and created[-1] < "2026-11-01"
    for (customer, product), when in zip(pairs, created, strict=True):
        assert any(moment < when for moment in bought[customer, product])


def test_every_label_and_ratings_that_agree(data: RetailData) -> None:
    counts = Counter(data.labels)
    assert set(counts) == {"positive", "negative", "neutral", "mixed"}
    assert min(counts.values()) >= 500
    allowed = {"positive": {4, 5}, "negative": {1, 2}, "neutral": {3, 4}, "mixed": {2, 3, 4}}
    for review, label in zip(data.reviews, data.labels, strict=True):
        assert review[3] in allowed[label], (review, label)
        assert 10 <= len(review[4]) <= 300


def test_histories_mix_sentiments(data: RetailData) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for review, label in zip(data.reviews, data.labels, strict=True):
        seen[review[1]].add(label)
    both = [c for c, labels in seen.items() if {"positive", "negative"} <= labels]
    assert len(both) >= 100
    assert sum(len(labels) >= 3 for labels in seen.values()) >= 100


def test_texts_use_negation_contrast_and_intensifiers(data: RetailData) -> None:
    texts = " ".join(r[4] for r in data.reviews).lower()
    for marker in ("not ", "n't", " but ", "however", "really", "very", "a bit", "never"):
        assert marker in texts, marker
    assert len({r[4] for r in data.reviews}) > 2000, "texts vary"


def test_arrow_tables_have_real_types(data: RetailData) -> None:
    import pyarrow as pa

    tx = retail_arrow("transactions", data)
    assert tx.num_rows == 50_000 and tx.column_names == list(COLUMNS["transactions"])
    assert tx.schema.field("amount").type == pa.decimal128(12, 2)
    assert tx.schema.field("purchased_at").type == pa.timestamp("us", tz="UTC")
    reviews = retail_arrow("reviews", data)
    assert reviews.column("review_text").to_pylist() == [r[4] for r in data.reviews]
    assert retail_arrow("customers").schema.field("signup_date").type == pa.date32()


def test_unknown_table_is_an_error(data: RetailData) -> None:
    with pytest.raises(ZetlError, match="no retail table 'orders'"):
        data.rows("orders")
    with pytest.raises(ZetlError, match="no retail table 'orders'"):
        load_retail_postgres("postgresql://unused", tables=["orders"])


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("retail-pg") / "postgres" / "data")
    server.start()
    yield server
    server.stop()


def _query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def test_postgres_loader_copies_and_is_idempotent(pg: EmbeddedPostgres, data: RetailData) -> None:
    dsn = pg.dsn("postgres")
    assert load_retail_postgres(dsn) == {"customers": 1000, "transactions": 50_000}
    total = sum(t[5] for t in data.transactions)
    assert _query(dsn, "SELECT count(*), sum(amount) FROM transactions") == [(50_000, total)]
    first = _query(dsn, "SELECT * FROM transactions WHERE transaction_id = 1")[0]
    assert first[:6] == data.transactions[0][:6]
    assert first[9].isoformat() == data.transactions[0][9].replace("Z", "+00:00")
    keys = _query(
        dsn,
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'p' "
        "AND conrelid::regclass::text IN ('customers', 'transactions') ORDER BY 1",
    )
    assert keys == [("customers",), ("transactions",)]
    assert load_retail_postgres(dsn) == {"customers": 0, "transactions": 0}
    # A lab changed rows since: a re-run restores what is missing and keeps what was changed.
    _query(dsn, "DELETE FROM transactions WHERE transaction_id > 49990")
    _query(dsn, "UPDATE customers SET city = 'Faro' WHERE customer_id = 'c0001'")
    assert load_retail_postgres(dsn) == {"customers": 0, "transactions": 10}
    assert _query(dsn, "SELECT count(*) FROM transactions") == [(50_000,)]
    assert _query(dsn, "SELECT city FROM customers WHERE customer_id = 'c0001'") == [("Faro",)]


def test_postgres_loader_other_schema_and_reviews(pg: EmbeddedPostgres, data: RetailData) -> None:
    dsn = pg.dsn("postgres")
    _query(dsn, "CREATE SCHEMA IF NOT EXISTS shop")
    assert load_retail_postgres(dsn, ["reviews"], schema="shop") == {"reviews": 6000}
    got = _query(dsn, "SELECT review_id, rating, review_text FROM shop.reviews ORDER BY 1 LIMIT 2")
    assert got == [(r[0], r[3], r[4]) for r in data.reviews[:2]]


def test_retail_csv_round_trips(data: RetailData) -> None:
    rows = list(csv.reader(io.StringIO(retail_csv("reviews", data).decode())))
    assert [tuple(r) for r in rows[1:3]] == [tuple(map(str, r)) for r in data.reviews[:2]]


# -- DynamoDB --------------------------------------------------------------------------------------


def test_reviews_load_into_dynamodb_ready_for_zero_etl(tmp_path: Path) -> None:
    items = review_items()
    assert items[0]["rating"]["N"] in {"1", "2", "3", "4", "5"} and len(items) == 6000
    with Lab(tmp_path / "home") as lab:
        arn = load_reviews_dynamodb(lab)
        ddb = lab.client("dynamodb")
        pages = ddb.get_paginator("scan").paginate(TableName="reviews", Select="COUNT")
        assert sum(int(p["Count"]) for p in pages) == 6000
        got = ddb.get_item(TableName="reviews", Key={"review_id": {"S": "r00042"}})["Item"]
        assert got == items[41]
        assert check_prerequisites(ddb, arn, ACCOUNT, REGION) == []
        assert load_reviews_dynamodb(lab) == arn  # idempotent: left as it is
        assert Decimal(got["rating"]["N"]) in {1, 2, 3, 4, 5}
