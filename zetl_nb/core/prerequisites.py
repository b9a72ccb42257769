"""Prerequisite problems and the fixes that "fix it for me" applies.

A check returns :class:`Problem` values; each names what is wrong (an AWS-style error code and a
message saying how to fix it) and, where zetl_nb can apply the documented fix itself, a
:class:`Fix` that first *describes* the change (service, operation, parameters) and only applies
it when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fix:
    """One change "fix it for me" would make, shown before it is made."""

    description: str
    service: str
    operation: str
    params: dict[str, Any]
    apply: Callable[[], object] = field(compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "Description": self.description,
            "Service": self.service,
            "Operation": self.operation,
            "Parameters": self.params,
        }


@dataclass(frozen=True)
class Problem:
    """A prerequisite that does not hold."""

    code: str
    message: str
    fix: Fix | None = None
    #: Retrying cannot help (e.g. a table past Iceberg's limits): FAILED at once, not after
    #: the retry window.
    fatal: bool = False

    def as_error(self) -> dict[str, str]:
        """The integration ``Errors`` entry for this problem."""
        return {"ErrorCode": self.code, "ErrorMessage": self.message[:2048]}
