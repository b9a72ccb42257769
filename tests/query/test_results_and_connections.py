"""lab.sql's Result (DB-API fetches, conversions, notebook display) and lab.duckdb()."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import pyarrow as pa
import pytest
from evolved_support import lab  # noqa: F401 - pytest fixtures
from query_support import Tables, col

from zetl_nb import Lab, MissingDependencyError
from zetl_nb.query.duck import QueryEngine
from zetl_nb.query.errors import QueryError


@pytest.fixture(scope="module")
def shop(lab: Lab) -> Tables:
    tables = Tables(lab.catalog, "shop")
    tables.create(
        "orders",
        [col("id", pa.int64()), col("note", pa.string()), col("ts", pa.timestamp("us", "UTC"))],
    )
    import datetime as dt

    at = dt.datetime(2026, 11, 3, 14, 0, tzinfo=dt.UTC)
    tables.apply("orders", [("c", {"id": i, "note": f"<b>{i}</b>", "ts": at}) for i in range(30)])
    return tables


def test_fetches_follow_db_api(lab: Lab, shop: Tables) -> None:
    res = lab.sql("SELECT id, note FROM shop.orders WHERE id < ? ORDER BY id", [5])
    assert [d[0] for d in res.description] == ["id", "note"]
    assert len(res) == res.rowcount == 5 and res.columns == ["id", "note"]
    assert res.fetchone() == (0, "<b>0</b>")
    assert res.fetchmany(2) == [(1, "<b>1</b>"), (2, "<b>2</b>")]
    assert res.fetchall() == [(3, "<b>3</b>"), (4, "<b>4</b>")]
    assert res.fetchone() is None and res.fetchall() == []
    assert list(lab.sql("SELECT 1 UNION ALL SELECT 2 ORDER BY 1")) == [(1,), (2,)]
    assert res.elapsed > 0 and "5 rows x 2 columns" in repr(res)
    named = lab.sql("SELECT count(*) FROM shop.orders WHERE id >= $low", {"low": 10})
    assert named.fetchone() == (20,)


def test_conversions(lab: Lab, shop: Tables) -> None:
    res = lab.sql("SELECT id, ts FROM shop.orders ORDER BY id LIMIT 3")
    assert isinstance(res.to_arrow(), pa.Table) and res.to_arrow().num_rows == 3
    assert res.fetch_arrow_table() is res.arrow
    assert res.pl()["id"].to_list() == [0, 1, 2]
    assert str(res.to_arrow().schema.field("ts").type) == "timestamp[us, tz=UTC]"
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(MissingDependencyError, match="pip install pandas"):
            res.df()
    else:
        assert list(res.df()["id"]) == [0, 1, 2]


def test_notebook_display_escapes_and_truncates(lab: Lab, shop: Tables) -> None:
    page = lab.sql("SELECT id, note, NULL AS nothing FROM shop.orders ORDER BY id")._repr_html_()
    assert "&lt;b&gt;0&lt;/b&gt;" in page and "<b>0</b>" not in page
    assert "<i>NULL</i>" in page
    assert "30 rows, 3 columns (first 20 shown)" in page
    assert page.count("<tr>") == 21  # header + 20 rows


def test_statements_without_rows_and_unknown_dialect(lab: Lab, shop: Tables) -> None:
    res = lab.sql("CREATE OR REPLACE TEMP VIEW scratch AS SELECT 1 AS x")
    assert res.fetchall() == [] and res.rowcount == 0
    with pytest.raises(QueryError, match="Replicated tables are read-only"):
        lab.sql("UPDATE shop.orders SET note = 'x'")
    with pytest.raises(QueryError, match="dialect 'oracle' is not supported"):
        lab.sql("SELECT 1", dialect="oracle")


def test_duckdb_connection_follows_new_snapshots(lab: Lab) -> None:
    tables = Tables(lab.catalog, "live")
    tables.create("t", [col("id", pa.int64()), col("v", pa.int64())])
    con = lab.duckdb()
    assert con.execute("SELECT count(*) FROM live.t").fetchone() == (0,)
    tables.apply("t", [("c", {"id": i, "v": i}) for i in range(10)])
    assert con.execute("SELECT count(*) FROM live.t").fetchone() == (10,)
    tables.apply("t", [("d", {"id": 3}), ("u", {"id": 4, "v": 40})])
    rel = con.sql("SELECT sum(v) AS s FROM live.t")
    assert rel.fetchall() == [(sum(range(10)) - 3 - 4 + 40,)]
    assert con.table("live.t").count("*").fetchall() == [(9,)]
    assert con.execute("SELECT id FROM live.t ORDER BY id").fetchmany(2) == [(0,), (1,)]
    assert con.fetchall()[-1] == (9,)
    assert con.description is not None and con.description[0][0] == "id"
    other = con.cursor()
    assert other.execute("SELECT max(v) FROM live.t").fetchall() == [(40,)]
    other.close()
    assert "DuckDB" in repr(con)


def test_duckdb_connection_fetches_timestamptz_and_duckdb_api(lab: Lab, shop: Tables) -> None:
    with lab.duckdb() as con:
        row = con.execute("SELECT ts FROM shop.orders LIMIT 1").fetchone()
        assert row is not None and row[0].year == 2026  # through Arrow, no pytz needed
        assert con.execute("SELECT 42 AS answer").pl()["answer"].to_list() == [42]
        assert con.execute("SELECT 1").arrow().num_rows == 1
        con.execute("CREATE TEMP TABLE mine AS SELECT 7 AS x")  # DuckDB's own API works
        assert con.raw.execute("SELECT x FROM mine").fetchall() == [(7,)]
        assert con.from_arrow(pa.table({"y": [1, 2]})).aggregate("sum(y)").fetchall() == [(3,)]


def test_concurrent_queries_and_closed_engine(lab: Lab, shop: Tables) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                assert lab.sql("SELECT count(*) FROM shop.orders").fetchone() == (30,)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = QueryEngine(lab.catalog)
    con: Any = engine.connect()
    engine.close()
    with pytest.raises(QueryError, match="closed"):
        engine.sql("SELECT 1")
    with pytest.raises(QueryError, match="closed"):
        con.execute("SELECT 1")
