"""In-process clients with boto3's method names, shapes and exceptions.

``lab.client("glue")`` returns a :class:`LocalClient`: ``glue.create_integration(...)`` validates
the request with botocore exactly as boto3 does, runs it against the Lab, and returns the response
dict (with ``ResponseMetadata``); errors are botocore ``ClientError`` subclasses from the same
factory boto3 uses, so ``except glue.exceptions.EntityNotFoundException`` works unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ..core.errors import AwsError, ReadOnlyLabError
from . import model


class Service(Protocol):
    """A server-side implementation of one AWS service's operations."""

    service_name: str

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` with validated ``params``; raise :class:`AwsError` on failure."""
        ...

    def supports(self, operation: str) -> bool: ...


_READ_PREFIXES = ("Get", "Describe", "List")


class ReadOnlyService:
    """A service that refuses every operation that would change the Lab."""

    def __init__(self, inner: Service) -> None:
        self.inner = inner
        self.service_name = inner.service_name

    def supports(self, operation: str) -> bool:
        return self.inner.supports(operation)

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if not operation.startswith(_READ_PREFIXES):
            raise ReadOnlyLabError(
                f"{self.service_name}.{operation} would change this Lab, which is attached "
                "read-only; make the call from the process that opened the Lab for writing."
            )
        return self.inner.dispatch(operation, params)


def _exceptions(service: str) -> Any:
    from botocore.errorfactory import ClientExceptionsFactory

    return ClientExceptionsFactory().create_client_exceptions(model.service_model(service))


def invoke(service: Service, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Server-side validation then dispatch; the common path of the HTTP and local faces."""
    model.server_validate(service.service_name, operation, params)
    return service.dispatch(operation, params)


class LocalClient:
    """A boto3-shaped client whose calls run in-process against a Lab."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._name = service.service_name
        self._methods = model.operation_names(self._name)
        self.exceptions = _exceptions(self._name)

    def __repr__(self) -> str:
        return f"<zetl_nb local {self._name} client>"

    def __dir__(self) -> list[str]:
        ops = [m for m, op in self._methods.items() if self._service.supports(op)]
        return sorted([*ops, "exceptions", "can_paginate"])

    def can_paginate(self, operation_name: str) -> bool:
        return False

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        operation = self._methods.get(name)
        if operation is None or not self._service.supports(operation):
            raise AttributeError(
                f"'{self._name}' local client has no method '{name}'. zetl_nb implements: "
                + ", ".join(
                    sorted(m for m, op in self._methods.items() if self._service.supports(op))
                )
            )

        def call(**params: Any) -> dict[str, Any]:
            return self._call(operation, params)

        call.__name__ = name
        call.__doc__ = f"{self._name}.{operation}, run in-process against the Lab."
        return call

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        model.client_validate(self._name, operation, params)
        request_id = str(uuid.uuid4())
        try:
            result = invoke(self._service, operation, params)
        except AwsError as err:
            raise self._client_error(err, operation, request_id) from None
        result["ResponseMetadata"] = _metadata(request_id, 200)
        return result

    def _client_error(self, err: AwsError, operation: str, request_id: str) -> Exception:
        response: Any = {
            "Error": {"Code": err.code, "Message": err.message},
            "ResponseMetadata": _metadata(request_id, err.status),
        }
        exc_class = self.exceptions.from_code(err.code)
        exc: Exception = exc_class(response, operation)
        return exc


def _metadata(request_id: str, status: int) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": {"x-amzn-requestid": request_id},
        "RetryAttempts": 0,
    }
