"""The package surface: a light import, a curated ``__all__``, and a lazily imported ``Lab``."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import zetl_nb

ROOT = Path(zetl_nb.__file__).resolve().parents[1]

HEAVY = [
    "boto3",
    "botocore",
    "pyiceberg",
    "pyarrow",
    "duckdb",
    "polars",
    "moto",
    "litellm",
    "psycopg2",
]


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_does_not_load_heavy_dependencies() -> None:
    out = run(
        f"""
        import sys
        import zetl_nb
        heavy = {HEAVY!r}
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert out == "[]", f"`import zetl_nb` imported: {out}"


def test_lab_resolves_lazily() -> None:
    out = run(
        """
        import sys
        import zetl_nb
        before = "zetl_nb.lab" in sys.modules or "Lab" in vars(zetl_nb)
        lab = zetl_nb.Lab
        print(before, lab.__module__, lab.__name__, "zetl_nb.lab" in sys.modules)
        """
    )
    assert out == "False zetl_nb.lab Lab True"


def test_lab_config_resolves_lazily() -> None:
    out = run(
        """
        import sys
        import zetl_nb
        before = "zetl_nb.config" in sys.modules
        print(before, zetl_nb.LabConfig.__module__)
        """
    )
    assert out == "False zetl_nb.config"


def _defined_names() -> set[str]:
    """Public names ``zetl_nb/__init__.py`` binds, including those behind TYPE_CHECKING (lazy)."""
    tree = ast.parse(Path(zetl_nb.__file__).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign) and node in tree.body:
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node in tree.body:
            names.add(node.name)
    return {n for n in names if not n.startswith("_")} | {"__version__"}


def test_all_is_exactly_the_public_names() -> None:
    assert zetl_nb.__all__ == sorted(_defined_names())


def test_all_has_no_duplicates() -> None:
    assert len(zetl_nb.__all__) == len(set(zetl_nb.__all__))


def test_every_public_attribute_is_exported() -> None:
    # Anything public the module holds (other than submodules and typing helpers) is in __all__.
    skip = {"annotations", "TYPE_CHECKING", "Any"}
    held = {
        name
        for name, value in vars(zetl_nb).items()
        if not name.startswith("_") and name not in skip and type(value).__name__ != "module"
    }
    assert held <= set(zetl_nb.__all__)


def test_every_name_in_all_resolves() -> None:
    for name in zetl_nb.__all__:
        assert getattr(zetl_nb, name) is not None, name


def test_exported_errors_share_one_root() -> None:
    for name in (
        "AwsError",
        "ConfigError",
        "HomeLockedError",
        "MissingDependencyError",
        "ReadOnlyLabError",
        "ServiceError",
    ):
        assert issubclass(getattr(zetl_nb, name), zetl_nb.ZetlError), name


def test_version_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert zetl_nb.__version__ == project["version"]


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        zetl_nb.NoSuchThing  # noqa: B018
