"""The lab notebooks run top to bottom, and `zetl-nb demo` works end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    if path.stem == "00_quickstart":
        assert "NEEDS_ATTENTION" in text and "TargetCatalogPolicyMissing" in text
        assert "dynamodb.UpdateContinuousBackups" in text
        assert "ACTIVE" in text and "['lakehouse']" in text
    if path.stem == "01_dynamodb_to_lakehouse":
        assert "products 200 items" in text and "invoices 191 items" in text
        assert "lake_raw     2 columns: ['product_id', 'value']" in text
        assert "lake_top     5 columns" in text and "lake_full   23 columns" in text
        assert "lake_full ['category = identity'] 5 partitions" in text
        assert "lake_top ['product_id_bucket = bucket[8]'] 8 partitions" in text
        assert "('INV#0001', 'c0076', 2176.88, 5, 2176.88)" in text
        assert "[('p0001', 149.99, True)]" in text and "[(199,)]" in text


def test_quickstart_exists() -> None:
    assert any(p.stem == "00_quickstart" for p in NOTEBOOKS)


def test_demo_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "demo", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for expected in [
        "glue.create_integration → CREATING",
        "NEEDS_ATTENTION",
        "SourcePointInTimeRecoveryDisabled",
        "prerequisites met → ACTIVE",
        "MODIFYING",
        "rds.describe_integrations → active",
        "IntegrationNotFoundFault: deleted",
        "initial load: 10,000 rows queryable in Iceberg",
        "CDC: 100 updates, 10 deletes, 1 insert visible",
        "lab.sql: top customers by amount",
        "inbound integrations into lakehouse now: 0",
    ]:
        assert expected in out, f"missing {expected!r} in demo output:\n{out}"
    assert "HTTP/1.1" not in proc.stderr  # no request log noise
