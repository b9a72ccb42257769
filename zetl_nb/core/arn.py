"""Amazon Resource Names: parsing, formatting and the resource kinds zero-ETL uses.

>>> arn = Arn.parse("arn:aws:dynamodb:us-east-1:123456789012:table/orders")
>>> arn.service, arn.resource_type, arn.resource_id
('dynamodb', 'table', 'orders')
>>> str(arn)
'arn:aws:dynamodb:us-east-1:123456789012:table/orders'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import validation

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)$"
)


@dataclass(frozen=True)
class Arn:
    """A parsed ARN. ``resource`` is everything after the account; ``resource_type`` and
    ``resource_id`` split it at the first ``/`` or ``:`` (``table/orders``, ``cluster:db1``)."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str, field: str = "Arn") -> Arn:
        """Parse ``text``; a malformed ARN raises a ``ValidationException`` naming ``field``."""
        # fullmatch: `$` alone would accept (and silently drop) a trailing newline.
        m = _ARN.fullmatch(text or "")
        if not m:
            raise validation(
                f"{field} '{text}' is not a valid ARN. Expected "
                "arn:aws:<service>:<region>:<account-id>:<resource>, e.g. "
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders."
            )
        return cls(**m.groupdict())

    @property
    def resource_type(self) -> str:
        return re.split(r"[/:]", self.resource, maxsplit=1)[0]

    @property
    def resource_id(self) -> str:
        parts = re.split(r"[/:]", self.resource, maxsplit=1)
        return parts[1] if len(parts) > 1 else ""

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def format_arn(service: str, region: str, account: str, resource: str) -> str:
    """Format an ARN in the ``aws`` partition."""
    return str(Arn("aws", service, region, account, resource))


def dynamodb_table_arn(region: str, account: str, table: str) -> str:
    return format_arn("dynamodb", region, account, f"table/{table}")


def rds_cluster_arn(region: str, account: str, name: str) -> str:
    return format_arn("rds", region, account, f"cluster:{name}")


def glue_database_arn(region: str, account: str, name: str) -> str:
    return format_arn("glue", region, account, f"database/{name}")


def glue_catalog_arn(region: str, account: str) -> str:
    return format_arn("glue", region, account, "catalog")


def glue_connection_arn(region: str, account: str, name: str) -> str:
    return format_arn("glue", region, account, f"connection/{name}")


def glue_integration_arn(region: str, account: str, integration_id: str) -> str:
    return format_arn("glue", region, account, f"integration:{integration_id}")


def rds_integration_arn(region: str, account: str, integration_id: str) -> str:
    return format_arn("rds", region, account, f"integration:{integration_id}")
