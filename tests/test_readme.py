"""The README's Python examples run as written (in an empty directory, on embedded defaults)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_python_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    runnable = [b for b in blocks if "endpoint_url" not in b]  # the serve example needs a server
    assert len(runnable) >= 2
    check = "SELECT count(*) FROM lakehouse.postgres_public_orders"
    script = "\n".join([*runnable, f"print(lab.sql({check!r}).fetchall())", "lab.close()"])
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("[(1,)]")
