"""The change representation every source produces and the target applies.

One columnar envelope for every source, after Debezium's: per row an ``op`` (``c`` insert, ``u``
update, ``d`` delete, ``r`` snapshot read), the row image, and an ordering ``seq``; per batch the
table's schema and a resume ``position``. Batches end on transaction boundaries, so a batch is
applied whole or not at all.

- ``rows`` holds the *after* image for ``c``/``u``/``r`` and, for ``d``, the key columns of the
  *before* image (other columns null).
- ``old_keys`` (optional) holds, for ``u`` rows whose primary key changed, the key columns of the
  before image (null elsewhere): the target deletes the old key.
- ``unchanged`` (optional) maps a column name to a boolean mask of rows whose value was not sent
  (PostgreSQL's unchanged TOASTed value, ``u`` in pgoutput): the target keeps its current value.
- ``seq`` orders changes across the whole source (PostgreSQL: the transaction's commit LSN;
  MySQL/MariaDB: a monotonic number derived from the GTID or binlog coordinates). A table's
  checkpoint is the highest ``seq`` it applied; replayed rows at or below it are skipped.
- ``position`` is the opaque, JSON-serializable token that resumes the source *after* this batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

OPS = ("c", "u", "d", "r")


@dataclass(frozen=True, order=True)
class TableId:
    """A source table: ``database.table`` (MySQL) or ``database.schema.table`` (PostgreSQL)."""

    database: str
    schema: str | None
    table: str

    @property
    def parts(self) -> tuple[str, ...]:
        return (
            (self.database, self.table)
            if self.schema is None
            else (self.database, self.schema, self.table)
        )

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Column:
    """A source column with its Arrow type and the source's own type name."""

    name: str
    type: pa.DataType
    source_type: str
    nullable: bool = True


@dataclass(frozen=True)
class TableSchema:
    """A source table's columns and primary key (empty: no primary key)."""

    table: TableId
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.type, nullable=True) for c in self.columns])

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class ChangeBatch:
    """Changes to one table, in source order. See the module docstring for the fields."""

    schema: TableSchema
    ops: pa.Array
    rows: pa.Table
    seq: pa.Array
    position: Mapping[str, Any]
    old_keys: pa.Table | None = None
    unchanged: Mapping[str, pa.Array] = field(default_factory=dict)
    #: True when the source emptied the table (TRUNCATE) before these rows.
    truncate: bool = False
    #: The seq of the TRUNCATE itself, so a replayed truncate is skipped like a replayed row.
    truncate_seq: int | None = None
    #: Rows the source could not represent in the column types (row index → reason, with the
    #: source's own text): the target sends them to the dead-letter table instead of applying.
    rejects: Mapping[int, str] = field(default_factory=dict)
    #: Rows at or below this seq may already be in the target: the initial copy ran while they
    #: were written (DynamoDB's scan/stream hand-off). One that changes nothing is skipped and
    #: not counted again.
    replay_until: int | None = None

    @property
    def table(self) -> TableId:
        return self.schema.table

    def __len__(self) -> int:
        return len(self.ops)


@dataclass(frozen=True)
class TableState:
    """What a source reports about one included table when it (re)discovers tables."""

    schema: TableSchema
    #: Rows estimated by the source (statistics), for progress; None if unknown.
    estimated_rows: int | None = None
