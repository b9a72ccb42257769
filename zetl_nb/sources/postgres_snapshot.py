"""A consistent copy of PostgreSQL tables, streamed from ``COPY ... (FORMAT csv)`` into Arrow.

The copy matches a position of the change stream: the first snapshot of a slot imports the
snapshot ``CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT`` exported (``seq`` is the slot's
consistent point), a later one reads in a fresh ``REPEATABLE READ`` transaction with ``seq`` 0
(its changes are replayed from the slot and applied idempotently). pyarrow's CSV reader parses
the COPY output as it streams; types its parser cannot read exactly as PostgreSQL writes them go
through :func:`~zetl_nb.sources.pgtypes.cast_text`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ..core.changes import TableId, TableSchema
from .base import REJECT_COLUMN, SourceError
from .pgtypes import cast_text
from .postgres import fetch, quote_ident

if TYPE_CHECKING:
    import pyarrow as pa

    from .postgres import PostgresSource

__all__ = ["PostgresSnapshot"]

_BLOCK_BYTES = 4 << 20  # CSV block: ~60k rows of a narrow table per Arrow batch


class PostgresSnapshot:
    """A consistent copy of tables: :meth:`read` streams ``COPY ... (FORMAT csv)`` into Arrow.

    ``snapshot_name`` set: every read imports that exported snapshot (the slot's consistent point),
    which lives while ``holder`` (the connection that created the slot) stays open and idle; else
    each read runs in a fresh REPEATABLE READ transaction.
    """

    def __init__(self, source: PostgresSource, seq: int, lsn: str, name: str | None, holder: Any):
        self.source, self.seq, self.snapshot_name, self._holder = source, seq, name, holder
        self.position: Mapping[str, Any] = {"lsn": lsn}

    def read(self, table: TableId, batch_rows: int = 250_000) -> Iterator[pa.RecordBatch]:
        """The table's rows as of the snapshot, in its discovered Arrow schema."""
        import psycopg2.extensions

        conn = self.source.connect()
        try:
            conn.set_session(
                isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
            )
            if self.snapshot_name is not None:
                fetch(conn, "SET TRANSACTION SNAPSHOT %s", (self.snapshot_name,))
            query = partial(fetch, conn)
            name = f"{quote_ident(table.schema or 'public')}.{quote_ident(table.table)}"
            (oid,) = query("SELECT to_regclass(%s)::oid", (name,))[0]
            schema = self.source.read_schemas({oid: table}, query).get(oid) if oid else None
            if schema is None:
                raise SourceError("SourceTableNotFound", f"table {table} is not in the snapshot")
            with conn.cursor() as cur:
                columns = ", ".join(quote_ident(n) for n in schema.names)
                sql = f"COPY (SELECT {columns} FROM {name}) TO STDOUT WITH (FORMAT csv)"
                for batch in _copy_csv(cur, sql, schema):
                    for start in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(start, batch_rows)
            conn.rollback()
        finally:
            conn.close()

    def close(self) -> None:
        """Release the exported snapshot (closes the connection that created the slot)."""
        if self._holder is not None:
            self._holder.close()
            self._holder = None


def _copy_csv(cur: Any, sql: str, schema: TableSchema) -> Iterator[pa.RecordBatch]:
    """Run ``sql`` (a COPY TO STDOUT CSV) and parse its output as it streams.

    psycopg2's ``copy_expert`` pushes rows into a file object and only returns at the end, so it
    runs in a thread writing into a pipe that pyarrow's CSV reader consumes. CSV null is an
    unquoted empty field; a quoted empty field is the empty string.
    """
    import pyarrow as pa
    import pyarrow.csv as csv

    target = schema.arrow_schema()
    # Types Arrow's CSV parser reads exactly as PostgreSQL writes them; the rest go through
    # cast_text, which knows infinity, BC dates, NaN numerics and bytea hex.
    direct = [
        t if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)) else None
        for t in target.types
    ]
    read = csv.ReadOptions(column_names=schema.names, block_size=_BLOCK_BYTES)
    parse = csv.ParseOptions(newlines_in_values=any(pa.types.is_string(t) for t in target.types))
    convert = csv.ConvertOptions(
        column_types={n: d or pa.string() for n, d in zip(schema.names, direct, strict=True)},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                cur.copy_expert(sql, out)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=copy, name="zetl-pg-copy", daemon=True)
    thread.start()
    source = os.fdopen(read_fd, "rb")
    try:
        try:
            for batch in csv.open_csv(source, read, parse, convert):
                arrays = [
                    col if d is not None else cast_text(col, t)
                    for col, d, t in zip(batch.columns, direct, target.types, strict=True)
                ]
                yield _with_rejects(batch, arrays, target, schema)
        except pa.ArrowInvalid as exc:
            thread.join()
            if not failure and "Empty CSV file" not in str(exc):
                raise
        thread.join()  # a COPY cut short ends the CSV early: only the thread knows it failed
        if failure:
            message = f"COPY from PostgreSQL failed: {str(failure[0]).strip()}"
            raise SourceError("SourceUnavailable", message) from failure[0]
    finally:
        source.close()  # an abandoned read: the COPY thread gets EPIPE and ends
        thread.join()


def _with_rejects(
    raw: pa.RecordBatch, arrays: list[pa.Array], target: pa.Schema, schema: TableSchema
) -> pa.RecordBatch:
    """The cast batch; if a value Arrow cannot hold became null, a trailing ``REJECT_COLUMN``
    says which rows and why (see ``SnapshotReader``), so the target dead-letters them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    reasons: list[str | None] | None = None
    for i, (before, after) in enumerate(zip(raw.columns, arrays, strict=True)):
        if after.null_count <= before.null_count:
            continue
        column = schema.columns[i]
        lost = pc.and_(pc.is_valid(before), pc.is_null(after)).to_pylist()
        texts = before.to_pylist()
        reasons = reasons or [None] * raw.num_rows
        for row, bad in enumerate(lost):
            if bad:
                why = (
                    f"column {column.name} ({column.source_type}): value {texts[row]!r} "
                    f"does not fit {column.type}"
                )
                reasons[row] = why if reasons[row] is None else f"{reasons[row]}; {why}"
    if reasons is None:
        return pa.RecordBatch.from_arrays(arrays, schema=target)
    return pa.RecordBatch.from_arrays(
        [*arrays, pa.array(reasons, pa.string())],
        schema=target.append(pa.field(REJECT_COLUMN, pa.string())),
    )
