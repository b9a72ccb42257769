"""The sentiment-analysis lab, step by step (notebook ``03_sentiment_analysis``, ``zetl-nb demo``).

The story, on embedded defaults and offline:

1. :func:`load_aurora` — the embedded PostgreSQL plays Aurora PostgreSQL: ``customers`` and
   ``transactions`` are COPYed in from the package's seeded generator;
2. :func:`create_target` and :func:`create_aurora_integration` — a Glue database ``lakehouse``
   and an RDS zero-ETL integration into it (NEEDS_ATTENTION until "fix it for me" sets the
   target's prerequisites, then ACTIVE);
3. :func:`load_dynamodb` and :func:`create_dynamodb_integrations` — ``products`` and ``reviews``
   in DynamoDB, one Glue zero-ETL integration each;
4. :func:`analyse` — SQL over the replicated Iceberg tables: the ``reviews_transactions`` view
   (the join on customer id), ``llm_sentiment`` per review into ``review_sentiment``, a prompt
   per customer (``reply_prompts``) and ``llm_complete`` into ``customer_replies``;
5. :func:`live_cdc` — a purchase INSERTed in PostgreSQL and an angry review put in DynamoDB
   flow through to a new reply; the round trip is timed.

The SQL lives in the constants below (notebook 03 shows the same text). ``review_sentiment``
and ``customer_replies`` are DuckDB tables in the Lab's SQL session: LLM answers are worth
keeping, and the ``NEW_*`` statements add only what is missing, so a change costs one call.

>>> lab = open_lab("/tmp/sentiment-lab")                              # doctest: +SKIP
>>> run = run_lab(lab)                                                 # doctest: +SKIP
>>> live_cdc(lab, run.integrations).seconds                            # doctest: +SKIP
1.9
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ..lab import Lab

__all__ = [
    "ANGRY_REVIEW",
    "CDC_CUSTOMER",
    "CUSTOMER_REPLIES",
    "LAB_SETTINGS",
    "NEW_CUSTOMER_REPLIES",
    "NEW_REVIEW_SENTIMENT",
    "REPLY_PROMPTS",
    "REVIEWS_TRANSACTIONS",
    "REVIEW_SENTIMENT",
    "TABLES",
    "TARGET_DATABASE",
    "Analysis",
    "CdcOutcome",
    "Integrations",
    "LabRun",
    "analyse",
    "create_aurora_integration",
    "create_dynamodb_integrations",
    "create_target",
    "example_replies",
    "live_cdc",
    "load_aurora",
    "load_dynamodb",
    "open_lab",
    "rows_replicated",
    "run_lab",
    "sentiment_counts",
    "wait_synced",
]

#: The Lab settings of the lab: a "15 minute" RefreshInterval ticks every 15 s, and
#: prerequisites are re-checked every second (AWS: every few minutes).
LAB_SETTINGS: Final[dict[str, Any]] = {"time_scale": 60, "prerequisite_recheck_seconds": 1}
#: The Glue database (Iceberg namespace) every integration of the lab writes into.
TARGET_DATABASE: Final = "lakehouse"
#: Source table → the replicated Iceberg table, as DuckDB and ``lab.polars`` name it.
TABLES: Final = {
    "customers": "lakehouse.postgres_public_customers",
    "transactions": "lakehouse.postgres_public_transactions",
    "products": "lakehouse.products",
    "reviews": "lakehouse.reviews",
}
_AURORA_FILTER: Final = "include: postgres.public.customers, include: postgres.public.transactions"

# -- the SQL -----------------------------------------------------------------------------------

#: Every review joined with every purchase of the same customer (a view: it reads the latest
#: snapshots, so changes replicated later show up without rebuilding anything).
REVIEWS_TRANSACTIONS: Final = """
CREATE OR REPLACE VIEW reviews_transactions AS
SELECT r.customer_id, r.review_id, r.product_id AS reviewed_product_id,
       CAST(r.rating AS INTEGER) AS rating, r.review_text,
       CAST(r.created_at AS TIMESTAMPTZ) AS reviewed_at,
       t.transaction_id, t.product_id, p.name AS product_name, p.category,
       t.quantity, t.amount, t.status, t.purchased_at
FROM lakehouse.reviews AS r
JOIN lakehouse.postgres_public_transactions AS t ON t.customer_id = r.customer_id
LEFT JOIN lakehouse.products AS p ON p.product_id = t.product_id
"""

#: One sentiment label per review, from the Lab's model (many reviews per prompt).
REVIEW_SENTIMENT: Final = """
CREATE OR REPLACE TABLE review_sentiment AS
SELECT review_id, customer_id, product_id, CAST(rating AS INTEGER) AS rating,
       llm_sentiment(review_text) AS sentiment
FROM lakehouse.reviews
"""

#: Classify only the reviews that have no label yet.
NEW_REVIEW_SENTIMENT: Final = """
INSERT INTO review_sentiment
SELECT review_id, customer_id, product_id, CAST(rating AS INTEGER), llm_sentiment(review_text)
FROM lakehouse.reviews
WHERE review_id NOT IN (SELECT review_id FROM review_sentiment)
"""

#: A reply prompt per customer, about their latest review: sentiment, what they bought (the
#: join's rows of that review), loyalty tier and their three reviews before it.
REPLY_PROMPTS: Final = """
CREATE OR REPLACE VIEW reply_prompts AS
WITH latest AS (
    SELECT r.customer_id, r.review_id, r.product_id, r.review_text, s.sentiment
    FROM lakehouse.reviews AS r JOIN review_sentiment AS s USING (review_id)
    QUALIFY row_number() OVER (
        PARTITION BY r.customer_id ORDER BY r.created_at DESC, r.review_id DESC) = 1
), bought AS (
    SELECT review_id, string_agg(product_name, '; ' ORDER BY purchased_at DESC) AS products
    FROM (SELECT review_id, product_name, purchased_at, row_number() OVER (
              PARTITION BY review_id ORDER BY purchased_at DESC) AS n
          FROM reviews_transactions WHERE review_id IN (SELECT review_id FROM latest))
    WHERE n <= 8
    GROUP BY review_id
), earlier AS (
    SELECT customer_id, string_agg(sentiment || ': ' || review_text, ' | '
                                   ORDER BY created_at DESC) AS reviews
    FROM (SELECT r.customer_id, r.created_at, r.review_text, s.sentiment, row_number() OVER (
              PARTITION BY r.customer_id ORDER BY r.created_at DESC) AS n
          FROM lakehouse.reviews AS r JOIN review_sentiment AS s USING (review_id)
          WHERE r.review_id NOT IN (SELECT review_id FROM latest))
    WHERE n <= 3
    GROUP BY customer_id
)
SELECT l.customer_id, l.review_id, l.sentiment, c.first_name || ' ' || c.last_name AS customer,
       concat_ws(chr(10),
           'Draft a short, friendly reply from our customer care team to the customer below. '
           || 'If they are happy, thank them and suggest the next best product for them. '
           || 'If they are unhappy, apologise and offer free shipping on their next order, '
           || 'or a discount if they are a loyal customer or have complained before. '
           || 'Answer with the reply only.',
           '',
           'Customer: ' || c.first_name || ' ' || c.last_name,
           'Loyalty tier: ' || c.loyalty_tier,
           'Product: ' || p.name,
           'Review: ' || l.review_text,
           'Sentiment: ' || l.sentiment,
           'Purchased: ' || b.products,
           'Earlier reviews: ' || e.reviews) AS prompt
FROM latest AS l
JOIN lakehouse.postgres_public_customers AS c ON c.customer_id = l.customer_id
LEFT JOIN lakehouse.products AS p ON p.product_id = l.product_id
LEFT JOIN bought AS b ON b.review_id = l.review_id
LEFT JOIN earlier AS e ON e.customer_id = l.customer_id
"""

#: A reply per customer from the Lab's model.
CUSTOMER_REPLIES: Final = """
CREATE OR REPLACE TABLE customer_replies AS
SELECT customer_id, review_id, customer, sentiment, llm_complete(prompt) AS reply,
       now() AS drafted_at
FROM reply_prompts
"""

#: Draft replies only where a customer's latest review has none yet.
NEW_CUSTOMER_REPLIES: Final = """
INSERT INTO customer_replies
SELECT customer_id, review_id, customer, sentiment, llm_complete(prompt), now()
FROM reply_prompts
WHERE review_id NOT IN (SELECT review_id FROM customer_replies)
"""

#: A happy gold customer and the product their reply recommended (the offline model's wording).
CDC_CUSTOMER: Final = """
SELECT r.customer_id, c.first_name, p.product_id, p.name, p.price
FROM customer_replies AS r
JOIN lakehouse.postgres_public_customers AS c USING (customer_id)
JOIN lakehouse.products AS p ON contains(r.reply, 'enjoy the ' || p.name || ' next')
WHERE r.sentiment = 'positive' AND c.loyalty_tier = 'gold'
ORDER BY r.customer_id
LIMIT 1
"""

#: The review the happy customer writes about what they just bought.
ANGRY_REVIEW: Final = (
    "The {product} stopped working after two days and support never answered. "
    "Very disappointed, I want a refund."
)

_EXAMPLES: Final = """
SELECT r.customer_id, r.customer, r.sentiment, v.review_text, r.reply
FROM customer_replies AS r JOIN lakehouse.reviews AS v USING (review_id)
WHERE r.sentiment IN ('positive', 'negative', 'mixed')
QUALIFY row_number() OVER (PARTITION BY r.sentiment ORDER BY r.customer_id) = 1
ORDER BY array_position(['positive', 'negative', 'mixed'], r.sentiment)
"""

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- the Lab and the sources -------------------------------------------------------------------


def open_lab(home: str | Path | None = None, **settings: Any) -> Lab:
    """A :class:`~zetl_nb.Lab` with :data:`LAB_SETTINGS` (``settings`` override them)."""
    from ..lab import Lab

    return Lab(home, **{**LAB_SETTINGS, **settings})


def load_aurora(lab: Lab) -> dict[str, int]:
    """COPY ``customers`` and ``transactions`` into the embedded PostgreSQL; rows added."""
    from ..sample_retail import load_retail_postgres

    return load_retail_postgres(lab.database_url(lab.config.embedded_cluster))


def load_dynamodb(lab: Lab) -> dict[str, str]:
    """Create and fill ``products`` and ``reviews`` in the Lab's DynamoDB; name → table ARN."""
    from ..sample import load_dynamodb_samples
    from ..sample_retail import load_reviews_dynamodb

    arns = load_dynamodb_samples(lab, ["products"])
    arns["reviews"] = load_reviews_dynamodb(lab)
    return arns


# -- integrations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integrations:
    """The ARNs of the lab's three integrations."""

    aurora: str
    products: str
    reviews: str

    def all(self) -> tuple[str, ...]:
        """Every ARN, Aurora first."""
        return (self.aurora, self.products, self.reviews)


def create_target(lab: Lab) -> str:
    """``glue.create_database(lakehouse)``; returns the database ARN (the integrations' target)."""
    glue = lab.client("glue")
    glue.create_database(
        DatabaseInput={"Name": TARGET_DATABASE, "Description": "sentiment lab: zero-ETL target"}
    )
    return f"arn:aws:glue:{lab.config.region}:{lab.config.account_id}:database/{TARGET_DATABASE}"


def create_aurora_integration(
    lab: Lab, target_arn: str, say: Say = _quiet
) -> tuple[str, list[dict[str, Any]]]:
    """``rds.create_integration`` from the embedded "Aurora" into ``target_arn``, made ACTIVE.

    A new target database lacks its prerequisites, so the integration first reports
    NEEDS_ATTENTION; "fix it for me" (``lab.fix_prerequisites(apply=True)``) sets them.
    Returns the ARN and the fixes applied.
    """
    rds = lab.client("rds")
    arn = str(
        rds.create_integration(
            IntegrationName="aurora-retail",
            SourceArn=lab.databases()[lab.config.embedded_cluster],
            TargetArn=target_arn,
            DataFilter=_AURORA_FILTER,
        )["IntegrationArn"]
    )
    status = lab.wait_for_status(arn, ["ACTIVE", "NEEDS_ATTENTION"]).status
    say(f"rds.create_integration(aurora-retail) → {status}")
    fixes = lab.fix_prerequisites(arn, apply=True) if status == "NEEDS_ATTENTION" else []
    done = ", ".join(f"{fix['Service']}.{fix['Operation']}" for fix in fixes) or "nothing to fix"
    status = lab.wait_for_status(arn, "ACTIVE").status
    say(f"lab.fix_prerequisites(apply=True): {done} → {status}")
    return arn, fixes


def create_dynamodb_integrations(lab: Lab, sources: dict[str, str], target_arn: str) -> list[str]:
    """One ``glue.create_integration`` per DynamoDB table in ``sources``; ARNs once ACTIVE."""
    glue = lab.client("glue")
    arns = [
        str(
            glue.create_integration(
                IntegrationName=f"{name}-to-lakehouse", SourceArn=source, TargetArn=target_arn
            )["IntegrationArn"]
        )
        for name, source in sources.items()
    ]
    for arn in arns:
        lab.wait_for_status(arn, "ACTIVE")
    return arns


def wait_synced(lab: Lab, integrations: Integrations, timeout: float = 120) -> None:
    """Block until every integration has applied its source as of now."""
    for arn in integrations.all():
        lab.wait(arn, timeout=timeout)


def rows_replicated(lab: Lab) -> dict[str, int]:
    """Rows in each replicated table (:data:`TABLES`), by Iceberg table name."""
    counts = " UNION ALL ".join(
        f"SELECT '{name}' AS t, count(*) AS n FROM {name}" for name in TABLES.values()
    )
    found = dict(lab.sql(counts).fetchall())
    return {name: int(found[name]) for name in TABLES.values()}


# -- the analysis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyse` did: the LLM tally (``result.llm``) and seconds of each step."""

    sentiment_llm: Any
    replies_llm: Any
    sentiment_s: float
    replies_s: float


def analyse(lab: Lab) -> Analysis:
    """Run the lab's SQL: the join view, sentiment per review, a reply per customer."""
    lab.sql("SET enable_progress_bar = false")
    lab.sql(REVIEWS_TRANSACTIONS)
    start = time.perf_counter()
    sentiment = lab.sql(REVIEW_SENTIMENT)
    middle = time.perf_counter()
    lab.sql(REPLY_PROMPTS)
    replies = lab.sql(CUSTOMER_REPLIES)
    end = time.perf_counter()
    return Analysis(sentiment.llm, replies.llm, middle - start, end - middle)


def sentiment_counts(lab: Lab) -> dict[str, int]:
    """Reviews per sentiment label, most frequent first."""
    rows = lab.sql(
        "SELECT sentiment, count(*) FROM review_sentiment GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    return {str(label): int(n) for label, n in rows}


def example_replies(lab: Lab) -> list[dict[str, str]]:
    """Three replies: to the first positive, negative and mixed customer (by customer id)."""
    keys = ("customer_id", "customer", "sentiment", "review", "reply")
    return [dict(zip(keys, row, strict=True)) for row in lab.sql(_EXAMPLES).fetchall()]


# -- live CDC ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CdcOutcome:
    """The live change: who, what was written at the sources, the new reply, and how long."""

    customer_id: str
    customer: str
    transaction_id: int
    review_id: str
    product: str
    sentiment: str
    reply: str
    seconds: float
    previous_reply: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _cdc_customer(lab: Lab) -> tuple[str, str, str, str, Any]:
    """(customer id, first name, product id, product name, price) for the live change."""
    row = lab.sql(CDC_CUSTOMER).fetchone()
    if row is None:  # a real model words replies its own way: any positive customer will do
        row = lab.sql(
            "SELECT r.customer_id, c.first_name, p.product_id, p.name, p.price "
            "FROM customer_replies AS r JOIN lakehouse.postgres_public_customers AS c "
            "USING (customer_id), lakehouse.products AS p WHERE r.sentiment = 'positive' "
            "ORDER BY r.customer_id, p.product_id LIMIT 1"
        ).fetchone()
    if row is None:
        from ..core.errors import ZetlError

        raise ZetlError("no customer has a positive reply yet: run analyse(lab) first.")
    return str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4]


def _write_purchase(lab: Lab, customer_id: str, product_id: str, price: Any) -> int:
    """INSERT a purchase into the "Aurora" transactions table; its transaction id."""
    import psycopg2

    conn = psycopg2.connect(lab.database_url(lab.config.embedded_cluster))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO transactions (transaction_id, customer_id, product_id, quantity, "
                "unit_price, amount, currency, channel, status, purchased_at) "
                "SELECT max(transaction_id) + 1, %s, %s, 1, %s, %s, 'USD', 'web', 'completed', "
                "now() FROM transactions RETURNING transaction_id",
                (customer_id, product_id, price, price),
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _write_review(lab: Lab, customer_id: str, product_id: str, text: str) -> str:
    """Put a one-star review into DynamoDB ``reviews``; its review id."""
    (last,) = lab.sql("SELECT max(review_id) FROM lakehouse.reviews").fetchone() or (None,)
    review_id = f"r{int(str(last or 'r0')[1:]) + 1:05d}"
    lab.client("dynamodb").put_item(
        TableName="reviews",
        Item={
            "review_id": {"S": review_id},
            "customer_id": {"S": customer_id},
            "product_id": {"S": product_id},
            "rating": {"N": "1"},
            "review_text": {"S": text},
            "created_at": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
    )
    return review_id


def live_cdc(lab: Lab, integrations: Integrations, text: str = ANGRY_REVIEW) -> CdcOutcome:
    """A happy customer buys the product we recommended, then hates it: a new reply.

    Writes the purchase in PostgreSQL and the review in DynamoDB, applies both integrations at
    once (``lab.refresh_now`` + ``lab.wait``), classifies the new review and drafts the reply
    (:data:`NEW_REVIEW_SENTIMENT`, :data:`NEW_CUSTOMER_REPLIES`). ``seconds`` runs from the
    first write to the reply.
    """
    customer_id, first_name, product_id, product, price = _cdc_customer(lab)
    (before,) = lab.sql(
        "SELECT reply FROM customer_replies WHERE customer_id = ? ORDER BY drafted_at DESC",
        [customer_id],
    ).fetchone() or ("",)
    start = time.perf_counter()
    transaction_id = _write_purchase(lab, customer_id, product_id, price)
    review_id = _write_review(lab, customer_id, product_id, text.format(product=product))
    written = time.perf_counter()
    for arn in (integrations.aurora, integrations.reviews):
        lab.refresh_now(arn)
    for arn in (integrations.aurora, integrations.reviews):
        lab.wait(arn, timeout=60)
    replicated = time.perf_counter()
    lab.sql(NEW_REVIEW_SENTIMENT)
    lab.sql(NEW_CUSTOMER_REPLIES)
    row = lab.sql(
        "SELECT sentiment, reply FROM customer_replies WHERE review_id = ?", [review_id]
    ).fetchone()
    end = time.perf_counter()
    if row is None:
        from ..core.errors import ZetlError

        raise ZetlError(f"review {review_id} replicated but got no reply; see reply_prompts.")
    return CdcOutcome(
        customer_id=customer_id,
        customer=first_name,
        transaction_id=transaction_id,
        review_id=review_id,
        product=product,
        sentiment=str(row[0]),
        reply=str(row[1]),
        seconds=end - start,
        previous_reply=str(before),
        timings={
            "write_s": written - start,
            "replicate_s": replicated - written,
            "llm_s": end - replicated,
        },
    )


# -- the whole lab -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabRun:
    """The lab up to the analysis: integrations, rows per table, fixes applied, timings."""

    integrations: Integrations
    source_rows: dict[str, int]
    rows_replicated: dict[str, int]
    fixes: list[dict[str, Any]]
    analysis: Analysis
    load_s: float


def run_lab(lab: Lab, say: Say = _quiet) -> LabRun:
    """Steps 1-4 of the lab on ``lab`` (a fresh home), reporting progress through ``say``."""
    start = time.perf_counter()
    source_rows = load_aurora(lab)
    say(
        f"PostgreSQL (Aurora): COPY customers {source_rows['customers']:,}, "
        f"transactions {source_rows['transactions']:,}"
    )
    target = create_target(lab)
    say(f"glue.create_database({TARGET_DATABASE})")
    aurora, fixes = create_aurora_integration(lab, target, say)
    tables = load_dynamodb(lab)
    ddb = lab.client("dynamodb")
    items = {t: ddb.describe_table(TableName=t)["Table"]["ItemCount"] for t in tables}
    say(f"DynamoDB: products {items['products']:,}, reviews {items['reviews']:,} items")
    products, reviews = create_dynamodb_integrations(lab, tables, target)
    say("glue.create_integration(products-to-lakehouse, reviews-to-lakehouse) → ACTIVE")
    integrations = Integrations(aurora, products, reviews)
    wait_synced(lab, integrations)
    load_s = time.perf_counter() - start
    replicated = rows_replicated(lab)
    say(f"initial load: {sum(replicated.values()):,} rows in Iceberg after {load_s:.1f} s")
    analysis = analyse(lab)
    say(
        f"llm_sentiment: {analysis.sentiment_llm.rows:,} reviews in "
        f"{analysis.sentiment_s:.1f} s; llm_complete: {analysis.replies_llm.rows:,} replies in "
        f"{analysis.replies_s:.1f} s"
    )
    return LabRun(integrations, source_rows, replicated, fixes, analysis, load_s)
