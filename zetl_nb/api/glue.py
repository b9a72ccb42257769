"""Glue's zero-ETL operations: integrations, table properties and resource properties.

The Data Catalog subset (databases, tables, connections, resource policy) is in
:mod:`zetl_nb.api.catalog`; :class:`GlueService` answers both.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.arn import Arn
from ..core.errors import AwsError, not_found, validation
from ..engine import prerequisites
from ..engine.control import GLUE, ControlPlane
from ..transform.specs import validate_target_table_config
from .catalog import CatalogOperations
from .shapes import glue_integration, paginate

_ROLE = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_KMS_ARN = re.compile(r"arn:aws:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+")
_BUS_ARN = re.compile(r"arn:aws:events:[a-z0-9-]+:\d{12}:event-bus/[\w.-]+")
_INTEGRATION_FILTERS = {"Status", "IntegrationName", "SourceArn"}
_PROPERTY_FILTERS = {"SourceArn", "TargetArn", "ResourceArn"}


class GlueService(CatalogOperations):
    """Server side of ``lab.client("glue")`` and of the Glue face of ``zetl-nb serve``."""

    service_name = "glue"
    OPERATIONS = (
        frozenset(
            {
                "CreateIntegration",
                "ModifyIntegration",
                "DeleteIntegration",
                "DescribeIntegrations",
                "DescribeInboundIntegrations",
                "CreateIntegrationTableProperties",
                "UpdateIntegrationTableProperties",
                "DeleteIntegrationTableProperties",
                "GetIntegrationTableProperties",
                "CreateIntegrationResourceProperty",
                "UpdateIntegrationResourceProperty",
                "DeleteIntegrationResourceProperty",
                "GetIntegrationResourceProperty",
                "ListIntegrationResourceProperties",
            }
        )
        | CatalogOperations.CATALOG_OPERATIONS
    )

    def __init__(self, cp: ControlPlane) -> None:
        super().__init__(cp)

    def supports(self, operation: str) -> bool:
        return operation in self.OPERATIONS

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation not in self.OPERATIONS:
            raise AwsError(
                "UnknownOperationException", f"zetl_nb does not implement Glue {operation}."
            )
        method = getattr(self, "op_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        result: dict[str, Any] = method(params)
        return result

    # -- integrations -------------------------------------------------------------------------
    def op_create_integration(self, p: dict[str, Any]) -> dict[str, Any]:
        return glue_integration(self.cp.create(GLUE, p))

    def op_modify_integration(self, p: dict[str, Any]) -> dict[str, Any]:
        return glue_integration(self.cp.modify(GLUE, p))

    def op_delete_integration(self, p: dict[str, Any]) -> dict[str, Any]:
        out = glue_integration(self.cp.delete(GLUE, p["IntegrationIdentifier"]))
        out.pop("IntegrationConfig", None)  # DeleteIntegration's output has no IntegrationConfig
        return out

    def op_describe_integrations(self, p: dict[str, Any]) -> dict[str, Any]:
        if "IntegrationIdentifier" in p:
            items = [self.cp.find(p["IntegrationIdentifier"], GLUE)]
        else:
            items = self.cp.integrations(GLUE)
        for f in p.get("Filters") or []:
            items = _filter(items, f)
        page, marker = paginate(items, p.get("Marker"), p.get("MaxRecords"))
        out: dict[str, Any] = {"Integrations": [glue_integration(i) for i in page]}
        if marker:
            out["Marker"] = marker
        return out

    def op_describe_inbound_integrations(self, p: dict[str, Any]) -> dict[str, Any]:
        items = self.cp.integrations()  # inbound to a target: both faces' integrations
        if "IntegrationArn" in p:
            items = [self.cp.find(p["IntegrationArn"])]
        if "TargetArn" in p:
            if not any(i.target_arn == p["TargetArn"] for i in self.cp.integrations()):
                self._target_namespace(p["TargetArn"])  # raises if the target is unknown
            items = [i for i in items if i.target_arn == p["TargetArn"]]
        page, marker = paginate(items, p.get("Marker"), p.get("MaxRecords"))
        keep = (
            "SourceArn",
            "TargetArn",
            "IntegrationArn",
            "Status",
            "CreateTime",
            "IntegrationConfig",
            "Errors",
        )
        out: dict[str, Any] = {
            "InboundIntegrations": [
                {k: v for k, v in glue_integration(i).items() if k in keep} for i in page
            ]
        }
        if marker:
            out["Marker"] = marker
        return out

    def _target_namespace(self, arn: str) -> str:
        from ..engine.resources import parse_target

        target = parse_target(arn, self.cp.account, self.cp.region)
        if not self.cp.catalog.exists(target.namespace):
            raise AwsError("TargetResourceNotFound", f"Target '{arn}' does not exist.", 404)
        return target.namespace

    # -- table properties ---------------------------------------------------------------------
    def _table_key(self, p: dict[str, Any]) -> tuple[str, str]:
        arn, table = p["ResourceArn"], p["TableName"]
        self._check_resource(arn)
        return arn, table

    def _table_doc(self, p: dict[str, Any]) -> dict[str, Any]:
        if "SourceTableConfig" not in p and "TargetTableConfig" not in p:
            raise validation("Give SourceTableConfig, TargetTableConfig or both.")
        target = p.get("TargetTableConfig") or {}
        validate_target_table_config(target)
        source = p.get("SourceTableConfig") or {}
        for i, col in enumerate(source.get("PrimaryKey") or []):
            if not col.strip():
                raise validation(f"SourceTableConfig.PrimaryKey[{i}] is blank.")
        return {k: p[k] for k in ("SourceTableConfig", "TargetTableConfig") if k in p}

    def op_create_integration_table_properties(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, table = self._table_key(p)
        if self.cp.store.get_table_properties(arn, table) is not None:
            raise validation(
                f"Table properties for '{table}' on {arn} already exist; change them with "
                "update_integration_table_properties."
            )
        self.cp.store.put_table_properties(arn, table, self._table_doc(p))
        return {}

    def op_update_integration_table_properties(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, table = self._table_key(p)
        old = self.cp.store.get_table_properties(arn, table)
        if old is None:
            raise _no_table_properties(arn, table)
        self.cp.store.put_table_properties(arn, table, {**old, **self._table_doc(p)})
        return {}

    def op_delete_integration_table_properties(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, table = self._table_key(p)
        if not self.cp.store.delete_table_properties(arn, table):
            raise _no_table_properties(arn, table)
        return {}

    def op_get_integration_table_properties(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, table = self._table_key(p)
        doc = self.cp.store.get_table_properties(arn, table)
        if doc is None:
            raise _no_table_properties(arn, table)
        return {"ResourceArn": arn, "TableName": table, **doc}

    # -- resource properties ------------------------------------------------------------------
    def _check_resource(self, arn: str) -> str:
        """``source`` or ``target``: what kind of integration resource ``arn`` is."""
        from ..engine.resources import parse_source, parse_target

        parsed = Arn.parse(arn, "ResourceArn")
        if parsed.service == "glue" and parsed.resource_type in {"database", "catalog"}:
            self._target_namespace(arn) if parsed.resource_type == "database" else parse_target(
                arn, self.cp.account, self.cp.region
            )
            return "target"
        parse_source(arn, self.cp.account, self.cp.region)
        return "source"

    def _property_doc(self, p: dict[str, Any], kind: str) -> dict[str, Any]:
        src, tgt = p.get("SourceProcessingProperties"), p.get("TargetProcessingProperties")
        if kind == "target" and src:
            raise validation(
                "SourceProcessingProperties apply to a source ARN; this ResourceArn "
                "is a target. Use TargetProcessingProperties."
            )
        if kind == "source" and tgt:
            raise validation(
                "TargetProcessingProperties apply to a target ARN; this ResourceArn "
                "is a source. Use SourceProcessingProperties."
            )
        for where, props in (
            ("SourceProcessingProperties", src),
            ("TargetProcessingProperties", tgt),
        ):
            _check_processing(where, props or {})
        return {
            k: dict(p[k])
            for k in ("SourceProcessingProperties", "TargetProcessingProperties")
            if k in p
        }

    def op_create_integration_resource_property(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        doc = self._property_doc(p, self._check_resource(arn))
        if self.cp.store.get_doc("resource_properties", arn) is not None:
            raise AwsError(
                "ConflictException",
                f"A resource property for {arn} already exists; "
                "change it with update_integration_resource_property.",
                409,
            )
        doc = {
            "ResourceArn": arn,
            "ResourcePropertyArn": prerequisites.resource_property_arn(self.cp, arn),
            **doc,
        }
        self.cp.store.put_doc("resource_properties", arn, doc)
        self.cp.on_change()
        return doc

    def op_update_integration_resource_property(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        doc = self._property_doc(p, self._check_resource(arn))
        old = self._resource_property(arn)
        merged = {**old, **doc}
        self.cp.store.put_doc("resource_properties", arn, merged)
        self.cp.on_change()
        return merged

    def op_delete_integration_resource_property(self, p: dict[str, Any]) -> dict[str, Any]:
        self._resource_property(p["ResourceArn"])
        self.cp.store.delete_doc("resource_properties", p["ResourceArn"])
        self.cp.on_change()
        return {}

    def op_get_integration_resource_property(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._resource_property(p["ResourceArn"])

    def op_list_integration_resource_properties(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = [d for _, d in self.cp.store.docs("resource_properties")]
        for f in p.get("Filters") or []:
            if f.get("Name") not in _PROPERTY_FILTERS:
                raise validation(
                    f"Filter name '{f.get('Name')}' is not supported; use one of "
                    f"{', '.join(sorted(_PROPERTY_FILTERS))}."
                )
            docs = [d for d in docs if d["ResourceArn"] in (f.get("Values") or [])]
        page, marker = paginate(docs, p.get("Marker"), p.get("MaxRecords"))
        out: dict[str, Any] = {"IntegrationResourcePropertyList": page}
        if marker:
            out["Marker"] = marker
        return out

    def _resource_property(self, arn: str) -> dict[str, Any]:
        doc = self.cp.store.get_doc("resource_properties", arn)
        if doc is None:
            raise not_found(
                f"No integration resource property exists for {arn}. Create one "
                "with create_integration_resource_property."
            )
        return doc


def _filter(items: list[Any], f: dict[str, Any]) -> list[Any]:
    name, values = f.get("Name"), list(f.get("Values") or [])
    if name not in _INTEGRATION_FILTERS:
        raise validation(
            f"Filter name '{name}' is not supported; use one of "
            f"{', '.join(sorted(_INTEGRATION_FILTERS))}."
        )
    if name == "IntegrationName" and len(values) != 1:
        raise validation("The IntegrationName filter takes exactly one value.")
    attr = {"Status": "status", "IntegrationName": "name", "SourceArn": "source_arn"}[name]
    return [i for i in items if getattr(i, attr) in values]


def _check_processing(where: str, props: dict[str, Any]) -> None:
    checks = {
        "RoleArn": (_ROLE, "arn:aws:iam::123456789012:role/my-zero-etl-role"),
        "KmsArn": (_KMS_ARN, "arn:aws:kms:us-east-1:123456789012:key/<key-id>"),
        "EventBusArn": (_BUS_ARN, "arn:aws:events:us-east-1:123456789012:event-bus/default"),
    }
    for key, (rx, example) in checks.items():
        if key in props and not rx.fullmatch(props[key]):
            raise validation(f"{where}.{key} '{props[key]}' is not a valid ARN; e.g. {example}.")


def _no_table_properties(arn: str, table: str) -> AwsError:
    return not_found(
        f"No integration table properties for table '{table}' on {arn}. Create "
        "them with create_integration_table_properties."
    )
