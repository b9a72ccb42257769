"""The Modify form: RefreshInterval, DataFilter and Description of one integration.

Each change is checked at once with a dry run of ``modify_integration`` on the integration's
own face (Glue or RDS), so the form shows the API's own message; Save makes the real call with
the fields that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Issue, api_error, is_api_error
from .requests import Call

if TYPE_CHECKING:
    from ..lab import Lab
    from .dashboard_state import IntegrationRow
    from .dryrun import DryRun

#: Form field → how the request carries it.
_MEMBERS = {
    "description": ("Description",),
    "data_filter": ("DataFilter",),
    "refresh_interval": ("IntegrationConfig", "RefreshInterval"),
}


@dataclass(eq=False)
class ModifyForm:
    """What can be modified on one integration, and the issues of the values typed so far."""

    arn: str
    name: str
    service: str
    relational: bool
    description: str = ""
    data_filter: str = ""
    refresh_interval: str = ""
    original: dict[str, str] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    dry: DryRun | None = field(default=None, repr=False)

    @classmethod
    def for_row(cls, row: IntegrationRow, dry: DryRun) -> ModifyForm:
        """The form on a dashboard row, filled with its current settings."""
        values = {
            "description": row.description,
            "data_filter": row.data_filter,
            "refresh_interval": row.refresh_interval,
        }
        return cls(
            arn=row.arn,
            name=row.name,
            service=row.service,
            relational=row.source_arn.startswith("arn:aws:rds:"),
            description=values["description"],
            data_filter=values["data_filter"],
            refresh_interval=values["refresh_interval"],
            original=dict(values),
            dry=dry,
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields this integration can change: Aurora/RDS sources have a DataFilter and no
        RefreshInterval; DynamoDB the other way round."""
        if self.relational:
            return ("description", "data_filter")
        return ("description", "refresh_interval")

    def set(self, name: str, value: str) -> dict[str, Issue]:
        """Change field ``name``; returns the issues (every changed field judged on its own)."""
        if name not in self.fields:
            raise AttributeError(f"'{name}' cannot be modified here; fields: {self.fields}")
        setattr(self, name, value)
        return self.validate()

    def changes(self) -> dict[str, str]:
        """The fields whose value differs from the integration's."""
        return {f: getattr(self, f) for f in self.fields if getattr(self, f) != self.original[f]}

    def call(self, fields: dict[str, str] | None = None) -> Call:
        """``modify_integration`` with ``fields`` (default: every change)."""
        params: dict[str, Any] = {"IntegrationIdentifier": self.arn}
        for name, value in (self.changes() if fields is None else fields).items():
            members = _MEMBERS[name]
            if len(members) == 1:
                params[members[0]] = value
            else:
                params.setdefault(members[0], {})[members[1]] = value
        return Call(self.service, "modify_integration", params)

    def validate(self) -> dict[str, Issue]:
        """Dry-run ``modify_integration`` with each changed field alone."""
        self.issues = {}
        if self.dry is None:
            return self.issues
        for name, value in self.changes().items():
            call = self.call({name: value})
            found = self.dry.check(call.service, call.method, **call.params)
            if found is not None:
                self.issues[name] = Issue(name, found.code, found.message)
        return self.issues

    def submit(self, lab: Lab) -> bool:
        """Make the call; False with :attr:`issues` set if the API refused it."""
        if self.validate():
            return False
        if not self.changes():
            self.issues = {"": Issue("", "NoChange", "Nothing was changed.")}
            return False
        call = self.call()
        try:
            getattr(lab.client(call.service), call.method)(**call.params)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            code, message = api_error(exc)
            self.issues = {"": Issue("", code, message)}
            return False
        return True
