"""Process, port and file helpers shared by the embedded/private database services.

Servers are always stopped by the PID we started, never by name; a zombie (exited, not yet
reaped by a lax init in a container) counts as gone.

:func:`shared_copy` serves programs that we, as root, hand to an unprivileged service account:
when they sit where that account cannot reach (a site-packages under a ``0700`` ``/root``), they
run from a world-readable copy instead of loosening the permissions of ``/root``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from zetl_nb.core.errors import ServiceError

SHARED_CACHE_DIR = Path("/var/cache/zetl_nb")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS) or hidden: trust kill(0)
    return stat_line.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def command(pid: int) -> list[str] | None:
    """The command line of ``pid``, or ``None`` when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [p for p in raw.decode("utf-8", "replace").split("\0") if p] or None


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; whether it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def port_free(port: int) -> bool:
    """Whether a server could bind ``port`` on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: without it, connections in TIME_WAIT make a just-freed port busy
        # and every restart would move to a new port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 (callers retry on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_from(path: Path, offset: int) -> str:
    """A log file's text from ``offset`` on (for error messages)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def readable_by_others(root: Path) -> bool:
    """Whether an account that is neither owner nor group of ``root`` can use all of it.

    ``os.access`` answers for our own uid (root may do anything), so we read the "other" bits:
    every ancestor must let others traverse (``o+x``), every directory inside list and traverse
    (``o+rx``), every file read (``o+r``), and a program its owner may run, run (``o+x``).
    """
    root = root.resolve()
    if not all(ancestor.stat().st_mode & stat.S_IXOTH for ancestor in root.parents):
        return False
    for dirpath, _dirnames, filenames in os.walk(root):
        if stat.S_IMODE(os.stat(dirpath).st_mode) & 0o005 != 0o005:
            return False
        for name in filenames:
            mode = os.stat(os.path.join(dirpath, name)).st_mode
            if not mode & stat.S_IROTH or (mode & stat.S_IXUSR and not mode & stat.S_IXOTH):
                return False
    return True


def shared_copy(trees: Mapping[str, Path], label: str, cache_dir: Path | None = None) -> Path:
    """A world-readable copy of ``trees`` (path inside the copy -> source directory).

    The copy is ``<cache_dir>/<label>-<hash>``, the hash taken over the sources' paths and
    modification times, so a reinstalled source gets a fresh copy and an unchanged one is copied
    only once per machine. ``cache_dir`` defaults to ``/var/cache/zetl_nb``, else a directory of
    ours under the temp dir. Several processes may race: each copies into a temp sibling and
    renames it into place, and a loser uses the winner's copy.

    >>> shared_copy({"pgserver/pginstall": pginstall}, "pgserver-0.1.4")  # doctest: +SKIP
    PosixPath('/var/cache/zetl_nb/pgserver-0.1.4-3f2a9c0d1e7b')
    """
    cache_dir = shared_cache_dir() if cache_dir is None else cache_dir
    target = cache_dir / f"{label}-{_tree_digest(trees)}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        for inside, source in trees.items():
            shutil.copytree(source, staging / inside, symlinks=True)
        _open_to_others(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def shared_cache_dir() -> Path:
    """``/var/cache/zetl_nb``, or ``<tmp>/zetl_nb-cache-<uid>`` when that cannot serve.

    A cache directory serves when we own it, nobody else may write it (others' files there
    would run as the service account) and every account can reach it.
    """
    fallback = Path(tempfile.gettempdir()) / f"zetl_nb-cache-{os.geteuid()}"
    for candidate in (SHARED_CACHE_DIR, fallback):
        with contextlib.suppress(OSError):
            candidate.mkdir(mode=0o755, parents=True, exist_ok=True)
            info = candidate.stat()
            if info.st_uid != os.geteuid() or not os.access(candidate, os.W_OK):
                continue
            candidate.chmod(0o755)  # mkdir's mode went through the umask
            if _reachable_by_others(candidate):
                return candidate
    raise ServiceError(
        f"no cache directory for a world-readable copy: neither {SHARED_CACHE_DIR} nor "
        f"{fallback} is ours, writable and reachable by other users."
    )


def _reachable_by_others(directory: Path) -> bool:
    """Whether others may list and traverse ``directory`` and traverse all its ancestors.

    Unlike :func:`readable_by_others` this does not look inside: a half-made copy of another
    process (``0700`` until renamed) must not disqualify the cache directory.
    """
    directory = directory.resolve()
    if stat.S_IMODE(directory.stat().st_mode) & 0o005 != 0o005:
        return False
    return all(ancestor.stat().st_mode & stat.S_IXOTH for ancestor in directory.parents)


def _tree_digest(trees: Mapping[str, Path]) -> str:
    """12 hex digits naming this set of sources in this state."""
    digest = hashlib.sha256()
    for inside, source in sorted(trees.items()):
        source = source.resolve()
        digest.update(f"{inside}\0{source}\0{source.stat().st_mtime_ns}\0".encode())
    return digest.hexdigest()[:12]


def _open_to_others(root: Path) -> None:
    """Directories ``0755``, programs ``0755``, other files ``0644``; symlinks as they are."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            os.chmod(path, 0o755 if stat.S_ISDIR(mode) or mode & 0o111 else 0o644)
