"""The engine thread: completes requested transitions and re-checks prerequisites.

CREATING and MODIFYING integrations are checked at once and become ACTIVE, or NEEDS_ATTENTION with
an ``Errors`` entry per unmet prerequisite. NEEDS_ATTENTION and ACTIVE integrations are re-checked
every ``recheck_seconds`` (AWS: "the integration should automatically recover"), so fixing a
prerequisite by hand brings the integration back to ACTIVE by itself, and a target database that
disappears puts it in NEEDS_ATTENTION. After ``retry_window_seconds`` in NEEDS_ATTENTION it is
FAILED. DELETING integrations are removed (their target data is kept).
"""

from __future__ import annotations

import logging
import threading
import time

from ..core.states import IntegrationState
from .control import ControlPlane
from .store import Integration

log = logging.getLogger(__name__)
S = IntegrationState


class Engine:
    """One background thread per Lab, woken by every control-plane change."""

    def __init__(self, cp: ControlPlane, recheck_seconds: float = 10.0) -> None:
        self.cp = cp
        self.recheck_seconds = recheck_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_check: dict[str, float] = {}
        cp.on_change = self.recheck_all

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="zetl-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def kick(self) -> None:
        """Run a pass now rather than at the next re-check."""
        self._wake.set()

    def recheck_all(self) -> None:
        """Re-check every integration's prerequisites now (something they depend on changed)."""
        self._last_check.clear()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # the engine must outlive any single failure
                log.exception("engine pass failed")
            self._wake.wait(timeout=min(1.0, self.recheck_seconds))

    def run_once(self, now: float | None = None) -> None:
        """One pass over every integration (public so tests and tools can drive it)."""
        now = time.time() if now is None else now
        for integ in self.cp.store.integrations():
            state = integ.state
            if state is S.DELETING:
                self.cp.transition(integ, S.DELETED)
                self._last_check.pop(integ.arn, None)
            elif self._due(integ.arn, state, now):
                self._check(integ, now)

    def _due(self, arn: str, state: IntegrationState, now: float) -> bool:
        if state in (S.CREATING, S.MODIFYING):
            return True
        stale = now - self._last_check.get(arn, 0.0) >= self.recheck_seconds
        return stale and state in (S.ACTIVE, S.NEEDS_ATTENTION)

    def _check(self, integ: Integration, now: float) -> None:
        self._last_check[integ.arn] = now
        try:
            problems = self.cp.problems(integ)
        except Exception as exc:  # a source that cannot even be asked is itself a problem
            log.warning("prerequisite check of %s failed: %s", integ.name, exc)
            from ..core.prerequisites import Problem

            problems = [
                Problem(
                    "PrerequisiteCheckFailed",
                    f"Could not check prerequisites: {exc}. It is retried every "
                    f"{self.recheck_seconds:g} s.",
                )
            ]
        if not problems:
            self.cp.transition(integ, S.ACTIVE)
            return
        since = integ.attention_since or now
        if integ.state is S.NEEDS_ATTENTION and now - since > self.cp.retry_window_seconds:
            self.cp.transition(integ, S.FAILED, problems)
        else:
            self.cp.transition(integ, S.NEEDS_ATTENTION, problems)
