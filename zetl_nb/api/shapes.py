"""Integration records as AWS response dicts, and Marker/MaxRecords pagination."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..core.errors import validation
from ..core.states import IntegrationState
from ..engine.store import Integration

T = TypeVar("T")


def timestamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def glue_integration(integ: Integration) -> dict[str, Any]:
    """Glue's ``Integration`` shape."""
    out: dict[str, Any] = {
        "SourceArn": integ.source_arn,
        "TargetArn": integ.target_arn,
        "IntegrationName": integ.name,
        "IntegrationArn": integ.arn,
        "Status": integ.status,
        "CreateTime": timestamp(integ.create_time),
        "Errors": list(integ.errors),
    }
    _optional(out, integ, kms_key="KmsKeyId")
    config: dict[str, Any] = {}
    if integ.refresh_interval is not None:
        config["RefreshInterval"] = integ.refresh_interval
    if integ.source_properties:
        config["SourceProperties"] = dict(integ.source_properties)
    if integ.continuous_sync is not None:
        config["ContinuousSync"] = integ.continuous_sync
    if config:
        out["IntegrationConfig"] = config
    return out


def rds_integration(integ: Integration) -> dict[str, Any]:
    """RDS's ``Integration`` shape: lower-case statuses, ``KMSKeyId``, Errors as RDS spells it."""
    out: dict[str, Any] = {
        "SourceArn": integ.source_arn,
        "TargetArn": integ.target_arn,
        "IntegrationName": integ.name,
        "IntegrationArn": integ.arn,
        "Status": IntegrationState(integ.status).rds,
        "CreateTime": timestamp(integ.create_time),
        "Errors": [
            {"ErrorCode": e["ErrorCode"], "ErrorMessage": e["ErrorMessage"]} for e in integ.errors
        ],
    }
    _optional(out, integ, kms_key="KMSKeyId")
    return out


def _optional(out: dict[str, Any], integ: Integration, kms_key: str) -> None:
    if integ.description is not None:
        out["Description"] = integ.description
    if integ.data_filter is not None:
        out["DataFilter"] = integ.data_filter
    if integ.kms_key_id is not None:
        out[kms_key] = integ.kms_key_id
    if integ.additional_encryption_context:
        out["AdditionalEncryptionContext"] = dict(integ.additional_encryption_context)
    if integ.tags:
        out["Tags"] = [dict(t) for t in integ.tags]


def paginate(
    items: Sequence[T],
    marker: str | None,
    max_records: int | None,
    default: int = 100,
    lo: int = 1,
    hi: int = 100,
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the Marker of the next (None on the last page)."""
    size = default if max_records is None else max_records
    if not lo <= size <= hi:
        raise validation(f"MaxRecords must be between {lo} and {hi}; got {size}.")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
        except ValueError:
            raise validation(
                "Marker is not one this endpoint returned; pass the Marker from the previous "
                "response unchanged, or omit it to start from the beginning."
            ) from None
    page = list(items[start : start + size])
    nxt = start + size
    return page, (
        base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < len(items) else None
    )
