"""A real Lab for the UI tests: the embedded DynamoDB with the sample tables, Glue databases,
and helpers making the same API calls a notebook would (the widgets' states are checked
against those calls).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

from zetl_nb import Lab
from zetl_nb.sample import load_dynamodb_samples

ACCOUNT, REGION = "123456789012", "us-east-1"
PRODUCTS_ROWS = 200  # items in the sample `products` table


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def open_lab(home: Path) -> Lab:
    """A Lab whose prerequisite checks and 15-minute refreshes run in (sub)seconds."""
    lab = Lab(home, prerequisite_recheck_seconds=0.2, time_scale=60)
    load_dynamodb_samples(lab, tables=["products"])
    return lab


def products_arn(lab: Lab) -> str:
    return str(lab.client("dynamodb").describe_table(TableName="products")["Table"]["TableArn"])


def database_arn(name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{name}"


def new_database(lab: Lab, ready: bool = True) -> str:
    """A new Glue database; ``ready``: with the LocationUri, role and catalog policy zero-ETL
    needs (so an integration into it goes ACTIVE without fixes). Returns its ARN."""
    name = uid("db_")
    glue = lab.client("glue")
    db: dict[str, Any] = {"Name": name}
    if ready:
        db["LocationUri"] = f"file://{lab.home}/warehouse/{name}"
    glue.create_database(DatabaseInput=db)
    arn = database_arn(name)
    if ready:
        glue.create_integration_resource_property(
            ResourceArn=arn,
            TargetProcessingProperties={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/zetl"},
        )
        allow_inbound_integrations(lab)
    return arn


def allow_inbound_integrations(lab: Lab) -> None:
    """The Data Catalog policy letting the account create integrations into any database."""
    resources = [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/*",
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]},
                "Action": "glue:CreateInboundIntegration",
                "Resource": resources,
            },
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "glue:AuthorizeInboundIntegration",
                "Resource": resources,
            },
        ],
    }
    lab.client("glue").put_resource_policy(PolicyInJson=json.dumps(policy))


def integrate(lab: Lab, target_arn: str, name: str | None = None, **params: Any) -> str:
    """An integration from `products` into ``target_arn`` through the Glue API, loaded."""
    arn: str = lab.client("glue").create_integration(
        IntegrationName=name or uid("products-"),
        SourceArn=products_arn(lab),
        TargetArn=target_arn,
        **params,
    )["IntegrationArn"]
    lab.wait_for_status(arn, "ACTIVE", timeout=30)
    lab.wait(arn, timeout=60)
    return arn


def api_message(call: Any, **params: Any) -> str:
    """The message of the error the real API call raises (it must raise)."""
    try:
        call(**params)
    except Exception as exc:
        response = getattr(exc, "response", None)
        if response is not None:
            return str(response["Error"]["Message"])
        return str(exc)
    raise AssertionError(f"{call.__name__}({params}) was accepted; expected an error")


def delete_all(lab: Lab) -> None:
    """Delete every integration (both faces) and wait until they are gone."""
    for service in ("glue", "rds"):
        client = lab.client(service)
        for integ in client.describe_integrations()["Integrations"]:
            with contextlib.suppress(client.exceptions.InvalidIntegrationStateFault):
                client.delete_integration(IntegrationIdentifier=integ["IntegrationArn"])
            lab.wait_for_status(integ["IntegrationArn"], "deleted", timeout=30)
