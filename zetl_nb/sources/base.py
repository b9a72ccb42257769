"""The contract every relational source implements (PostgreSQL, MySQL/MariaDB).

The engine drives a source in three steps:

1. ``discover(data_filter)`` lists the included tables with their schemas and primary keys, and
   ``publish(tables)`` names the ones it replicates (PostgreSQL: the publication's tables);
2. ``snapshot(tables)`` opens a consistent initial copy: ``read(table)`` yields Arrow record
   batches of the table as of the snapshot, and ``position`` is where change capture continues.
   Contract: every change *not* visible in the snapshot arrives from ``stream(position)`` with a
   ``seq`` greater than ``snapshot.seq``; changes that are visible may be replayed too (the target
   applies them idempotently) but their ``seq`` is at most ``snapshot.seq``;
3. ``stream(position)`` yields :class:`~zetl_nb.core.changes.ChangeBatch` lists for whole
   transactions; ``ack(position)`` tells the source everything up to ``position`` is durably in the
   target, so it may release it (PostgreSQL: confirm the slot's flush LSN).

Errors: a source raises :class:`SourceError` with an AWS-style ``code`` (``SourceUnavailable``,
``AuthenticationFailed``, ``PositionLost``, ...) so the engine can put the integration in
NEEDS_ATTENTION with that code and retry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import ZetlError

if TYPE_CHECKING:
    import pyarrow as pa

    from ..core.changes import ChangeBatch, TableId, TableState
    from ..core.prerequisites import Problem
    from ..transform.datafilter import DataFilter


#: A snapshot batch may end with this string column: per row, why the source could not represent
#: a value in its column type (null for good rows). The target sends such rows to dead letters.
REJECT_COLUMN = "__zetl_reject"


class SourceError(ZetlError):
    """A source failed in a way the engine reports and retries.

    ``code`` is the integration error code; ``resync`` asks for the affected tables (or all when
    ``tables`` is empty) to be copied again because the change stream cannot continue.
    """

    def __init__(
        self,
        code: str,
        message: str,
        resync: bool = False,
        tables: tuple[TableId, ...] = (),
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resync = resync
        self.tables = tables
        self.fatal = fatal  # retrying cannot help: the integration goes FAILED


class SnapshotReader(Protocol):
    """A consistent initial copy of some tables."""

    #: Where change capture continues after this snapshot (JSON-serializable).
    position: Mapping[str, Any]
    #: Changes with ``seq`` greater than this are not in the snapshot.
    seq: int

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        """The table's rows as of the snapshot, in the schema ``discover`` reported."""
        ...

    def close(self) -> None: ...


class ChangeStream(Protocol):
    """Change capture from a position."""

    def poll(self, max_rows: int, max_wait: float) -> list[ChangeBatch]:
        """Changes of whole transactions (at most about ``max_rows`` rows), waiting up to
        ``max_wait`` seconds for the first one; ``[]`` when there is nothing new."""
        ...

    @property
    def position(self) -> Mapping[str, Any]:
        """The position after the last transaction returned by ``poll``."""
        ...

    def ack(self, position: Mapping[str, Any]) -> None:
        """Everything up to ``position`` is durably applied; the source may release it."""
        ...

    def sent_seq(self) -> int | None:
        """The seq up to which the server has delivered changes on this stream (all read, none
        half-read), or ``None`` if unknown. With it, an empty ``poll`` proves the stream caught
        up with a source position; without it the engine treats an empty poll as caught up."""
        ...

    def close(self) -> None: ...


class Source(Protocol):
    """A relational database as a zero-ETL source."""

    #: ``postgres`` or ``mysql``.
    engine: str

    def check_prerequisites(self) -> list[Problem]:
        """Unmet server settings and privileges, each with its fix (and whether it restarts)."""
        ...

    def discover(self, data_filter: DataFilter) -> list[TableState]:
        """Included tables (views and system schemas excluded), with schema and primary key."""
        ...

    def publish(self, tables: Sequence[TableId]) -> None:
        """Name the tables the engine replicates from now on: their changes must reach ``stream``.

        The engine calls it with the tables it replicates (those with a primary key) before it
        snapshots them, and again whenever that set changes (a table found, dropped, excluded or
        resynced); it must be idempotent. Changes committed after it returns arrive from
        ``stream``; a snapshot taken after it returns holds the ones before. PostgreSQL sets its
        publication's table list (a table in a publication refuses UPDATE and DELETE without a
        replica identity, so only these tables may be in it). A source that needs no such list
        (MySQL's binlog carries every table) implements it as a no-op.
        """
        ...

    def snapshot(self, tables: list[TableId]) -> SnapshotReader: ...

    def stream(self, position: Mapping[str, Any]) -> ChangeStream: ...

    def current_position(self) -> Mapping[str, Any]:
        """The source's position now (``lab.wait`` waits until every table has applied it)."""
        ...

    def seq_of(self, position: Mapping[str, Any]) -> int:
        """The ``seq`` a position corresponds to (positions compare through it)."""
        ...

    def drop(self) -> None:
        """Remove what the source created for the integration (slot, publication)."""
        ...

    def close(self) -> None: ...
