"""The integrations dashboard as ipywidgets, over :class:`DashboardState`.

An :class:`~zetl_nb.ui.refresher.AutoRefresh` thread re-reads the state every few seconds (and
at once when the bus reports a change), so the kernel stays free; closing the widget stops it.
"""

from __future__ import annotations

from typing import Any

from .. import render as r
from ..dashboard_state import DashboardState, IntegrationRow
from ..detail import Detail
from ..refresher import AutoRefresh
from . import View, ipywidgets


def dashboard_widget(lab: Any, interval: float = 2.0) -> Any:
    """The dashboard's root widget; ``.state`` is its :class:`DashboardState`, ``.refresher``
    its :class:`AutoRefresh`. ``close()`` stops the refresher and leaves the bus."""
    return DashboardView(DashboardState(lab), interval).root


class DashboardView(View):
    """Widgets of the dashboard; :meth:`render` shows the state, handlers change it."""

    def __init__(self, state: DashboardState, interval: float) -> None:
        super().__init__()
        self.w = w = ipywidgets()
        self.state = state
        self.status = w.HTML()
        self.refresher = AutoRefresh(state.refresh, interval, on_error=lambda _: self.render())
        refresh = w.Button(description="Refresh", icon="refresh")
        refresh.on_click(lambda _: self.refresher.kick())
        self.auto = w.Checkbox(description="Auto-refresh", value=True)
        self.bind(self.auto, self._auto)
        self.table = w.HTML()
        self.pick = w.Dropdown(description="Integration", options=[("", None)])
        self.bind(self.pick, state.select)
        self.actions = self._actions()
        self.modify_box = self._modify_box()
        self.delete_box = self._delete_box()
        self.fix_box = self._fix_box()
        self.notice = w.HTML()
        self.detail = w.HTML()
        self.root = w.VBox(
            [
                w.HBox([w.HTML("<h4>Zero-ETL integrations</h4>"), refresh, self.auto]),
                self.status,
                self.table,
                w.HBox([self.pick, self.actions]),
                self.modify_box,
                self.delete_box,
                self.fix_box,
                self.notice,
                self.detail,
            ]
        )
        state.on_activity = self.refresher.kick
        state.observe(self.render)
        state.start()
        self.refresher.start()
        self._close_root = self.root.close
        self.root.close = self.close
        self.root.state = state
        self.root.view = self
        self.root.refresher = self.refresher
        self.render()

    def close(self) -> None:
        """Stop refreshing, leave the bus, close the widgets."""
        self.refresher.stop()
        self.state.close()
        self._close_root()

    def _auto(self, on: bool) -> None:
        self.refresher.paused = not on
        if on:
            self.refresher.kick()

    # -- action areas -------------------------------------------------------------------------
    def _actions(self) -> Any:
        w = self.w
        self.modify_button = w.Button(description="Modify", icon="edit")
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.fix_button = w.Button(description="Fix it for me", icon="wrench")
        self.modify_button.on_click(lambda _: self._selected(self.state.begin_modify))
        self.delete_button.on_click(lambda _: self._selected(self.state.request_delete))
        self.fix_button.on_click(lambda _: self._selected(self.state.preview_fixes))
        return w.HBox([self.modify_button, self.delete_button, self.fix_button])

    def _selected(self, action: Any) -> None:
        if self.state.selected is not None:
            action(self.state.selected)

    def _modify_box(self) -> Any:
        w = self.w
        wide = {"description_width": "120px"}
        self.m_description = w.Textarea(description="Description", style=wide)
        self.m_refresh = w.Text(description="RefreshInterval", style=wide)
        self.m_filter = w.Textarea(description="DataFilter", style=wide)
        self.m_issues = w.HTML()
        for box, name in (
            (self.m_description, "description"),
            (self.m_refresh, "refresh_interval"),
            (self.m_filter, "data_filter"),
        ):
            self.bind(box, self._modify_field(name))
        save = w.Button(description="Save changes", button_style="primary")
        cancel = w.Button(description="Cancel")
        save.on_click(lambda _: self.state.submit_modify())
        cancel.on_click(lambda _: self.state.cancel_modify())
        fields = [self.m_description, self.m_refresh, self.m_filter]
        return w.VBox([*fields, self.m_issues, w.HBox([save, cancel])])

    def _modify_field(self, name: str) -> Any:
        return lambda value: self.state.set_modify(name, value)

    def _delete_box(self) -> Any:
        w = self.w
        self.d_question = w.HTML()
        confirm = w.Button(description="Delete integration", button_style="danger")
        cancel = w.Button(description="Cancel")
        confirm.on_click(lambda _: self.state.confirm_delete())
        cancel.on_click(lambda _: self.state.cancel_delete())
        return w.VBox([self.d_question, w.HBox([confirm, cancel])])

    def _fix_box(self) -> Any:
        w = self.w
        self.f_plan = w.HTML()
        self.f_apply = w.Button(description="Apply these changes", button_style="danger")
        cancel = w.Button(description="Cancel")
        self.f_apply.on_click(lambda _: self.state.apply_fixes())
        cancel.on_click(lambda _: self._cancel_fix())
        return w.VBox([self.f_plan, w.HBox([self.f_apply, cancel])])

    def _cancel_fix(self) -> None:
        self.state.fix = None
        self.render()

    # -- rendering ----------------------------------------------------------------------------
    def render(self) -> None:
        """Show the state (called after every change, from whichever thread made it)."""
        s = self.state
        with self.rendering():
            self.status.value = _status_line(s, self.refresher)
            self.table.value = rows_html(s.rows)
            options = [("Choose an integration…", None), *((x.name, x.arn) for x in s.rows)]
            if list(self.pick.options) != options:
                self.pick.options = options
            self.put(self.pick, s.selected)
            selected = s.selected is not None
            for button in (self.modify_button, self.delete_button):
                button.disabled = not selected
            row = next((x for x in s.rows if x.arn == s.selected), None)
            self.fix_button.disabled = row is None or not row.errors
            self._render_modify()
            self.show(self.delete_box, s.pending_delete is not None)
            if s.pending_delete is not None:
                self.d_question.value = r.esc(_question(s))
            self.show(self.fix_box, s.fix is not None)
            self.f_plan.value = r.fix_html(s.fix)
            self.f_apply.disabled = s.fix is None or not s.fix.plan
            self.notice.value = r.notice(s.notice)
            self.detail.value = detail_html(s.detail) if s.detail else ""

    def _render_modify(self) -> None:
        form = self.state.modify
        self.show(self.modify_box, form is not None)
        if form is None:
            return
        self.show(self.m_refresh, "refresh_interval" in form.fields)
        self.show(self.m_filter, "data_filter" in form.fields)
        self.put(self.m_description, form.description)
        self.put(self.m_refresh, form.refresh_interval)
        self.put(self.m_filter, form.data_filter)
        self.m_issues.value = "".join(r.issue(i.message) for i in form.issues.values())


def _status_line(s: DashboardState, refresher: AutoRefresh) -> str:
    if s.error:
        stopped = "" if refresher.running else " Auto-refresh stopped."
        return r.issue(f"{s.error}{stopped}")
    if s.refreshed_at is None:
        return "<small>Loading…</small>"
    return f"<small>{len(s.rows)} integrations · refreshed {r.when(s.refreshed_at)} UTC</small>"


def _question(s: DashboardState) -> str:
    row = next((x for x in s.rows if x.arn == s.pending_delete), None)
    name = row.name if row else s.pending_delete
    return f"Delete integration '{name}'? The target database and its tables are kept."


def rows_html(rows: list[IntegrationRow]) -> str:
    """The integrations table: status badge, lag, last sync, row counts, load progress."""
    if not rows:
        return "<i>No integrations yet. Create one with zetl_nb.ui.create_integration(lab).</i>"
    columns = ["Status", "Name", "Source → target", "Lag", "Last sync", "Inserted", "Updated"]
    columns += ["Deleted", "Initial load"]
    body = []
    for x in rows:
        progress = "<br>".join(
            r.progress_bar(
                p.fraction,
                f"{p.table}: {p.done:,}" + (f" of ~{p.estimated:,}" if p.estimated else ""),
            )
            for p in x.progress
        )
        body.append(
            [
                r.badge(x.status),
                f"<b>{r.esc(x.name)}</b>",
                f"{r.esc(x.source)} → {r.esc(x.target)}",
                r.seconds(x.lag_seconds),
                r.when(x.last_sync),
                f"{x.inserted:,}",
                f"{x.updated:,}",
                f"{x.deleted:,}",
                progress,
            ]
        )
    return r.table(columns, body, raw=True)


def detail_html(d: Detail) -> str:
    """One integration: table states, charts of rows applied and lag, recent logs and events."""
    tables = r.table(
        ["Table", "State", "Reason"],
        [[t.get("TableName"), t.get("State"), t.get("Reason") or ""] for t in d.tables],
    )
    applied = [v for _, v in d.rows_applied]
    lags = [v for _, v in d.lag]
    charts = (
        f"<div>Rows applied (10 s periods, last 10 min): {r.sparkline(applied)} "
        f"{int(sum(applied)):,} rows</div>"
        f"<div>Lag (as observed): {r.sparkline(lags, color='#b7740f')} "
        f"{r.seconds(lags[-1] if lags else None)}</div>"
    )
    logs = r.table(
        ["Time", "Message", "Table", "Details"],
        [[r.when(x.time), x.message_type, x.table, x.text] for x in reversed(d.logs)],
    )
    events = r.table(
        ["Time", "Event", "Table"], [[x.time, x.detail_type, x.table] for x in reversed(d.events)]
    )
    return (
        f"<h4>Tables</h4>{tables}<h4>Activity</h4>{charts}"
        f"<h4>Recent logs</h4>{logs}<h4>Recent events</h4>{events}"
    )
