"""``DashboardState``: every integration at a glance, one in detail, Modify and Delete.

Rows come from ``describe_integrations`` (Glue and RDS), lag and last sync from
``lab.monitor.lag()``, row counts from the ``AWS/Glue/ZeroETL`` metrics, and initial-load
progress from the bus's ``progress`` events. Modify and Delete are
``modify_integration``/``delete_integration`` on the integration's own face; Modify validates
inline with the API's own checks, Delete asks for confirmation first.

>>> board = DashboardState(lab); board.start(); board.refresh()        # doctest: +SKIP
>>> [(r.name, r.status, r.lag_seconds, r.inserted) for r in board.rows]
>>> board.request_delete(arn); board.confirm_delete()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import Issue, Observable, api_error, is_api_error
from .detail import Detail, load_detail, row_counts
from .dryrun import DryRun
from .fixit import FixIt
from .modify import ModifyForm
from .pickers import name_of
from .requests import Call, service_of

if TYPE_CHECKING:
    from ..core.events import Event
    from ..lab import Lab

#: Lag samples kept per integration (one per refresh).
LAG_HISTORY = 300
_LIVE_EVENTS = ("state", "table_state", "progress", "load", "batch")


@dataclass
class Progress:
    """An initial load of one table: rows copied so far, of about how many."""

    table: str
    done: int
    estimated: int | None

    @property
    def fraction(self) -> float | None:
        """0..1, or None when the source gave no estimate."""
        if not self.estimated:
            return None
        return min(1.0, self.done / self.estimated)


@dataclass
class IntegrationRow:
    """One integration as the dashboard lists it."""

    arn: str
    name: str
    service: str
    source_arn: str
    target_arn: str
    status: str
    created: float
    description: str = ""
    data_filter: str = ""
    refresh_interval: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    lag_seconds: float | None = None
    last_sync: datetime | None = None
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    progress: list[Progress] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The source's short name."""
        return name_of(self.source_arn)

    @property
    def target(self) -> str:
        """The target database's name."""
        return name_of(self.target_arn)


@dataclass(eq=False)
class DashboardState(Observable):
    """The dashboard's state; :meth:`refresh` re-reads it, :meth:`start` follows the bus."""

    lab: Lab = field(repr=False)
    rows: list[IntegrationRow] = field(default_factory=list)
    selected: str | None = None
    detail: Detail | None = None
    modify: ModifyForm | None = None
    pending_delete: str | None = None
    fix: FixIt | None = None
    notice: str = ""
    error: str | None = None
    refreshed_at: float | None = None

    def __post_init__(self) -> None:
        Observable.__init__(self)
        self._lock = threading.RLock()
        self._refreshing = threading.Lock()
        self._progress: dict[tuple[str, str], Progress] = {}
        self._lag: dict[str, deque[tuple[float, float]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._dry = DryRun(self.lab)
        #: Called (from the publishing thread) when the bus says something changed.
        self.on_activity: Callable[[], None] = lambda: None

    # -- following the bus --------------------------------------------------------------------
    def start(self) -> None:
        """Follow the Lab's bus: load progress now, and :attr:`on_activity` on changes."""
        if self._unsubscribe is None:
            self._unsubscribe = self.lab.bus.subscribe(self.on_event)

    def close(self) -> None:
        """Stop following the bus."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_event(self, event: Event) -> None:
        """A bus event: keep load progress; wake the refresher on state changes."""
        if event.kind not in _LIVE_EVENTS:
            return
        d = event.detail
        key = (str(d.get("IntegrationArn")), str(d.get("TableName")))
        with self._lock:
            if event.kind == "progress":
                estimated = d.get("EstimatedRows")
                self._progress[key] = Progress(
                    key[1], int(d.get("RowsDone") or 0), int(estimated) if estimated else None
                )
            elif _load_ended(event):
                self._progress.pop(key, None)
        if event.kind != "progress":
            self.on_activity()

    def progress(self, arn: str) -> list[Progress]:
        """The initial loads of ``arn`` going on now (rows copied, of about how many)."""
        with self._lock:
            return [p for (a, _), p in self._progress.items() if a == arn]

    # -- reading ------------------------------------------------------------------------------
    def refresh(self) -> list[IntegrationRow]:
        """Re-read every integration (and the selected one's detail)."""
        try:
            with self._refreshing:  # the refresher thread and a button may both ask
                rows = self._read_rows()
                detail = self._read_detail()
        except Exception as exc:  # shown on the dashboard, and raised to the caller
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            self.changed()
            raise
        with self._lock:
            self.rows = rows
            self.detail = detail
            self.error = None
            self.refreshed_at = time.time()
            if self.selected and not any(r.arn == self.selected for r in rows):
                self.selected = None
                self.detail = None
        self.changed()
        return rows

    def _read_rows(self) -> list[IntegrationRow]:
        rows = [_row(i, "glue") for i in _describe(self.lab, "glue")]
        rows += [_row(i, "rds") for i in _describe(self.lab, "rds")]
        rows.sort(key=lambda r: r.created)
        lag = _lag_by_arn(self.lab)
        now = time.time()
        for row in rows:
            seconds, synced = lag.get(row.arn, (None, None))
            row.lag_seconds, row.last_sync = seconds, synced
            counts = row_counts(self.lab, row.arn, row.created)
            row.inserted = counts["InsertCount"]
            row.updated = counts["UpdateCount"]
            row.deleted = counts["DeleteCount"]
            row.progress = self.progress(row.arn)
            with self._lock:
                if seconds is not None:
                    history = self._lag.setdefault(row.arn, deque(maxlen=LAG_HISTORY))
                    history.append((now, float(seconds)))
        return rows

    def _read_detail(self) -> Detail | None:
        arn = self.selected
        if arn is None:
            return None
        with self._lock:
            lag = list(self._lag.get(arn, ()))
        return load_detail(self.lab, arn, lag)

    def row(self, arn: str) -> IntegrationRow:
        """The listed integration ``arn``."""
        for row in self.rows:
            if row.arn == arn:
                return row
        raise KeyError(f"no integration {arn} on the dashboard; refresh() first")

    def select(self, arn: str | None) -> Detail | None:
        """Show integration ``arn`` in detail (None: none)."""
        with self._lock:
            self.selected = arn
            self.fix = None
        self.detail = self._read_detail()
        self.changed()
        return self.detail

    # -- modify -------------------------------------------------------------------------------
    def begin_modify(self, arn: str) -> ModifyForm:
        """Open the Modify form on ``arn`` with its current settings."""
        row = self.row(arn)
        self.modify = ModifyForm.for_row(row, self._dry)
        self.changed()
        return self.modify

    def set_modify(self, name: str, value: str) -> dict[str, Issue]:
        """Change a Modify field; returns its inline issues (the API's own messages)."""
        if self.modify is None:
            raise RuntimeError("begin_modify(arn) first")
        issues = self.modify.set(name, value)
        self.changed()
        return issues

    def submit_modify(self) -> bool:
        """``modify_integration`` with the changed fields; False (and issues) if refused."""
        form = self.modify
        if form is None:
            return False
        ok = form.submit(self.lab)
        if ok:
            self.notice = f"Modified '{form.name}'."
            self.modify = None
            self.refresh()
        else:
            self.changed()
        return ok

    def cancel_modify(self) -> None:
        """Close the Modify form without changes."""
        self.modify = None
        self.changed()

    # -- delete -------------------------------------------------------------------------------
    def request_delete(self, arn: str) -> str:
        """Ask to delete ``arn``; returns the question the user confirms. Nothing is deleted."""
        row = self.row(arn)
        self.pending_delete = arn
        self.changed()
        return (
            f"Delete integration '{row.name}'? Replication from {row.source} stops; the target "
            f"database '{row.target}' and its tables are kept."
        )

    def confirm_delete(self) -> bool:
        """Delete the integration :meth:`request_delete` asked about."""
        arn = self.pending_delete
        if arn is None:
            self.notice = "Nothing to delete: choose an integration and Delete first."
            self.changed()
            return False
        self.pending_delete = None
        call = Call(service_of(arn), "delete_integration", {"IntegrationIdentifier": arn})
        try:
            getattr(self.lab.client(call.service), call.method)(**call.params)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            self.notice = f"Delete failed: {api_error(exc)[1]}"
            self.changed()
            return False
        self.notice = f"Deleting '{name_of(arn)}'."
        self.refresh()
        return True

    def cancel_delete(self) -> None:
        """Keep the integration."""
        self.pending_delete = None
        self.changed()

    # -- fix it for me ------------------------------------------------------------------------
    def preview_fixes(self, arn: str) -> list[dict[str, Any]]:
        """ "Fix it for me" on ``arn``: what would change (nothing changes yet)."""
        self.fix = FixIt(self.lab, arn)
        plan = self.fix.preview()
        self.changed()
        return plan

    def apply_fixes(self) -> list[dict[str, Any]]:
        """Make the changes :meth:`preview_fixes` showed."""
        if self.fix is None:
            return []
        done = self.fix.apply()
        self.refresh()
        return done


def _load_ended(event: Event) -> bool:
    """A table's initial load completed, or the table settled (Synced or Failed)."""
    if event.kind == "load":
        return event.detail.get("Phase") == "Completed"
    return event.kind == "table_state" and event.detail.get("State") in ("Synced", "Failed")


def _describe(lab: Lab, service: str) -> list[dict[str, Any]]:
    client = lab.client(service)
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        page = client.describe_integrations(**params)
        out += page.get("Integrations", [])
        if not page.get("Marker"):
            return out
        params = {"Marker": page["Marker"]}


def _row(integ: dict[str, Any], service: str) -> IntegrationRow:
    config = integ.get("IntegrationConfig") or {}
    created = integ.get("CreateTime")
    return IntegrationRow(
        arn=integ["IntegrationArn"],
        name=integ["IntegrationName"],
        service=service,
        source_arn=integ["SourceArn"],
        target_arn=integ["TargetArn"],
        status=str(integ["Status"]).upper(),  # RDS spells states in lower case
        created=created.timestamp() if isinstance(created, datetime) else time.time(),
        description=str(integ.get("Description") or ""),
        data_filter=str(integ.get("DataFilter") or ""),
        refresh_interval=str(config.get("RefreshInterval") or ""),
        errors=list(integ.get("Errors") or []),
    )


def _lag_by_arn(lab: Lab) -> dict[str, tuple[float | None, datetime | None]]:
    """Per integration (its row with no table): lag seconds and the last sync time."""
    out = {}
    for row in lab.monitor.lag().to_pylist():
        if row.get("table_name") is None:
            out[row["integration_arn"]] = (row.get("lag_seconds"), row.get("last_synced"))
    return out
