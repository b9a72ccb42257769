"""Replication fixtures: one Lab per source kind, and source adapters speaking each dialect.

Sources: the Lab's embedded PostgreSQL, a private PostgreSQL registered by URL, and a private
MariaDB (own data directory, loopback port, binlog settings). Private servers are started here
and stopped by PID; the machine's shared PostgreSQL and MariaDB are never touched.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from zetl_nb import Lab

if TYPE_CHECKING:
    from zetl_nb.services.postgres import EmbeddedPostgres

ACCOUNT, REGION = "123456789012", "us-east-1"
TARGET_DB = "lakehouse"
TARGET_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{TARGET_DB}"


class SourceDB:
    """A source database the tests write to, and how its tables are named in the target."""

    def __init__(self, kind: str, lab: Lab, cluster: str, url: str) -> None:
        self.kind = kind  # "postgres" or "mysql"
        self.lab = lab
        self.cluster = cluster
        self.url = url
        self.database = "postgres" if kind == "postgres" else "shop"

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{self.cluster}"

    def connect(self) -> Any:
        if self.kind == "postgres":
            import psycopg2

            conn = psycopg2.connect(self.url)
            conn.autocommit = True
            return conn
        import pymysql

        rest = self.url.split("://", 1)[1]
        host_port = rest.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        conn = pymysql.connect(host=host, port=int(port), user="root", autocommit=True)
        with conn.cursor() as cur:  # the test database exists before any test uses it
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            cur.execute(f"USE {self.database}")
        return conn

    def execute(self, *statements: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def transaction(self, *statements: str) -> None:
        conn = self.connect()
        try:
            conn.autocommit = False
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def rows(self, table: str, order: str = "id") -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
                return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def filter_for(self, *tables: str) -> str:
        prefix = f"{self.database}.public" if self.kind == "postgres" else self.database
        return ", ".join(f"include: {prefix}.{t}" for t in tables)

    def target_name(self, table: str) -> str:
        return (
            f"{self.database}_public_{table}"
            if self.kind == "postgres"
            else f"{self.database}_{table}"
        )

    def target_rows(self, table: str, order: str = "id") -> list[tuple[Any, ...]]:
        name = self.target_name(table)
        return [
            tuple(r)
            for r in self.lab.sql(f"SELECT * FROM {TARGET_DB}.{name} ORDER BY {order}").fetchall()
        ]

    def integrate(self, *tables: str, **kw: Any) -> str:
        rds = self.lab.client("rds")
        out = rds.create_integration(
            IntegrationName=f"it-{uuid.uuid4().hex[:10]}",
            SourceArn=self.cluster_arn,
            TargetArn=TARGET_ARN,
            DataFilter=kw.pop("DataFilter", self.filter_for(*tables)),
            **kw,
        )
        return str(out["IntegrationArn"])

    def pk_table(self, name: str, extra: str = "") -> None:
        if self.kind == "postgres":
            self.execute(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, qty int, "
                f"price numeric(10,2), note text{extra})"
            )
        else:
            self.execute(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, qty int, "
                f"price decimal(10,2), note text{extra})"
            )


def uid(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def new_lab(home: Path) -> Lab:
    """A Lab in ``home`` that rechecks prerequisites every 0.5 s, its target database ready."""
    lab = Lab(home, prerequisite_recheck_seconds=0.5)
    prepare_target(lab)
    return lab


def add_private_postgres(lab: Lab, cluster: str, server: EmbeddedPostgres) -> SourceDB:
    """Register a running private PostgreSQL with ``lab`` by URL, as RDS cluster ``cluster``."""
    lab.add_database(cluster, server.url)
    return SourceDB("postgres", lab, cluster, server.url)


def prepare_target(lab: Lab) -> None:
    glue = lab.client("glue")
    if TARGET_DB not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]:
        glue.create_database(
            DatabaseInput={"Name": TARGET_DB, "LocationUri": f"file://{lab.home}/warehouse/lh"}
        )
    with contextlib.suppress(glue.exceptions.ConflictException):
        glue.create_integration_resource_property(
            ResourceArn=TARGET_ARN,
            TargetProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/t"},
        )
    resources = [f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog", TARGET_ARN]
    glue.put_resource_policy(
        PolicyInJson=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "glue:CreateInboundIntegration",
                        "Resource": resources,
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "glue.amazonaws.com"},
                        "Action": "glue:AuthorizeInboundIntegration",
                        "Resource": resources,
                    },
                ],
            }
        )
    )


@pytest.fixture(scope="module", params=["embedded-postgres", "private-postgres", "mariadb"])
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SourceDB]:
    lab = new_lab(tmp_path_factory.mktemp("repl-home"))
    server: Any = None
    try:
        if request.param == "embedded-postgres":
            db = SourceDB("postgres", lab, "zetl-aurora-postgres", lab.postgres.url)
        elif request.param == "private-postgres":
            from zetl_nb.services.postgres import EmbeddedPostgres

            server = EmbeddedPostgres(tmp_path_factory.mktemp("private-pg") / "data")
            server.start()
            db = add_private_postgres(lab, "private-pg", server)
        else:
            from zetl_nb.services.mariadb import PrivateMariaDB

            server = PrivateMariaDB(tmp_path_factory.mktemp("private-maria") / "data")
            server.start()
            db = SourceDB("mysql", lab, "maria", server.url)
            lab.add_database("maria", server.url)
        yield db
    finally:
        lab.close()
        if server is not None:
            server.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"
