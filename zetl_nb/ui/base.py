"""What every UI state object shares: change notification, issues, and API error messages.

State objects are plain Python (no ipywidgets): tests drive them directly, and the widget
adapters in :mod:`zetl_nb.ui.widgets` only render them and forward user input.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[[], None]


@dataclass(frozen=True)
class Issue:
    """A problem with one field (``field`` ``""``: the step or form as a whole).

    ``code`` and ``message`` are the API's own: the error code of the ``ClientError`` (or
    ``ParamValidationError`` for botocore's client-side checks) and its message, verbatim.
    """

    field: str
    code: str
    message: str


class Observable:
    """Listeners called after the state changed (from whichever thread changed it)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    def observe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns a function that stops it."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def changed(self) -> None:
        """Tell the listeners; a failing listener is logged, never raised into the caller."""
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a broken view must not break the state or the engine
                log.exception("UI listener failed")


def api_error(exc: BaseException) -> tuple[str, str]:
    """(code, message) of an error raised by a client call, as the API reported it.

    botocore ``ClientError``: the response's ``Error.Code`` and ``Error.Message``;
    ``ParamValidationError`` (boto3's client-side checks): its text; our own errors: their class
    name and text.
    """
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return str(error.get("Code", type(exc).__name__)), str(error.get("Message", exc))
    code = getattr(exc, "code", None)
    if isinstance(code, str) and hasattr(exc, "message"):  # AwsError
        return code, str(exc.message)
    return type(exc).__name__, str(exc)


def is_api_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a rejected request (shown to the user) rather than a bug."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..core.errors import ZetlError

    return isinstance(exc, (ClientError, BotoCoreError, ZetlError))
