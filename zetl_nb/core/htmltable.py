"""HTML tables for notebooks: query results and the widgets share one renderer.

>>> table(["id", "note"], [[1, "<b>x</b>"], [2, None]]).count("<tr>")
3
>>> cell("<b>x</b>"), cell(None)
('&lt;b&gt;x&lt;/b&gt;', '<i>NULL</i>')
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

#: Longest cell text shown; longer values end in an ellipsis.
CELL_CHARS = 80


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value))


def cell(value: Any) -> str:
    """One value as table text: NULL in italics, long values shortened."""
    if value is None:
        return "<i>NULL</i>"
    text = str(value)
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return esc(text)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    raw: bool = False,
    caption: str = "",
    types: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells escaped and shortened unless ``raw`` (cells are HTML already)."""
    head = "".join(
        f"<th>{esc(c)}" + (f"<br><small>{esc(types[i])}</small>" if types else "") + "</th>"
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{v if raw else cell(v)}</td>" for v in row) + "</tr>" for row in rows
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="zetl-table" style="border-collapse:collapse">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
