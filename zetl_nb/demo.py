"""``zetl-nb demo``: the sentiment-analysis lab (notebook 03) headless, on embedded defaults.

In a fresh Lab home (a new temporary directory unless ``--home`` names one) it runs the steps
of :mod:`zetl_nb.labs.sentiment`: customers and transactions COPYed into the embedded
PostgreSQL ("Aurora") and replicated by an RDS zero-ETL integration (NEEDS_ATTENTION until "fix
it for me" sets the target's prerequisites), products and reviews put into DynamoDB and
replicated by two Glue integrations, ``llm_sentiment`` over every review and ``llm_complete``
drafting a reply per customer on the offline model, then a purchase and an angry review written
at the sources flowing through to a new reply. Sample data comes from the package's seeded
generator, so it runs in an empty directory with no network.

It prints progress as it goes, then the rows replicated per table, the sentiment counts, three
example replies, the CDC round-trip time and the total wall time. ``--json`` prints the same
summary as one JSON object on stdout (progress goes to stderr)::

    {"rows_replicated": {...}, "sentiment": {...}, "replies": [...],
     "cdc_round_trip_s": 0.8, "wall_s": 36.2, ...}
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["run_demo", "summary_text"]


def _fresh_home(home: str | None) -> Path | None:
    """The demo's home: a new temporary directory, or ``home`` if it holds no Lab yet."""
    if home is None:
        return Path(tempfile.mkdtemp(prefix="zetl-demo-"))
    root = Path(home).expanduser().resolve()
    if (root / "control.db").exists():
        return None
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_demo(home: str | None = None, as_json: bool = False) -> int:
    """Run the demo; returns the process exit code (2: ``home`` already holds a Lab)."""
    started = time.perf_counter()
    root = _fresh_home(home)
    if root is None:
        print(
            f"zetl-nb demo: {home} already holds a Lab; the demo starts from a fresh home. "
            "Name an empty or new directory with --home, or leave --home out for a temporary one.",
            file=sys.stderr,
        )
        return 2
    out: TextIO = sys.stderr if as_json else sys.stdout

    def say(message: str) -> None:
        print(f"• {message}", file=out, flush=True)

    print("zetl_nb demo: the sentiment-analysis lab, offline, on embedded defaults", file=out)
    print(f"  Lab home: {root}\n", file=out, flush=True)
    summary = _run(root, say)
    summary["wall_s"] = round(time.perf_counter() - started, 1)  # the Lab closed too
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(summary_text(summary), flush=True)
    return 0


def _run(root: Path, say: Any) -> dict[str, Any]:
    from .labs import sentiment

    lab = sentiment.open_lab(root)
    try:
        run = sentiment.run_lab(lab, say)
        counts = sentiment.sentiment_counts(lab)
        replies = sentiment.example_replies(lab)
        say("live CDC: INSERT a purchase in PostgreSQL, put an angry review in DynamoDB")
        cdc = sentiment.live_cdc(lab, run.integrations)
        say(f"  … new reply after {cdc.seconds:.2f} s")
        return {
            "rows_replicated": run.rows_replicated,
            "sentiment": counts,
            "replies": replies,
            "cdc_round_trip_s": round(cdc.seconds, 3),
            "wall_s": None,  # set once the Lab is closed
            "cdc": {
                "customer_id": cdc.customer_id,
                "customer": cdc.customer,
                "transaction_id": cdc.transaction_id,
                "review_id": cdc.review_id,
                "product": cdc.product,
                "sentiment": cdc.sentiment,
                "previous_reply": cdc.previous_reply,
                "reply": cdc.reply,
                **{k: round(v, 3) for k, v in cdc.timings.items()},
            },
            "model": lab.config.llm_model,
            "home": str(root),
        }
    finally:
        lab.close()


def summary_text(summary: dict[str, Any]) -> str:
    """The demo's summary as the text it prints (the same data as ``--json``)."""
    lines = ["", "Rows replicated (Iceberg tables in the lakehouse database)"]
    width = max(len(t) for t in summary["rows_replicated"])
    lines += [f"  {t:<{width}}  {n:>7,}" for t, n in summary["rows_replicated"].items()]
    total = sum(summary["sentiment"].values())
    lines += ["", f"Sentiment of {total:,} reviews (llm_sentiment on {summary['model']})"]
    lines += [f"  {label:<9} {n:>6,}" for label, n in summary["sentiment"].items()]
    lines += ["", "Example replies (llm_complete, one prompt per customer)"]
    for reply in summary["replies"]:
        lines.append(
            f"  {reply['customer']} ({reply['customer_id']}, {reply['sentiment']}): "
            f'"{reply["review"]}"'
        )
        lines.append(f"    → {reply['reply']}")
    cdc = summary["cdc"]
    lines += [
        "",
        "Live CDC: a purchase INSERTed in PostgreSQL and a review put in DynamoDB",
        f"  before: {cdc['previous_reply']}",
        f"  {cdc['customer']} ({cdc['customer_id']}) bought the {cdc['product']} "
        f"(transaction {cdc['transaction_id']}) and reviewed it ({cdc['review_id']}, "
        f"{cdc['sentiment']})",
        f"  after:  {cdc['reply']}",
        f"  CDC round trip: {summary['cdc_round_trip_s']:.2f} s from the source writes to the "
        f"new reply (replication {cdc['replicate_s']:.2f} s)",
        "",
        f"Total wall time: {summary['wall_s']:.1f} s. The lakehouse stays in {summary['home']}:",
        f'  zetl-nb sql --home {summary["home"]} "SELECT count(*) FROM lakehouse.reviews"',
    ]
    return "\n".join(lines)
