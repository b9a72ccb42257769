"""The query box as ipywidgets, over :class:`QueryState`.

Queries run in a background thread (a long query, e.g. one calling an LLM, never blocks the
kernel); the names list inserts replicated tables and system views into the SQL.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import render as r
from ..query_state import DIALECTS, QueryState
from . import View, ipywidgets


def query_widget(lab: Any) -> Any:
    """The query box's root widget; ``.state`` is its :class:`QueryState`."""
    return QueryView(QueryState(lab)).root


class QueryView(View):
    """Widgets of the query box; :meth:`render` shows the state, handlers change it."""

    def __init__(self, state: QueryState) -> None:
        super().__init__()
        self.w = w = ipywidgets()
        self.state = state
        self.sql = w.Textarea(
            placeholder="SELECT * FROM lakehouse.products LIMIT 10",
            layout={"width": "100%", "height": "120px"},
        )
        self.bind(self.sql, state.set_sql)
        self.dialect = w.ToggleButtons(options=list(DIALECTS), value=state.dialect)
        self.bind(self.dialect, state.set_dialect)
        self.run = w.Button(description="Run", button_style="primary", icon="play")
        self.run.on_click(lambda _: self._run())
        self.names = w.Select(options=[], rows=8, layout={"width": "280px"})
        insert = w.Button(description="Insert name", icon="arrow-left")
        insert.on_click(lambda _: self._insert())
        reload = w.Button(description="Reload names", icon="refresh")
        reload.on_click(lambda _: self._load_names())
        self.summary = w.HTML()
        self.result = w.HTML()
        editor = w.VBox([self.sql, w.HBox([self.run, self.dialect])], layout={"width": "70%"})
        names = w.VBox([w.HTML("<b>Tables and system views</b>"), self.names, insert, reload])
        self.root = w.VBox([w.HBox([editor, names]), self.summary, self.result])
        self.root.state = state
        self.root.view = self
        state.observe(self.render)
        self._load_names()
        self.render()

    def _load_names(self) -> None:
        try:
            found = self.state.names()
        except Exception as exc:  # the box still works; the list says why it is empty
            self.summary.value = r.issue(f"Could not list tables: {exc}")
            return
        options = [(f"table  {n}", n) for n in found.tables]
        options += [(f"view   {n}", n) for n in found.system_views]
        with self.rendering():
            self.names.options = options

    def _run(self) -> None:
        def work() -> None:
            if self.state.run():
                self._load_names()  # a CREATE or a new integration may have added names

        threading.Thread(target=work, name="zetl-ui-query", daemon=True).start()

    def _insert(self) -> None:
        if self.names.value:
            self.state.insert(self.names.value)

    def render(self) -> None:
        """Show the state (called after every change, from whichever thread made it)."""
        s = self.state
        with self.rendering():
            self.put(self.sql, s.sql)
            self.put(self.dialect, s.dialect)
            self.run.disabled = s.running
            if s.error is not None:
                self.summary.value = r.issue(s.error)
                self.result.value = ""
            else:
                self.summary.value = f"<small>{r.esc(s.summary)}</small>"
                if not s.running:
                    self.result.value = (
                        r.table(s.columns, s.rows, types=s.types) if s.columns else ""
                    )
