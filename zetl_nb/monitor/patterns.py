"""EventBridge event patterns: validation and matching, as EventBridge documents them.

A pattern is a JSON object whose leaves are arrays; an event matches when, for every key of the
pattern, the event's field matches: a nested object recurses, an array matches when **any** of
its entries matches (a list means OR), and an event field that is itself an array matches when
any of its elements does. Entries are exact values or one of the content filters
``{"prefix": s}``, ``{"suffix": s}``, ``{"equals-ignore-case": s}``, ``{"anything-but": ...}``
(a value, a list of values, or ``{"prefix": s}``), ``{"exists": bool}`` and
``{"numeric": [op, n, ...]}``.

>>> matches({"source": [{"prefix": "aws.glue"}]}, {"source": "aws.glue-zero-etl"})
True
>>> matches({"detail": {"tableName": ["orders", "items"]}}, {"detail": {"tableName": "users"}})
False
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.errors import AwsError

_MISSING = object()
_NUMERIC_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_FILTERS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "numeric"}


def invalid(message: str) -> AwsError:
    """EventBridge's error for a malformed pattern."""
    return AwsError("InvalidEventPatternException", f"Event pattern is not valid. {message}")


def parse_pattern(pattern: Mapping[str, Any] | str) -> dict[str, Any]:
    """A validated pattern from a dict or its JSON text; InvalidEventPatternException if bad."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as exc:
            raise invalid(f"It is not JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(pattern, Mapping) or not pattern:
        raise invalid('It must be a non-empty JSON object, e.g. {"source": ["aws.glue-zero-etl"]}.')
    _check(pattern, "")
    return dict(pattern)


def _check(node: Mapping[str, Any], path: str) -> None:
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, Mapping):
            if not value:
                raise invalid(f"'{where}' is an empty object.")
            _check(value, where)
        elif isinstance(value, list):
            if not value:
                raise invalid(f"'{where}' is an empty array; list at least one value.")
            for entry in value:
                _check_entry(entry, where)
        else:
            raise invalid(
                f"'{where}' must be an array of values (e.g. [{json.dumps(value)}]) or an object."
            )


def _check_entry(entry: Any, where: str) -> None:
    if entry is None or isinstance(entry, (str, int, float, bool)):
        return
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise invalid(f"'{where}' has an entry that is neither a value nor one content filter.")
    ((name, arg),) = entry.items()
    if name not in _FILTERS:
        raise invalid(f"'{where}' uses the unknown filter '{name}'; use one of {sorted(_FILTERS)}.")
    if name in ("prefix", "suffix", "equals-ignore-case") and not isinstance(arg, str):
        raise invalid(f"'{where}': '{name}' takes a string.")
    if name == "exists" and not isinstance(arg, bool):
        raise invalid(f"'{where}': 'exists' takes true or false.")
    if name == "numeric":
        ok = isinstance(arg, list) and len(arg) in (2, 4)
        pairs = list(zip(arg[::2], arg[1::2], strict=False)) if ok else []
        if not ok or any(
            op not in _NUMERIC_OPS or not isinstance(n, (int, float)) or isinstance(n, bool)
            for op, n in pairs
        ):
            raise invalid(f"'{where}': 'numeric' takes e.g. [\">\", 0, \"<=\", 5].")


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches the (validated) ``pattern``."""
    for key, want in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(want, Mapping):
            if not isinstance(value, Mapping) or not matches(want, value):
                return False
        elif not _field_matches(want, value):
            return False
    return True


def _field_matches(entries: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for entry in entries:
        if isinstance(entry, Mapping) and "exists" in entry:
            present = value is not _MISSING
            if present == entry["exists"]:
                return True
            continue
        if any(v is not _MISSING and _entry_matches(entry, v) for v in values):
            return True
    return False


def _entry_matches(entry: Any, value: Any) -> bool:
    if not isinstance(entry, Mapping):
        return _same(entry, value)
    ((name, arg),) = entry.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == arg.lower()
    if name == "anything-but":
        return not _anything_but_hits(arg, value)
    if name == "numeric":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return all(_NUMERIC_OPS[op](value, n) for op, n in zip(arg[::2], arg[1::2], strict=True))
    return False


def _anything_but_hits(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping) and "prefix" in arg:
        return isinstance(value, str) and value.startswith(arg["prefix"])
    options = arg if isinstance(arg, list) else [arg]
    return any(_same(o, value) for o in options)


def _same(want: Any, value: Any) -> bool:
    # JSON semantics: true is not 1, and 5 equals 5.0.
    if isinstance(want, bool) or isinstance(value, bool):
        return want is value
    return bool(want == value)
