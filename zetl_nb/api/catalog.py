"""The Glue Data Catalog subset the labs need, over the local Iceberg catalog.

A Glue database is an Iceberg namespace; a Glue table is an Iceberg table (``TableType``
``EXTERNAL_TABLE`` with ``Parameters.table_type = ICEBERG``, as Glue shows Iceberg tables).
Connections and resource policies are kept in the control store.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

from ..core.arn import glue_catalog_arn
from ..core.errors import AwsError, not_found, validation
from ..core.policy import parse_policy
from ..engine import prerequisites
from ..engine.control import ControlPlane
from ..target.catalog import database_fields
from ..target.deadletters import SYSTEM_NAMESPACE
from .shapes import paginate, timestamp

_DB_NAME = re.compile(r"[a-z0-9_-]{1,255}")
_ICEBERG_TO_HIVE = {
    "long": "bigint",
    "int": "int",
    "string": "string",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "binary": "binary",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "uuid": "string",
    "time": "string",
}


class CatalogOperations:
    """Glue Data Catalog operations; mixed into :class:`~zetl_nb.api.glue.GlueService`."""

    CATALOG_OPERATIONS = frozenset(
        {
            "CreateDatabase",
            "GetDatabase",
            "GetDatabases",
            "UpdateDatabase",
            "DeleteDatabase",
            "GetTable",
            "GetTables",
            "CreateConnection",
            "GetConnection",
            "GetConnections",
            "DeleteConnection",
            "PutResourcePolicy",
            "GetResourcePolicy",
            "DeleteResourcePolicy",
        }
    )

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    # -- databases ----------------------------------------------------------------------------
    def _database(self, name: str) -> str:
        ns = name.lower()
        if not self.cp.catalog.exists(ns):
            raise not_found(
                f"Database '{name}' not found. Create it with "
                "glue.create_database(DatabaseInput={'Name': ...})."
            )
        return ns

    def _database_dict(self, ns: str) -> dict[str, Any]:
        fields = database_fields(self.cp.catalog.properties(ns))
        fields["CreateTime"] = timestamp(fields["CreateTime"])
        return {"Name": ns, "CatalogId": self.cp.account, **fields}

    def op_create_database(self, p: dict[str, Any]) -> dict[str, Any]:
        db = p["DatabaseInput"]
        name = db["Name"].lower()  # Glue stores database names in lower case
        if not _DB_NAME.fullmatch(name):
            raise validation(
                f"DatabaseInput.Name '{db['Name']}' is invalid: use letters, digits, "
                "underscores and hyphens (Glue stores it in lower case)."
            )
        if self.cp.catalog.exists(name):
            raise AwsError("AlreadyExistsException", f"Database '{name}' already exists.")
        self.cp.catalog.create_namespace(
            name, db.get("Description"), db.get("LocationUri"), db.get("Parameters")
        )
        self.cp.on_change()
        return {}

    def op_get_database(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"Database": self._database_dict(self._database(p["Name"]))}

    def op_get_databases(self, p: dict[str, Any]) -> dict[str, Any]:
        # zetl_nb's own Lab-wide namespace (status tables) is not a database users made.
        names = [n for n in self.cp.catalog.namespaces() if n != SYSTEM_NAMESPACE]
        page, token = paginate(names, p.get("NextToken"), p.get("MaxResults"), hi=100)
        out: dict[str, Any] = {"DatabaseList": [self._database_dict(n) for n in page]}
        if token:
            out["NextToken"] = token
        return out

    def op_update_database(self, p: dict[str, Any]) -> dict[str, Any]:
        ns = self._database(p["Name"])
        db = p["DatabaseInput"]
        updates = dict(db.get("Parameters") or {})
        if "Description" in db:
            updates["comment"] = db["Description"]
        if "LocationUri" in db:
            updates["location"] = db["LocationUri"]
        self.cp.catalog.update_namespace(ns, updates)
        self.cp.on_change()
        return {}

    def op_delete_database(self, p: dict[str, Any]) -> dict[str, Any]:
        ns = self._database(p["Name"])
        from pyiceberg.exceptions import NamespaceNotEmptyError, NoSuchTableError

        cat = self.cp.catalog.catalog
        for attempt in range(5):
            # Glue deletes a database's tables with it, and so the system namespace nested in
            # it (dead letters). A replicating integration may create a table meanwhile: again.
            for nested in [(ns,), *(tuple(n) for n in cat.list_namespaces((ns,)))]:
                for ident in cat.list_tables(nested):
                    with contextlib.suppress(NoSuchTableError):
                        cat.drop_table(tuple(ident))
                if nested != (ns,):
                    with contextlib.suppress(NamespaceNotEmptyError):
                        cat.drop_namespace(nested)
            try:
                self.cp.catalog.drop_namespace(ns)
                break
            except NamespaceNotEmptyError:
                if attempt == 4:
                    raise
                time.sleep(0.05)
        self.cp.on_change()
        return {}

    # -- tables -------------------------------------------------------------------------------
    def _table_dict(self, ns: str, name: str) -> dict[str, Any]:
        table = self.cp.catalog.load_table(ns, name)
        meta = table.metadata
        columns = [
            {"Name": f.name, "Type": _hive_type(f.field_type)} for f in table.schema().fields
        ]
        return {
            "Name": name,
            "DatabaseName": ns,
            "CatalogId": self.cp.account,
            "CreateTime": timestamp(meta.last_updated_ms / 1000),
            "UpdateTime": timestamp(meta.last_updated_ms / 1000),
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"table_type": "ICEBERG", "metadata_location": table.metadata_location},
            "StorageDescriptor": {"Columns": columns, "Location": meta.location},
        }

    def op_get_table(self, p: dict[str, Any]) -> dict[str, Any]:
        ns = self._database(p["DatabaseName"])
        name = p["Name"].lower()
        if name not in self.cp.catalog.tables(ns):
            raise not_found(f"Table '{p['Name']}' not found in database '{ns}'.")
        return {"Table": self._table_dict(ns, name)}

    def op_get_tables(self, p: dict[str, Any]) -> dict[str, Any]:
        ns = self._database(p["DatabaseName"])
        names = self.cp.catalog.tables(ns)
        if p.get("Expression"):
            rx = re.compile(p["Expression"].replace("*", ".*"))
            names = [n for n in names if rx.fullmatch(n)]
        page, token = paginate(names, p.get("NextToken"), p.get("MaxResults"), hi=100)
        out: dict[str, Any] = {"TableList": [self._table_dict(ns, n) for n in page]}
        if token:
            out["NextToken"] = token
        return out

    # -- connections --------------------------------------------------------------------------
    def op_create_connection(self, p: dict[str, Any]) -> dict[str, Any]:
        c = p["ConnectionInput"]
        if self.cp.store.get_doc("connections", c["Name"]) is not None:
            raise AwsError("AlreadyExistsException", f"Connection '{c['Name']}' already exists.")
        now = time.time()
        doc = {**c, "CreationTime": now, "LastUpdatedTime": now, "Status": "READY"}
        self.cp.store.put_doc("connections", c["Name"], doc)
        self.cp.on_change()
        return {"CreateConnectionStatus": "READY"}

    def _connection_dict(self, doc: dict[str, Any], hide_password: bool) -> dict[str, Any]:
        out = {
            k: v
            for k, v in doc.items()
            if k
            in (
                "Name",
                "Description",
                "ConnectionType",
                "MatchCriteria",
                "ConnectionProperties",
                "PhysicalConnectionRequirements",
                "Status",
                "AuthenticationConfiguration",
            )
        }
        out["CreationTime"] = timestamp(doc["CreationTime"])
        out["LastUpdatedTime"] = timestamp(doc["LastUpdatedTime"])
        if hide_password:
            out["ConnectionProperties"] = {
                k: v for k, v in out["ConnectionProperties"].items() if k != "PASSWORD"
            }
        return out

    def op_get_connection(self, p: dict[str, Any]) -> dict[str, Any]:
        doc = self.cp.store.get_doc("connections", p["Name"])
        if doc is None:
            raise not_found(
                f"Connection '{p['Name']}' not found. Create it with "
                "glue.create_connection(ConnectionInput={...})."
            )
        return {"Connection": self._connection_dict(doc, bool(p.get("HidePassword")))}

    def op_get_connections(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = [d for _, d in self.cp.store.docs("connections")]
        wanted = (p.get("Filter") or {}).get("ConnectionType")
        if wanted:
            docs = [d for d in docs if d.get("ConnectionType") == wanted]
        page, token = paginate(docs, p.get("NextToken"), p.get("MaxResults"), hi=1000)
        out: dict[str, Any] = {
            "ConnectionList": [self._connection_dict(d, bool(p.get("HidePassword"))) for d in page]
        }
        if token:
            out["NextToken"] = token
        return out

    def op_delete_connection(self, p: dict[str, Any]) -> dict[str, Any]:
        if not self.cp.store.delete_doc("connections", p["ConnectionName"]):
            raise not_found(f"Connection '{p['ConnectionName']}' not found.")
        self.cp.on_change()
        return {}

    # -- resource policy ----------------------------------------------------------------------
    def op_put_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn") or glue_catalog_arn(self.cp.region, self.cp.account)
        try:
            parse_policy(p["PolicyInJson"])
        except (ValueError, TypeError) as exc:
            raise AwsError(
                "InvalidInputException", f"PolicyInJson is not a valid policy document: {exc}."
            ) from None
        old = self.cp.store.get_doc("resource_policies", arn)
        cond = p.get("PolicyExistsCondition", "NONE")
        if (cond == "MUST_EXIST" and old is None) or (cond == "NOT_EXIST" and old is not None):
            raise AwsError(
                "ConditionCheckFailureException",
                f"PolicyExistsCondition {cond} does not hold for {arn}.",
            )
        if p.get("PolicyHashCondition") and (
            old is None or old["PolicyHash"] != p["PolicyHashCondition"]
        ):
            raise AwsError(
                "ConditionCheckFailureException",
                "PolicyHashCondition does not match the current policy's hash; "
                "get_resource_policy returns the current PolicyHash.",
            )
        doc = prerequisites.put_policy(self.cp, arn, p["PolicyInJson"])
        self.cp.on_change()
        return {"PolicyHash": doc["PolicyHash"]}

    def op_get_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn") or glue_catalog_arn(self.cp.region, self.cp.account)
        doc = self.cp.store.get_doc("resource_policies", arn)
        if doc is None:
            raise not_found(
                f"No resource policy is set on {arn}. Set one with "
                "glue.put_resource_policy(PolicyInJson=...)."
            )
        return {
            "PolicyInJson": doc["PolicyInJson"],
            "PolicyHash": doc["PolicyHash"],
            "CreateTime": timestamp(doc["CreateTime"]),
            "UpdateTime": timestamp(doc["UpdateTime"]),
        }

    def op_delete_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn") or glue_catalog_arn(self.cp.region, self.cp.account)
        doc = self.cp.store.get_doc("resource_policies", arn)
        if doc is None:
            raise not_found(f"No resource policy is set on {arn}: nothing to delete.")
        if p.get("PolicyHashCondition") and doc["PolicyHash"] != p["PolicyHashCondition"]:
            raise AwsError(
                "ConditionCheckFailureException",
                "PolicyHashCondition does not match the current policy's hash; "
                "get_resource_policy returns the current PolicyHash.",
            )
        self.cp.store.delete_doc("resource_policies", arn)
        self.cp.on_change()  # integrations re-check their prerequisites
        return {}


def _hive_type(t: Any) -> str:
    from pyiceberg.types import DecimalType, ListType, MapType, StructType

    if isinstance(t, DecimalType):
        return f"decimal({t.precision},{t.scale})"
    if isinstance(t, ListType):
        return f"array<{_hive_type(t.element_type)}>"
    if isinstance(t, MapType):
        return f"map<{_hive_type(t.key_type)},{_hive_type(t.value_type)}>"
    if isinstance(t, StructType):
        return "struct<" + ",".join(f"{f.name}:{_hive_type(f.field_type)}" for f in t.fields) + ">"
    return _ICEBERG_TO_HIVE.get(str(t), str(t))


def policy_json(doc: dict[str, Any]) -> str:
    """Serialize a policy dict the way AWS returns it (compact JSON)."""
    return json.dumps(doc, separators=(",", ":"))
