"""Prerequisite checks for an integration, as AWS performs them, and their fixes.

Target (Glue database): it exists, has a ``LocationUri``, has an integration resource property
with a ``RoleArn`` (CreateIntegrationResourceProperty), and the catalog's resource policy lets the
account create and ``glue.amazonaws.com`` authorize inbound integrations into it.
Source: per kind — DynamoDB (PITR, resource policy), a registered database, a Glue connection.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..core.arn import glue_catalog_arn
from ..core.policy import missing_actions
from ..core.prerequisites import Fix, Problem
from ..sources import dynamodb as ddb
from .resources import SourceRef, TargetRef, registered_database

if TYPE_CHECKING:
    from .control import ControlPlane

CATALOG_ACTIONS = ("glue:CreateInboundIntegration", "glue:AuthorizeInboundIntegration")


def default_role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/zetl-nb-zero-etl-target"


def check(cp: ControlPlane, source: SourceRef, target: TargetRef) -> list[Problem]:
    """Every unmet prerequisite of an integration from ``source`` to ``target``."""
    return check_source(cp, source) + check_target(cp, target)


def check_source(cp: ControlPlane, source: SourceRef) -> list[Problem]:
    if source.kind == "dynamodb":
        return ddb.check_prerequisites(cp.dynamodb(), source.arn, cp.account, cp.region)
    if source.kind == "rds" and registered_database(cp.store, source.name) is None:
        return [
            Problem(
                "SourceNotFound",
                f"Database cluster '{source.name}' is no longer "
                "registered with this Lab. Register it again with lab.add_database().",
            )
        ]
    if source.kind == "saas" and cp.store.get_doc("connections", source.name) is None:
        return [
            Problem(
                "SourceNotFound",
                f"Glue connection '{source.name}' no longer exists. "
                "Create it again with glue.create_connection().",
            )
        ]
    return []


def check_target(cp: ControlPlane, target: TargetRef) -> list[Problem]:
    if not cp.catalog.exists(target.namespace):
        return [
            Problem(
                "TargetNotFound",
                f"Target database '{target.namespace}' ({target.arn}) no longer exists. Create "
                f"it again with glue.create_database(DatabaseInput={{'Name': "
                f"'{target.namespace}', 'LocationUri': ...}}).",
            )
        ]
    problems = []
    if "location" not in cp.catalog.properties(target.namespace):
        problems.append(_location_problem(cp, target))
    prop = cp.store.get_doc("resource_properties", target.arn)
    if not prop or not prop.get("TargetProcessingProperties", {}).get("RoleArn"):
        problems.append(_resource_property_problem(cp, target, prop))
    policy = cp.store.get_doc("resource_policies", glue_catalog_arn(cp.region, cp.account))
    text = policy["PolicyInJson"] if policy else None
    gaps = missing_actions(
        text, {"Service": "glue.amazonaws.com", "AWS": _root(cp)}, CATALOG_ACTIONS[1:], target.arn
    )
    gaps = missing_actions(text, {"AWS": _root(cp)}, CATALOG_ACTIONS[:1], target.arn) + gaps
    if gaps:
        problems.append(_catalog_policy_problem(cp, target, text, gaps))
    return problems


def _root(cp: ControlPlane) -> str:
    return f"arn:aws:iam::{cp.account}:root"


def _location_problem(cp: ControlPlane, target: TargetRef) -> Problem:
    location = cp.catalog.default_location(target.namespace)
    params = {
        "Name": target.namespace,
        "DatabaseInput": {"Name": target.namespace, "LocationUri": location},
    }
    return Problem(
        "TargetLocationUriMissing",
        f"Target database '{target.namespace}' has no LocationUri; zero-ETL writes its Iceberg "
        f"tables there. Set one with glue.update_database(Name='{target.namespace}', "
        f"DatabaseInput={{'Name': '{target.namespace}', 'LocationUri': '{location}'}}), or use "
        "fix-it-for-me (the console's 'Fix target').",
        Fix(
            f"Set LocationUri of database '{target.namespace}' to {location}",
            "glue",
            "UpdateDatabase",
            params,
            lambda: cp.catalog.update_namespace(target.namespace, {"location": location}),
        ),
    )


def _resource_property_problem(
    cp: ControlPlane, target: TargetRef, existing: dict[str, Any] | None
) -> Problem:
    role = default_role_arn(cp.account)
    params = {"ResourceArn": target.arn, "TargetProcessingProperties": {"RoleArn": role}}

    def apply() -> None:
        doc = dict(existing or {})
        doc.setdefault("ResourceArn", target.arn)
        doc.setdefault("ResourcePropertyArn", resource_property_arn(cp, target.arn))
        doc["TargetProcessingProperties"] = {
            **doc.get("TargetProcessingProperties", {}),
            "RoleArn": role,
        }
        cp.store.put_doc("resource_properties", target.arn, doc)

    return Problem(
        "TargetResourcePropertyMissing",
        f"Target '{target.arn}' has no integration resource property with a RoleArn. Create one: "
        f"glue.create_integration_resource_property(ResourceArn='{target.arn}', "
        "TargetProcessingProperties={'RoleArn': 'arn:aws:iam::<account>:role/<role>'}), or use "
        "fix-it-for-me.",
        Fix(
            f"Create an integration resource property on {target.arn} with RoleArn {role}",
            "glue",
            "CreateIntegrationResourceProperty",
            params,
            apply,
        ),
    )


def resource_property_arn(cp: ControlPlane, resource_arn: str) -> str:
    return f"arn:aws:glue:{cp.region}:{cp.account}:integrationresourceproperty/{uuid.uuid4()}"


def catalog_policy_document(
    account: str, region: str, target_arn: str, current: str | None = None
) -> dict[str, Any]:
    """The Data Catalog policy zero-ETL needs for ``target_arn``, added to ``current``.

    The account may create inbound integrations and ``glue.amazonaws.com`` may authorize them,
    on the catalog and the target database — the guide's two statements.
    """
    catalog = glue_catalog_arn(region, account)
    root = f"arn:aws:iam::{account}:root"
    statements: list[Any] = []
    if current:
        try:
            statements = list(json.loads(current).get("Statement", []))
        except (ValueError, AttributeError):
            statements = []
    statements += [
        {
            "Sid": f"ZeroETLCreate{len(statements)}",
            "Effect": "Allow",
            "Principal": {"AWS": [root]},
            "Action": ["glue:CreateInboundIntegration"],
            "Resource": [catalog, target_arn],
        },
        {
            "Sid": f"ZeroETLAuthorize{len(statements)}",
            "Effect": "Allow",
            "Principal": {"Service": ["glue.amazonaws.com"]},
            "Action": ["glue:AuthorizeInboundIntegration"],
            "Resource": [catalog, target_arn],
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _catalog_policy_problem(
    cp: ControlPlane, target: TargetRef, current: str | None, gaps: list[str]
) -> Problem:
    catalog = glue_catalog_arn(cp.region, cp.account)
    policy = json.dumps(catalog_policy_document(cp.account, cp.region, target.arn, current))
    params = {"ResourceArn": catalog, "PolicyInJson": policy}
    return Problem(
        "TargetCatalogPolicyMissing",
        f"The Data Catalog resource policy does not allow {', '.join(gaps)} on {target.arn}. "
        "Put a catalog policy allowing your account glue:CreateInboundIntegration and "
        "glue.amazonaws.com glue:AuthorizeInboundIntegration (glue.put_resource_policy), or use "
        "fix-it-for-me.",
        Fix(
            f"Put a Data Catalog resource policy authorizing inbound integrations into "
            f"{target.arn}",
            "glue",
            "PutResourcePolicy",
            params,
            lambda: put_policy(cp, catalog, policy),
        ),
    )


def put_policy(cp: ControlPlane, resource_arn: str, policy: str) -> dict[str, Any]:
    """Store a Glue resource policy; returns its record (PolicyHash, times)."""
    old = cp.store.get_doc("resource_policies", resource_arn)
    now = time.time()
    doc = {
        "PolicyInJson": policy,
        "PolicyHash": uuid.uuid4().hex,
        "CreateTime": old["CreateTime"] if old else now,
        "UpdateTime": now,
    }
    cp.store.put_doc("resource_policies", resource_arn, doc)
    return doc
