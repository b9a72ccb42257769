"""``AutoRefresh``: call a function every few seconds in a daemon thread, until stopped.

The dashboard refreshes this way, so the notebook kernel stays free to run cells; ``kick()``
refreshes at once (the bus calls it on state changes). Failures are reported to ``on_error``;
after ``max_failures`` in a row the thread stops by itself (e.g. the Lab was closed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class AutoRefresh:
    """A background refresher.

    >>> r = AutoRefresh(board.refresh, interval=2.0); r.start()    # doctest: +SKIP
    >>> r.stop()
    """

    def __init__(
        self,
        refresh: Callable[[], object],
        interval: float = 2.0,
        on_error: Callable[[BaseException], None] | None = None,
        max_failures: int = 5,
    ) -> None:
        self.refresh = refresh
        self.interval = interval
        self.on_error = on_error
        self.max_failures = max_failures
        self.failures = 0
        #: While True the thread keeps running but does not refresh.
        self.paused = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zetl-ui-refresh", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """Refresh as soon as possible."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (not when called from the thread itself)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.paused:
                self._wake.wait(self.interval)
                self._wake.clear()
                continue
            try:
                self.refresh()
                self.failures = 0
            except Exception as exc:  # reported, and the refresher keeps going (for a while)
                self.failures += 1
                if self.on_error is not None:
                    self.on_error(exc)
                else:
                    log.warning("auto-refresh failed: %s", exc)
                if self.failures >= self.max_failures:
                    log.warning("auto-refresh stopped after %d failures", self.failures)
                    return
            self._wake.wait(self.interval)
            self._wake.clear()
