"""Notebook widgets: the create-integration wizard, the dashboard and the query box.

Each widget is a thin ipywidgets adapter over a plain state object that calls the Lab's public
API — the calls a notebook cell would make — so tests (and scripts) can drive the state objects
without a browser:

=====================================  ==========================================
``create_integration(lab)``            :class:`CreateIntegrationState`
``dashboard(lab)``                     :class:`DashboardState`
``query(lab)``                         :class:`QueryState`
=====================================  ==========================================

>>> import zetl_nb.ui
>>> zetl_nb.ui.create_integration(lab)          # doctest: +SKIP

ipywidgets is imported only when a widget is made, so ``import zetl_nb.ui`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dashboard_state import DashboardState
    from .query_state import QueryState
    from .wizard_state import CreateIntegrationState

__all__ = [
    "CreateIntegrationState",
    "DashboardState",
    "QueryState",
    "create_integration",
    "dashboard",
    "query",
]

_STATES = {
    "CreateIntegrationState": "wizard_state",
    "DashboardState": "dashboard_state",
    "QueryState": "query_state",
}


def create_integration(lab: Any) -> Any:
    """The create-integration wizard for ``lab`` (an ipywidgets widget; ``.state`` holds its
    :class:`CreateIntegrationState`)."""
    from .widgets.wizard_view import wizard_widget

    return wizard_widget(lab)


def dashboard(lab: Any, interval: float = 2.0) -> Any:
    """The integrations dashboard for ``lab``, refreshed every ``interval`` seconds in the
    background (and at once on state changes) until the widget is closed."""
    from .widgets.dashboard_view import dashboard_widget

    return dashboard_widget(lab, interval)


def query(lab: Any) -> Any:
    """A SQL box over ``lab.sql`` (DuckDB or Redshift dialect) with a results grid."""
    from .widgets.query_view import query_widget

    return query_widget(lab)


def __getattr__(name: str) -> Any:
    module = _STATES.get(name)
    if module is None:
        raise AttributeError(f"module 'zetl_nb.ui' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
