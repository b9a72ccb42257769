"""A private MariaDB: real mariadbd, own data directory, over real TCP connections."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from zetl_nb.core.errors import ServiceError
from zetl_nb.services import mariadb as mariadb_module
from zetl_nb.services.mariadb import PORT_FILE, PrivateMariaDB


def _start(server: PrivateMariaDB) -> PrivateMariaDB:
    try:
        server.start()
    except ServiceError as exc:
        if "is not installed" in str(exc):
            pytest.skip(str(exc))
        raise
    return server


@pytest.fixture
def db(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    server = _start(PrivateMariaDB(tmp_path / "mariadb" / "data"))
    yield server
    server.stop()


def _query(server: PrivateMariaDB, sql: str) -> list[tuple[Any, ...]]:
    conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an exited daemon may linger as a zombie of a non-reaping PID 1
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_starts_its_own_server_set_up_for_binlog_cdc(db: PrivateMariaDB) -> None:
    assert db.running and db.pid is not None
    assert db.port != 3306  # never the machine's shared server
    assert db.url == f"mysql://root@127.0.0.1:{db.port}/"
    rows = _query(
        db,
        "SELECT @@datadir, @@log_bin, @@binlog_format, @@binlog_row_image, "
        "@@binlog_row_metadata, @@server_id, @@gtid_strict_mode, @@bind_address, VERSION()",
    )
    datadir, log_bin, fmt, image, metadata, server_id, strict, bind, version = rows[0]
    assert Path(datadir).resolve() == db.data_dir
    assert (log_bin, fmt, image, metadata, server_id, strict) == (1, "ROW", "FULL", "FULL", 1, 1)
    assert bind == "127.0.0.1"
    assert "MariaDB" in version
    assert Path(_query(db, "SELECT @@log_bin_basename")[0][0]).parent == db.data_dir


def test_stop_leaves_no_process_and_restart_keeps_data(db: PrivateMariaDB) -> None:
    _query(db, "CREATE DATABASE keep")
    _query(db, "CREATE TABLE keep.t (id INT PRIMARY KEY, v VARCHAR(10))")
    _query(db, "INSERT INTO keep.t VALUES (1, 'kept')")
    pid, port = db.pid, db.port
    assert pid is not None
    db.stop()
    assert _pid_gone(pid)
    assert not db.running and db.pid is None
    with pytest.raises(ServiceError, match="not running"):
        _ = db.port
    with socket.socket() as probe:  # nothing listens any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    db.stop()  # idempotent
    db.start()
    assert db.port == port  # the remembered port is reused when free
    assert int((db.data_dir.parent / PORT_FILE).read_text()) == port
    assert _query(db, "SELECT v FROM keep.t") == [("kept",)]


def test_a_second_handle_adopts_the_running_server(db: PrivateMariaDB) -> None:
    other = PrivateMariaDB(db.data_dir)
    other.start()
    assert other.pid == db.pid and other.port == db.port
    other.stop()
    assert not db.running


def test_settings_override_and_remove_defaults(tmp_path: Path) -> None:
    server = _start(
        PrivateMariaDB(tmp_path / "d" / "data", settings={"log_bin": "", "binlog-format": "MIXED"})
    )
    try:
        assert _query(server, "SELECT @@log_bin, @@binlog_format") == [(0, "MIXED")]
        assert "log_bin" not in server.settings
    finally:
        server.stop()


def test_a_bad_setting_fails_with_the_server_log(tmp_path: Path) -> None:
    server = PrivateMariaDB(tmp_path / "bad" / "data", settings={"no_such_variable": "1"})
    with pytest.raises(ServiceError, match=r"unknown variable 'no_such_variable=1'"):
        _start(server)
    assert not server.running


def test_missing_server_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mariadb_module, "_SERVER", "mariadbd-not-here")
    with pytest.raises(ServiceError, match="mariadbd-not-here is not installed"):
        PrivateMariaDB(tmp_path / "m" / "data").start()
