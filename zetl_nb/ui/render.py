"""HTML for the widgets, from state: status badges, tables, progress bars, SVG sparklines.

Pure functions of plain data (no ipywidgets), so what a widget shows is testable as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..core.htmltable import cell, esc, table

if TYPE_CHECKING:
    from .fixit import FixIt

__all__ = ["BADGE_COLORS", "badge", "cell", "esc", "progress_bar", "sparkline", "table"]

#: Status → badge colour (the console's: green healthy, blue busy, amber attention, red failed).
BADGE_COLORS = {
    "ACTIVE": "#1d8102",
    "CREATING": "#0972d3",
    "MODIFYING": "#0972d3",
    "SYNCING": "#0972d3",
    "NEEDS_ATTENTION": "#b7740f",
    "FAILED": "#d91515",
    "DELETING": "#5f6b7a",
    "DELETED": "#5f6b7a",
}


def badge(status: str) -> str:
    """A coloured status badge."""
    color = BADGE_COLORS.get(status.upper(), "#5f6b7a")
    return (
        f'<span class="zetl-badge" style="background:{color};color:white;border-radius:10px;'
        f'padding:1px 8px;font-size:11px;white-space:nowrap">{esc(status.upper())}</span>'
    )


def progress_bar(fraction: float | None, label: str) -> str:
    """An HTML progress bar (indeterminate when ``fraction`` is None)."""
    value = "" if fraction is None else f' value="{fraction:.3f}" max="1"'
    return f'<progress{value} style="width:120px"></progress> <small>{esc(label)}</small>'


def sparkline(
    values: Sequence[float], width: int = 160, height: int = 32, color: str = "#0972d3"
) -> str:
    """An inline SVG line of ``values`` (scaled to its own maximum), with the last value."""
    if not values:
        return f'<svg width="{width}" height="{height}"></svg>'
    top = max(max(values), 1e-9)
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg class="zetl-sparkline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><polyline fill="none" stroke="{color}" '
        f'stroke-width="1.5" points="{points}"/></svg>'
    )


def seconds(value: float | None) -> str:
    """``0.4 s``, ``12 s``, ``3 min``, ``2.1 h`` (``—`` for none)."""
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def when(value: datetime | float | None) -> str:
    """A time as ``HH:MM:SS`` UTC (``—`` for none)."""
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, tz=UTC)
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def issue(message: str | None) -> str:
    """An inline validation message (empty when there is none)."""
    if not message:
        return ""
    return (
        '<div class="zetl-issue" style="color:#d91515;font-size:12px;white-space:pre-wrap">'
        f"{esc(message)}</div>"
    )


def notice(message: str | None) -> str:
    """An informational line (empty when there is none)."""
    if not message:
        return ""
    return f'<div class="zetl-notice" style="color:#0972d3">{esc(message)}</div>'


def code(text: str) -> str:
    """A block of code."""
    return f'<pre style="font-size:12px;background:#f4f4f4;padding:6px">{esc(text)}</pre>'


def fix_html(fix: FixIt | None) -> str:
    """ "Fix it for me": the changes it will make, what it made, or why it could not."""
    if fix is None:
        return ""
    if fix.error:
        return issue(fix.error)
    if fix.plan is not None:
        if not fix.plan:
            return notice("Nothing to fix automatically.")
        items = "".join(f"<li>{esc(line)}</li>" for line in fix.describe(fix.plan))
        return f"<p><b>Fix it for me will make these changes:</b></p><ul>{items}</ul>"
    if fix.applied is not None:
        items = "".join(f"<li>{esc(line)}</li>" for line in fix.describe(fix.applied))
        return f"<p><b>Applied:</b></p><ul>{items}</ul>"
    return ""
