"""The engine thread: completes requested transitions and re-checks prerequisites.

CREATING and MODIFYING integrations are checked at once and become ACTIVE, or NEEDS_ATTENTION with
an ``Errors`` entry per unmet prerequisite. NEEDS_ATTENTION and ACTIVE integrations are re-checked
every ``recheck_seconds`` (AWS: "the integration should automatically recover"), so fixing a
prerequisite by hand brings the integration back to ACTIVE by itself, and a target database that
disappears puts it in NEEDS_ATTENTION. After ``retry_window_seconds`` in NEEDS_ATTENTION it is
FAILED. DELETING integrations are removed (their target data is kept).

Relational integrations get a :class:`~zetl_nb.engine.replication.RelationalRunner` once ACTIVE;
its problems (source settings, source down) join the control-plane checks here, and while it
resyncs a table the integration is SYNCING.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.states import IntegrationState
from .control import ControlPlane
from .replication import RelationalRunner
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
        self.runners: dict[str, RelationalRunner] = {}
        #: Builds the source of a relational integration (set by the Lab).
        self.make_source: Callable[[Integration], Any] | None = None
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
        for runner in list(self.runners.values()):
            runner.stop()
        self.runners.clear()

    def recheck(self, arn: str) -> None:
        """Re-check one integration now (its runner's problems changed)."""
        self._last_check.pop(arn, None)
        self._wake.set()

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
                self._retire(integ)
                self.cp.transition(integ, S.DELETED)
                self._last_check.pop(integ.arn, None)
                continue
            if state in (S.ACTIVE, S.SYNCING) and replicated(integ):
                self._ensure_runner(integ)
            if self._due(integ.arn, state, now):
                self._check(integ, now)

    def _due(self, arn: str, state: IntegrationState, now: float) -> bool:
        if state in (S.CREATING, S.MODIFYING):
            return True
        stale = now - self._last_check.get(arn, 0.0) >= self.recheck_seconds
        return stale and state in (S.ACTIVE, S.NEEDS_ATTENTION, S.SYNCING)

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
        runner = self.runners.get(integ.arn)
        if runner is not None:
            problems = problems + runner.problems
        if not problems:
            syncing = runner is not None and runner.syncing
            self.cp.transition(integ, S.SYNCING if syncing else S.ACTIVE)
            return
        since = integ.attention_since or now
        expired = integ.state is S.NEEDS_ATTENTION and now - since > self.cp.retry_window_seconds
        if expired or any(p.fatal for p in problems):
            self.cp.transition(integ, S.FAILED, problems)
        else:
            self.cp.transition(integ, S.NEEDS_ATTENTION, problems)

    # -- runners ------------------------------------------------------------------------------
    def _ensure_runner(self, integ: Integration) -> None:
        runner = self.runners.get(integ.arn)
        if (runner is not None and (runner.alive or runner.finished)) or self.make_source is None:
            return
        runner = RelationalRunner(self.cp, integ, self.make_source, self.recheck)
        self.runners[integ.arn] = runner
        runner.start()

    def _retire(self, integ: Integration) -> None:
        """Stop the runner of a deleted integration and drop its slot/publication."""
        runner = self.runners.pop(integ.arn, None)
        if runner is not None:
            runner.stop()
        if _relational(integ) and self.make_source is not None:
            try:
                source = self.make_source(integ)
                try:
                    source.drop()
                finally:
                    source.close()
            except Exception:  # the source may be gone for good; deleting must still work
                log.warning("could not drop replication objects of %s", integ.name, exc_info=True)
        self.cp.store.delete_doc("replication", integ.arn)
        for key, _ in self.cp.store.docs("table_states"):
            if key.startswith(integ.arn + "|"):  # release the target tables it owned
                self.cp.store.delete_doc("table_states", key)


def _relational(integ: Integration) -> bool:
    return ":rds:" in integ.source_arn


def replicated(integ: Integration) -> bool:
    """Integrations whose data the engine moves (relational and DynamoDB sources)."""
    return _relational(integ) or ":dynamodb:" in integ.source_arn
