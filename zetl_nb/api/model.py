"""botocore's bundled service models as the reference and the validator.

Requests are checked twice, as on AWS: first by botocore's own client-side
``ParamValidator`` (missing required members, wrong types: ``ParamValidationError``, exactly what
boto3 raises before sending), then by the server-side rules the service model declares but the
client does not enforce (maximum lengths, list sizes, enum values, ranges, patterns), which fail
with ``ValidationException`` naming the member and the limit.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..core.errors import AwsError


@cache
def service_model(service: str) -> Any:
    """The botocore ``ServiceModel`` for ``service`` (e.g. ``glue``, ``rds``)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@cache
def operation_names(service: str) -> dict[str, str]:
    """boto3 method name → operation name (``create_integration`` → ``CreateIntegration``)."""
    from botocore import xform_name

    return {xform_name(op): op for op in service_model(service).operation_names}


def operation_model(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation)


def client_validate(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise botocore's ``ParamValidationError`` exactly as boto3 would before sending."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    shape = operation_model(service, operation).input_shape
    report = ParamValidator().validate(params, shape) if shape is not None else None
    if report is not None and report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def server_validate(service: str, operation: str, params: dict[str, Any]) -> None:
    """Enforce the model's constraints that botocore's client skips; raise ValidationException."""
    shape = operation_model(service, operation).input_shape
    if shape is not None:
        _check(shape, params, "")


def _check(shape: Any, value: Any, path: str) -> None:
    kind = shape.type_name
    meta = shape.metadata
    where = path or shape.name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _check(member, value[name], f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        _check_size(where, len(value), meta, "items")
        for i, item in enumerate(value):
            _check(shape.member, item, f"{where}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        _check_size(where, len(value), meta, "entries")
        for key, item in value.items():
            _check(shape.key, key, f"{where} key")
            _check(shape.value, item, f"{where}.{key}")
    elif kind == "string" and isinstance(value, str):
        _check_size(where, len(value), meta, "characters")
        if shape.enum and value not in shape.enum:
            raise AwsError(
                "ValidationException",
                f"{where} '{value}' is not valid; use one of: {', '.join(shape.enum)}.",
            )
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            raise AwsError(
                "ValidationException",
                f"{where} '{value[:80]}' does not match the required pattern {pattern}.",
            )
    elif kind in ("integer", "long") and isinstance(value, int):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise AwsError(
                "ValidationException", f"{where} must be between {lo} and {hi}; got {value}."
            )


def _check_size(where: str, size: int, meta: dict[str, Any], unit: str) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and size < lo:
        raise AwsError("ValidationException", f"{where} must have at least {lo} {unit}.")
    if hi is not None and size > hi:
        raise AwsError(
            "ValidationException", f"{where} must have at most {hi} {unit}; it has {size}."
        )


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    # The models use Java regexes; the few Python cannot compile are skipped, not guessed at.
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _matches(pattern: str, value: str) -> bool:
    rx = _compiled(pattern)
    return rx is None or rx.fullmatch(value) is not None


def validate_output(service: str, operation: str, response: dict[str, Any]) -> None:
    """Check ``response`` against the operation's output shape (used by the test suite).

    Raises ``AssertionError`` listing every mismatch: missing required members, wrong types,
    and members the shape does not have.
    """
    from botocore.validate import ParamValidator

    shape = operation_model(service, operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    if shape is None:
        assert not body, f"{operation} returns no members, got {sorted(body)}"
        return
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), report.generate_report()
