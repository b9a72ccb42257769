"""An embedded PostgreSQL 16 from the ``pgserver`` wheel's binaries, ready for logical replication.

``bin_dir=`` runs another installation's ``initdb``/``pg_ctl``/``postgres`` the same way (the tests
run Debian's PostgreSQL 15 from ``/usr/lib/postgresql/15/bin`` so), and ``settings=`` puts extra
``postgresql.conf`` settings over ours (a server started with ``wal_level = replica``, say).

The server listens on ``127.0.0.1`` only, trusts every local connection (user ``postgres``, no
password) and runs with ``wal_level = logical``, so the PostgreSQL source can read it through
``pgoutput`` exactly as it reads RDS.

>>> pg = EmbeddedPostgres(Path("/tmp/lab/postgres/data"))  # doctest: +SKIP
>>> pg.start()                                                # doctest: +SKIP
>>> pg.dsn("postgres")                                        # doctest: +SKIP
'postgresql://postgres@127.0.0.1:54321/postgres'

Files: the cluster lives in ``data_dir``; ``postgres.log`` and ``postgres.port`` (the port to
reuse on the next start) live in its parent, so give every instance a parent of its own.

The server is a daemon: it outlives this Python process unless :meth:`EmbeddedPostgres.stop` is
called, and the next ``start()`` on the same ``data_dir`` adopts it instead of starting a second
one. We drive ``initdb``/``pg_ctl`` ourselves rather than ``pgserver.get_server``, which listens on
a unix socket only and keeps process-global instance bookkeeping.

PostgreSQL refuses to run as root. Under root (containers) the binaries run as the unprivileged
user ``pgserver`` (the account the pgserver wheel itself uses), which then owns ``data_dir``; every
ancestor directory of ``data_dir`` gets the "others may traverse" bit (``o+x``, not ``o+r``) so that
user can reach it. The wheel's own files we leave alone: when that user cannot read them (a
site-packages under a ``0700`` ``/root``), the programs run from a world-readable copy of the
wheel's PostgreSQL in ``/var/cache/zetl_nb``, made once per machine (see ``_served_pginstall``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from zetl_nb.core.errors import ServiceError
from zetl_nb.services.process import command as _command
from zetl_nb.services.process import file_size as _file_size
from zetl_nb.services.process import free_port as _free_port
from zetl_nb.services.process import pid_alive as _pid_alive
from zetl_nb.services.process import port_free as _port_free
from zetl_nb.services.process import read_from as _read_from
from zetl_nb.services.process import readable_by_others as _readable_by_others
from zetl_nb.services.process import shared_copy as _shared_copy
from zetl_nb.services.process import wait_gone as _wait_gone

__all__ = ["EmbeddedPostgres"]

LOG_FILE = "postgres.log"
PORT_FILE = "postgres.port"
SETTINGS_FILE = "zetl_nb.conf"
_RUN_AS_WHEN_ROOT = "pgserver"
_INCLUDE_LINE = f"include_if_exists '{SETTINGS_FILE}'"
# sun_path holds 108 bytes; the socket file adds "/.s.PGSQL.65535" and a NUL to the directory.
_MAX_SOCKET_DIR_LEN = 90
_START_TIMEOUT_S = 30
_STOP_TIMEOUT_S = 20
_PORT_ATTEMPTS = 3


class _Postmaster(NamedTuple):
    """The live server described by ``postmaster.pid``."""

    pid: int
    port: int
    status: str


class _RunAs(NamedTuple):
    uid: int
    gid: int


class EmbeddedPostgres:
    """A PostgreSQL on ``127.0.0.1``, its cluster in ``data_dir``.

    ``port=None`` reuses the port of the previous run when it is still free, else picks a free
    one. ``bin_dir`` holds the server programs (default: the pgserver wheel's PostgreSQL 16);
    ``settings`` are ``postgresql.conf`` values written over ours, e.g. ``{"wal_level":
    "replica"}`` (leave ``port``, ``listen_addresses`` and the socket directory to us). ``start``
    and ``stop`` are idempotent and safe to call from several threads.

    >>> EmbeddedPostgres(path, bin_dir=Path("/usr/lib/postgresql/15/bin"))  # doctest: +SKIP
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        bin_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._requested_port = port
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._settings = dict(settings or {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<EmbeddedPostgres {self.data_dir} ({where})>"

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        """The server log, ``<data_dir>/../postgres.log``."""
        return self.data_dir.parent / LOG_FILE

    @property
    def socket_dir(self) -> Path:
        """The unix socket directory: ``data_dir`` itself, or a short one under /tmp if long."""
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"zetl-pg-{digest}"

    @property
    def running(self) -> bool:
        """Whether a server for ``data_dir`` is alive (started by us or by an earlier run)."""
        return self._postmaster() is not None

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs, else ``None``."""
        info = self._postmaster()
        return info.pid if info is not None else None

    @property
    def port(self) -> int:
        """The TCP port; raises :class:`ServiceError` when the server is not running."""
        info = self._postmaster()
        if info is None:
            raise ServiceError(
                f"the PostgreSQL in {self.data_dir} is not running; call start() first."
            )
        return info.port

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres``."""
        return self.dsn()

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` as user ``postgres`` over TCP."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Init the cluster if new, then start it (or adopt the one already running)."""
        with self._lock:
            info = self._postmaster()
            if info is not None and info.status == "stopping":
                # Someone is stopping it (another kernel's Lab.close()): let it go, then start.
                _wait_gone(info.pid, _STOP_TIMEOUT_S)
                info = self._postmaster()
            if info is not None:
                self._await_ready(info.pid)
                return
            run_as = _run_as()
            self._prepare(run_as)
            avoid: set[int] = set()
            for _ in range(_PORT_ATTEMPTS):
                port = self._choose_port(avoid)
                self._write_settings(port, run_as)
                offset = _file_size(self.log_path)
                start = ["-l", str(self.log_path), "-w", "-t", str(_START_TIMEOUT_S), "start"]
                code, output = self._pg_ctl(start, run_as)
                if code == 0:
                    self._remember_port(self.port)  # ALTER SYSTEM SET port would win over ours
                    return
                log = _read_from(self.log_path, offset)
                # Another process may take a port between our probe and the bind; try another.
                if self._requested_port is None and "Address already in use" in log:
                    avoid.add(port)
                    continue
                raise ServiceError(
                    f"PostgreSQL in {self.data_dir} did not start (pg_ctl exit {code}).\n"
                    f"{output.strip()}\nLast lines of {self.log_path}:\n{log[-3000:].strip()}"
                )
            raise ServiceError(f"PostgreSQL lost the race for a free port {_PORT_ATTEMPTS} times.")

    def stop(self) -> None:
        """Fast shutdown via ``pg_ctl stop -m fast``; signals that PID only if that fails."""
        with self._lock:
            info = self._postmaster()
            if info is None:
                return
            with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
                self._pg_ctl(["-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_S), "stop"], _run_as())
            # pg_ctl waits for postmaster.pid to go; the process itself may linger a moment.
            # SIGINT is PostgreSQL's own fast shutdown (SIGTERM would wait for every client).
            for sig, grace in ((None, 2.0), (signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(info.pid, sig)
                if _wait_gone(info.pid, grace):
                    break
            else:
                raise ServiceError(f"PostgreSQL (PID {info.pid}) did not exit after SIGKILL.")
            self._remove_short_socket_dir()

    # -- start helpers ---------------------------------------------------------------------------

    def _prepare(self, run_as: _RunAs | None) -> None:
        """Create and own the directories; ``initdb`` a new cluster; drop a stale lock file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if run_as is not None:
            _make_traversable(self.data_dir.parent)
            for path in {self.data_dir, self.log_path, socket_dir}:
                os.chown(path, run_as.uid, run_as.gid)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            if any(self.data_dir.iterdir()):
                raise ServiceError(
                    f"{self.data_dir} is neither empty nor a PostgreSQL data directory; "
                    "point EmbeddedPostgres at an empty or a PostgreSQL directory."
                )
            self._initdb(run_as)
        self._drop_stale_lock_file()

    def _initdb(self, run_as: _RunAs | None) -> None:
        # --no-locale: a locale the machine lacks (LANG=xx_YY.UTF-8) would make initdb fail, and
        # C collation sorts the same everywhere.
        cmd = [
            str(self._program("initdb", run_as)),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]
        code, output = _run(cmd, run_as, timeout=120)
        if code != 0:
            raise ServiceError(f"initdb {self.data_dir} failed (exit {code}):\n{output.strip()}")

    def _drop_stale_lock_file(self) -> None:
        """Remove a ``postmaster.pid`` whose PID is dead or now belongs to another program.

        PostgreSQL cleans up a dead PID itself, but refuses to start while the PID is alive,
        which happens when a container restart hands the old number to another process.
        """
        lock = self.data_dir / "postmaster.pid"
        pid = _read_pid(lock)
        if pid is None:
            return
        command = _command(pid)
        # An unreadable command line proves nothing: leave the decision to PostgreSQL.
        if not _pid_alive(pid) or (command is not None and Path(command[0]).name != "postgres"):
            lock.unlink(missing_ok=True)

    def _choose_port(self, avoid: set[int]) -> int:
        if self._requested_port is not None:
            return self._requested_port
        with contextlib.suppress(OSError, ValueError):
            remembered = int((self.data_dir.parent / PORT_FILE).read_text().strip())
            if remembered not in avoid and _port_free(remembered):
                return remembered
        return _free_port()

    def _remember_port(self, port: int) -> None:
        path = self.data_dir.parent / PORT_FILE
        tmp = path.with_name(f"{PORT_FILE}.tmp-{os.getpid()}")
        tmp.write_text(f"{port}\n")
        os.replace(tmp, path)

    def _write_settings(self, port: int, run_as: _RunAs | None) -> None:
        """Our settings live in their own file, included last, so rewriting it is safe."""
        settings = {
            "wal_level": "logical",
            "max_replication_slots": "20",  # AWS allows 15 integrations per source
            "max_wal_senders": "20",
            "listen_addresses": _quote("127.0.0.1"),
            "port": str(port),
            "unix_socket_directories": _quote(str(self.socket_dir)),
            **self._settings,
        }
        path = self.data_dir / SETTINGS_FILE
        path.write_text(
            "# Rewritten by zetl_nb at every start; use ALTER SYSTEM for your own settings.\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text()
        if _INCLUDE_LINE not in text:
            conf.write_text(f"{text.rstrip()}\n\n{_INCLUDE_LINE}\n")
        if run_as is not None:
            os.chown(path, run_as.uid, run_as.gid)

    def _pg_ctl(self, args: list[str], run_as: _RunAs | None) -> tuple[int, str]:
        cmd = [str(self._program("pg_ctl", run_as)), "-D", str(self.data_dir), *args]
        return _run(cmd, run_as, timeout=_START_TIMEOUT_S + 30)

    def _program(self, name: str, run_as: _RunAs | None) -> Path:
        """``bin_dir/name``, or the pgserver wheel's program when no ``bin_dir`` was given."""
        if self._bin_dir is None:
            return _bin_dir(run_as) / name
        path = self._bin_dir / name
        if not path.exists():
            raise ServiceError(f"{path} does not exist: bin_dir must hold initdb and pg_ctl.")
        return path

    def _await_ready(self, pid: int) -> None:
        """Wait for an adopted server that another process is still starting."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = self._postmaster()
            if info is None or info.pid != pid:
                raise ServiceError(
                    f"PostgreSQL (PID {pid}) in {self.data_dir} exited while "
                    f"starting; see {self.log_path}."
                )
            if info.status == "ready":
                return
            time.sleep(0.05)
        raise ServiceError(
            f"PostgreSQL (PID {pid}) in {self.data_dir} is not ready after "
            f"{_START_TIMEOUT_S} s; see {self.log_path}."
        )

    # -- state -----------------------------------------------------------------------------------

    def _postmaster(self) -> _Postmaster | None:
        """The live server of this ``data_dir``, from ``postmaster.pid``; ``None`` if none."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, data_dir, port = int(lines[0]), Path(lines[1]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        status = lines[7].strip() if len(lines) > 7 else "starting"
        if not _pid_alive(pid) or data_dir.resolve() != self.data_dir:
            return None
        command = _command(pid)
        if command is not None and Path(command[0]).name != "postgres":
            return None  # a stale file whose PID now belongs to another program
        return _Postmaster(pid, port, status)

    def _remove_short_socket_dir(self) -> None:
        if self.socket_dir != self.data_dir:
            with contextlib.suppress(OSError):
                self.socket_dir.rmdir()  # only when empty: the server removed its socket


# -- process and file helpers --------------------------------------------------------------------


def _bin_dir(run_as: _RunAs | None) -> Path:
    """The ``bin`` of the pgserver wheel's PostgreSQL that ``run_as`` can run."""
    pginstall = _pginstall()
    return (pginstall if run_as is None else _served_pginstall(pginstall)) / "bin"


def _pginstall() -> Path:
    """The pgserver wheel's ``pginstall`` (``pgserver._commands.POSTGRES_BIN_PATH``'s parent)."""
    # Located without importing pgserver: its __init__ pulls in psutil and platformdirs and warns
    # about XDG_RUNTIME_DIR, none of which we use.
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "pginstall"
        if (path / "bin" / "pg_ctl").exists():
            return path
    raise ServiceError(
        "the embedded PostgreSQL needs the pgserver wheel's binaries: pip install 'pgserver<0.2'."
    )


@functools.cache
def _served_pginstall(pginstall: Path) -> Path:
    """``pginstall`` if the service account can read it, else a world-readable copy of it.

    We run as root here and the programs as the service account, which cannot reach a wheel
    under a ``0700`` ``/root``; copying (34 MB, once per machine) beats chmod-ing ``/root``.
    The copy keeps the wheel's layout, ``pgserver/pginstall`` beside ``pgserver.libs``: the
    programs find libpq through the RPATH ``$ORIGIN/../../../pgserver.libs`` that auditwheel
    wrote, and PostgreSQL finds its ``share/`` and ``lib/`` relative to its own binary.
    Cached per process: the check walks some 1,700 files.
    """
    trees = {"pgserver/pginstall": pginstall}
    libs = pginstall.parent.parent / "pgserver.libs"
    if libs.is_dir():
        trees["pgserver.libs"] = libs
    if all(_readable_by_others(tree) for tree in trees.values()):
        return pginstall
    try:
        version = importlib.metadata.version("pgserver")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    try:
        copy = _shared_copy(trees, f"pgserver-{version}")
    except OSError as exc:
        raise ServiceError(
            f"user '{_RUN_AS_WHEN_ROOT}' cannot read {pginstall} and copying it where it can "
            f"failed: {exc}. Free space in /var/cache or the temp dir, or run as a normal user."
        ) from exc
    return copy / "pgserver" / "pginstall"


def _run_as() -> _RunAs | None:
    """Whom to run the binaries as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_RUN_AS_WHEN_ROOT)
    except KeyError:
        # As the pgserver wheel itself does when run as root: create its service account once.
        done = subprocess.run(
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", _RUN_AS_WHEN_ROOT],
            capture_output=True,
            text=True,
        )
        try:
            entry = pwd.getpwnam(_RUN_AS_WHEN_ROOT)
        except KeyError:
            raise ServiceError(
                f"PostgreSQL refuses to run as root and the '{_RUN_AS_WHEN_ROOT}' user could not "
                f"be created ({done.stderr.strip() or done.returncode}). Create it "
                f"(useradd --system {_RUN_AS_WHEN_ROOT}) or run as a normal user."
            ) from None
    return _RunAs(entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], run_as: _RunAs | None, timeout: float) -> tuple[int, str]:
    """Run a PostgreSQL program; returns its exit code and combined output."""
    # PG* variables (PGDATA, PGPORT, ...) would silently override what we pass.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    # Output goes to a file, not a pipe: the postmaster that pg_ctl forks could inherit a pipe
    # and keep it open, so reading it to EOF would hang.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
                check=False,
                cwd="/",
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except OSError as exc:
            raise ServiceError(f"cannot run {cmd[0]}: {exc}") from exc
        out.seek(0)
        return proc.returncode, out.read().decode("utf-8", "replace")


def _make_traversable(directory: Path) -> None:
    """Give ``directory`` and its ancestors ``o+x`` where missing (traverse, not list)."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"
