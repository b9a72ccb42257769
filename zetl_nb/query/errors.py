"""Errors of the query layer: each says what was asked, what went wrong and what to do."""

from __future__ import annotations

from ..core.errors import ZetlError


class QueryError(ZetlError):
    """A query could not run: DuckDB's message, plus the tables you can query."""


class TableNotFoundError(QueryError):
    """No replicated table has the name asked for; the message lists the ones that exist."""


class SnapshotNotFoundError(QueryError):
    """No snapshot of the table matches ``as_of``; the message lists the table's snapshots."""


class RedshiftSQLError(QueryError):
    """A Redshift-dialect statement cannot run locally; the message names the construct."""
