"""A small IAM policy evaluator for resource policies zero-ETL requires.

It answers one question: does this policy allow ``principal`` to perform each of ``actions`` on
``resource``? Explicit ``Deny`` wins over ``Allow``; ``*`` and ``?`` wildcards work in actions and
resources; ``Condition`` blocks are not evaluated (locally there is no request context to evaluate
them against — see ``docs/aws-parity.md``).

>>> doc = '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"},'
>>> doc += ' "Action": "dynamodb:Describe*", "Resource": "*"}]}'
>>> missing_actions(doc, {"Service": "glue.amazonaws.com"}, ["dynamodb:DescribeTable"], "arn:x")
[]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _strings(value: Any) -> list[str]:
    # PutResourcePolicy checks only the outline of a document: a number or object where a string
    # belongs matches nothing rather than crashing the prerequisite check.
    return [v for v in _as_list(value) if isinstance(v, str)]


def _principal_matches(stmt_principal: Any, principal: Mapping[str, str]) -> bool:
    if stmt_principal == "*":
        return True
    if not isinstance(stmt_principal, dict):
        return False
    for kind, value in principal.items():
        for candidate in _strings(stmt_principal.get(kind)):
            if candidate == "*" or candidate == value:
                return True
            # An account root principal covers everything in that account.
            if (
                kind == "AWS"
                and candidate.endswith(":root")
                and value.startswith(candidate[: -len("root")])
            ):
                return True
    return False


def _matches_any(patterns: Iterable[str], value: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        return any(fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatchcase(value, p) for p in patterns)


def parse_policy(policy: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document (JSON text or dict); ValueError if malformed."""
    doc = json.loads(policy) if isinstance(policy, str) else dict(policy)
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise ValueError("a policy document needs a 'Statement' list")
    statements = _as_list(doc["Statement"])
    if not all(isinstance(s, dict) for s in statements):
        raise ValueError("every Statement must be an object")
    return statements


def missing_actions(
    policy: str | Mapping[str, Any] | None,
    principal: Mapping[str, str],
    actions: Iterable[str],
    resource: str,
) -> list[str]:
    """The subset of ``actions`` the policy does not allow ``principal`` on ``resource``."""
    wanted = list(actions)
    if not policy:
        return wanted
    try:
        statements = parse_policy(policy)
    except (ValueError, TypeError):
        return wanted
    allowed: set[str] = set()
    denied: set[str] = set()
    for stmt in statements:
        if not _principal_matches(stmt.get("Principal"), principal):
            continue
        if not _matches_any(_strings(stmt.get("Resource")), resource, case_sensitive=True):
            continue
        acts = _strings(stmt.get("Action"))
        hits = {a for a in wanted if _matches_any(acts, a, case_sensitive=False)}
        if stmt.get("Effect") == "Deny":
            denied.update(hits)
        elif stmt.get("Effect") == "Allow":  # anything else grants nothing, as in IAM
            allowed.update(hits)
    return [a for a in wanted if a not in allowed or a in denied]
