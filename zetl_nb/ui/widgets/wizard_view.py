"""The create-integration wizard as ipywidgets, over :class:`CreateIntegrationState`."""

from __future__ import annotations

from typing import Any

from ...transform.specs import CONVERSIONS, FUNCTIONS, UNNEST_SPECS
from .. import render as r
from ..pickers import Option
from ..wizard_state import STEPS, CreateIntegrationState
from . import View, ipywidgets


def wizard_widget(lab: Any) -> Any:
    """The wizard's root widget; ``.state`` is its :class:`CreateIntegrationState`."""
    return WizardView(CreateIntegrationState(lab)).root


def _choices(options: list[Option], prompt: str) -> list[tuple[str, str | None]]:
    return [(prompt, None), *((o.label, o.value) for o in options)]


class WizardView(View):
    """Widgets for each step; :meth:`render` shows the state, handlers change it."""

    def __init__(self, state: CreateIntegrationState) -> None:
        super().__init__()
        self.w = w = ipywidgets()
        self.state = state
        self.header = w.HTML()
        self.notice = w.HTML()
        self.issues: dict[str, list[Any]] = {}
        self.pages = [
            self._source_type_page(),
            self._source_target_page(),
            self._output_page(),
            self._security_page(),
            self._details_page(),
            self._review_page(),
        ]
        self.back = w.Button(description="Back", icon="arrow-left")
        self.next = w.Button(description="Next", button_style="primary", icon="arrow-right")
        self.back.on_click(lambda _: state.back())
        self.next.on_click(lambda _: state.next())
        self.after = self._after_create()
        nav = w.HBox([self.back, self.next])
        self.root = w.VBox([self.header, *self.pages, nav, self.notice, self.after])
        self.root.state = state
        self.root.view = self
        self._close_root = self.root.close
        self.root.close = self.close
        state.observe(self.render)
        self.render()

    def close(self) -> None:
        """Stop following the created integration; close the widgets."""
        self.state.close()
        self._close_root()

    # -- pages --------------------------------------------------------------------------------
    def _issue(self, name: str) -> Any:
        box = self.w.HTML()
        self.issues.setdefault(name, []).append(box)
        return box

    def _text(self, name: str, description: str, **kw: Any) -> Any:
        box = self.w.Text(description=description, style={"description_width": "140px"}, **kw)
        self.bind(box, lambda v: self.state.set(name, v))
        return box

    def _source_type_page(self) -> Any:
        self.kind = self.w.RadioButtons(
            options=[(t.label, t.key) for t in self.state.source_types()], value=None
        )
        self.bind(self.kind, lambda v: self.state.set("source_type", v))
        return self.w.VBox([self.kind, self._issue("source_type")])

    def _source_target_page(self) -> Any:
        w = self.w
        wide = {"description_width": "140px"}
        self.source = w.Dropdown(description="Source", style=wide, options=[("", None)])
        self.target = w.Dropdown(description="Target database", style=wide, options=[("", None)])
        self.bind(self.source, lambda v: self.state.set("source_arn", v))
        self.bind(self.target, lambda v: self.state.set("target_arn", v))
        self.new_db = self._text("new_database", "New database", placeholder="lakehouse")
        self.new_loc = self._text(
            "new_database_location", "LocationUri", placeholder="optional (fix-it can set it)"
        )
        self.create_db = create_db = w.Button(description="Create database", icon="plus")
        create_db.on_click(lambda _: self.state.create_target_database())
        reload = w.Button(description="Reload lists", icon="refresh")
        reload.on_click(lambda _: self.state.reload())
        return w.VBox(
            [
                self.source,
                self._issue("source_arn"),
                self.target,
                self._issue("target_arn"),
                w.HTML("<b>…or create a target database</b>"),
                w.HBox([self.new_db, self.new_loc, create_db]),
                self._issue("new_database"),
                reload,
                self._issue(""),
            ]
        )

    def _output_page(self) -> Any:
        w = self.w
        wide = {"description_width": "140px"}
        self.unnest = w.Dropdown(
            description="UnnestSpec",
            style=wide,
            options=[("FULL (default)", ""), *((u, u) for u in UNNEST_SPECS)],
        )
        self.bind(self.unnest, lambda v: self.state.set("unnest_spec", v))
        self.partition_rows = w.VBox()
        add = w.Button(description="Add partition key", icon="plus")
        add.on_click(lambda _: self.state.add_partition())
        self.dynamodb_box = w.VBox(
            [
                self.unnest,
                self._issue("unnest_spec"),
                w.HTML("<b>Partition keys</b>"),
                self.partition_rows,
                add,
                self._issue("partitions"),
            ]
        )
        self.data_filter = w.Textarea(
            description="DataFilter", style=wide, placeholder="include: shop.*, exclude: shop.audit"
        )
        self.bind(self.data_filter, lambda v: self.state.set("data_filter", v))
        self.table_name = self._text("table_name", "Source table", placeholder="shop.orders")
        self.relational_box = w.VBox(
            [
                self.data_filter,
                self._issue("data_filter"),
                self.table_name,
                self._issue("table_name"),
            ]
        )
        self.target_table = self._text("target_table_name", "Target table name")
        return w.VBox(
            [
                self.dynamodb_box,
                self.relational_box,
                self.target_table,
                self._issue("target_table_name"),
            ]
        )

    def _partition_row(self, index: int) -> Any:
        w, key = self.w, self.state.partitions[index]
        name = w.Text(value=key.field_name, placeholder="FieldName", layout={"width": "180px"})
        function = w.Dropdown(options=list(FUNCTIONS), value=key.function or "identity")
        conversion = w.Dropdown(
            options=[("no conversion", ""), *((c, c) for c in CONVERSIONS)], value=key.conversion
        )
        remove = w.Button(description="Remove", icon="trash", layout={"width": "100px"})
        self.bind(name, lambda v: self.state.set_partition(index, field_name=v))
        self.bind(function, lambda v: self.state.set_partition(index, function=v))
        self.bind(conversion, lambda v: self.state.set_partition(index, conversion=v))
        remove.on_click(lambda _: self.state.remove_partition(index))
        return w.HBox([name, function, conversion, remove])

    def _security_page(self) -> Any:
        self.kms = self._text(
            "kms_key_id", "KMS key", placeholder="optional: key id, key ARN or alias"
        )
        return self.w.VBox([self.kms, self._issue("kms_key_id")])

    def _details_page(self) -> Any:
        w = self.w
        self.name = self._text("name", "Integration name")
        self.description = w.Textarea(
            description="Description", style={"description_width": "140px"}
        )
        self.bind(self.description, lambda v: self.state.set("description", v))
        self.refresh = self._text("refresh_interval", "RefreshInterval", placeholder="15 (minutes)")
        self.continuous = w.Checkbox(description="ContinuousSync", value=True)
        self.bind(self.continuous, lambda v: self.state.set("continuous_sync", v))
        self.dynamodb_details = w.VBox(
            [
                self.refresh,
                self._issue("refresh_interval"),
                self.continuous,
                self._issue("continuous_sync"),
            ]
        )
        self.relational_note = w.HTML("<i>Aurora/RDS integrations replicate continuously.</i>")
        return w.VBox(
            [
                self.name,
                self._issue("name"),
                self.description,
                self._issue("description"),
                self.dynamodb_details,
                self.relational_note,
            ]
        )

    def _review_page(self) -> Any:
        self.review = self.w.HTML()
        self.create = self.w.Button(description="Create integration", button_style="success")
        self.create.on_click(lambda _: self.state.create())
        return self.w.VBox([self.review, self.create, self._issue("")])

    def _after_create(self) -> Any:
        w = self.w
        self.status = w.HTML()
        self.fix_button = w.Button(
            description="Fix it for me", button_style="warning", icon="wrench"
        )
        self.fix_button.on_click(lambda _: self.state.preview_fixes())
        self.plan = w.HTML()
        self.apply = w.Button(description="Apply these changes", button_style="danger")
        self.apply.on_click(lambda _: self.state.apply_fixes())
        return w.VBox([self.status, self.fix_button, self.plan, self.apply])

    # -- rendering ----------------------------------------------------------------------------
    def render(self) -> None:
        """Show the state (called after every change, from whichever thread made it)."""
        s = self.state
        with self.rendering():
            self.header.value = _breadcrumb(s.step)
            for i, page in enumerate(self.pages):
                self.show(page, i == s.step and s.integration_arn is None)
            for name, boxes in self.issues.items():
                found = s.issues.get(name)
                for box in boxes:
                    box.value = r.issue(found.message if found else None)
            self._render_fields()
            self.back.disabled = s.step == 0 or s.integration_arn is not None
            self.next.disabled = s.step == len(STEPS) - 1 or s.integration_arn is not None
            self.notice.value = r.notice(s.notice)
            if STEPS[s.step].key == "review" and s.integration_arn is None:
                self.review.value = _review_html(s)
            self._render_after()

    def _render_fields(self) -> None:
        s = self.state
        kind = s.kind
        relational = kind is not None and kind.relational
        self.put(self.kind, s.source_type)
        if s.step == 1:
            self._options(
                self.source, _choices(s.source_options(), "Choose a source…"), s.source_arn
            )
            self._options(
                self.target, _choices(s.target_options(), "Choose a database…"), s.target_arn
            )
        self.show(self.dynamodb_box, not relational)
        self.show(self.relational_box, relational)
        self.show(self.dynamodb_details, not relational)
        self.show(self.relational_note, relational)
        for box, name in (
            (self.new_db, "new_database"),
            (self.new_loc, "new_database_location"),
            (self.table_name, "table_name"),
            (self.target_table, "target_table_name"),
            (self.kms, "kms_key_id"),
            (self.name, "name"),
            (self.description, "description"),
            (self.refresh, "refresh_interval"),
            (self.data_filter, "data_filter"),
            (self.unnest, "unnest_spec"),
            (self.continuous, "continuous_sync"),
        ):
            self.put(box, getattr(s, name))
        if len(self.partition_rows.children) != len(s.partitions):
            self.partition_rows.children = [
                self._partition_row(i) for i in range(len(s.partitions))
            ]

    def _options(self, box: Any, options: list[tuple[str, str | None]], value: str | None) -> None:
        if list(box.options) != options:
            box.options = options  # resets the value: put it back
        if value not in [v for _, v in options]:
            value = None
        self.put(box, value)

    def _render_after(self) -> None:
        s = self.state
        created = s.integration_arn is not None
        self.show(self.after, created)
        if not created:
            return
        errors = "".join(
            f"<li><b>{r.esc(e['ErrorCode'])}</b>: {r.esc(e['ErrorMessage'])}</li>" for e in s.errors
        )
        self.status.value = (
            f"<b>{r.esc(s.name)}</b> {r.badge(s.status or '')}"
            f"<div><small>{r.esc(s.integration_arn)}</small></div>"
            + (f"<ul>{errors}</ul>" if errors else "")
        )
        fix = s.fix
        planned = fix is not None and fix.plan is not None
        self.show(self.fix_button, bool(s.errors) and not planned)
        self.show(self.apply, planned and bool(fix and fix.plan))
        self.plan.value = r.fix_html(fix)


def _breadcrumb(step: int) -> str:
    parts = []
    for i, s in enumerate(STEPS):
        label = f"{i + 1}. {r.esc(s.title)}"
        parts.append(
            f"<b>{label}</b>" if i == step else f"<span style='color:#5f6b7a'>{label}</span>"
        )
    return "<h4>Create integration</h4>" + " &rsaquo; ".join(parts)


def _review_html(s: CreateIntegrationState) -> str:
    rows = r.table(["Setting", "Value"], s.review())
    calls = "\n\n".join(c.code() for c in s.calls())
    intro = "<p>The calls <b>Create</b> makes (a notebook cell could make them):</p>"
    return f"{rows}{intro}{r.code(calls)}"
