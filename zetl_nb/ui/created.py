"""An integration the wizard created: its status as it changes, and "Fix it for me".

The status follows the Lab's bus (``state`` events) and ``describe_integrations`` on the
integration's own face; the fixes are :class:`~zetl_nb.ui.fixit.FixIt`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .fixit import FixIt
from .requests import describe_call

if TYPE_CHECKING:
    from ..core.events import Event
    from ..lab import Lab


@dataclass(eq=False)
class CreatedIntegration:
    """One created integration; ``on_change`` is called whenever its status changes."""

    lab: Lab = field(repr=False)
    arn: str
    service: str
    status: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)

    def __post_init__(self) -> None:
        self.fix = FixIt(self.lab, self.arn)
        self._unwatch: Callable[[], None] | None = None

    def track(self, integ: dict[str, Any]) -> None:
        """Take status and Errors from an ``Integration`` response dict (either face)."""
        self.status = str(integ.get("Status", "")).upper()
        self.errors = [
            {"ErrorCode": e.get("ErrorCode", ""), "ErrorMessage": e.get("ErrorMessage", "")}
            for e in integ.get("Errors") or []
        ]

    def watch(self) -> None:
        """Follow the integration's state changes on the Lab's event bus."""
        if self._unwatch is None:
            self._unwatch = self.lab.bus.subscribe(self.on_event, kind="state")

    def close(self) -> None:
        """Stop following the bus."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def on_event(self, event: Event) -> None:
        """A bus ``state`` event: take the new status if it is about this integration."""
        if event.detail.get("IntegrationArn") != self.arn:
            return
        self.status = str(event.detail.get("To") or "").upper()
        self.errors = list(event.detail.get("Errors") or [])
        self.on_change()

    def refresh(self) -> str:
        """Read status and Errors now (``describe_integrations``); ``DELETED`` once gone."""
        call = describe_call(self.service, self.arn)
        client = self.lab.client(call.service)
        try:
            found = client.describe_integrations(**call.params)["Integrations"]
        except client.exceptions.IntegrationNotFoundFault:
            found = []
        if found:
            self.track(found[0])
        else:
            self.status, self.errors = "DELETED", []
        self.on_change()
        return self.status

    def wait(self, status: str | list[str], timeout: float = 30.0) -> str:
        """Block until the integration reaches ``status`` (``lab.wait_for_status``)."""
        self.lab.wait_for_status(self.arn, status, timeout=timeout)
        return self.refresh()

    def preview_fixes(self) -> list[dict[str, Any]]:
        """ "Fix it for me", step one: what would change (nothing changes yet)."""
        plan = self.fix.preview()
        self.on_change()
        return plan

    def apply_fixes(self) -> list[dict[str, Any]]:
        """ "Fix it for me", step two: make the changes :meth:`preview_fixes` showed."""
        done = self.fix.apply()
        self.refresh()
        return done
