"""``lab.duckdb()``: a DuckDB connection whose replicated tables follow the catalog.

A thin proxy over a DuckDB cursor of the Lab's database (so it sees the same views, system
views and databases made FROM INTEGRATION). ``execute``, ``sql``/``query``, ``table`` and
``view`` re-point the views at the tables' latest snapshots first, so new CDC commits are
visible without reconnecting. Every other attribute is DuckDB's own. Fetches after ``execute``
go through Arrow, so ``TIMESTAMPTZ`` values convert without ``pytz`` (DuckDB's own
``fetchall`` needs it); relations returned by ``sql`` are DuckDB's, unchanged.

The LLM functions (``llm_sentiment``, ``llm_complete``, models made by ``CREATE EXTERNAL
MODEL``) work here too; ``con.llm`` tallies what they did since the last ``execute`` or ``sql``
(a relation's rows are computed when it is fetched, so its tally grows until the next one).

>>> con = lab.duckdb()                                                        # doctest: +SKIP
>>> con.execute("SELECT count(*) FROM lakehouse.orders").fetchone()           # doctest: +SKIP
(42,)
>>> con.sql("SELECT * FROM svv_integration").pl()                             # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

from .result import Result


class DuckDBConnection:
    """DuckDB's connection API over the Lab's views (see the module docstring)."""

    def __init__(self, engine: Any, cursor: Any) -> None:
        self._engine = engine
        self._con = cursor
        self._result: Result | None = None
        self._usage: Any = None

    @property
    def llm(self) -> Any:
        """What LLM functions did since the last ``execute``/``sql`` (an ``LlmUsage``), or
        None when none was called."""
        usage = self._usage
        return usage if usage is not None and usage.functions else None

    def _record(self) -> None:
        """Close the last statement's LLM recording and open one for the next."""
        recorder = self._engine.llm.recorder
        if self._usage is not None:
            recorder.close(self._usage)
        self._usage = recorder.open()

    @property
    def raw(self) -> Any:
        """The underlying DuckDB connection (views are not refreshed through it)."""
        return self._con

    # -- statements (refresh first) -------------------------------------------------------------
    def execute(self, query: str, parameters: Any = None) -> DuckDBConnection:
        """Run ``query``; fetch its rows with ``fetchone``/``fetchall``/``arrow``/``pl``."""
        self._engine.refresh(query)
        self._result = None
        self._record()
        self._con.execute(query, parameters)
        return self

    def executemany(self, query: str, parameters: Any = None) -> DuckDBConnection:
        """Run ``query`` once per parameter set."""
        self._engine.refresh(query)
        self._result = None
        self._record()
        self._con.executemany(query, parameters)
        return self

    def sql(self, query: str, *, alias: str = "", params: Any = None) -> Any:
        """A DuckDB relation over ``query`` (bound to the latest snapshots now)."""
        self._engine.refresh(query)
        self._record()
        return self._con.sql(query, alias=alias, params=params)

    query = sql

    def table(self, name: str) -> Any:
        """A DuckDB relation over table or view ``name``."""
        self._engine.refresh(name)
        return self._con.table(name)

    def view(self, name: str) -> Any:
        """A DuckDB relation over view ``name``."""
        self._engine.refresh(name)
        return self._con.view(name)

    # -- fetches of the last execute ------------------------------------------------------------
    def _fetched(self) -> Result:
        if self._result is None:
            description = list(self._con.description or [])
            # DuckDB 2 spells it to_arrow_table; 1.x fetch_arrow_table.
            fetch = getattr(self._con, "to_arrow_table", None) or self._con.fetch_arrow_table
            with warnings.catch_warnings():  # "an extra copy": chosen, see the module docstring
                warnings.simplefilter("ignore", UserWarning)
                arrow = fetch()
            llm = self.llm
            self._result = Result(
                arrow, description, llm=llm, notices=llm.notices if llm is not None else None
            )
        return self._result

    @property
    def description(self) -> list[tuple[Any, ...]] | None:
        """DB-API column descriptions of the last ``execute``."""
        if self._result is not None:
            return self._result.description
        desc = self._con.description
        return list(desc) if desc is not None else None

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last ``execute``."""
        return self._fetched().fetchone()

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        """Up to ``size`` next rows."""
        return self._fetched().fetchmany(size)

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The remaining rows."""
        return self._fetched().fetchall()

    def fetch_arrow_table(self) -> Any:
        """The last ``execute``'s rows as a ``pyarrow.Table``."""
        return self._fetched().to_arrow()

    arrow = to_arrow_table = fetch_arrow_table

    def pl(self) -> Any:
        """The last ``execute``'s rows as a Polars ``DataFrame``."""
        return self._fetched().pl()

    def df(self) -> Any:
        """The last ``execute``'s rows as a pandas ``DataFrame`` (needs pandas)."""
        return self._fetched().df()

    fetchdf = df

    # -- lifecycle --------------------------------------------------------------------------------
    def cursor(self) -> DuckDBConnection:
        """Another connection over the same views."""
        proxy: DuckDBConnection = self._engine.connect()
        return proxy

    def close(self) -> None:
        """Close this connection (the Lab's other connections stay open)."""
        if self._usage is not None:
            self._engine.llm.recorder.close(self._usage)
        self._con.close()

    def __enter__(self) -> DuckDBConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def __repr__(self) -> str:
        return "<zetl_nb DuckDB connection: replicated tables refresh before each statement>"
