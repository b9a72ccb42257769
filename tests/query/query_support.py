"""Replicated tables for the query tests, written the way the engine writes them.

``Tables`` drives the engine's own ``TableWriter`` with ``ChangeBatch``es (merge-on-read: every
update or delete becomes a position delete, one delete file per commit that may reference
several data files), and evolves schemas with pyiceberg as the engine would (add, promote, drop)
or as a user could (rename, drop and add again). ``Model`` is the truth the readers are checked
against: the same changes applied to a dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from zetl_nb.core.changes import ChangeBatch, Column, TableId, TableSchema
from zetl_nb.target.catalog import LocalCatalog
from zetl_nb.target.deadletters import DeadLetters
from zetl_nb.target.writer import TableWriter

Change = tuple[str, dict[str, Any]]  # (op, row image; deletes need the key only)


def col(name: str, type_: pa.DataType) -> Column:
    return Column(name, type_, str(type_))


class Tables:
    """Tables in one namespace of a Lab's catalog, each with its one writer."""

    def __init__(self, catalog: LocalCatalog, namespace: str) -> None:
        self.catalog = catalog.catalog
        self.namespace = namespace
        if (namespace,) not in [tuple(n) for n in self.catalog.list_namespaces()]:
            self.catalog.create_namespace(namespace)
        self.dead = DeadLetters(self.catalog, namespace)
        self.writers: dict[str, TableWriter] = {}
        self.seq = 0

    def create(
        self,
        name: str,
        columns: list[Column],
        keys: tuple[str, ...] = ("id",),
        buckets: tuple[str, int] | None = None,
    ) -> TableWriter:
        schema = TableSchema(TableId("shop", "public", name), tuple(columns), keys)
        table = self.catalog.create_table((self.namespace, name), schema.arrow_schema())
        if buckets is not None:
            from pyiceberg.transforms import BucketTransform

            with table.update_spec() as spec:
                spec.add_field(buckets[0], BucketTransform(buckets[1]), f"{buckets[0]}_bucket")
            table = self.catalog.load_table((self.namespace, name))
        writer = TableWriter(table, schema, self.dead, "arn:test")
        writer.load(iter([]), 0, {"lsn": 0})
        self.writers[name] = writer
        return writer

    def apply(self, name: str, changes: list[Change]) -> None:
        writer = self.writers[name]
        self.seq += 1
        schema = writer.schema
        rows = pa.table(
            {c.name: [row.get(c.name) for _, row in changes] for c in schema.columns},
            schema=schema.arrow_schema(),
        )
        writer.apply(
            ChangeBatch(
                schema=schema,
                ops=pa.array([op for op, _ in changes], pa.string()),
                rows=rows,
                seq=pa.array([self.seq] * len(changes), pa.int64()),
                position={"lsn": self.seq},
            )
        )

    def evolve(self, name: str, update: Callable[[Any], None], columns: list[Column]) -> None:
        """Change the Iceberg schema with ``update(UpdateSchema)``; the writer's columns after."""
        old = self.writers[name]
        table = self.catalog.load_table((self.namespace, name))
        with table.update_schema() as change:
            update(change)
        schema = TableSchema(old.schema.table, tuple(columns), old.schema.primary_key)
        table = self.catalog.load_table((self.namespace, name))
        self.writers[name] = TableWriter(table, schema, self.dead, "arn:test")

    def table(self, name: str) -> Any:
        return self.catalog.load_table((self.namespace, name))


class Model:
    """The rows a table should hold: changes applied to a dict keyed by ``id``."""

    def __init__(self) -> None:
        self.rows: dict[Any, dict[str, Any]] = {}

    def apply(self, changes: list[Change], columns: list[str]) -> None:
        for op, row in changes:
            if op == "d":
                self.rows.pop(row["id"], None)
            else:
                self.rows[row["id"]] = {c: row.get(c) for c in columns}

    def evolve(self, columns: list[str], renames: dict[str, str] | None = None) -> None:
        """Project every row onto ``columns`` (new ones NULL), after renaming."""
        renames = renames or {}
        self.rows = {
            k: {c: {renames.get(o, o): v for o, v in row.items()}.get(c) for c in columns}
            for k, row in self.rows.items()
        }

    def sorted(self) -> list[dict[str, Any]]:
        return [self.rows[k] for k in sorted(self.rows)]


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


def delete_file_targets(table: Any) -> list[int]:
    """For each position-delete file of the current snapshot: how many data files it hits."""
    import pyarrow.parquet as pq

    from zetl_nb.query.scan import local_path

    deletes = {d.file_path for t in table.scan().plan_files() for d in t.delete_files}
    return [len(set(pq.read_table(local_path(d)).column("file_path").to_pylist())) for d in deletes]
