"""A DynamoDB endpoint: a full moto server in a child process, persisted in the Lab home.

Every Lab gets its own child process (``python -m zetl_nb.services.dynamodb``) because moto's
in-process backends are process-global: two Labs in one kernel would otherwise share tables. The
child serves every moto service, DynamoDB and DynamoDB Streams included, on a free loopback port.

>>> endpoint = DynamoDBEndpoint(Path("/tmp/lab/dynamodb"))  # doctest: +SKIP
>>> endpoint.start()                                          # doctest: +SKIP
>>> endpoint.client("dynamodb").list_tables()["TableNames"]   # doctest: +SKIP
[]

Persistence. DynamoDB state -- tables with their items, indexes, stream specifications and stream
records, TTL, tags, PITR flags, backups and resource policies -- survives a stop/start, so a
notebook kernel restart finds its tables again. The child pickles moto's own DynamoDB model
objects (an exact copy: stream ARNs and sequence numbers continue where they were) into
``state_dir/dynamodb.pickle``:

* after any DynamoDB request that may mutate state, a background thread saves, at most about once
  a second (less often when a save itself is slow: the gap is at least twice the last save);
* on SIGTERM/SIGINT (what :meth:`DynamoDBEndpoint.stop` sends), or within a second of the parent
  process dying (it polls ``os.getppid()``), the child saves a final time and exits.

Each save is atomic (temporary file, fsync, ``os.replace``) and consistent: requests wait only while
the server forks, and the forked child pickles its frozen copy of the models (~50 us per item) and
writes the file while the server goes on serving. What a crash loses:

* the notebook kernel crashes or is killed: nothing -- the child notices and saves;
* the child itself is SIGKILLed, or the machine goes down: the changes of the last save interval,
  at most ~1 s (more only when saves are slow, see above).

A state directory is locked by one child at a time (``dynamodb.lock``). A new child, say of a
restarted kernel, waits up to 10 s for the previous one to finish its final save before loading.

Not persisted: other moto services (S3, SQS, ...), shard iterators, and import/export job records
(moto runs them as threads, which cannot be pickled). The snapshot is tied to moto's classes: it
records the moto version and a snapshot that no longer loads fails the start with a message that
names the file instead of silently starting empty. Only load snapshots you wrote: it is a pickle.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import fcntl
import http.client
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from zetl_nb.core.errors import ServiceError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    import boto3.session
    from werkzeug.serving import BaseWSGIServer

__all__ = ["DynamoDBEndpoint", "main"]

SNAPSHOT_FILE = "dynamodb.pickle"
LOG_FILE = "dynamodb.log"
LOCK_FILE = "dynamodb.lock"
_HEALTH_PATH = "/zetl-health"
_SNAPSHOT_FORMAT = 1
# The child exits with these codes so the parent can tell a lost port race from a real failure.
_EXIT_PORT_IN_USE = 98
_EXIT_BAD_SNAPSHOT = 3
_EXIT_LOCKED = 4
# A previous child (its kernel just died) may still be writing its final save: wait for it.
_LOCK_WAIT_S = 10.0
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 15.0
_PORT_ATTEMPTS = 5
_MIN_SAVE_INTERVAL_S = 1.0
# How fast the child notices SIGTERM and how long serve_forever takes to shut down.
_POLL_S = 0.1
# The moto model attributes that hold DynamoDB data; import/export jobs are threads, left out.
_PERSISTED_ATTRS = ("tables", "backups", "resource_policies")
_READ_ONLY_OPS = frozenset({"Query", "Scan", "BatchGetItem", "TransactGetItems"})
_READ_ONLY_PREFIXES = ("Describe", "List", "Get")


class DynamoDBEndpoint:
    """A moto server in a child process on ``http://127.0.0.1:<free port>``.

    The child persists DynamoDB state into ``state_dir`` (see the module docstring) and exits by
    itself when this process dies. ``start`` and ``stop`` are idempotent; an ``atexit`` hook
    stops a running endpoint when the interpreter exits.
    """

    def __init__(
        self, state_dir: Path, account_id: str = "123456789012", region: str = "us-east-1"
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.account_id = account_id
        self.region = region
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._lock = threading.RLock()
        self._owner_pid = os.getpid()
        self._client_lock = threading.Lock()
        self._session: boto3.session.Session | None = None

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<DynamoDBEndpoint {self.state_dir} ({where})>"

    def __enter__(self) -> DynamoDBEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs, else ``None``."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; raises :class:`ServiceError` when not running."""
        if not self.running or self._port is None:
            raise ServiceError(
                f"the DynamoDB endpoint for {self.state_dir} is not running; call start() first."
            )
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        """Start the child and wait until it answers (restoring saved state first). Idempotent."""
        with self._lock:
            if self.running:
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            for _ in range(_PORT_ATTEMPTS):
                port = _free_port()
                proc, log_offset = self._spawn(port)
                if self._await_ready(proc, port, log_offset):
                    self._proc, self._port = proc, port
                    atexit.register(self.stop)
                    return
            raise ServiceError(
                f"the DynamoDB endpoint lost the race for a free port {_PORT_ATTEMPTS} times; "
                "something on this machine is grabbing loopback ports quickly."
            )

    def stop(self) -> None:
        """Ask the child to save and exit (SIGTERM); kill it if it has not exited in 15 s."""
        with self._lock:
            proc, self._proc, self._port = self._proc, None, None
            atexit.unregister(self.stop)
            # A forked copy of this object (a worker process) must not stop its parent's child.
            if proc is None or os.getpid() != self._owner_pid or proc.poll() is not None:
                return
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on this endpoint (dummy credentials, Lab region).

        Returns ``Any`` because typed clients need a stub package per service.

        >>> endpoint.client("dynamodbstreams").list_streams()  # doctest: +SKIP
        """
        url = self.url
        # One session per endpoint: a new session reloads botocore's models (~0.2 s). Creating
        # clients from one session is not thread-safe, using them is.
        with self._client_lock:
            if self._session is None:
                import boto3.session

                self._session = boto3.session.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    region_name=self.region,
                )
            return self._session.client(service, endpoint_url=url)  # type: ignore[call-overload]

    def _spawn(self, port: int) -> tuple[subprocess.Popen[bytes], int]:
        log_path = self.state_dir / LOG_FILE
        env = dict(os.environ)
        # The child must import this package even when it is not installed (a source checkout).
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "zetl_nb.services.dynamodb",
            "--port",
            str(port),
            "--state-dir",
            str(self.state_dir),
            "--account",
            self.account_id,
            "--parent-pid",
            str(os.getpid()),
        ]
        with open(log_path, "ab") as log:
            offset = log.tell()
            # A new session keeps a terminal's Ctrl-C away from the child; it stops on SIGTERM
            # or when this process dies.
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return proc, offset

    def _await_ready(self, proc: subprocess.Popen[bytes], port: int, log_offset: int) -> bool:
        """True once the child answers; False if it lost the port race; raises otherwise."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = proc.poll()
            if code == _EXIT_PORT_IN_USE:
                return False
            if code is not None:
                raise ServiceError(
                    f"the DynamoDB endpoint exited with code {code} while starting.\n"
                    f"{self._log_tail(log_offset)}"
                )
            if _health_pid(port) == proc.pid:
                return True
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise ServiceError(
            f"the DynamoDB endpoint did not answer on port {port} within {_START_TIMEOUT_S:.0f} s."
            f"\n{self._log_tail(log_offset)}"
        )

    def _log_tail(self, offset: int, limit: int = 3000) -> str:
        path = self.state_dir / LOG_FILE
        try:
            with open(path, "rb") as fh:
                fh.seek(max(offset, fh.seek(0, os.SEEK_END) - limit))
                text = fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return f"(no log at {path})"
        return f"Last lines of {path}:\n{text}" if text else f"({path} is empty)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health_pid(port: int) -> int | None:
    """The PID our child reports on ``port``; ``None`` if nothing (of ours) answers yet."""
    # http.client rather than urllib or boto3: no proxy settings can reroute a loopback probe.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", _HEALTH_PATH)
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        return int(json.loads(resp.read())["pid"])
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# The child process
# --------------------------------------------------------------------------------------------


class _SnapshotGate:
    """One request at a time, and never while a snapshot is being taken.

    moto's models are not thread-safe, and even reads mutate them (a ``defaultdict`` lookup on a
    missing key inserts it), so pickling concurrently with any request could fail or tear.
    Concurrent requests tore too: four writer threads got HTTP 500s ("dictionary changed size
    during iteration") and duplicate stream SequenceNumbers (``StreamShard.add`` is unlocked),
    which would break resuming a stream after a sequence number. moto is GIL-bound, so serving
    requests one by one costs little.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._snapshot_wanted = False

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self._cond:
            # Waiting snapshots go first, so a steady stream of requests cannot starve them.
            self._cond.wait_for(lambda: not self._snapshot_wanted and self._active == 0)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._cond:
            self._snapshot_wanted = True
            self._cond.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            with self._cond:
                self._snapshot_wanted = False
                self._cond.notify_all()


def _may_mutate(environ: WSGIEnvironment) -> bool:
    """Whether a request may change persisted state (unknown operations count as writes)."""
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(
        "/moto-api/"
    ):
        return True  # e.g. /moto-api/reset wipes every backend
    service, _, op = str(environ.get("HTTP_X_AMZ_TARGET", "")).partition(".")
    if not service.startswith("DynamoDB_"):  # DynamoDBStreams_* only reads
        return False
    return op not in _READ_ONLY_OPS and not op.startswith(_READ_ONLY_PREFIXES)


class _SnapshotStore:
    """Saves and restores moto's DynamoDB models in ``state_dir`` (see the module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SNAPSHOT_FILE
        self.gate = _SnapshotGate()
        self.dirty = threading.Event()
        self._save_lock = threading.Lock()
        self.last_duration = 0.0

    def load(self) -> int:
        """Install the saved state into moto's backends; returns the number of tables."""
        if not self.path.exists():
            return 0
        from moto.dynamodb.models import dynamodb_backends

        with open(self.path, "rb") as fh:
            header = pickle.load(fh)
            if header.get("format") != _SNAPSHOT_FORMAT:
                raise ValueError(f"unknown snapshot format {header.get('format')!r}")
            payload: dict[str, dict[str, dict[str, Any]]] = pickle.load(fh)
        import moto

        if header.get("moto") != moto.__version__:
            print(
                f"zetl_nb: {self.path} was saved by moto {header.get('moto')}, this is moto "
                f"{moto.__version__}; restoring it anyway.",
                file=sys.stderr,
            )
        tables = 0
        for account, regions in payload.items():
            for region, attrs in regions.items():
                backend = dynamodb_backends[account][region]
                for name in _PERSISTED_ATTRS:
                    if name in attrs:
                        setattr(backend, name, attrs[name])
                # describe() touches most attributes: a snapshot from another moto version that
                # no longer fits the classes fails here, at start, rather than on a later request.
                for table in backend.tables.values():
                    table.describe()
                tables += len(backend.tables)
        return tables

    def save(self) -> None:
        """Snapshot the state under the gate and write it atomically.

        Where the OS can fork, the gate is held only for the fork: the child pickles its frozen
        copy of the models and writes the file while this process goes on serving (pickling
        100,000 items took ~11 s, and every request waited for it). Elsewhere the state is
        pickled under the gate.
        """
        import moto

        with self._save_lock:
            started = time.monotonic()
            self.dirty.clear()  # a request finishing after this point marks it again
            if hasattr(os, "fork"):
                self._save_in_child(moto.__version__)
            else:  # pragma: no cover - every platform zetl_nb runs on has fork
                with self.gate.snapshot():
                    data, taken = _pickled_state(), time.time()
                header = {"format": _SNAPSHOT_FORMAT, "moto": moto.__version__, "taken": taken}
                _write_atomically(self.path, pickle.dumps(header), data)
            self.last_duration = time.monotonic() - started

    def _save_in_child(self, moto_version: str) -> None:
        with self.gate.snapshot():
            taken = time.time()
            pid = os.fork()
            if pid == 0:  # the child: no request can run in it, the models stay as forked
                code = 1
                try:
                    header = {"format": _SNAPSHOT_FORMAT, "moto": moto_version, "taken": taken}
                    _write_atomically(self.path, pickle.dumps(header), _pickled_state())
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"the snapshot child (PID {pid}) failed; its traceback is above")


def _pickled_state() -> bytes:
    """moto's DynamoDB models of every account and region (call with no request running)."""
    from moto.dynamodb.models import dynamodb_backends

    payload = {
        account: {
            region: {name: getattr(backend, name) for name in _PERSISTED_ATTRS}
            for region, backend in list(regions.items())
        }
        for account, regions in list(dynamodb_backends.items())
    }
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def _write_atomically(path: Path, *chunks: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    # fsync the directory too, or the rename itself may not survive a power loss.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _PersistingApp:
    """Wraps moto's WSGI app: serves the health probe, gates requests, marks state dirty."""

    def __init__(self, app: WSGIApplication, store: _SnapshotStore) -> None:
        self._app = app
        self._store = store

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == _HEALTH_PATH:
            body = json.dumps({"pid": os.getpid()}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with self._store.gate.request():
            result = self._app(environ, start_response)
            try:
                # Drain inside the gate: a lazy body could still be reading the models.
                chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if _may_mutate(environ):
                self._store.dirty.set()
        return chunks


def _saver_loop(store: _SnapshotStore, stopping: threading.Event) -> None:
    """Save when dirty, at most every max(1 s, 2 x last save time)."""
    last_end = 0.0
    while not stopping.is_set():
        if not store.dirty.wait(timeout=_POLL_S):
            continue
        gap = max(_MIN_SAVE_INTERVAL_S, 2 * store.last_duration)
        if stopping.wait(timeout=max(0.0, last_end + gap - time.monotonic())):
            return  # the final save on the way out covers it
        try:
            store.save()
        except Exception:
            store.dirty.set()  # keep trying; the log says why it fails
            print(f"zetl_nb: saving {store.path} failed:", file=sys.stderr)
            traceback.print_exc()
        last_end = time.monotonic()


def _watch_parent(parent_pid: int, stopping: threading.Event) -> None:
    # Once the parent is gone we are re-parented, so getppid() changes; no orphan servers.
    while not stopping.wait(timeout=1.0):
        if os.getppid() != parent_pid:
            print(f"zetl_nb: parent {parent_pid} is gone; saving and exiting.", file=sys.stderr)
            stopping.set()


def _lock_state_dir(state_dir: Path) -> int | None:
    """Lock ``state_dir`` for this process (kept until exit); ``None`` if still busy after 10 s."""
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m zetl_nb.services.dynamodb",
        description="A persisted moto server for one zetl_nb Lab (started by DynamoDBEndpoint).",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the child: restore state, serve on 127.0.0.1, save, exit on SIGTERM or parent death."""
    args = _parse_args(argv)
    # Before moto is imported: moto reads the default account id from the environment.
    os.environ["MOTO_ACCOUNT_ID"] = args.account
    os.environ["MOTO_PORT"] = str(args.port)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the log

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    store = _SnapshotStore(args.state_dir)
    app = _PersistingApp(DomainDispatcherApplication(create_backend_app), store)
    try:
        # Binding before restoring: a lost port race fails fast; early clients queue meanwhile.
        server = make_server("127.0.0.1", args.port, app, threaded=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _EXIT_PORT_IN_USE
        raise
    lock_fd = _lock_state_dir(args.state_dir)
    if lock_fd is None:
        holder = (args.state_dir / LOCK_FILE).read_text().strip() or "?"
        print(
            f"zetl_nb: {args.state_dir} is in use by another DynamoDB endpoint (PID {holder}); "
            "one endpoint per state directory.",
            file=sys.stderr,
        )
        return _EXIT_LOCKED
    try:
        tables = store.load()
    except Exception as exc:
        traceback.print_exc()
        print(
            f"zetl_nb: cannot restore DynamoDB state from {store.path} ({exc}). It was written "
            "by another moto version or is damaged; move it aside to start with no tables.",
            file=sys.stderr,
        )
        return _EXIT_BAD_SNAPSHOT
    return _serve(server, store, args.parent_pid, tables)


def _serve(server: BaseWSGIServer, store: _SnapshotStore, parent_pid: int, tables: int) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [
        threading.Thread(target=server.serve_forever, args=(_POLL_S,), name="serve", daemon=True),
        threading.Thread(target=_saver_loop, args=(store, stopping), name="saver", daemon=True),
        threading.Thread(target=_watch_parent, args=(parent_pid, stopping), daemon=True),
    ]
    for thread in threads:
        thread.start()
    print(
        f"zetl_nb: DynamoDB endpoint pid {os.getpid()} on {server.port}, {tables} tables restored",
        file=sys.stderr,
        flush=True,
    )
    # A timed wait, so the signal handler gets to run promptly in the main thread.
    while not stopping.wait(timeout=_POLL_S):
        pass
    server.shutdown()
    threads[1].join()
    if store.dirty.is_set():
        store.save()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
