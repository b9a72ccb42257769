"""The API's own validation, run without changing anything: inline messages for the forms.

The wizard and the Modify form must say exactly what ``glue.create_integration(...)`` would
say, so they do not re-implement any rule. :class:`DryRun` makes clients with boto3's methods
(``LocalClient``, the very class ``lab.client("glue")`` is) over the Lab's own Glue and RDS
services, whose control plane writes to a store that drops every write. A call goes through
botocore's client-side validator, the model's server-side limits and the control plane's checks
(names, ARNs, existence, quotas, KMS key, DataFilter, RefreshInterval, table properties) in the
order the real call runs them, and either raises the error the real call would raise or returns
without recording anything.

This is the one place the UI reaches below the Lab's public methods (``lab.control``,
``lab.store``, ``lab.catalog``): a public dry-run on the control plane would replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .base import Issue, api_error, is_api_error

if TYPE_CHECKING:
    from ..lab import Lab


class _DropWrites:
    """A control store that reads through to the Lab's and forgets every write."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_integration(self, *args: Any, **kwargs: Any) -> None:
        """Dropped."""

    def delete_integration(self, *args: Any, **kwargs: Any) -> None:
        """Dropped."""

    def put_doc(self, *args: Any, **kwargs: Any) -> None:
        """Dropped."""

    def put_table_properties(self, *args: Any, **kwargs: Any) -> None:
        """Dropped."""

    def delete_doc(self, table: str, key: str) -> bool:
        return self._store.get_doc(table, key) is not None

    def delete_table_properties(self, resource_arn: str, table: str) -> bool:
        return self._store.get_table_properties(resource_arn, table) is not None


class _CatalogView:
    """The Lab's catalog, with namespaces the dry run would create only pretended."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog
        self._pretend: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def exists(self, namespace: str) -> bool:
        return namespace in self._pretend or bool(self._catalog.exists(namespace))

    def create_namespace(self, namespace: str, *args: Any, **kwargs: Any) -> None:
        self._pretend.add(namespace)

    def update_namespace(self, *args: Any, **kwargs: Any) -> None:
        """Dropped."""


class DryRun:
    """Clients whose calls validate exactly as the Lab's do and change nothing.

    >>> DryRun(lab).check("glue", "create_integration", IntegrationName="x--y",
    ...                   SourceArn=table_arn, TargetArn=db_arn)         # doctest: +SKIP
    Issue(field='', code='ValidationException', message="IntegrationName 'x--y' is invalid: ...")
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A boto3-shaped ``glue`` or ``rds`` client whose calls record nothing."""
        if service not in self._clients:
            self._clients[service] = self._make(service)
        return self._clients[service]

    def _make(self, service: str) -> Any:
        from ..api.client import LocalClient
        from ..core.events import EventBus
        from ..engine.control import ControlPlane
        from ..engine.store import ControlStore
        from ..target.catalog import LocalCatalog

        real = self.lab.control
        cp = ControlPlane(
            cast(ControlStore, _DropWrites(self.lab.store)),
            cast(LocalCatalog, _CatalogView(self.lab.catalog)),
            EventBus(),  # nobody listens: no events, no engine wake-ups
            real.account,
            real.region,
            dynamodb=real.dynamodb,
            retry_window_seconds=real.retry_window_seconds,
        )
        impl: Any
        if service == "glue":
            from ..api.glue import GlueService

            impl = GlueService(cp)
        elif service == "rds":
            from ..api.rds import RdsService

            impl = RdsService(cp)
        else:
            raise ValueError(f"no dry run for service '{service}'; use 'glue' or 'rds'.")
        return LocalClient(impl)

    def check(self, service: str, method: str, **params: Any) -> Issue | None:
        """The error ``lab.client(service).<method>(**params)`` would raise now, or None."""
        try:
            getattr(self.client(service), method)(**params)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            code, message = api_error(exc)
            return Issue("", code, message)
        return None

    def check_each(
        self,
        service: str,
        method: str,
        base: dict[str, Any],
        steps: Sequence[tuple[str, dict[str, Any]]],
        base_field: Any = "",
    ) -> dict[str, Issue]:
        """Per-field issues: ``base`` first, then each ``(field, members)`` added in turn.

        A field whose members make the call fail gets that error and is left out of the later
        calls, so every field is judged on its own, with exactly the API's message. Errors of
        ``base`` go to ``base_field`` (a name, or a function of the Issue that names the field).
        """
        issues: dict[str, Issue] = {}
        found = self.check(service, method, **base)
        if found is not None:
            name = base_field(found) if callable(base_field) else str(base_field)
            issues[name] = Issue(name, found.code, found.message)
            return issues  # the later fields cannot be judged until the base is right
        request = dict(base)
        for field, members in steps:
            trial = _merge(request, members)
            found = self.check(service, method, **trial)
            if found is None:
                request = trial
            else:
                issues[field] = Issue(field, found.code, found.message)
        return issues


def _merge(request: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    """``request`` with ``members`` added; nested dicts (IntegrationConfig, ...) merged."""
    out = dict(request)
    for key, value in members.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
