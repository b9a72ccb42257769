"""``zetl-nb sql``: output formats, dialects, errors, and read-only attachment to a Lab home.

The home holds a real Iceberg table (a Glue database made with the Glue client, a table created
and appended to through the Lab's catalog), queried through ``main(argv)`` in this process or
through ``python -m zetl_nb`` in a subprocess where exit codes and stderr matter.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from zetl_nb import Lab
from zetl_nb.cli import main

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("amount", pa.decimal128(12, 2)),
        pa.field("paid_at", pa.timestamp("us", tz="UTC")),
    ]
)
ROWS = {
    "id": [1, 2, 3],
    "name": ["ann", "bob, jr.", None],
    "amount": [Decimal("10.10"), Decimal("1234567.89"), None],
    "paid_at": [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None, None],
}


def make_home(home: Path) -> None:
    """A Lab home with ``shop.orders``: three rows, with NULLs, a decimal and a timestamp."""
    with Lab(home) as lab:
        lab.client("glue").create_database(DatabaseInput={"Name": "shop"})
        table = lab.catalog.catalog.create_table(("shop", "orders"), SCHEMA)
        table.append(pa.table(ROWS, schema=SCHEMA))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "home"
    make_home(path)
    return path


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zetl_nb", "sql", "--home", str(home), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sql(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> str:
    assert main(["sql", "--home", str(home), *args]) == 0
    return capsys.readouterr().out


def test_table_format_aligns_columns_and_counts_rows(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sql(capsys, home, "SELECT id, name, amount, paid_at FROM shop.orders ORDER BY id")
    assert out == (
        " id |   name   |   amount   |          paid_at\n"
        "----+----------+------------+---------------------------\n"
        "  1 | ann      |      10.10 | 2026-01-02 03:04:05+00:00\n"
        "  2 | bob, jr. | 1234567.89 | NULL\n"
        "  3 | NULL     |       NULL | NULL\n"
        "(3 rows)\n"
    )


def test_table_format_of_an_empty_result_keeps_the_header(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sql(capsys, home, "SELECT id, name FROM shop.orders WHERE id > 99")
    assert out == " id | name\n----+------\n(0 rows)\n"


def test_csv_format_has_a_header_and_empty_fields_for_null(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sql(capsys, home, "--format", "csv", "SELECT * FROM shop.orders ORDER BY id")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["id", "name", "amount", "paid_at"],
        ["1", "ann", "10.10", "2026-01-02 03:04:05+00:00"],
        ["2", "bob, jr.", "1234567.89", ""],
        ["3", "", "", ""],
    ]


def test_json_format_keeps_decimals_exact(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = (
        "SELECT id, name, amount, paid_at, {'n': id, 'tags': ['a']} AS info, "
        "MAP {'k': id} AS m FROM shop.orders ORDER BY id"
    )
    out = sql(capsys, home, "--format", "json", query)
    rows = json.loads(out, parse_float=Decimal)
    assert rows[0] == {
        "id": 1,
        "name": "ann",
        "amount": Decimal("10.10"),
        "paid_at": "2026-01-02 03:04:05+00:00",
        "info": {"n": 1, "tags": ["a"]},
        "m": {"k": 1},
    }
    assert rows[1]["amount"] == Decimal("1234567.89")
    assert rows[2]["name"] is None and rows[2]["amount"] is None
    assert '"amount": 1234567.89' in out  # a JSON number, not a string or a rounded float


def test_redshift_dialect_is_transpiled(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT TOP 2 id, NVL(name, '-') AS who FROM shop.orders ORDER BY id DESC"
    out = sql(capsys, home, "--dialect", "redshift", "--format", "csv", query)
    assert out.splitlines() == ["id,who", "3,-", '2,"bob, jr."']


def test_query_from_standard_input(home: Path) -> None:
    done = run(home, "--format", "json", "-", stdin="SELECT count(*) AS n FROM shop.orders\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 3}]


def test_a_bad_query_prints_duckdbs_message_and_exits_1(home: Path) -> None:
    done = run(home, "SELEC id FROM shop.orders")
    assert done.returncode == 1
    assert done.stdout == ""
    assert 'syntax error at or near "SELEC"' in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_table_names_the_tables_there_are(home: Path) -> None:
    done = run(home, "SELECT * FROM shop.customers")
    assert done.returncode == 1
    assert "customers" in done.stderr and "shop.orders" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_directory_that_is_not_a_home_exits_2(tmp_path: Path) -> None:
    done = run(tmp_path / "nothing-here", "SELECT 1")
    assert done.returncode == 2
    assert "is not a Lab home" in done.stderr and "--home" in done.stderr
    assert not (tmp_path / "nothing-here").exists()  # and it was not created


def test_never_opens_the_home_as_writer(home: Path) -> None:
    """A writer takes the home's lock and writes its PID there before its engine starts."""
    lock = home / "lab.lock"
    before = lock.read_text()
    done = run(home, "SELECT count(*) FROM shop.orders")
    assert done.returncode == 0, done.stderr
    assert lock.read_text() == before


def test_queries_a_home_while_a_writer_holds_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_home(home)
    with Lab(home) as writer:
        done = run(home, "--format", "csv", "SELECT count(*) AS n FROM shop.orders")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "n\n3\n"
        table = writer.catalog.catalog.load_table(("shop", "orders"))
        table.append(pa.table({k: v[:1] for k, v in ROWS.items()}, schema=SCHEMA))
        # The next query sees the writer's new snapshot; the writer still works afterwards.
        done = run(home, "--format", "csv", "SELECT count(*) AS n FROM shop.orders")
        assert done.stdout == "n\n4\n", done.stderr
        assert writer.sql("SELECT count(*) FROM shop.orders").fetchall() == [(4,)]


def test_help_says_the_home_is_attached_read_only() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "sql", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "always attached read-only" in text and "never starts the engine" in text
    assert "--format {table,csv,json}" in text and "--dialect {duckdb,redshift}" in text


def test_status_shows_states_lag_and_tables_while_a_writer_runs(tmp_path: Path) -> None:
    from zetl_nb.sample import load_dynamodb_samples

    home = tmp_path / "home"
    with Lab(home, prerequisite_recheck_seconds=0.2, time_scale=60) as lab:
        glue = lab.client("glue")
        glue.create_database(DatabaseInput={"Name": "lakehouse"})
        source = load_dynamodb_samples(lab, tables=["products"])["products"]
        arn = glue.create_integration(
            IntegrationName="products-status",
            SourceArn=source,
            TargetArn=f"arn:aws:glue:{lab.config.region}:{lab.config.account_id}:database/lakehouse",
        )["IntegrationArn"]
        lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=30)  # the target side's fixes
        lab.fix_prerequisites(arn, apply=True)
        lab.wait_for_status(arn, "ACTIVE", timeout=30)
        lab.wait(arn, timeout=60)
        lab.monitor.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "zetl_nb", "status", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1 integration(s)" in out
    line = next(x for x in out.splitlines() if "products-status" in x)
    assert "ACTIVE" in line and "lag " in line and "last sync" in line
    table = next(x for x in out.splitlines() if x.strip().startswith("products "))
    assert "Synced" in table


def test_status_of_a_directory_that_is_not_a_home_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zetl_nb", "status", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no Lab home" in proc.stdout
