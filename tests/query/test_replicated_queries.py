"""A real integration (embedded PostgreSQL → Iceberg, merge-on-read CDC, an added column):
DuckDB, Polars and pyiceberg read what the source holds, and Redshift's
``CREATE DATABASE ... FROM INTEGRATION`` maps its tables, surviving a reopen."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from query_support import by_id, delete_file_targets

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from repl_support import TARGET_DB, SourceDB, new_lab, uid

from zetl_nb import Lab, ReadOnlyLabError
from zetl_nb.query.errors import RedshiftSQLError


class Replicated:
    def __init__(self, source: SourceDB, table: str, arn: str) -> None:
        self.source, self.table, self.arn = source, table, arn
        self.lab = source.lab
        self.target = f"{TARGET_DB}.{source.target_name(table)}"
        self.integration_id = arn.rsplit(":", 1)[-1]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    home = tmp_path_factory.mktemp("repl-query-home")
    lab = new_lab(home)
    try:
        source = SourceDB("postgres", lab, "zetl-aurora-postgres", lab.postgres.url)
        t = uid("orders")
        source.pk_table(t)
        source.execute(
            *(f"INSERT INTO {t} VALUES ({i}, {i}, {i}.25, 'row {i}')" for i in range(1, 41))
        )
        arn = source.integrate(t)
        lab.wait(arn, timeout=90)
        source.transaction(
            f"UPDATE {t} SET qty = qty + 100 WHERE id IN (2, 3, 39)",
            f"DELETE FROM {t} WHERE id IN (5, 40)",
            f"INSERT INTO {t} VALUES (100, 1, 1.00, 'new')",
        )
        lab.wait(arn, timeout=60)
        source.execute(
            f"ALTER TABLE {t} ADD COLUMN color varchar(20)",
            f"UPDATE {t} SET color = 'red', note = 'painted' WHERE id IN (1, 100)",
            f"DELETE FROM {t} WHERE id = 7",
        )
        lab.wait(arn, timeout=60)
        yield Replicated(source, t, arn)
    finally:
        lab.close()


def source_dicts(rep: Replicated) -> list[dict[str, Any]]:
    names = ["id", "qty", "price", "note", "color"]
    return by_id([dict(zip(names, r, strict=True)) for r in rep.source.rows(rep.table)])


def test_every_reader_sees_the_source(replicated: Replicated) -> None:
    lab, expected = replicated.lab, source_dicts(replicated)
    duck = by_id(lab.sql(f"SELECT * FROM {replicated.target}").to_arrow().to_pylist())
    polars = by_id(lab.polars(replicated.target).collect().to_dicts())
    ns, name = replicated.target.split(".")
    iceberg = by_id(lab.catalog.load_table(ns, name).scan().to_arrow().to_pylist())
    assert duck == polars == iceberg == expected
    assert next(r for r in duck if r["id"] == 1)["color"] == "red"
    assert next(r for r in duck if r["id"] == 2)["price"] == Decimal("2.25")
    assert delete_file_targets(lab.catalog.load_table(ns, name))  # really merge-on-read
    assert lab._query_engine().read_path(replicated.target) == "parquet"


def test_time_travel_and_diff_on_replicated_data(replicated: Replicated) -> None:
    lab = replicated.lab
    snaps = lab.snapshots(replicated.target).to_arrow().to_pylist()
    assert len(snaps) >= 3
    last = snaps[-1]["snapshot_id"]
    before = next(s for s in snaps if s["total_records"] == 40)["snapshot_id"]
    assert lab.table(replicated.target, as_of=before).rowcount == 40
    changes = lab.diff(replicated.target, before, last, key=["id"]).fetchall()
    kinds = {(c[0], c[1]) for c in changes}
    assert ("delete", 5) in kinds and ("delete", 40) in kinds and ("insert", 100) in kinds
    assert ("update_preimage", 2) in kinds and ("update_postimage", 2) in kinds


def test_create_database_from_integration(replicated: Replicated) -> None:
    lab, iid = replicated.lab, replicated.integration_id
    expected = len(replicated.source.rows(replicated.table))
    with pytest.raises(RedshiftSQLError, match="no tables from source database 'shop'"):
        lab.sql(f"CREATE DATABASE wrong FROM INTEGRATION '{iid}' DATABASE shop", dialect="redshift")
    lab.sql(
        f"CREATE DATABASE ZetlDB FROM INTEGRATION '{iid}' DATABASE \"postgres\";",
        dialect="redshift",
    )
    three_part = f"SELECT count(*) FROM zetldb.public.{replicated.table}"
    assert lab.sql(three_part, dialect="redshift").fetchone() == (expected,)
    two_part = f"SELECT count(*) FROM zetldb.{replicated.source.target_name(replicated.table)}"
    assert lab.sql(two_part).fetchone() == (expected,)
    replicated.source.execute(f"INSERT INTO {replicated.table} (id, qty) VALUES (500, 5)")
    lab.wait(replicated.arn, timeout=60)
    assert lab.sql(three_part, dialect="redshift").fetchone() == (expected + 1,)
    state = lab.sql(
        "SELECT target_database FROM svv_integration WHERE integration_id = ?", [iid]
    ).fetchall()
    assert state == [("zetldb",)]
    with pytest.raises(RedshiftSQLError, match='database "zetldb" already exists'):
        lab.sql(f"CREATE DATABASE zetldb FROM INTEGRATION '{iid}'", dialect="redshift")
    with pytest.raises(RedshiftSQLError, match="already exists"):
        lab.sql(f"CREATE DATABASE {TARGET_DB} FROM INTEGRATION '{iid}'", dialect="redshift")


def test_created_database_survives_reopen(replicated: Replicated) -> None:
    lab, home = replicated.lab, replicated.lab.home
    iid = replicated.integration_id
    lab.sql(f"CREATE DATABASE keepme FROM INTEGRATION '{iid}'", dialect="redshift")
    query = f"SELECT count(*) FROM keepme.public.{replicated.table}"
    count = lab.sql(query).fetchone()
    reader = Lab(home, read_only=True)
    try:
        assert reader.sql(query).fetchone() == count
        with pytest.raises(ReadOnlyLabError):
            reader.sql("DROP DATABASE keepme", dialect="redshift")
    finally:
        reader.close()
    lab.sql("DROP DATABASE keepme", dialect="redshift")
    with pytest.raises(Exception, match="keepme"):
        lab.sql(query)
    lab.sql("DROP DATABASE IF EXISTS keepme", dialect="redshift")  # no error
