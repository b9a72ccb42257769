"""The local Iceberg catalog: a pyiceberg ``SqlCatalog`` on ``<home>/catalog.db``.

A Glue database is an Iceberg namespace. Glue's database members map to namespace properties:
``Description`` ↔ ``comment``, ``LocationUri`` ↔ ``location``, ``Parameters`` ↔ the other
properties, and the creation time is kept as ``zetl.create-time``. pyiceberg is imported on
first use so ``import zetl_nb`` stays fast.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

CREATE_TIME = "zetl.create-time"
_RESERVED = {"comment", "location", CREATE_TIME, "exists"}


class LocalCatalog:
    """Namespaces and tables of the Lab's Iceberg warehouse."""

    def __init__(self, home: Path, name: str = "zetl") -> None:
        self.db_path = home / "catalog.db"
        self.warehouse = home / "warehouse"
        self.name = name
        self._catalog: Any = None
        self._lock = threading.Lock()

    @property
    def catalog(self) -> Any:
        """The pyiceberg catalog, opened on first use."""
        with self._lock:
            if self._catalog is None:
                from pyiceberg.catalog.sql import SqlCatalog

                self.warehouse.mkdir(parents=True, exist_ok=True)
                self._catalog = SqlCatalog(
                    self.name,
                    uri=f"sqlite:///{self.db_path}",
                    warehouse=self.warehouse.as_uri(),
                )
            return self._catalog

    def default_location(self, namespace: str) -> str:
        """Where a namespace's tables go when the user gives no LocationUri."""
        return (self.warehouse / namespace).as_uri()

    # -- namespaces = Glue databases --------------------------------------------------------
    def namespaces(self) -> list[str]:
        return sorted(".".join(ns) for ns in self.catalog.list_namespaces())

    def exists(self, namespace: str) -> bool:
        return namespace in self.namespaces()

    def create_namespace(
        self,
        namespace: str,
        description: str | None = None,
        location: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        props = dict(parameters or {})
        if description is not None:
            props["comment"] = description
        if location is not None:
            props["location"] = location
        props[CREATE_TIME] = repr(time.time())
        self.catalog.create_namespace(namespace, props)

    def properties(self, namespace: str) -> dict[str, str]:
        return dict(self.catalog.load_namespace_properties(namespace))

    def update_namespace(
        self, namespace: str, updates: dict[str, str], removals: set[str] | None = None
    ) -> None:
        self.catalog.update_namespace_properties(namespace, removals or set(), updates)

    def drop_namespace(self, namespace: str) -> None:
        self.catalog.drop_namespace(namespace)

    # -- tables ------------------------------------------------------------------------------
    def tables(self, namespace: str) -> list[str]:
        return sorted(ident[-1] for ident in self.catalog.list_tables(namespace))

    def load_table(self, namespace: str, table: str) -> Any:
        return self.catalog.load_table((namespace, table))


def database_fields(props: dict[str, str]) -> dict[str, Any]:
    """Split namespace properties into Glue's Description / LocationUri / Parameters / time."""
    out: dict[str, Any] = {
        "Parameters": {k: v for k, v in props.items() if k not in _RESERVED},
        "CreateTime": float(props.get(CREATE_TIME, "0") or 0),
    }
    if "comment" in props:
        out["Description"] = props["comment"]
    if "location" in props:
        out["LocationUri"] = props["location"]
    return out
