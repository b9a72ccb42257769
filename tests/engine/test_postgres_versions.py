"""Replication against PostgreSQL 15, not only the pgserver wheel's 16.

The engine promises any PostgreSQL >= 14 by URL. Debian's PostgreSQL 15 binaries run here as a
private server (own data directory, loopback port, trust auth), registered with a Lab by URL just
as ``repl_support``'s "private-postgres" source is, and stopped by PID at the end. A machine
without the binaries skips, which fails CI on purpose.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from repl_support import SourceDB, add_private_postgres, new_lab, uid

from zetl_nb import Lab
from zetl_nb.services.postgres import EmbeddedPostgres

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
_SLOTS = {"max_replication_slots": "10", "max_wal_senders": "10"}


@contextlib.contextmanager
def _postgres15(**settings: str) -> Iterator[EmbeddedPostgres]:
    """A private PostgreSQL 15 with logical decoding (``settings`` override), stopped after."""
    missing = [p for p in ("initdb", "pg_ctl", "postgres") if not (PG15_BIN / p).exists()]
    if missing:
        pytest.skip(f"PostgreSQL 15 binaries missing in {PG15_BIN}: {', '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="zetl-pg15-"))
    server = EmbeddedPostgres(root / "data", bin_dir=PG15_BIN, settings={**_SLOTS, **settings})
    try:
        server.start()
        yield server
    finally:
        server.stop()  # pg_ctl stop, then signals to the postmaster's PID if it lingers
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = new_lab(tmp_path_factory.mktemp("pg15-home"))
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def pg15(lab: Lab) -> Iterator[SourceDB]:
    with _postgres15() as server:
        source = add_private_postgres(lab, "pg15", server)
        assert _major_version(source) == 15  # the server under test really is 15
        yield source


def _major_version(source: SourceDB) -> int:
    conn = source.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version_num')::int")
            return int(cur.fetchone()[0]) // 10000
    finally:
        conn.close()


def test_cdc_on_postgres_15(pg15: SourceDB) -> None:
    source, t = pg15, uid("pg15")
    source.pk_table(t)
    big = secrets.token_hex(8000)  # incompressible, so PostgreSQL stores it out of line (TOAST)
    source.execute(
        *(f"INSERT INTO {t} VALUES ({i}, {i * 10}, {i}.50, 'row {i}')" for i in range(1, 21)),
        f"INSERT INTO {t} VALUES (21, 21, 21.00, '{big}')",
    )
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=30)
    assert source.target_rows(t) == source.rows(t)

    source.execute(
        f"INSERT INTO {t} VALUES (100, 1, 1.00, 'new')",
        f"UPDATE {t} SET qty = 999, note = 'changed' WHERE id = 2",
        f"DELETE FROM {t} WHERE id = 3",
    )
    source.lab.wait(arn, timeout=30)
    assert source.target_rows(t) == source.rows(t)
    assert (2, 999, Decimal("2.50"), "changed") in source.target_rows(t)

    source.transaction(
        *(f"INSERT INTO {t} VALUES ({i}, {i}, 1.00, 'x')" for i in range(200, 300)),
        f"UPDATE {t} SET qty = qty + 1 WHERE id < 10",
        f"DELETE FROM {t} WHERE id >= 250",
        f"UPDATE {t} SET qty = 0 WHERE id = 21",  # the TOASTed note arrives as "unchanged"
    )
    source.execute(
        f"UPDATE {t} SET id = 1000 WHERE id = 7",  # primary-key updates
        f"UPDATE {t} SET id = 1021 WHERE id = 21",  # ... keeping the TOASTed note unchanged
    )
    source.lab.wait(arn, timeout=30)
    target = source.target_rows(t)
    assert target == source.rows(t)
    ids = [r[0] for r in target]
    assert {1000, 1021} <= set(ids) and not {7, 21} & set(ids)
    assert len(ids) == len(set(ids)) == 71
    assert [r[3] for r in target if r[0] == 1021] == [big]

    source.execute(
        f"ALTER TABLE {t} ADD COLUMN color varchar(20)",
        f"INSERT INTO {t} VALUES (2000, 2, 2.00, 'b', 'red')",
        f"UPDATE {t} SET qty = 1 WHERE id = 1021",  # TOAST unchanged under the new relation
    )
    source.lab.wait(arn, timeout=30)
    target = source.target_rows(t)
    assert target == source.rows(t)
    assert target[-1][-1] == "red" and [r[3] for r in target if r[0] == 1021] == [big]
    _end(source.lab, arn)


def test_wal_level_replica_needs_attention_on_postgres_15(lab: Lab) -> None:
    with _postgres15(wal_level="replica") as server:
        source = add_private_postgres(lab, "pg15-replica", server)
        t = uid("pg15")
        source.pk_table(t)
        arn = source.integrate(t)
        integ = lab.wait_for_status(arn, "NEEDS_ATTENTION", timeout=30)
        assert [e["ErrorCode"] for e in integ.errors] == ["SourceWalLevelNotLogical"]
        (fix,) = lab.fix_prerequisites(arn)
        assert "wal_level = logical" in fix["Description"]
        assert "restart" in fix["Description"].lower()
        assert fix["Parameters"]["Parameters"] == [
            {
                "ParameterName": "wal_level",
                "ParameterValue": "logical",
                "ApplyMethod": "pending-reboot",
            }
        ]
        _end(lab, arn)


def _end(lab: Lab, arn: str) -> None:
    """Delete the integration (its slot and publication) before its server stops."""
    lab.client("rds").delete_integration(IntegrationIdentifier=arn)
    lab.wait_for_status(arn, "deleted", timeout=30)
