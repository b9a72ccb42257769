""" "Fix it for me": first what would change, then — when asked — the change.

The plan and the change are ``lab.fix_prerequisites(arn)`` and
``lab.fix_prerequisites(arn, apply=True)``, as a notebook cell would call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import api_error, is_api_error

if TYPE_CHECKING:
    from ..lab import Lab


@dataclass
class FixIt:
    """The fix-it flow of one integration.

    >>> fix = FixIt(lab, arn)              # doctest: +SKIP
    >>> fix.preview()                      # what would change; nothing changed yet
    >>> fix.apply()                        # now it changes
    """

    lab: Lab = field(repr=False)
    arn: str
    #: The changes :meth:`preview` found (None: not previewed yet).
    plan: list[dict[str, Any]] | None = None
    #: The changes :meth:`apply` made (None: not applied yet).
    applied: list[dict[str, Any]] | None = None
    error: str | None = None

    def preview(self) -> list[dict[str, Any]]:
        """What fixing would change (service, operation, parameters, description)."""
        self.error = None
        try:
            self.plan = self.lab.fix_prerequisites(self.arn)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            self.error = api_error(exc)[1]
            self.plan = None
            return []
        return self.plan

    def apply(self) -> list[dict[str, Any]]:
        """Make the changes; only after :meth:`preview` showed them."""
        if self.plan is None:
            self.error = "Look at the changes first: preview() shows what will change."
            return []
        self.error = None
        try:
            self.applied = self.lab.fix_prerequisites(self.arn, apply=True)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            self.error = api_error(exc)[1]
            return []
        self.plan = None
        return self.applied

    def cancel(self) -> None:
        """Forget the plan without changing anything."""
        self.plan = None
        self.error = None

    @staticmethod
    def describe(changes: list[dict[str, Any]]) -> list[str]:
        """One line per change: ``service.Operation: description``."""
        return [f"{c['Service']}.{c['Operation']}: {c['Description']}" for c in changes]
