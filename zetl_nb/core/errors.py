"""The error hierarchy: every error zetl_nb raises derives from :class:`ZetlError`.

API-facing errors carry the AWS error code (``ValidationException``, ``EntityNotFoundException``,
``IntegrationNotFoundFault``, ...) and an HTTP status, so the API layer can raise them as botocore
``ClientError`` in-process and serialize them as AWS error bodies over HTTP.
"""

from __future__ import annotations


class ZetlError(Exception):
    """Root of every zetl_nb error."""


class ConfigError(ZetlError):
    """The Lab's configuration (``zetl.toml`` or ``ZETL_*`` variables) is invalid."""


class HomeLockedError(ZetlError):
    """Another process is writing this Lab home."""


class ReadOnlyLabError(ZetlError):
    """A write was attempted on a Lab attached with ``read_only=True``."""


class ServiceError(ZetlError):
    """An embedded service (DynamoDB endpoint, PostgreSQL) failed to start or answer."""


class MissingDependencyError(ZetlError):
    """An optional dependency is not installed; the message names what to install."""


class AwsError(ZetlError):
    """An error with AWS's shape: a code, a message and an HTTP status.

    >>> err = AwsError("ValidationException", "IntegrationName is too long")
    >>> err.code, err.status
    ('ValidationException', 400)
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def validation(message: str) -> AwsError:
    """A ``ValidationException`` (HTTP 400)."""
    return AwsError("ValidationException", message)


def not_found(message: str, code: str = "EntityNotFoundException") -> AwsError:
    """A not-found error; Glue says ``EntityNotFoundException``, RDS names the missing kind."""
    return AwsError(code, message, 400 if code.endswith("Exception") else 404)
