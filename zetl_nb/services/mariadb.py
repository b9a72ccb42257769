"""A private MariaDB server of its own, set up as a zero-ETL source: row-based binlog with GTIDs.

The machine's shared MariaDB is never touched: a :class:`PrivateMariaDB` initializes its own data
directory with ``mariadb-install-db`` and runs its own ``mariadbd`` on a loopback port, with the
settings the MySQL source needs (``log_bin``, ``binlog_format=ROW``, ``binlog_row_image=FULL``,
``binlog_row_metadata=FULL``, ``gtid_strict_mode``). Tests override them through ``settings`` to
exercise the prerequisite checks: a value of ``""`` removes a default (``{"log_bin": ""}`` starts
without a binary log).

>>> db = PrivateMariaDB(Path("/tmp/lab/mariadb/data"))  # doctest: +SKIP
>>> db.start()                                            # doctest: +SKIP
>>> db.url                                                # doctest: +SKIP
'mysql://root@127.0.0.1:34567/'

Files: the database lives in ``data_dir`` (with ``mariadbd.pid``); ``mariadb.log`` and
``mariadb.port`` (the port to reuse on the next start) live in its parent, so give every instance a
parent of its own. The unix socket sits under the temp directory because ``sun_path`` is short.

The server is a daemon in its own session: it outlives this Python process unless :meth:`stop` is
called, and the next ``start()`` on the same ``data_dir`` adopts it. ``stop()`` signals only the
PID recorded for this ``data_dir`` (checked against its command line), never a process by name.
User ``root`` connects over TCP without a password. Under root, ``mariadbd`` needs ``--user=root``
(it refuses to run as root otherwise); that is what we pass, so no service account is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from zetl_nb.core.errors import ServiceError
from zetl_nb.services.process import command as _command
from zetl_nb.services.process import file_size as _file_size
from zetl_nb.services.process import free_port as _free_port
from zetl_nb.services.process import pid_alive as _pid_alive
from zetl_nb.services.process import port_free as _port_free
from zetl_nb.services.process import read_from as _read_from
from zetl_nb.services.process import wait_gone as _wait_gone

__all__ = ["DEFAULT_SETTINGS", "PrivateMariaDB"]

LOG_FILE = "mariadb.log"
PORT_FILE = "mariadb.port"
PID_FILE = "mariadbd.pid"
_SERVER = "mariadbd"
_INSTALL = "mariadb-install-db"
_START_TIMEOUT_S = 60
_STOP_TIMEOUT_S = 30
_PORT_ATTEMPTS = 3

#: Settings every private server starts with (``log_bin`` is added per data directory).
DEFAULT_SETTINGS: dict[str, str] = {
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
    "server_id": "1",
    "gtid_strict_mode": "ON",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_general_ci",
    # root@127.0.0.1 exists, so name resolution only costs time on every connect.
    "skip_name_resolve": "ON",
    # A lab server: a commit survives a server crash, not a power cut; writes run ~10x faster.
    "innodb_flush_log_at_trx_commit": "2",
    # A replica resuming by GTID makes the server scan its binlog file up to that GTID
    # (~170 MB/s here): small files keep every (re)connect fast.
    "max_binlog_size": "64M",
}


class PrivateMariaDB:
    """A MariaDB server on ``127.0.0.1`` with its data in ``data_dir``.

    ``port=None`` reuses the previous run's port when free, else picks a free one. ``settings``
    (server variables, ``name -> value``) override :data:`DEFAULT_SETTINGS`; ``""`` removes one.
    ``start`` and ``stop`` are idempotent and safe to call from several threads.
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, settings: dict[str, str] | None = None
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._requested_port = port
        self._settings = {k.replace("-", "_"): v for k, v in (settings or {}).items()}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<PrivateMariaDB {self.data_dir} ({where})>"

    def __enter__(self) -> PrivateMariaDB:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """The server's error log, ``<data_dir>/../mariadb.log``."""
        return self.data_dir.parent / LOG_FILE

    @property
    def socket_path(self) -> Path:
        """The unix socket: short, under the temp directory, unique per ``data_dir``."""
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"zetl-mariadb-{digest}.sock"

    @property
    def settings(self) -> dict[str, str]:
        """The server variables the next start passes (defaults, overrides, ``""`` removed)."""
        merged = {"log_bin": str(self.data_dir / "binlog"), **DEFAULT_SETTINGS, **self._settings}
        return {key: value for key, value in merged.items() if value != ""}

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs, else ``None``."""
        pid = _read_pid(self.data_dir / PID_FILE)
        if pid is None or not _pid_alive(pid):
            return None
        command = _command(pid)
        # A stale file whose PID now belongs to another program (or another data directory).
        if command is not None and not self._is_ours(command):
            return None
        return pid

    @property
    def running(self) -> bool:
        """Whether a server for ``data_dir`` is alive (started by us or by an earlier run)."""
        return self.pid is not None

    @property
    def port(self) -> int:
        """The TCP port; raises :class:`ServiceError` when the server is not running."""
        if self.pid is None:
            raise ServiceError(f"the MariaDB in {self.data_dir} is not running; call start().")
        try:
            return int((self.data_dir.parent / PORT_FILE).read_text().strip())
        except (OSError, ValueError) as exc:
            raise ServiceError(f"the port of the MariaDB in {self.data_dir} is unknown") from exc

    @property
    def url(self) -> str:
        """``mysql://root@127.0.0.1:PORT/``."""
        return f"mysql://root@127.0.0.1:{self.port}/"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Initialize the data directory if new, then start the server (or adopt a running one)."""
        with self._lock:
            pid = self.pid
            if pid is not None:
                self._await_ready(pid, self.port)
                return
            server, install = _binary(_SERVER), _binary(_INSTALL)
            self._prepare(install)
            avoid: set[int] = set()
            for _ in range(_PORT_ATTEMPTS):
                port = self._choose_port(avoid)
                offset = _file_size(self.log_path)
                self._launch(server, port)
                try:
                    self._await_ready(None, port)
                    return
                except ServiceError:
                    log = _read_from(self.log_path, offset)
                    self._kill_launched()
                    # Another process may take the port between our probe and the bind.
                    if self._requested_port is None and "already in use" in log:
                        avoid.add(port)
                        continue
                    raise
            raise ServiceError(f"MariaDB lost the race for a free port {_PORT_ATTEMPTS} times.")

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM), then SIGKILL that PID if it does not exit in time."""
        with self._lock:
            pid = self.pid
            if pid is None:
                self._reap()
                return
            for sig, grace in ((signal.SIGTERM, _STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if self._wait_exit(pid, grace):
                    break
            else:
                raise ServiceError(f"MariaDB (PID {pid}) did not exit after SIGKILL.")
            with contextlib.suppress(OSError):
                (self.data_dir / PID_FILE).unlink()

    # -- helpers ---------------------------------------------------------------------------------

    def _prepare(self, install: str) -> None:
        """Create the directories and run ``mariadb-install-db`` on a new data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if (self.data_dir / "mysql").is_dir():
            return
        if any(self.data_dir.iterdir()):
            raise ServiceError(
                f"{self.data_dir} is neither empty nor a MariaDB data directory; "
                "point PrivateMariaDB at an empty or a MariaDB directory."
            )
        cmd = [
            install,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *_user_args(),
        ]
        with open(self.log_path, "ab") as log:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            tail = _read_from(self.log_path, 0)[-3000:].strip()
            raise ServiceError(
                f"{_INSTALL} {self.data_dir} failed (exit {done.returncode}):\n{tail}"
            )

    def _launch(self, server: str, port: int) -> None:
        cmd = [
            server,
            "--no-defaults",  # never read /etc/mysql: the shared server's configuration
            f"--datadir={self.data_dir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket_path}",
            f"--pid-file={self.data_dir / PID_FILE}",
            f"--log-error={self.log_path}",
            *_user_args(),
            *(f"--{key}={value}" for key, value in self.settings.items()),
        ]
        (self.data_dir.parent / PORT_FILE).write_text(f"{port}\n")
        # Its own session: a Ctrl-C in the notebook must not reach the server.
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )

    def _await_ready(self, pid: int | None, port: int) -> None:
        """Wait until a client can log in over TCP; fail fast when the server exits."""
        import pymysql

        deadline = time.monotonic() + _START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if pid is None and self._proc is not None and self._proc.poll() is not None:
                break
            if pid is not None and not _pid_alive(pid):
                break
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
            except pymysql.err.MySQLError as exc:
                last = exc
                time.sleep(0.05)
                continue
            return
        log = _read_from(self.log_path, max(0, _file_size(self.log_path) - 3000)).strip()
        raise ServiceError(
            f"MariaDB in {self.data_dir} did not become ready on port {port} ({last}).\n"
            f"Last lines of {self.log_path}:\n{log}"
        )

    def _kill_launched(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        """Wait for ``pid`` to exit, reaping it when it is our own child."""
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            self._proc = None
            return True
        return _wait_gone(pid, timeout)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None

    def _choose_port(self, avoid: set[int]) -> int:
        if self._requested_port is not None:
            return self._requested_port
        with contextlib.suppress(OSError, ValueError):
            remembered = int((self.data_dir.parent / PORT_FILE).read_text().strip())
            if remembered not in avoid and _port_free(remembered):
                return remembered
        return _free_port()

    def _is_ours(self, command: list[str]) -> bool:
        return Path(command[0]).name == _SERVER and f"--datadir={self.data_dir}" in command


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/bin")
    if found is None:
        raise ServiceError(
            f"{name} is not installed; a private MariaDB needs the MariaDB server "
            "(apt-get install mariadb-server, or brew install mariadb)."
        )
    return found


def _user_args() -> list[str]:
    # mariadbd refuses to run as root unless told that root is meant.
    return ["--user=root"] if os.geteuid() == 0 else []


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
