"""Fixtures for the PostgreSQL source tests: one private PostgreSQL 16 server per test module, a
fresh database (and slot and publication) per test, and helpers to read what streams.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from zetl_nb.core.changes import ChangeBatch, TableId
from zetl_nb.services.postgres import EmbeddedPostgres
from zetl_nb.sources.postgres import PostgresSource
from zetl_nb.sources.postgres_stream import PostgresStream


@contextlib.contextmanager
def private_dir() -> Iterator[Path]:
    """A temporary directory outside pytest's base temp: another pytest session starting on the
    machine makes /tmp/pytest-of-<user> private again (0700), and the server's own user (not root)
    could then no longer reach its data directory to restart."""
    path = Path(tempfile.mkdtemp(prefix="zetl-pgsource-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    with private_dir() as path:
        server = EmbeddedPostgres(path / "data")
        server.start()
        yield server
        server.stop()


class Db:
    """A fresh database with a source replicating it."""

    def __init__(self, pg: EmbeddedPostgres, name: str) -> None:
        self.pg = pg
        self.name = name
        self.dsn = pg.dsn(name)
        self.conn = psycopg2.connect(self.dsn, options="-c TimeZone=UTC")
        self.conn.autocommit = True
        self.source = PostgresSource(self.dsn, f"slot_{name}", f"pub_{name}")

    def sql(self, *statements: str, args: Any = None) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        with self.conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, args)
                out = list(cur.fetchall()) if cur.description else []
        return out

    def tid(self, table: str, schema: str = "public") -> TableId:
        return TableId(self.name, schema, table)

    def start(self, *tables: str) -> tuple[PostgresStream, int]:
        """Publish ``tables``, create the slot (snapshot) and stream from it; returns the stream
        and the snapshot's seq."""
        self.source.publish([self.tid(t) for t in tables])
        snap = self.source.snapshot([self.tid(t) for t in tables])
        snap.close()
        return self.source.stream(snap.position), snap.seq


@pytest.fixture
def db(pg: EmbeddedPostgres, request: pytest.FixtureRequest) -> Iterator[Db]:
    name = re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-40:]
    admin = psycopg2.connect(pg.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    d = Db(pg, name)
    yield d
    d.source.drop()
    d.source.close()
    d.conn.close()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def collect(stream: PostgresStream, rows: int, timeout: float = 10.0) -> list[ChangeBatch]:
    """Poll until ``rows`` changes (a truncate counts one) arrived; then check nothing follows."""
    batches: list[ChangeBatch] = []
    deadline = time.monotonic() + timeout
    while sum(max(len(b), b.truncate) for b in batches) < rows:
        assert time.monotonic() < deadline, f"only {batches} arrived"
        batches += stream.poll(10_000, 0.2)
    assert stream.poll(10_000, 0.1) == []
    return batches


def only(batches: list[ChangeBatch], table: str) -> list[ChangeBatch]:
    return [b for b in batches if b.table.table == table]


def flat(batches: list[ChangeBatch]) -> list[tuple[str, dict[str, Any], int]]:
    """(op, row, seq) of every change, in order."""
    return [
        change
        for b in batches
        for change in zip(b.ops.to_pylist(), b.rows.to_pylist(), b.seq.to_pylist(), strict=True)
    ]


def published(db: Db) -> list[str]:
    """The publication's tables as ``schema.table`` (roots of partitioned tables), sorted."""
    sql = "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s"
    return sorted(f"{s}.{t}" for s, t in db.sql(sql, args=(db.source.publication_name,)))


def publication(db: Db) -> list[tuple[Any, ...]]:
    """``[(FOR ALL TABLES, publish_via_partition_root)]``, or ``[]`` when there is none."""
    sql = "SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = %s"
    return db.sql(sql, args=(db.source.publication_name,))
