"""dialect="redshift": sqlglot turns Redshift SQL into DuckDB SQL; errors name the construct."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from evolved_support import lab  # noqa: F401 - pytest fixtures
from query_support import Tables, col

from zetl_nb import Lab
from zetl_nb.query.errors import RedshiftSQLError


@pytest.fixture(scope="module")
def sales(lab: Lab) -> Tables:
    tables = Tables(lab.catalog, "rs")
    tables.create(
        "sales",
        [
            col("id", pa.int64()),
            col("region", pa.string()),
            col("amount", pa.decimal128(10, 2)),
            col("sold_at", pa.timestamp("us")),
            col("note", pa.string()),
        ],
    )
    day = dt.datetime(2026, 3, 1, 12, 0)
    rows = [
        {"id": 1, "region": "eu", "amount": Decimal("10.50"), "sold_at": day, "note": "a;b"},
        {"id": 2, "region": "us", "amount": Decimal("20.00"), "sold_at": day, "note": None},
        {"id": 3, "region": "eu", "amount": Decimal("5.25"), "sold_at": day, "note": "c"},
        {"id": 4, "region": "ap", "amount": Decimal("1.00"), "sold_at": day, "note": None},
        {"id": 5, "region": "us", "amount": Decimal("3.00"), "sold_at": day, "note": "gone"},
    ]
    tables.apply("sales", [("c", r) for r in rows])
    tables.apply("sales", [("d", {"id": 5})])  # a position delete the dialect path must honour
    return tables


def redshift(lab: Lab, query: str) -> list[tuple[object, ...]]:
    return lab.sql(query, dialect="redshift").fetchall()


def test_workshop_constructs(lab: Lab, sales: Tables) -> None:
    assert redshift(lab, "SELECT TOP 2 id, NVL(note, 'none') FROM rs.sales ORDER BY id") == [
        (1, "a;b"),
        (2, "none"),
    ]
    assert redshift(lab, "SELECT id::varchar || '-' || region FROM rs.sales WHERE id = 1") == [
        ("1-eu",)
    ]
    assert redshift(lab, "SELECT DATEADD(day, 7, sold_at)::date FROM rs.sales WHERE id = 1") == [
        (dt.date(2026, 3, 8),)
    ]
    assert redshift(
        lab,
        "SELECT LISTAGG(region, ',') WITHIN GROUP (ORDER BY region) "
        "FROM (SELECT DISTINCT region FROM rs.sales)",
    ) == [("ap,eu,us",)]
    assert redshift(lab, "SELECT GETDATE() > '2020-01-01'::timestamp, SYSDATE IS NOT NULL") == [
        (True, True)
    ]
    assert redshift(
        lab,
        "SELECT DECODE(region, 'eu', 'Europe', 'other'), NVL2(note, 1, 0), LEN(region), "
        "DATEDIFF(day, '2026-01-01'::date, sold_at) FROM rs.sales WHERE id = 2",
    ) == [("other", 0, 2, 59)]
    assert redshift(
        lab,
        "SELECT region, SUM(amount) FROM rs.sales GROUP BY region "
        "QUALIFY ROW_NUMBER() OVER (ORDER BY SUM(amount) DESC) = 1",
    ) == [("us", Decimal("20.00"))]
    assert redshift(lab, "SELECT SPLIT_PART(note, ';', 2) FROM rs.sales WHERE id = 1") == [("b",)]
    assert redshift(lab, "SELECT COUNT(*) FROM rs.sales") == [(4,)]


def test_transpiled_sql_is_shown(lab: Lab, sales: Tables) -> None:
    res = lab.sql("SELECT TOP 1 NVL(note, '-') FROM rs.sales", dialect="redshift")
    assert res.executed_sql is not None
    assert "COALESCE" in res.executed_sql and "LIMIT 1" in res.executed_sql


def test_scripts_ddl_and_session_settings(lab: Lab, sales: Tables) -> None:
    script = """
        SET enable_case_sensitive_identifier TO true;
        CREATE TEMP TABLE regions (code VARCHAR(2) ENCODE zstd, name VARCHAR(20))
            DISTSTYLE KEY DISTKEY(code) SORTKEY(code);
        INSERT INTO regions VALUES ('eu', 'Europe; mostly'), ('us', 'States');
        SELECT r.name, COUNT(*) FROM rs.sales s JOIN regions r ON s.region = r.code
        GROUP BY r.name ORDER BY r.name;
    """
    assert redshift(lab, script) == [("Europe; mostly", 2), ("States", 1)]
    assert redshift(lab, "SELECT 1;") == [(1,)]


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        (
            "UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE 'arn:aws:iam::1:role/r'",
            "UNLOAD is a Redshift",
        ),
        ("VACUUM rs.sales", "VACUUM is a Redshift statement"),
        (
            "CREATE EXTERNAL SCHEMA s FROM DATA CATALOG DATABASE 'd' IAM_ROLE 'r'",
            "CREATE EXTERNAL SCHEMA is a Redshift",
        ),
        ("CREATE MATERIALIZED VIEW mv AS SELECT 1", "no equivalent for: MATERIALIZED (property)"),
        ("DELETE FROM rs.sales WHERE id = 1", "Replicated tables are read-only"),
        ("COPY rs.sales FROM 's3://b/p' IAM_ROLE 'r'", "COPY loads files from Amazon S3"),
        ("GRANT SELECT ON rs.sales TO bob", "no users or permissions"),
        ("SELECT FROM WHERE", "not valid Redshift SQL"),
        ("SELECT RATIO_TO_REPORT(amount) OVER () FROM rs.sales", "`RATIO_TO_REPORT` has no DuckDB"),
        ("SELECT 'unterminated", "could not be tokenized"),
        ("CREATE DATABASE plain", "Only CREATE DATABASE <name> FROM INTEGRATION"),
        ("DROP DATABASE never_made", 'database "never_made" does not exist'),
    ],
)
def test_errors_name_the_construct(lab: Lab, sales: Tables, statement: str, fragment: str) -> None:
    with pytest.raises(RedshiftSQLError) as exc:
        lab.sql(statement, dialect="redshift")
    assert fragment in str(exc.value)


def test_duckdb_failure_quotes_both_sqls(lab: Lab, sales: Tables) -> None:
    with pytest.raises(RedshiftSQLError) as exc:
        lab.sql("SELECT nope FROM rs.sales", dialect="redshift")
    text = str(exc.value)
    assert "ran as DuckDB SQL" in text and "nope" in text


def test_unknown_integration_lists_the_ids(lab: Lab) -> None:
    with pytest.raises(RedshiftSQLError, match=r"No integration 'not-an-id'.*svv_integration"):
        lab.sql("CREATE DATABASE zz FROM INTEGRATION 'not-an-id'", dialect="redshift")
