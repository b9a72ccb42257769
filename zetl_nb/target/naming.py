"""Target table names for source tables: deterministic, documented, collision-free.

The name joins the source path — ``database_table`` (MySQL/MariaDB) or
``database_schema_table`` (PostgreSQL) — and applies the identifier rules of Redshift's zero-ETL
mapping: lower case, every character other than ``a-z``, ``0-9`` and ``_`` becomes ``_``. When
two source tables would map to the same name (``a_b.c`` and ``a.b_c``), every colliding table gets
a short, stable suffix from a hash of its full source path. A ``TargetTableName`` table property
overrides the name.

>>> target_table_name(TableId("shop", None, "Order-Items"))
'shop_order_items'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from ..core.changes import TableId

_OTHER = re.compile(r"[^a-z0-9_]")


def normalize_identifier(name: str) -> str:
    """Redshift's rule: lower case; other characters become ``_``."""
    return _OTHER.sub("_", name.lower())


def target_table_name(table: TableId) -> str:
    """The default target name of one source table (before collision handling)."""
    return normalize_identifier("_".join(p for p in table.parts if p))


def _suffix(table: TableId) -> str:
    return hashlib.sha1(str(table).encode()).hexdigest()[:6]


def assign_names(
    tables: Iterable[TableId], overrides: Mapping[TableId, str] | None = None
) -> dict[TableId, str]:
    """Target names for ``tables``: overrides first, then defaults with collision suffixes."""
    overrides = overrides or {}
    names = {t: overrides.get(t) or target_table_name(t) for t in tables}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {
        t: (f"{name}_{_suffix(t)}" if counts[name] > 1 and t not in overrides else name)
        for t, name in names.items()
    }
