"""The in-process event bus: state transitions, progress and applied batches.

Monitoring, widgets and tests subscribe here instead of reaching into the engine.

>>> bus = EventBus()
>>> seen = []
>>> unsubscribe = bus.subscribe(seen.append, kind="state")
>>> bus.publish(Event("state", {"status": "ACTIVE"}))
>>> seen[0].detail["status"]
'ACTIVE'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``kind`` is e.g. ``state``, ``batch``, ``progress``."""

    kind: str
    detail: dict[str, Any]
    time: float = field(default_factory=time.time)


Handler = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe; a failing subscriber is logged, never propagated."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[tuple[str | None, Handler]] = []

    def subscribe(self, handler: Handler, kind: str | None = None) -> Callable[[], None]:
        """Call ``handler`` for every event (of ``kind``, if given). Returns an unsubscriber."""
        entry = (kind, handler)
        with self._lock:
            self._subs.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for kind, handler in subs:
            if kind is None or kind == event.kind:
                try:
                    handler(event)
                except Exception:  # a subscriber must never break the engine
                    log.exception("event subscriber failed on %s", event.kind)
