"""The API calls a form will make, as data: shown on review, made on create.

A :class:`Call` is what a notebook cell would write (``glue.create_integration(...)``); the
widgets show it so an attendee can copy it, and the state objects make exactly that call.
"""

from __future__ import annotations

import pprint
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class _PartitionKey(Protocol):
    field_name: str
    function: str
    conversion: str


@dataclass(frozen=True)
class Call:
    """``<service>.<method>(**params)`` on ``lab.client(service)``."""

    service: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def code(self) -> str:
        """The call as Python a notebook cell could run."""
        args = ",\n".join(f"    {k}={_literal(v, 4 + len(k) + 1)}" for k, v in self.params.items())
        return (
            f"{self.service}.{self.method}(\n{args},\n)"
            if args
            else f"{self.service}.{self.method}()"
        )


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=96 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def partition_spec(keys: Sequence[_PartitionKey]) -> list[dict[str, str]]:
    """TargetTableConfig.PartitionSpec from partition keys (empty members left out, so the API
    names what is missing)."""
    out = []
    for key in keys:
        spec = {"FieldName": key.field_name}
        if key.function:
            spec["FunctionSpec"] = key.function
        if key.conversion:
            spec["ConversionSpec"] = key.conversion
        out.append(spec)
    return out


def create_calls(table_properties: Call | None, create: Call) -> list[Call]:
    """Table properties first (the integration reads them when it creates the table)."""
    return [c for c in (table_properties, create) if c is not None]


def describe_call(service: str, arn: str) -> Call:
    """``describe_integrations`` for one integration."""
    return Call(service, "describe_integrations", {"IntegrationIdentifier": arn})


def service_of(arn: str) -> str:
    """``glue`` or ``rds``: the face an integration ARN belongs to."""
    parts = arn.split(":")
    return "rds" if len(parts) > 2 and parts[2] == "rds" else "glue"
