"""EventBridge patterns: exact and prefix matching, lists as OR, nesting, the other filters."""

from __future__ import annotations

from typing import Any

import pytest

from zetl_nb.core.errors import AwsError
from zetl_nb.monitor import eventbridge as eb
from zetl_nb.monitor.patterns import matches, parse_pattern

EVENT: dict[str, Any] = eb.make_event(
    eb.INGESTION_FAILED,
    {"integrationArn": "arn:i", "tableName": "orders", "rows": 5, "tags": ["a", "b"]},
    ["arn:i"],
    "123456789012",
    "us-east-1",
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.glue-zero-etl"]}, True),
        ({"source": ["aws.glue"]}, False),  # exact, not substring
        ({"source": [{"prefix": "aws.glue"}]}, True),
        ({"detail-type": [{"prefix": "Glue Zero ETL"}]}, False),  # the guide's own rule
        (eb.ZERO_ETL_RULE, True),
        ({"detail-type": ["AWS Glue Zero ETL Ingestion Completed", EVENT["detail-type"]]}, True),
        ({"detail": {"tableName": ["orders"]}}, True),
        ({"detail": {"tableName": ["items", "users"]}}, False),
        ({"detail": {"tableName": ["orders"]}, "source": ["other"]}, False),  # keys are AND
        ({"detail": {"tags": ["b"]}}, True),  # an array field matches if any element does
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"tableName": [{"exists": True}]}}, True),
        ({"detail": {"tableName": [{"anything-but": ["orders"]}]}}, False),
        ({"detail": {"tableName": [{"anything-but": {"prefix": "ite"}}]}}, True),
        ({"detail": {"tableName": [{"suffix": "ders"}]}}, True),
        ({"detail": {"tableName": [{"equals-ignore-case": "ORDERS"}]}}, True),
        ({"detail": {"rows": [{"numeric": [">", 1, "<=", 5]}]}}, True),
        ({"detail": {"rows": [{"numeric": [">", 5]}]}}, False),
        ({"detail": {"rows": [5.0]}}, True),
        ({"detail": {"rows": ["5"]}}, False),  # types matter
        ({"resources": ["arn:i"]}, True),
    ],
)
def test_matching(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(parse_pattern(pattern), EVENT) is expected


def test_json_text_is_accepted() -> None:
    assert matches(parse_pattern('{"account": ["123456789012"]}'), EVENT)


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {},
        {"source": "aws.glue-zero-etl"},  # a leaf must be an array
        {"source": []},
        {"source": [{"wildcard-ish": "x"}]},
        {"source": [{"prefix": 3}]},
        {"detail": {"rows": [{"numeric": ["~", 1]}]}},
        {"detail": {}},
    ],
)
def test_invalid_patterns_are_rejected_with_eventbridges_code(bad: Any) -> None:
    with pytest.raises(AwsError) as err:
        parse_pattern(bad)
    assert err.value.code == "InvalidEventPatternException"


def test_rules_deliver_to_matching_subscribers_and_survive_a_failing_one() -> None:
    rules = eb.Rules()
    got: list[str] = []

    def boom(event: dict[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    rules.subscribe({"source": [{"prefix": "aws."}]}, boom)
    stop = rules.subscribe({"detail": {"tableName": ["orders"]}}, lambda e: got.append(e["id"]))
    rules.subscribe({"detail": {"tableName": ["items"]}}, lambda e: got.append("wrong"))
    assert rules.deliver(EVENT) == 2
    stop()
    rules.deliver(EVENT)
    assert got == [EVENT["id"]]


def test_the_six_detail_types_carry_the_prefix() -> None:
    names = [eb.make_event(k, {}, [], "1", "r")["detail-type"] for k in eb.DETAIL_TYPES]
    assert names == [f"AWS Glue Zero ETL {k}" for k in eb.DETAIL_TYPES]
    assert len(set(names)) == 6
    custom = eb.make_event(eb.INGESTION_COMPLETED, {}, [], "1", "r", prefix="Glue Zero ETL")
    assert custom["detail-type"] == "Glue Zero ETL Ingestion Completed"
