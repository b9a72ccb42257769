"""DynamoDB as a zero-ETL source: existence and the prerequisites the Glue guide documents.

A DynamoDB source needs point-in-time recovery (PITR) and a resource policy that lets
``glue.amazonaws.com`` call ``ExportTableToPointInTime``, ``DescribeTable`` and ``DescribeExport``.
Checks run through a real boto3 DynamoDB client (the Lab's endpoint, or real AWS).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from ..core.policy import missing_actions
from ..core.prerequisites import Fix, Problem

GLUE_PRINCIPAL = {"Service": "glue.amazonaws.com"}
REQUIRED_ACTIONS = (
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeExport",
)


def table_exists(client: Any, table: str) -> bool:
    try:
        client.describe_table(TableName=table)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


def required_policy(table_arn: str, account: str, region: str) -> dict[str, Any]:
    """The resource policy the Glue zero-ETL guide asks for, scoped to this table."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowGlueZeroETLExport",
                "Effect": "Allow",
                "Principal": GLUE_PRINCIPAL,
                "Action": ["dynamodb:ExportTableToPointInTime", "dynamodb:DescribeTable"],
                "Resource": table_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "StringLike": {
                        "aws:SourceArn": f"arn:aws:glue:{region}:{account}:integration:*"
                    },
                },
            },
            {
                "Sid": "AllowGlueZeroETLDescribeExport",
                "Effect": "Allow",
                "Principal": GLUE_PRINCIPAL,
                "Action": "dynamodb:DescribeExport",
                "Resource": f"{table_arn}/export/*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "StringLike": {
                        "aws:SourceArn": f"arn:aws:glue:{region}:{account}:integration:*"
                    },
                },
            },
        ],
    }


def _pitr_enabled(client: Any, table: str) -> bool:
    desc = client.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    pitr = desc.get("PointInTimeRecoveryDescription", {})
    return bool(pitr.get("PointInTimeRecoveryStatus") == "ENABLED")


def _policy(client: Any, table_arn: str) -> str | None:
    try:
        return str(client.get_resource_policy(ResourceArn=table_arn)["Policy"])
    except client.exceptions.PolicyNotFoundException:
        return None
    except client.exceptions.ResourceNotFoundException:
        return None


def _policy_gaps(policy: str | None, table_arn: str) -> list[str]:
    # DescribeExport is authorized on the table's exports, the other two on the table itself.
    gaps = missing_actions(policy, GLUE_PRINCIPAL, REQUIRED_ACTIONS[:2], table_arn)
    gaps += missing_actions(policy, GLUE_PRINCIPAL, REQUIRED_ACTIONS[2:], f"{table_arn}/export/x")
    return gaps


def check_prerequisites(client: Any, table_arn: str, account: str, region: str) -> list[Problem]:
    """Every unmet DynamoDB prerequisite of the source table, each with its fix."""
    table = table_arn.split("table/", 1)[1]
    if not table_exists(client, table):
        return [
            Problem(
                "SourceNotFound",
                f"Source DynamoDB table '{table}' ({table_arn}) no longer exists. Re-create it, "
                "or delete this integration.",
            )
        ]
    problems: list[Problem] = []
    if not _pitr_enabled(client, table):
        params = {
            "TableName": table,
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        }
        problems.append(
            Problem(
                "SourcePointInTimeRecoveryDisabled",
                f"Point-in-time recovery (PITR) is disabled on DynamoDB table '{table}'. "
                "Zero-ETL exports need it: call dynamodb.update_continuous_backups(TableName="
                f"'{table}', PointInTimeRecoverySpecification={{'PointInTimeRecoveryEnabled': "
                "True}), or use fix-it-for-me.",
                Fix(
                    f"Enable point-in-time recovery on DynamoDB table '{table}'",
                    "dynamodb",
                    "UpdateContinuousBackups",
                    params,
                    partial(client.update_continuous_backups, **params),
                ),
            )
        )
    current = _policy(client, table_arn)
    gaps = _policy_gaps(current, table_arn)
    if gaps:
        params = {
            "ResourceArn": table_arn,
            "Policy": json.dumps(_merged_policy(current, table_arn, account, region)),
        }
        problems.append(
            Problem(
                "SourceResourcePolicyMissing",
                f"The resource policy of DynamoDB table '{table}' does not allow "
                f"glue.amazonaws.com to call {', '.join(gaps)}. Put a resource policy granting "
                "them (dynamodb.put_resource_policy), or use fix-it-for-me.",
                Fix(
                    f"Put a resource policy on DynamoDB table '{table}' allowing "
                    "glue.amazonaws.com to export and describe it",
                    "dynamodb",
                    "PutResourcePolicy",
                    params,
                    partial(client.put_resource_policy, **params),
                ),
            )
        )
    return problems


def _merged_policy(current: str | None, table_arn: str, account: str, region: str) -> Any:
    """The required statements added to the table's existing policy (never dropping others)."""
    wanted = required_policy(table_arn, account, region)
    if not current:
        return wanted
    try:
        doc = json.loads(current)
        keep = [
            s
            for s in doc.get("Statement", [])
            if s.get("Sid") not in {"AllowGlueZeroETLExport", "AllowGlueZeroETLDescribeExport"}
        ]
    except (ValueError, AttributeError):
        return wanted
    return {"Version": "2012-10-17", "Statement": keep + wanted["Statement"]}
