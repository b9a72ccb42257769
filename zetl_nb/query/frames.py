"""Polars lazy frames over Iceberg tables: ``pl.scan_iceberg``.

Polars reads with its native Parquet reader when every position-delete file of the snapshot
references one data file, and falls back to pyiceberg's reader by itself otherwise (zetl_nb's
merge-on-read commits write one delete file per commit, which may reference several data files).
Both read by field id, so renamed, promoted and added columns read right; tables DuckDB reads with
pyiceberg too (see :func:`.scan.read_mode`: nested renames, renames where files may lack field
ids) are read with pyiceberg's reader outright. The tests compare every path with
pyiceberg and DuckDB on tables carrying position deletes and evolved schemas.
"""

from __future__ import annotations

import os
from typing import Any

from .scan import read_mode


def scan(table: Any, snapshot_id: int | None = None) -> Any:
    """A ``pl.LazyFrame`` over ``table`` at ``snapshot_id`` (None: the current snapshot)."""
    # Without the optional polars_iceberg package Polars plans with pyiceberg anyway, but warns
    # on every collect unless told so.
    os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
    import polars as pl

    if read_mode(table)[0] == "pyiceberg":
        return pl.scan_iceberg(table, snapshot_id=snapshot_id, reader_override="pyiceberg")
    return pl.scan_iceberg(table, snapshot_id=snapshot_id)
