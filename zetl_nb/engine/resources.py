"""What an integration's SourceArn and TargetArn point at, and whether those resources exist.

Source forms: a DynamoDB table (``arn:aws:dynamodb:R:A:table/NAME``), an RDS cluster or instance
registered with the Lab (``arn:aws:rds:R:A:cluster:NAME``, ``...:db:NAME``), or a Glue connection
for SaaS sources (``arn:aws:glue:R:A:connection/NAME``). Target forms: a Glue database
(``arn:aws:glue:R:A:database/NAME``) or an S3 Tables catalog
(``arn:aws:glue:R:A:catalog/s3tablescatalog/BUCKET``), which maps to the local namespace
``s3tablescatalog_BUCKET``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.arn import Arn
from ..core.errors import AwsError, validation

SOURCE_FORMS = (
    "arn:aws:dynamodb:<region>:<account>:table/<table>, "
    "arn:aws:rds:<region>:<account>:cluster:<cluster>, or "
    "arn:aws:glue:<region>:<account>:connection/<connection>"
)
TARGET_FORMS = (
    "arn:aws:glue:<region>:<account>:database/<database> or "
    "arn:aws:glue:<region>:<account>:catalog/s3tablescatalog/<bucket>"
)


@dataclass(frozen=True)
class SourceRef:
    """A parsed SourceArn. ``kind`` is ``dynamodb``, ``rds`` or ``saas``."""

    arn: str
    kind: str
    name: str

    @property
    def default_refresh_interval(self) -> str | None:
        """AWS's default RefreshInterval (minutes): 15 for DynamoDB, 60 for SaaS."""
        return {"dynamodb": "15", "saas": "60"}.get(self.kind)


@dataclass(frozen=True)
class TargetRef:
    """A parsed TargetArn and the local Iceberg namespace it maps to."""

    arn: str
    kind: str  # "database" or "s3tables"
    namespace: str


def _same_place(arn: Arn, field: str, account: str, region: str) -> None:
    if arn.account != account or arn.region != region:
        raise validation(
            f"{field} '{arn}' is in account {arn.account or '-'} / region {arn.region or '-'}, "
            f"but this Lab is account {account} in {region}. Use an ARN with "
            f":{region}:{account}: (or set account_id/region in zetl.toml)."
        )


def parse_source(text: str, account: str, region: str) -> SourceRef:
    """Parse a SourceArn; ValidationException names the accepted forms."""
    arn = Arn.parse(text, "SourceArn")
    ref: SourceRef | None = None
    if arn.service == "dynamodb" and arn.resource.startswith("table/") and arn.resource_id:
        if "/" not in arn.resource_id:
            ref = SourceRef(text, "dynamodb", arn.resource_id)
    elif arn.service == "rds" and arn.resource_type in {"cluster", "db"} and arn.resource_id:
        ref = SourceRef(text, "rds", arn.resource_id)
    elif arn.service == "glue" and arn.resource_type == "connection" and arn.resource_id:
        ref = SourceRef(text, "saas", arn.resource_id)
    if ref is None:
        raise validation(f"SourceArn '{text}' is not a supported source. Use {SOURCE_FORMS}.")
    _same_place(arn, "SourceArn", account, region)
    return ref


def parse_target(text: str, account: str, region: str) -> TargetRef:
    """Parse a TargetArn; ValidationException names the accepted forms."""
    arn = Arn.parse(text, "TargetArn")
    ref: TargetRef | None = None
    if arn.service == "glue" and arn.resource_type == "database" and arn.resource_id:
        if re.fullmatch(r"[^/]+", arn.resource_id):
            ref = TargetRef(text, "database", arn.resource_id)
    elif arn.service == "glue":
        m = re.fullmatch(r"catalog/s3tablescatalog/([a-z0-9][a-z0-9-]{1,61}[a-z0-9])", arn.resource)
        if m:
            ref = TargetRef(text, "s3tables", f"s3tablescatalog_{m.group(1).replace('-', '_')}")
    if ref is None:
        raise validation(f"TargetArn '{text}' is not a supported target. Use {TARGET_FORMS}.")
    _same_place(arn, "TargetArn", account, region)
    return ref


def source_missing(code: str, source: SourceRef, fix: str) -> AwsError:
    kind = {"dynamodb": "DynamoDB table", "rds": "database cluster", "saas": "Glue connection"}
    return AwsError(
        code, f"Source {kind[source.kind]} '{source.name}' ({source.arn}) was not found. {fix}"
    )


def registered_database(store: Any, name: str) -> dict[str, Any] | None:
    """The Lab's record of relational database ``name`` (embedded or added by URL)."""
    doc: dict[str, Any] | None = store.get_doc("databases", name)
    return doc
