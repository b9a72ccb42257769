"""Integration table properties: UnnestSpec, PartitionSpec and TargetTableName, validated.

The Glue guide's rules: ``UnnestSpec`` is ``TOPLEVEL``, ``FULL`` or ``NOUNNEST``; a
``PartitionSpec`` has at most 10 fields, each with a ``FunctionSpec`` of ``identity``, ``year``,
``month``, ``day`` or ``hour``; the time functions need a ``ConversionSpec`` (``epoch_sec``,
``epoch_milli`` or ``iso``) saying how the source column encodes time; a ``TargetTableName`` is
lower case letters, digits and underscores.

>>> validate_target_table_config({"UnnestSpec": "FULL",
...     "PartitionSpec": [{"FieldName": "ts", "FunctionSpec": "day", "ConversionSpec": "iso"}]})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..core.errors import validation

UNNEST_SPECS = ("TOPLEVEL", "FULL", "NOUNNEST")
FUNCTIONS = ("identity", "year", "month", "day", "hour")
TIME_FUNCTIONS = frozenset(FUNCTIONS[1:])
CONVERSIONS = ("epoch_sec", "epoch_milli", "iso")
MAX_PARTITION_FIELDS = 10
_TABLE_NAME = re.compile(r"[a-z0-9_]+")


def validate_target_table_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValidationException`` naming the first invalid member of a TargetTableConfig."""
    unnest = config.get("UnnestSpec")
    if unnest is not None and unnest not in UNNEST_SPECS:
        raise validation(
            f"TargetTableConfig.UnnestSpec '{unnest}' is not valid; use one of "
            f"{', '.join(UNNEST_SPECS)}."
        )
    name = config.get("TargetTableName")
    if name is not None:
        validate_table_name(name, "TargetTableConfig.TargetTableName")
    specs = config.get("PartitionSpec")
    if specs is not None:
        validate_partition_spec(specs)


def validate_table_name(name: str, field: str) -> None:
    if not _TABLE_NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9_]", "_", name.lower()) or "my_table"
        raise validation(
            f"{field} '{name}' is invalid: use lower-case letters, digits and underscores only "
            f"(e.g. '{suggestion}')."
        )


def validate_partition_spec(specs: list[Mapping[str, Any]]) -> None:
    where = "TargetTableConfig.PartitionSpec"
    if len(specs) > MAX_PARTITION_FIELDS:
        raise validation(
            f"{where} has {len(specs)} fields; at most {MAX_PARTITION_FIELDS} are allowed."
        )
    seen: set[tuple[str, str]] = set()
    for i, spec in enumerate(specs):
        here = f"{where}[{i}]"
        field = spec.get("FieldName")
        if not field:
            raise validation(
                f"{here}.FieldName is required: name the source column to partition by."
            )
        function = spec.get("FunctionSpec") or "identity"
        if function not in FUNCTIONS:
            raise validation(
                f"{here}.FunctionSpec '{function}' is not valid; use one of {', '.join(FUNCTIONS)}."
            )
        conversion = spec.get("ConversionSpec")
        if function in TIME_FUNCTIONS and conversion is None:
            raise validation(
                f"{here}.ConversionSpec is required with FunctionSpec '{function}': say how "
                f"'{field}' encodes time ({', '.join(CONVERSIONS)})."
            )
        if conversion is not None and conversion not in CONVERSIONS:
            raise validation(
                f"{here}.ConversionSpec '{conversion}' is not valid; use one of "
                f"{', '.join(CONVERSIONS)}."
            )
        if (field, function) in seen:
            raise validation(f"{here} repeats FieldName '{field}' with FunctionSpec '{function}'.")
        seen.add((field, function))
