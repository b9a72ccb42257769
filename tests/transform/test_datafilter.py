"""DataFilter: include/exclude rules over dotted table names, their errors and their round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.errors import AwsError
from zetl_nb.transform.datafilter import DataFilter, FilterRule

# -- matching -------------------------------------------------------------------------------------


def test_include_then_exclude() -> None:
    f = DataFilter.parse("include: shop.*, exclude: shop.audit_*", levels=2)
    assert f.matches(("shop", "orders"))
    assert not f.matches(("shop", "audit_log"))
    assert not f.matches(("crm", "orders"))


def test_unmatched_table_is_excluded() -> None:
    f = DataFilter.parse("include: shop.orders", levels=2)
    assert f.matches(("shop", "orders"))
    assert not f.matches(("shop", "customers"))


def test_exclude_only_excludes_everything() -> None:
    f = DataFilter.parse("exclude: shop.audit", levels=2)
    assert not f.matches(("shop", "orders"))
    assert not f.matches(("shop", "audit"))


def test_last_matching_rule_wins() -> None:
    f = DataFilter.parse("exclude: shop.*, include: shop.orders", levels=2)
    assert f.matches(("shop", "orders"))
    assert not f.matches(("shop", "customers"))
    g = DataFilter.parse("include: shop.orders, exclude: shop.*", levels=2)
    assert not g.matches(("shop", "orders"))


def test_later_non_matching_rule_does_not_change_the_verdict() -> None:
    f = DataFilter.parse("include: shop.*, exclude: crm.*", levels=2)
    assert f.matches(("shop", "orders"))


def test_three_levels_for_postgresql() -> None:
    f = DataFilter.parse("include: shop.public.*, exclude: shop.public.tmp_*", levels=3)
    assert f.matches(("shop", "public", "orders"))
    assert not f.matches(("shop", "public", "tmp_x"))
    assert not f.matches(("shop", "audit", "orders"))
    assert not f.matches(("shop", "orders"))  # wrong number of parts never matches


def test_one_level_for_saas() -> None:
    f = DataFilter.parse("include: Account, include: Opp*", levels=1)
    assert f.matches(("Account",))
    assert f.matches(("Opportunity",))
    assert not f.matches(("Lead",))


def test_star_matches_any_run_including_empty() -> None:
    f = DataFilter.parse("include: *.*", levels=2)
    assert f.matches(("a", "b"))
    f = DataFilter.parse("include: shop.orders*", levels=2)
    assert f.matches(("shop", "orders"))
    assert f.matches(("shop", "orders_2024"))


def test_matching_is_case_sensitive() -> None:
    f = DataFilter.parse("include: Shop.Orders", levels=2)
    assert f.matches(("Shop", "Orders"))
    assert not f.matches(("shop", "orders"))


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    f = DataFilter.parse("  INCLUDE :shop.*  ,Exclude:   shop.audit ", levels=2)
    assert f.rules == (
        FilterRule(True, ("shop", "*")),
        FilterRule(False, ("shop", "audit")),
    )


# -- quoted identifiers --------------------------------------------------------------------------


def test_quoted_identifier_keeps_its_dots() -> None:
    f = DataFilter.parse('include: "my.db".orders', levels=2)
    assert f.rules == (FilterRule(True, ("my.db", "orders")),)
    assert f.matches(("my.db", "orders"))
    assert not f.matches(("my", "db.orders"))


def test_quoted_identifier_with_commas_spaces_and_doubled_quotes() -> None:
    f = DataFilter.parse('include: "a, b"."say ""hi""", exclude: x.y', levels=2)
    assert f.rules == (
        FilterRule(True, ("a, b", 'say "hi"')),
        FilterRule(False, ("x", "y")),
    )


def test_every_part_may_be_quoted() -> None:
    f = DataFilter.parse('include: "shop"."public"."Order Items"', levels=3)
    assert f.matches(("shop", "public", "Order Items"))


def test_quoted_parts_round_trip() -> None:
    f = DataFilter.parse('include: "my.db"."Order Items", exclude: "a""b".c', levels=2)
    assert DataFilter.parse(str(f), 2) == f


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "levels", "hint"),
    [
        ("", 2, "DataFilter is empty"),
        ("   ", 2, "DataFilter is empty"),
        ("shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("allow: shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("include shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("include:", 2, "must start with 'include:' or 'exclude:'"),
        ("include: shop.*,", 2, "must start with 'include:' or 'exclude:'"),
        ("include: shop.*,, exclude: shop.a", 2, "must start with 'include:' or 'exclude:'"),
        ("include: shop", 2, "has 1 part(s); this source needs 2"),
        ("include: shop.public.orders", 2, "has 3 part(s); this source needs 2"),
        ("include: shop.orders", 3, "has 2 part(s); this source needs 3"),
        ("include: shop.orders", 1, "has 2 part(s); this source needs 1"),
        ("include: shop.", 2, "ends with a dot"),
        ("include: .orders", 2, "is not a dotted name"),
        ("include: shop..orders", 2, "is not a dotted name"),
        ('include: "shop.orders', 2, "is not a dotted name"),
        ('include: "".orders', 2, "is not a dotted name"),
        ("include: shop orders", 2, "has an unexpected ' '"),
        ('include: shop"x".orders', 2, "has an unexpected '\"'"),
        ("include: shop.orders extra", 2, "has an unexpected ' '"),
    ],
)
def test_malformed_filters_are_validation_errors(text: str, levels: int, hint: str) -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse(text, levels)
    assert info.value.code == "ValidationException"
    assert hint in info.value.message
    assert info.value.message.startswith("DataFilter")


@pytest.mark.parametrize(
    ("levels", "example"), [(1, "Account"), (2, "mydb.*"), (3, "mydb.public.*")]
)
def test_errors_show_an_example_for_the_source(levels: int, example: str) -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse("include: a.b.c.d", levels)
    assert example in info.value.message
    with pytest.raises(AwsError) as info:
        DataFilter.parse("garbage", levels)
    assert f"include: {example}" in info.value.message


def test_errors_name_the_field_passed() -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse("", 2, field="ModifyIntegration.DataFilter")
    assert info.value.message.startswith("ModifyIntegration.DataFilter is empty")


def test_error_quotes_the_offending_rule() -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse("include: shop.*, oops", 2)
    assert "'oops'" in info.value.message


# -- round trip -----------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
identifiers = st.builds(
    str.__add__,
    st.sampled_from(_LETTERS),
    st.text(alphabet=_LETTERS + "0123456789$", max_size=10),
)
pattern_parts = identifiers | st.just("*") | st.builds(lambda s: s + "*", identifiers)


@st.composite
def filters(draw: st.DrawFn) -> DataFilter:
    levels = draw(st.integers(min_value=1, max_value=3))
    rules = draw(
        st.lists(
            st.builds(
                FilterRule,
                st.booleans(),
                st.lists(pattern_parts, min_size=levels, max_size=levels).map(tuple),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return DataFilter(tuple(rules), levels)


@given(filters())
def test_str_then_parse_is_identity(f: DataFilter) -> None:
    assert DataFilter.parse(str(f), f.levels) == f


# Names a database may really use: dots, spaces, commas, quotes, non-ASCII.
odd_parts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=10
)


@given(st.lists(st.tuples(st.booleans(), odd_parts, odd_parts), min_size=1, max_size=4))
def test_str_then_parse_is_identity_for_quoted_names(
    rules: list[tuple[bool, str, str]],
) -> None:
    f = DataFilter(tuple(FilterRule(inc, (a, b)) for inc, a, b in rules), 2)
    assert DataFilter.parse(str(f), 2) == f


@given(filters(), st.data())
def test_matches_follows_the_last_matching_rule(f: DataFilter, data: st.DataObject) -> None:
    name = tuple(
        data.draw(st.sampled_from(["a", "orders", "x_1", "shop"])) for _ in range(f.levels)
    )
    hits = [r.include for r in f.rules if r.matches(name)]
    assert f.matches(name) == (hits[-1] if hits else False)
