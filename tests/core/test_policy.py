"""The IAM resource-policy evaluator: effects, wildcards, principals, and monotonicity."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.policy import missing_actions, parse_policy

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
EXPORT = f"{TABLE}/export/01700000000000-abcdef"
GLUE = {"Service": "glue.amazonaws.com"}
ACTIONS = ["dynamodb:ExportTableToPointInTime", "dynamodb:DescribeTable", "dynamodb:DescribeExport"]


def stmt(
    action: Any,
    resource: Any = "*",
    effect: str = "Allow",
    principal: Any = None,
) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Principal": {"Service": "glue.amazonaws.com"} if principal is None else principal,
        "Action": action,
        "Resource": resource,
    }


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# -- allow / deny / wildcards --------------------------------------------------------------------


def test_no_policy_misses_everything() -> None:
    assert missing_actions(None, GLUE, ACTIONS, TABLE) == ACTIONS
    assert missing_actions("", GLUE, ACTIONS, TABLE) == ACTIONS


def test_exact_action_allows_only_that_action() -> None:
    policy = doc(stmt("dynamodb:DescribeTable", TABLE))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == [
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:DescribeExport",
    ]


def test_action_list() -> None:
    policy = doc(stmt(["dynamodb:DescribeTable", "dynamodb:ExportTableToPointInTime"], TABLE))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ["dynamodb:DescribeExport"]


def test_service_wildcard_allows_every_action_of_that_service() -> None:
    policy = doc(stmt("dynamodb:*", TABLE))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == []
    assert missing_actions(policy, GLUE, ["glue:GetTable"], TABLE) == ["glue:GetTable"]


def test_prefix_wildcard() -> None:
    policy = doc(stmt("dynamodb:Describe*", "*"))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ["dynamodb:ExportTableToPointInTime"]


def test_question_mark_wildcard() -> None:
    policy = doc(stmt("dynamodb:DescribeTabl?", "*"))
    assert missing_actions(policy, GLUE, ["dynamodb:DescribeTable"], TABLE) == []
    assert missing_actions(policy, GLUE, ["dynamodb:DescribeTables"], TABLE) == [
        "dynamodb:DescribeTables"
    ]


def test_bare_star_action() -> None:
    assert missing_actions(doc(stmt("*")), GLUE, ACTIONS, TABLE) == []


def test_actions_are_case_insensitive() -> None:
    policy = doc(stmt(["DYNAMODB:describetable", "DynamoDB:describe*"], TABLE))
    assert missing_actions(policy, GLUE, ["dynamodb:DescribeTable"], TABLE) == []
    assert missing_actions(policy, GLUE, ["dynamodb:DESCRIBEEXPORT"], TABLE) == []


def test_resources_are_case_sensitive() -> None:
    policy = doc(stmt("dynamodb:*", TABLE.upper()))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ACTIONS


def test_resource_must_match() -> None:
    other = "arn:aws:dynamodb:us-east-1:123456789012:table/customers"
    policy = doc(stmt("dynamodb:*", other))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ACTIONS


def test_export_resource_wildcard_covers_exports_not_the_table() -> None:
    policy = doc(stmt("dynamodb:DescribeExport", f"{TABLE}/export/*"))
    assert missing_actions(policy, GLUE, ["dynamodb:DescribeExport"], EXPORT) == []
    assert missing_actions(policy, GLUE, ["dynamodb:DescribeExport"], TABLE) == [
        "dynamodb:DescribeExport"
    ]


def test_resource_list() -> None:
    policy = doc(stmt("dynamodb:*", [TABLE, f"{TABLE}/export/*"]))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == []
    assert missing_actions(policy, GLUE, ACTIONS, EXPORT) == []


def test_statement_without_resource_matches_nothing() -> None:
    policy = doc({"Effect": "Allow", "Principal": "*", "Action": "*"})
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ACTIONS


def test_explicit_deny_beats_allow_in_either_order() -> None:
    allow = stmt("dynamodb:*", "*")
    deny = stmt("dynamodb:ExportTableToPointInTime", TABLE, effect="Deny")
    expected = ["dynamodb:ExportTableToPointInTime"]
    assert missing_actions(doc(allow, deny), GLUE, ACTIONS, TABLE) == expected
    assert missing_actions(doc(deny, allow), GLUE, ACTIONS, TABLE) == expected


def test_deny_for_another_principal_does_not_apply() -> None:
    allow = stmt("dynamodb:*")
    deny = stmt("dynamodb:*", effect="Deny", principal={"Service": "redshift.amazonaws.com"})
    assert missing_actions(doc(allow, deny), GLUE, ACTIONS, TABLE) == []


def test_result_keeps_the_order_of_the_wanted_actions() -> None:
    wanted = list(reversed(ACTIONS))
    assert missing_actions(doc(stmt("s3:*")), GLUE, wanted, TABLE) == wanted


def test_a_single_statement_object_is_accepted() -> None:
    policy = json.dumps({"Statement": stmt("dynamodb:*")})
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == []


def test_dict_policy_is_accepted() -> None:
    assert missing_actions({"Statement": [stmt("dynamodb:*")]}, GLUE, ACTIONS, TABLE) == []


# -- principals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        {"Service": "glue.amazonaws.com"},
        {"Service": ["redshift.amazonaws.com", "glue.amazonaws.com"]},
        {"Service": "*"},
        "*",
    ],
)
def test_principal_forms_that_match_glue(principal: Any) -> None:
    assert missing_actions(doc(stmt("*", principal=principal)), GLUE, ACTIONS, TABLE) == []


@pytest.mark.parametrize(
    "principal",
    [
        {"Service": "redshift.amazonaws.com"},
        {"Service": ["redshift.amazonaws.com"]},
        {"AWS": "arn:aws:iam::123456789012:root"},
        {"AWS": "*"},  # covers IAM principals, not a service principal
        None,
        ["glue.amazonaws.com"],
        "glue.amazonaws.com",
    ],
)
def test_principal_forms_that_do_not_match_glue(principal: Any) -> None:
    s = stmt("*")
    s["Principal"] = principal
    assert missing_actions(doc(s), GLUE, ACTIONS, TABLE) == ACTIONS


def test_account_root_covers_principals_of_that_account() -> None:
    policy = doc(stmt("glue:*", principal={"AWS": "arn:aws:iam::123456789012:root"}))
    for who in (
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::123456789012:role/zetl",
        "arn:aws:iam::123456789012:user/alice",
    ):
        assert missing_actions(policy, {"AWS": who}, ["glue:GetTable"], TABLE) == [], who


def test_aws_wildcard_covers_any_iam_principal() -> None:
    policy = doc(stmt("glue:*", principal={"AWS": "*"}))
    who = {"AWS": "arn:aws:iam::210987654321:role/anyone"}
    assert missing_actions(policy, who, ["glue:GetTable"], TABLE) == []


def test_account_root_does_not_cover_another_account() -> None:
    policy = doc(stmt("glue:*", principal={"AWS": "arn:aws:iam::123456789012:root"}))
    for who in ("arn:aws:iam::210987654321:root", "arn:aws:iam::210987654321:role/zetl"):
        assert missing_actions(policy, {"AWS": who}, ["glue:GetTable"], TABLE) == ["glue:GetTable"]


def test_role_principal_does_not_cover_the_root() -> None:
    policy = doc(stmt("glue:*", principal={"AWS": "arn:aws:iam::123456789012:role/zetl"}))
    root = {"AWS": "arn:aws:iam::123456789012:root"}
    assert missing_actions(policy, root, ["glue:GetTable"], TABLE) == ["glue:GetTable"]


def test_caller_with_several_identities_matches_any_of_them() -> None:
    caller = {"Service": "glue.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"}
    by_root = doc(stmt("glue:*", principal={"AWS": "arn:aws:iam::123456789012:root"}))
    by_service = doc(stmt("glue:*", principal={"Service": "glue.amazonaws.com"}))
    assert missing_actions(by_root, caller, ["glue:CreateTable"], TABLE) == []
    assert missing_actions(by_service, caller, ["glue:CreateTable"], TABLE) == []


# -- malformed documents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        "{",
        "not json",
        "[]",
        "42",
        '"a string"',
        "{}",
        '{"Version": "2012-10-17"}',
        '{"Statement": ["Allow everything"]}',
        '{"Statement": [1, 2]}',
    ],
)
def test_malformed_policy_misses_every_action(policy: str) -> None:
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == ACTIONS


@pytest.mark.parametrize(
    "statement",
    [
        stmt("dynamodb:*", principal={"AWS": 123456789012}),
        stmt("dynamodb:*", principal={"Service": [7, {"a": 1}]}),
        stmt(42),
        stmt(["s3:*", None]),
        stmt("dynamodb:*", resource=17),
        stmt("dynamodb:*", resource=[{"arn": TABLE}]),
    ],
)
def test_wrongly_typed_values_grant_nothing_and_do_not_crash(statement: dict[str, Any]) -> None:
    # PutResourcePolicy only checks the document's outline, so the evaluator meets these.
    caller = {"Service": "glue.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"}
    assert missing_actions(doc(statement), caller, ACTIONS, TABLE) == ACTIONS


def test_wrongly_typed_entries_do_not_hide_the_valid_ones() -> None:
    policy = doc(stmt(["dynamodb:*", None], resource=[17, TABLE]))
    assert missing_actions(policy, GLUE, ACTIONS, TABLE) == []


@pytest.mark.parametrize(
    "policy",
    ["{", "[]", "{}", '{"Statement": ["x"]}', '{"Statement": [{"Effect": "Allow"}, 3]}'],
)
def test_parse_policy_rejects_malformed_documents(policy: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(policy)


def test_parse_policy_returns_statements() -> None:
    s = stmt("dynamodb:*")
    assert parse_policy(doc(s)) == [s]
    assert parse_policy({"Statement": s}) == [s]


# -- monotonicity ------------------------------------------------------------------------------

WANTED = [
    "dynamodb:DescribeTable",
    "dynamodb:DescribeExport",
    "dynamodb:ExportTableToPointInTime",
    "glue:CreateTable",
    "glue:GetDatabase",
]
RESOURCES = [TABLE, EXPORT, "arn:aws:glue:us-east-1:123456789012:database/lake"]

action_patterns = st.sampled_from(
    [
        "*",
        "dynamodb:*",
        "dynamodb:Describe*",
        "dynamodb:DescribeTable",
        "DYNAMODB:describeexport",
        "dynamodb:ExportTableToPointInTime",
        "glue:*",
        "glue:Get*",
        "glue:CreateTable",
        "s3:*",
    ]
)
resource_patterns = st.sampled_from(
    ["*", TABLE, f"{TABLE}/export/*", f"{TABLE}*", "arn:aws:glue:*", "arn:aws:s3:::b"]
)
principals = st.sampled_from(
    [
        "*",
        {"Service": "glue.amazonaws.com"},
        {"Service": ["glue.amazonaws.com", "redshift.amazonaws.com"]},
        {"Service": "redshift.amazonaws.com"},
        {"AWS": "arn:aws:iam::123456789012:root"},
        {"AWS": "arn:aws:iam::210987654321:root"},
    ]
)
callers = st.sampled_from(
    [
        GLUE,
        {"AWS": "arn:aws:iam::123456789012:root"},
        {"AWS": "arn:aws:iam::123456789012:role/r"},
        {"Service": "glue.amazonaws.com", "AWS": "arn:aws:iam::123456789012:root"},
    ]
)


def statements(effect: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        stmt,
        action=action_patterns | st.lists(action_patterns, min_size=1, max_size=3),
        resource=resource_patterns | st.lists(resource_patterns, min_size=1, max_size=3),
        effect=st.just(effect),
        principal=principals,
    )


any_statements = st.lists(statements("Allow") | statements("Deny"), max_size=5)


@given(any_statements, statements("Allow"), callers, st.sampled_from(RESOURCES))
def test_adding_an_allow_never_adds_a_missing_action(
    base: list[dict[str, Any]], extra: dict[str, Any], caller: dict[str, str], resource: str
) -> None:
    before = set(missing_actions(doc(*base), caller, WANTED, resource))
    after = set(missing_actions(doc(*base, extra), caller, WANTED, resource))
    assert after <= before


@given(any_statements, statements("Deny"), callers, st.sampled_from(RESOURCES))
def test_adding_a_deny_never_removes_a_missing_action(
    base: list[dict[str, Any]], extra: dict[str, Any], caller: dict[str, str], resource: str
) -> None:
    before = set(missing_actions(doc(*base), caller, WANTED, resource))
    after = set(missing_actions(doc(extra, *base), caller, WANTED, resource))
    assert after >= before


@given(any_statements, callers, st.sampled_from(RESOURCES))
def test_missing_is_a_subset_of_wanted(
    base: list[dict[str, Any]], caller: dict[str, str], resource: str
) -> None:
    missing = missing_actions(doc(*base), caller, WANTED, resource)
    assert set(missing) <= set(WANTED)
    assert missing == [a for a in WANTED if a in missing]
