"""The lab notebooks run top to bottom, and `zetl-nb demo` works end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_html(nb: nbformat.NotebookNode) -> str:
    """The HTML the notebook's widgets showed last (nbclient keeps every widget model's final
    state in the notebook's metadata; a widget's own text repr is cut short)."""
    models = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return "\n".join(
        str(m["state"].get("value", ""))
        for m in models.get("state", {}).values()
        if m["model_name"] == "HTMLModel"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary Lab homes land here
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    # What the cells printed, and what they displayed (text reprs, HTML tables and notices).
    text = "\n".join(
        out.get("text", "")
        + "".join(out.get("data", {}).get(k, "") for k in ("text/plain", "text/html"))
        for out in outputs
    )
    widgets = [out["data"]["text/plain"] for out in outputs if WIDGET_VIEW in out.get("data", {})]
    if path.stem == "00_quickstart":
        assert [w.split("(", 1)[0] for w in widgets] == ["VBox"] * 3  # wizard, dashboard, query
        assert "IntegrationName 'products to lakehouse' is invalid" in text  # inline, the API's
        assert "glue.create_integration(\n    IntegrationName='products-to-lakehouse'" in text
        assert "NEEDS_ATTENTION\n- TargetLocationUriMissing" in text
        assert "TargetCatalogPolicyMissing" in text and "still NEEDS_ATTENTION" in text
        assert "glue.UpdateDatabase: Set LocationUri of database 'lakehouse'" in text
        assert "ACTIVE\n" in text and "[('products', 'Synced')]" in text
        assert "products-to-lakehouse ACTIVE products -> lakehouse 200 rows inserted" in text
        assert "inserted 201, updated 1, deleted 1" in text  # CDC, on the dashboard
        assert "5 rows" in text and "Zero-ETL Mug" in text  # the query box; lab.sql's table
        assert "[('DynamoDB', 'CdcRefreshState', 1)]" in text  # Redshift SQL, svv_integration
        shown = widget_html(nb)
        assert '<b>products-to-lakehouse</b> <span class="zetl-badge"' in shown  # the wizard
        assert shown.count(">ACTIVE</span>") >= 2  # the wizard's status and the dashboard's row
        assert "<tr><td>Books</td><td>40</td><td>194.59</td></tr>" in shown  # the query box
    if path.stem == "01_dynamodb_to_lakehouse":
        assert "products 200 items" in text and "invoices 191 items" in text
        assert "lake_raw     2 columns: ['product_id', 'value']" in text
        assert "lake_top     5 columns" in text and "lake_full   23 columns" in text
        assert "lake_full ['category = identity'] 5 partitions" in text
        assert "lake_top ['product_id_bucket = bucket[8]'] 8 partitions" in text
        assert "('INV#0001', 'c0076', 2176.88, 5, 2176.88)" in text
        assert "[('p0001', 149.99, True)]" in text and "[(199,)]" in text
    if path.stem == "02_aurora_cdc":
        assert "DataFilter pattern 'public.*' has 2 part(s); this source needs 3" in text
        assert "creating\nneeds_attention\n" in text and "active\n" in text
        assert "tables: ['postgres_public_customers', 'postgres_public_orders']\n" in text
        assert "[(1, Decimal('22.74'), 2), (1001, Decimal('99.90'), 2)]" in text  # live CDC
        assert "update_postimage" in text and "orders equal: True | customers equal: True" in text
        assert "(2, 'customer 2', 'c2@example.com'), (3, 'customer 3', None)" in text
        assert "'postgres_public_orders', 'postgres_public_returns']" in text  # not staging_
        assert "('qty', 'BIGINT')" in text  # int widened in place
        assert "states: SYNCING -> ACTIVE" in text and "[(1, '2'), (1003, 'a dozen')]" in text
        assert "Integration Resynced postgres_public_orders" in text
        assert "ResyncRequired   postgres_public_orders: Cannot change column type" in text
        assert "[('PostgreSQL', 'postgres', 'CdcRefreshState', 3, 0)]" in text
        assert "('Lisbon', 260, 181714)" in text and "[('shop',)]" in text and "[(1002,)]" in text
    if path.stem == "03_sentiment_analysis":
        from zetl_nb.labs import sentiment

        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for sql in [
            sentiment.REVIEWS_TRANSACTIONS,
            sentiment.REVIEW_SENTIMENT,
            sentiment.REPLY_PROMPTS,
            sentiment.CUSTOMER_REPLIES,
            sentiment.CDC_CUSTOMER,
            sentiment.NEW_REVIEW_SENTIMENT,
            sentiment.NEW_CUSTOMER_REPLIES,
        ]:
            assert sql.strip() in source  # the notebook runs the SQL `zetl-nb demo` runs
        assert "rows loaded: {'customers': 1000, 'transactions': 50000}" in text
        assert "rds: needs_attention ['TargetLocationUriMissing', " in text
        assert "  fixed: glue.UpdateDatabase\n" in text and "rds: active []" in text
        assert re.search(r"lakehouse\.postgres_public_transactions +50,000 rows", text)
        assert re.search(r"lakehouse\.reviews +6,000 rows", text)
        assert "[(496611, 6000, 982)]" in text  # reviews_transactions: rows, reviews, customers
        for label in ["('positive', 3026, 4.64)", "('negative', 1120, 1.39)", "('mixed', 975"]:
            assert label in text
        assert "('neutral', " in text
        assert "LLM: 6000 rows, 0 calls" in text  # the re-run: all from the cache
        assert "runs on the offline model local/zetl instead" in text  # CREATE EXTERNAL MODEL
        assert "'negative', 'negative')" in text  # Bedrock's label (offline) next to ours
        assert "LLM: 982 rows, 982 calls" in text  # a reply per customer
        assert "Hi Quinn, thank you for the lovely review" in text and "20% off" in text
        assert "ships free with code FREESHIP-" in text
        assert "('negative', 1988, 1.4, 28.5)" in text  # returned purchases by sentiment
        assert "shape: (5, 4)" in text and "Grace Okafor" in text  # Polars: call them first
        assert "transaction 50001 and review r06001 (negative):" in text
        assert "we're sorry the Litware Classic Smartwatch let you down" in text
        round_trip = re.search(r"CDC round trip: ([\d.]+) s", text)
        assert round_trip and float(round_trip[1]) < 30
        assert "Purchased: Litware Classic Smartwatch;" in text
    if path.stem == "04_monitoring":
        stats = "IngestionProcessingStats  {'insert_count': %d, 'update_count': %d, 'delete_count'"
        assert stats % (5000, 0) in text and stats % (100, 40) in text  # logs
        assert "FULL {'InsertCount': 5000.0, 'UpdateCount': 0.0, 'DeleteCount': 0.0}" in text
        assert "CDC {'InsertCount': 100.0, 'UpdateCount': 40.0, 'DeleteCount': 10.0}" in text
        assert "'AWS Glue Zero ETL Ingestion Completed': 2" in text  # the subscriber's events
        assert "2 Ingestion Completed events" in text  # lab.monitor.events(pattern)
        applied = re.search(r"([\d,]+) rows applied in \d+ s, peak", text)
        assert applied and int(applied[1].replace(",", "")) > 5000  # the workload's CDC metrics
        assert text.count('class="zetl-sparkline"') >= 2 and "ACTIVE" in widget_html(nb)
        assert "zero-etl-orders-cdc-status       OK" in text  # enabled, evaluated
        assert "NEEDS_ATTENTION\n['TargetResourcePropertyMissing']" in text
        assert "CloudWatch Alarm State Change | zero-etl-orders-cdc-status -> ALARM" in text
        assert "Alarm zero-etl-orders-cdc-status is ALARM" in text  # the notice
        assert "Integration Needs Attention ['TargetResourcePropertyMissing']" in text
        assert "zero-etl-orders-cdc-status OK -> ALARM -> OK" in text
        assert "[('ResyncInitiated', None), ('Synced', None)]" in text  # Redshift's views


def test_quickstart_exists() -> None:
    assert any(p.stem == "00_quickstart" for p in NOTEBOOKS)


def _demo(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``zetl-nb demo`` in ``cwd`` (an empty directory: the sample data comes from the package)."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "demo", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HTTP/1.1" not in proc.stderr  # no request log noise
    return proc


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = _demo(["--home", str(tmp_path / "home")], tmp_path / "cwd").stdout
    for expected in [
        "rds.create_integration(aurora-retail) → NEEDS_ATTENTION",
        "lab.fix_prerequisites(apply=True): glue.UpdateDatabase, "
        "glue.CreateIntegrationResourceProperty, glue.PutResourcePolicy → ACTIVE",
        "glue.create_integration(products-to-lakehouse, reviews-to-lakehouse) → ACTIVE",
        "llm_sentiment: 6,000 reviews",
        "Sentiment of 6,000 reviews (llm_sentiment on local/zetl)",
        "Hi Quinn, thank you for the lovely review of the Fabrikam Pro Travel Guide!",
        "please take 20% off your next order with code SORRY20-",
        "your next order ships free with code FREESHIP-",
        "(transaction 50001) and reviewed it (r06001, negative)",
    ]:
        assert expected in out, f"missing {expected!r} in demo output:\n{out}"
    for table, rows in [
        ("postgres_public_customers", "1,000"),
        ("postgres_public_transactions", "50,000"),
        ("products", "200"),
        ("reviews", "6,000"),
    ]:
        assert re.search(rf"lakehouse\.{table} +{rows}\n", out), (table, out)
    for label, count in [("positive", "3,026"), ("negative", "1,120"), ("mixed", "975")]:
        assert re.search(rf"\n  {label} +{count}\n", out), (label, out)
    assert re.search(r"\n  neutral +\d+", out)
    assert out.count("\n    → Hi ") == 3  # three example replies
    round_trip = re.search(r"CDC round trip: ([\d.]+) s", out)
    assert round_trip and float(round_trip[1]) < 30, out
    assert re.search(r"Total wall time: [\d.]+ s", out)


def test_demo_json(tmp_path: Path) -> None:
    # No --home: a fresh temporary directory (under TMPDIR, here the test's own folder).
    proc = _demo(["--json"], tmp_path / "cwd", TMPDIR=str(tmp_path))
    summary = json.loads(proc.stdout)  # stdout is one JSON object; progress went to stderr
    assert "initial load:" in proc.stderr
    assert {"rows_replicated", "sentiment", "replies", "cdc_round_trip_s", "wall_s"} <= set(summary)
    assert summary["home"].startswith(str(tmp_path))
    assert set(summary["rows_replicated"]) == {
        "lakehouse.postgres_public_customers",
        "lakehouse.postgres_public_transactions",
        "lakehouse.products",
        "lakehouse.reviews",
    }
    assert all(n > 0 for n in summary["rows_replicated"].values())
    assert summary["rows_replicated"]["lakehouse.reviews"] == 6000
    assert set(summary["sentiment"]) == {"positive", "negative", "neutral", "mixed"}
    assert all(n > 0 for n in summary["sentiment"].values())
    assert sum(summary["sentiment"].values()) == 6000
    assert len(summary["replies"]) == 3
    assert [r["sentiment"] for r in summary["replies"]] == ["positive", "negative", "mixed"]
    assert all(r["reply"].startswith("Hi ") for r in summary["replies"])
    assert 0 < summary["cdc_round_trip_s"] < 30
    assert summary["cdc"]["sentiment"] == "negative" and "sorry" in summary["cdc"]["reply"]
    assert summary["wall_s"] > summary["cdc_round_trip_s"]
