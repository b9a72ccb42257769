"""DataFilter: which source tables an integration replicates.

AWS's syntax is a comma-separated list of ``include:`` / ``exclude:`` rules over dotted patterns:
``database.table`` for MySQL sources, ``database.schema.table`` for PostgreSQL, a bare entity name
for SaaS sources. ``*`` matches any run of characters; double quotes keep dots and case literal.
Rules apply left to right and the last matching rule wins; a table no rule matches is excluded.

>>> f = DataFilter.parse("include: shop.*, exclude: shop.audit_*", levels=2)
>>> f.matches(("shop", "orders")), f.matches(("shop", "audit_log"))
(True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..core.errors import validation

_RULE = re.compile(r"^\s*(include|exclude)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_PART = re.compile(r'"((?:[^"]|"")+)"|([^."\s]+)')


@dataclass(frozen=True)
class FilterRule:
    include: bool
    pattern: tuple[str, ...]

    def matches(self, name: tuple[str, ...]) -> bool:
        return len(name) == len(self.pattern) and all(
            fnmatchcase(part, pat) for part, pat in zip(name, self.pattern, strict=True)
        )

    def __str__(self) -> str:
        parts = ".".join(_quote(p) for p in self.pattern)
        return f"{'include' if self.include else 'exclude'}: {parts}"


@dataclass(frozen=True)
class DataFilter:
    """A parsed DataFilter. ``levels`` is how many dotted parts a table name has."""

    rules: tuple[FilterRule, ...]
    levels: int

    @classmethod
    def parse(cls, text: str, levels: int, field: str = "DataFilter") -> DataFilter:
        """Parse ``text``; errors are ``ValidationException`` with the offending rule."""
        if not text or not text.strip():
            raise validation(f"{field} is empty; use e.g. 'include: {_example(levels)}'.")
        rules = []
        for raw in _split_rules(text):
            m = _RULE.match(raw)
            if not m:
                raise validation(
                    f"{field} rule '{raw.strip()}' must start with 'include:' or 'exclude:', "
                    f"e.g. 'include: {_example(levels)}'."
                )
            pattern = _parse_pattern(m.group(2), levels, field)
            rules.append(FilterRule(m.group(1).lower() == "include", pattern))
        return cls(tuple(rules), levels)

    def matches(self, name: tuple[str, ...]) -> bool:
        """Whether the table ``name`` (``levels`` parts) is replicated."""
        verdict = False
        for rule in self.rules:
            if rule.matches(name):
                verdict = rule.include
        return verdict

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.rules)


def _quote(part: str) -> str:
    """A pattern part as the parser reads it back: quoted (``"`` doubled) unless a plain word."""
    if re.fullmatch(r"[\w*$]+", part):
        return part
    return '"' + part.replace('"', '""') + '"'


def _example(levels: int) -> str:
    return {1: "Account", 2: "mydb.*", 3: "mydb.public.*"}.get(levels, "*")


def _split_rules(text: str) -> list[str]:
    """Split on commas outside double quotes."""
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


def _parse_pattern(text: str, levels: int, field: str) -> tuple[str, ...]:
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            raise validation(
                f"{field} pattern '{text}' is not a dotted name like {_example(levels)}."
            )
        parts.append(m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ".":
                raise validation(f"{field} pattern '{text}' has an unexpected '{text[pos]}'.")
            pos += 1
            if pos == len(text):
                raise validation(f"{field} pattern '{text}' ends with a dot.")
    if len(parts) != levels:
        raise validation(
            f"{field} pattern '{text}' has {len(parts)} part(s); this source needs {levels} "
            f"(e.g. {_example(levels)})."
        )
    return tuple(parts)
