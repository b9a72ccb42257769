"""``Result``: a fetched query result with DB-API fetches and Arrow, Polars and pandas views.

The rows are held as one Arrow table (fetched once, so the DuckDB connection is free again).
``fetchone`` / ``fetchmany`` / ``fetchall`` follow DB-API: each returns the rows after the ones
already fetched. Values come from Arrow (``to_pylist``), so ``TIMESTAMPTZ`` columns convert
without ``pytz`` (which DuckDB's own ``fetchall`` needs).

>>> res = lab.sql("SELECT id, amount FROM lakehouse.orders ORDER BY id")   # doctest: +SKIP
>>> res.fetchone(), len(res), res.elapsed                                    # doctest: +SKIP
((1, Decimal('9.99')), 42, 0.004)
>>> res.pl()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Iterator
from typing import Any

from ..core.errors import MissingDependencyError

_HTML_ROWS = 20


class Result:
    """A fetched result: ``fetchall()``, ``description``, ``to_arrow()``, ``pl()``, ``df()``.

    Attributes:
        arrow: the rows, a ``pyarrow.Table``.
        description: DB-API column descriptions (``name``, ``type_code``, ...).
        elapsed: seconds the query took to run and fetch.
        executed_sql: the SQL DuckDB ran (for ``dialect="redshift"``, the transpiled text).
        llm: what the query's LLM functions did (calls, cache hits, tokens, cost, models,
            rows answered with NULL and why), an :class:`~.llm.usage.LlmUsage`; None when the
            query called none.
        notices: what the query wants you to know, e.g. that a Bedrock model ran on the
            offline model for want of credentials.
    """

    def __init__(
        self,
        arrow: Any,
        description: list[tuple[Any, ...]] | None = None,
        elapsed: float = 0.0,
        executed_sql: str | None = None,
        *,
        llm: Any = None,
        notices: list[str] | None = None,
    ) -> None:
        self.arrow = arrow
        self.description = (
            description
            if description
            else [(f.name, str(f.type), None, None, None, None, None) for f in arrow.schema]
        )
        self.elapsed = elapsed
        self.executed_sql = executed_sql
        self.llm = llm
        self.notices: list[str] = list(notices or [])
        self._pos = 0

    # -- DB-API fetches ---------------------------------------------------------------------
    def _rows(self, count: int | None) -> list[tuple[Any, ...]]:
        total = int(self.arrow.num_rows)
        stop = total if count is None else min(total, self._pos + max(count, 0))
        if stop <= self._pos or self.arrow.num_columns == 0:
            self._pos = max(self._pos, stop)
            return []
        part = self.arrow.slice(self._pos, stop - self._pos)
        self._pos = stop
        cols = [c.to_pylist() for c in part.columns]
        return list(zip(*cols, strict=True))

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The rows not fetched yet, as tuples."""
        return self._rows(None)

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None when every row was fetched."""
        rows = self._rows(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        """Up to ``size`` next rows."""
        return self._rows(size)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    # -- shape ------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The column names."""
        return list(self.arrow.column_names)

    @property
    def rowcount(self) -> int:
        """The number of rows in the result."""
        return int(self.arrow.num_rows)

    def __len__(self) -> int:
        return self.rowcount

    # -- conversions ------------------------------------------------------------------------
    def to_arrow(self) -> Any:
        """The rows as a ``pyarrow.Table``."""
        return self.arrow

    def fetch_arrow_table(self) -> Any:
        """The rows as a ``pyarrow.Table`` (DuckDB's name; ``.arrow`` is the table itself)."""
        return self.arrow

    def pl(self) -> Any:
        """The rows as a Polars ``DataFrame``."""
        import polars as pl

        return pl.from_arrow(self.arrow)

    def df(self) -> Any:
        """The rows as a pandas ``DataFrame`` (needs pandas: ``pip install pandas``)."""
        try:
            importlib.import_module("pandas")
        except ImportError:
            raise MissingDependencyError(
                "Result.df() needs pandas, which is not installed. Install it with "
                "`pip install pandas`, or use .pl() (Polars) or .to_arrow() (Arrow) instead."
            ) from None
        return self.arrow.to_pandas()

    def fetchdf(self) -> Any:
        """Alias of :meth:`df` (DuckDB's name)."""
        return self.df()

    # -- display ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        llm = f"; {self.llm.summary()}" if self.llm is not None else ""
        return (
            f"<Result {self.rowcount} rows x {self.arrow.num_columns} columns, "
            f"{self.elapsed * 1000:.1f} ms{llm}>"
        )

    def _repr_html_(self) -> str:
        """A notebook table of the first rows (does not move the fetch position)."""
        from ..core.htmltable import table

        head = self.arrow.slice(0, _HTML_ROWS)
        cols = [c.to_pylist() for c in head.columns]
        rows = list(zip(*cols, strict=True)) if cols else []
        fields = list(self.arrow.schema)
        grid = table([f.name for f in fields], rows, types=[str(f.type) for f in fields])
        more = f" (first {_HTML_ROWS} shown)" if self.rowcount > _HTML_ROWS else ""
        caption = (
            f"{self.rowcount} rows, {self.arrow.num_columns} columns{more}, "
            f"{self.elapsed * 1000:.1f} ms"
        )
        notes = [self.llm.summary()] if self.llm is not None else []
        notes += [f"Notice: {n}" for n in self.notices]
        extra = "".join(f"<br>{html.escape(n)}" for n in notes)
        return f"{grid}<p><small>{html.escape(caption)}{extra}</small></p>"
