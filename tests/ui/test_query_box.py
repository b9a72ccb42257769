"""The query box's state over ``lab.sql``: results, timing, errors, dialects, names."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from ui_support import PRODUCTS_ROWS, integrate, new_database, open_lab

from zetl_nb import Lab
from zetl_nb.ui import QueryState


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory.mktemp("query") / "home") as lab:
        yield lab


@pytest.fixture(scope="module")
def table(lab: Lab) -> str:
    """A replicated table, ``<database>.products``."""
    target = new_database(lab)
    integrate(lab, target)
    return target.rsplit("/", 1)[1] + ".products"


def test_a_query_gives_columns_rows_count_and_timing(lab: Lab, table: str) -> None:
    q = QueryState(lab, max_rows=5)
    sql = f"SELECT product_id, price FROM {table} ORDER BY product_id"
    q.set_sql(sql)
    assert q.run()
    assert q.columns == ["product_id", "price"]
    assert q.rowcount == PRODUCTS_ROWS and len(q.rows) == 5
    assert q.rows == lab.sql(sql).fetchmany(5)
    assert q.elapsed is not None and q.elapsed > 0
    assert q.error is None
    assert q.summary.startswith(f"{PRODUCTS_ROWS} rows (first 5 shown)")


def test_an_error_is_the_query_layers_message(lab: Lab, table: str) -> None:
    q = QueryState(lab)
    q.set_sql(f"SELECT product_id FROM {table}")
    assert q.run()
    q.set_sql("SELECT * FROM nowhere.nothing")
    assert not q.run()
    assert q.error is not None and q.error.startswith("QueryError:")
    assert table in q.error  # the message lists what can be queried
    assert q.rows == [] and q.rowcount is None and q.summary == "Failed"


def test_the_redshift_dialect(lab: Lab, table: str) -> None:
    q = QueryState(lab)
    q.set_dialect("redshift")
    sql = f"SELECT TOP 3 product_id FROM {table} ORDER BY product_id"
    q.set_sql(sql)
    assert q.run(), q.error
    assert q.rowcount == 3 and q.rows == lab.sql(sql, dialect="redshift").fetchall()
    assert q.executed_sql is not None and "LIMIT 3" in q.executed_sql.upper()
    with pytest.raises(ValueError):
        q.set_dialect("oracle")


def test_names_list_tables_and_system_views(lab: Lab, table: str) -> None:
    q = QueryState(lab)
    names = q.names()
    assert table in names.tables
    for view in ("svv_integration", "svv_integration_table_state", "sys_integration_activity"):
        assert view in names.system_views
    assert "zetl_lag" in names.system_views
    assert not set(names.tables) & set(names.system_views)


def test_inserting_a_name(lab: Lab, table: str) -> None:
    q = QueryState(lab)
    assert q.insert(table) == f"SELECT * FROM {table} LIMIT 100"
    assert q.run() and q.rowcount == 100
    q.set_sql("SELECT count(*) FROM")
    assert q.insert("svv_integration") == "SELECT count(*) FROM svv_integration"
    assert q.run() and q.rows == [(1,)]


def test_one_run_at_a_time_and_in_the_background(lab: Lab, table: str) -> None:
    q = QueryState(lab)
    q.set_sql(f"SELECT count(*) FROM {table}")
    seen: list[bool] = []
    q.observe(lambda: seen.append(q.running))
    thread = q.run_in_background()
    assert isinstance(thread, threading.Thread)
    thread.join(30)
    assert q.rows == [(PRODUCTS_ROWS,)]
    assert True in seen and seen[-1] is False
    with q._run_lock:  # a run is going on: a second one is refused, not queued
        assert not q.run()
