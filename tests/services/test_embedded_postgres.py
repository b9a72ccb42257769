"""The embedded PostgreSQL: real binaries from the pgserver wheel, over real TCP connections."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2  # type: ignore[import-untyped]
import pytest

from zetl_nb.core.errors import ServiceError
from zetl_nb.services.postgres import PORT_FILE, EmbeddedPostgres, _bin_dir, _run_as
from zetl_nb.services.process import readable_by_others


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres" / "data")
    server.start()
    yield server
    server.stop()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an exited daemon may linger as a zombie of a non-reaping PID 1
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def test_settings_for_logical_replication(pg: EmbeddedPostgres) -> None:
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert pg.dsn("shop") == f"postgresql://postgres@127.0.0.1:{pg.port}/shop"
    settings = _query(
        pg.dsn(),
        "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', "
        "'max_replication_slots', 'max_wal_senders', 'listen_addresses', 'server_encoding', "
        "'fsync') ORDER BY name",
    )
    assert dict(settings) == {
        "fsync": "on",
        "listen_addresses": "127.0.0.1",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "server_encoding": "UTF8",
        "wal_level": "logical",
    }
    assert _query(pg.dsn(), "SELECT split_part(version(), ' ', 2)")[0][0].startswith("16.")


def test_data_and_port_survive_a_restart(pg: EmbeddedPostgres) -> None:
    _query(pg.dsn(), "CREATE TABLE orders (id int PRIMARY KEY, note text)")
    _query(pg.dsn(), "INSERT INTO orders VALUES (1, 'kept')")
    port, pid = pg.port, pg.pid
    assert pid is not None

    pg.stop()
    assert not pg.running and pg.pid is None
    assert _pid_gone(pid)
    with pytest.raises(ServiceError, match="not running"):
        _ = pg.url

    pg.start()
    assert pg.port == port
    assert (pg.data_dir.parent / PORT_FILE).read_text().strip() == str(port)
    assert _query(pg.dsn(), "SELECT id, note FROM orders") == [(1, "kept")]


def test_start_and_stop_are_idempotent_and_adopt_a_running_server(
    pg: EmbeddedPostgres,
) -> None:
    pid = pg.pid
    pg.start()
    other = EmbeddedPostgres(pg.data_dir)  # e.g. after a notebook kernel restart
    other.start()
    assert other.pid == pid and other.port == pg.port
    other.stop()
    other.stop()
    assert not pg.running
    assert pid is not None and _pid_gone(pid)


def test_a_busy_remembered_port_moves_to_a_free_one(tmp_path: Path) -> None:
    a = EmbeddedPostgres(tmp_path / "a" / "data")
    a.start()
    try:
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / PORT_FILE).write_text(f"{a.port}\n")
        b = EmbeddedPostgres(tmp_path / "b" / "data")
        b.start()
        try:
            assert b.port != a.port
            _query(a.dsn(), "CREATE TABLE only_in_a (x int)")
            tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
            assert _query(a.dsn(), tables) == [(1,)]
            assert _query(b.dsn(), tables) == [(0,)]
        finally:
            b.stop()
    finally:
        a.stop()


def test_a_stale_lock_file_with_a_reused_pid_does_not_block_the_start(
    pg: EmbeddedPostgres,
) -> None:
    pg.stop()
    # After a container restart the old postmaster PID may belong to another program of the
    # same user (PostgreSQL ignores PIDs of other users by itself).
    as_server_user = {"user": "pgserver"} if os.geteuid() == 0 else {}
    other = subprocess.Popen(["sleep", "30"], **as_server_user)  # type: ignore[call-overload]
    try:
        lock = pg.data_dir / "postmaster.pid"
        lock.write_text(f"{other.pid}\n{pg.data_dir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n")
        assert not pg.running
        pg.start()
        assert pg.pid != other.pid
        assert _query(pg.dsn(), "SELECT 1") == [(1,)]
    finally:
        other.kill()
        other.wait()


def test_a_long_data_dir_gets_a_short_socket_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / ("x" * 60) / ("y" * 60) / "data"
    server = EmbeddedPostgres(data_dir)
    assert server.socket_dir != server.data_dir
    assert len(str(server.socket_dir)) < 60
    server.start()
    try:
        conn = psycopg2.connect(host=str(server.socket_dir), port=server.port, user="postgres")
        conn.close()
    finally:
        server.stop()
    assert not server.socket_dir.exists()


def test_a_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    with pytest.raises(ServiceError, match="neither empty nor a PostgreSQL data directory"):
        EmbeddedPostgres(data_dir).start()


@pytest.mark.skipif(os.geteuid() != 0, reason="the service account is used under root only")
def test_under_root_the_service_account_runs_programs_it_can_read() -> None:
    # The wheel may sit under a 0700 /root; then the programs come from a world-readable copy.
    pginstall = _bin_dir(_run_as()).parent
    assert readable_by_others(pginstall)
    sharedir = subprocess.run(
        [pginstall / "bin" / "pg_config", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(sharedir) == pginstall / "share" / "postgresql"
    version = subprocess.run(
        [pginstall / "bin" / "initdb", "--version"],
        capture_output=True,
        text=True,
        check=True,
        user="pgserver",
        cwd="/",
    ).stdout
    assert version.startswith("initdb (PostgreSQL) 16.")
