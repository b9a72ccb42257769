"""World-readable copies of program trees for the service account (real files, real modes)."""

from __future__ import annotations

import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zetl_nb.services.process import (
    SHARED_CACHE_DIR,
    readable_by_others,
    shared_cache_dir,
    shared_copy,
)


@pytest.fixture
def reachable(tmp_path: Path) -> Path:
    """``tmp_path`` with ``o+x`` on it and its ancestors (pytest makes them ``0700``)."""
    for path in (tmp_path, *tmp_path.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    return tmp_path


def _wheel_like_tree(root: Path) -> dict[str, Path]:
    """A pginstall and its libs behind a private directory, with private files inside."""
    private = root / "site-packages"
    pginstall = private / "pkg" / "pginstall"
    (pginstall / "bin").mkdir(parents=True)
    (pginstall / "share" / "locked").mkdir(parents=True)
    (pginstall / "lib").mkdir()
    program = pginstall / "bin" / "initdb"
    program.write_text("#!/bin/sh\necho initdb\n")
    program.chmod(0o700)
    data = pginstall / "share" / "locked" / "postgres.bki"
    data.write_text("bki")
    data.chmod(0o600)
    (pginstall / "lib" / "libpq.so.5.16").write_text("elf")
    (pginstall / "lib" / "libpq.so.5").symlink_to("libpq.so.5.16")
    (pginstall / "share" / "locked").chmod(0o700)
    libs = private / "pkg.libs"
    libs.mkdir()
    (libs / "libpq-0123.so.5.16").write_text("elf")
    private.chmod(0o700)
    return {"pkg/pginstall": pginstall, "pkg.libs": libs}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_readable_by_others_reads_the_other_bits(reachable: Path) -> None:
    tree = reachable / "tree"
    (tree / "bin").mkdir(parents=True, mode=0o755)
    tree.chmod(0o755)
    program, data = tree / "bin" / "postgres", tree / "bin" / "README"
    program.write_text("")
    program.chmod(0o755)
    data.write_text("")
    data.chmod(0o644)
    assert readable_by_others(tree)

    for path, closed, opened in (
        (data, 0o600, 0o644),  # a file others cannot read
        (program, 0o744, 0o755),  # a program others cannot run
        (tree / "bin", 0o711, 0o755),  # a directory others cannot list
        (reachable, 0o700, 0o701),  # an ancestor others cannot traverse
    ):
        path.chmod(closed)
        assert not readable_by_others(tree), oct(closed)
        path.chmod(opened)
    assert readable_by_others(tree)


def test_the_copy_is_made_once_open_to_others_and_reused(reachable: Path) -> None:
    trees = _wheel_like_tree(reachable / "src")
    assert not readable_by_others(trees["pkg/pginstall"])
    cache = reachable / "cache"
    cache.mkdir(mode=0o755)

    copy = shared_copy(trees, "pkg-1.0", cache_dir=cache)

    assert copy.parent == cache and copy.name.startswith("pkg-1.0-")
    assert readable_by_others(copy)
    pginstall = copy / "pkg" / "pginstall"
    assert (pginstall / "bin" / "initdb").read_text() == "#!/bin/sh\necho initdb\n"
    assert _mode(pginstall / "bin" / "initdb") == 0o755
    assert _mode(pginstall / "share" / "locked") == 0o755
    assert _mode(pginstall / "share" / "locked" / "postgres.bki") == 0o644
    assert os.readlink(pginstall / "lib" / "libpq.so.5") == "libpq.so.5.16"
    # The layout is kept, so an RPATH of $ORIGIN/../../../pkg.libs still resolves.
    assert (pginstall / "bin" / "../../../pkg.libs/libpq-0123.so.5.16").read_text() == "elf"
    inode = (pginstall / "bin" / "initdb").stat().st_ino

    assert shared_copy(trees, "pkg-1.0", cache_dir=cache) == copy
    assert (pginstall / "bin" / "initdb").stat().st_ino == inode  # not copied again
    assert [p.name for p in cache.iterdir()] == [copy.name]  # no staging directory left


def test_a_reinstalled_source_gets_a_fresh_copy(reachable: Path) -> None:
    trees = _wheel_like_tree(reachable / "src")
    cache = reachable / "cache"
    cache.mkdir(mode=0o755)
    first = shared_copy(trees, "pkg-1.0", cache_dir=cache)

    info = trees["pkg/pginstall"].stat()
    os.utime(trees["pkg/pginstall"], ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    second = shared_copy(trees, "pkg-1.0", cache_dir=cache)

    assert second != first and (second / "pkg" / "pginstall" / "bin" / "initdb").exists()


def test_racing_copiers_share_one_copy(reachable: Path) -> None:
    trees = _wheel_like_tree(reachable / "src")
    for i in range(200):  # enough work for the copies to overlap
        (trees["pkg/pginstall"] / "share" / f"f{i}.sql").write_text("x" * 10_000)
    cache = reachable / "cache"
    cache.mkdir(mode=0o755)

    with ThreadPoolExecutor(8) as pool:
        copies = set(pool.map(lambda _: shared_copy(trees, "pkg-1.0", cache_dir=cache), range(8)))

    assert len(copies) == 1
    (copy,) = copies
    assert [p.name for p in cache.iterdir()] == [copy.name]
    assert len(list((copy / "pkg" / "pginstall" / "share").glob("f*.sql"))) == 200


def test_the_default_cache_dir_is_ours_and_open_to_others() -> None:
    cache = shared_cache_dir()
    assert cache in (
        SHARED_CACHE_DIR,
        Path(tempfile.gettempdir()) / f"zetl_nb-cache-{os.geteuid()}",
    )
    assert cache.stat().st_uid == os.geteuid()
    assert _mode(cache) == 0o755
