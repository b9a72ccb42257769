"""The ipywidgets adapters: they render a state object and forward user input to it.

ipywidgets is imported here, once, when a widget is first made (see :func:`ipywidgets`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ...core.errors import MissingDependencyError


def ipywidgets() -> Any:
    """The ``ipywidgets`` module, or an error that says how to install it."""
    try:
        return importlib.import_module("ipywidgets")
    except ImportError:
        raise MissingDependencyError(
            "zetl_nb's notebook widgets need ipywidgets, which is not installed. Install it "
            "with `pip install ipywidgets` (zetl_nb's own dependencies include it: `pip install "
            "zetl_nb`) and restart the kernel. Everything the widgets do is also a plain API "
            "call: see zetl_nb.ui's state objects."
        ) from None


class View:
    """Base of the adapters: changes a render makes are not taken for user input.

    The flag is per thread: a render from a background thread (the bus, the refresher) never
    swallows what the user types meanwhile.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._render_lock = threading.RLock()

    @contextmanager
    def rendering(self) -> Iterator[None]:
        """Within: widget changes come from state, not from the user."""
        with self._render_lock:
            self._local.active = True
            try:
                yield
            finally:
                self._local.active = False

    def bind(self, widget: Any, handler: Callable[[Any], object]) -> None:
        """Call ``handler(new value)`` when the user changes ``widget``."""

        def changed(change: dict[str, Any]) -> None:
            if not getattr(self._local, "active", False):
                handler(change["new"])

        widget.observe(changed, names="value")

    def put(self, widget: Any, value: Any) -> None:
        """Set ``widget.value`` from state (only if it differs, so typing is not disturbed)."""
        if widget.value != value:
            widget.value = value

    @staticmethod
    def show(widget: Any, visible: bool) -> None:
        """Show or hide ``widget``."""
        widget.layout.display = None if visible else "none"
