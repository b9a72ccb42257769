"""DataFilter: AWS's zero-ETL filter syntax, its errors, its limits and its round trip.

Tests named ``test_aws_*`` are the examples on AWS's "Data filtering for Aurora zero-ETL
integrations" page (AuroraUserGuide zero-etl.filtering); the comment above each quotes the filter
and names the page section it comes from.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.errors import AwsError
from zetl_nb.transform.datafilter import (
    ANY,
    MAX_FILTER_CHARS,
    DataFilter,
    FilterRule,
    Part,
    Regex,
)


def mysql(text: str) -> DataFilter:
    return DataFilter.parse(text, 2)


def postgres(text: str) -> DataFilter:
    return DataFilter.parse(text, 3)


def error(text: str, levels: int) -> AwsError:
    with pytest.raises(AwsError) as info:
        DataFilter.parse(text, levels)
    assert info.value.code == "ValidationException"
    return info.value


# -- AWS page: "Aurora MySQL examples" -------------------------------------------------------------


def test_aws_mysql_include_all_databases_and_tables() -> None:
    # 'include: *.*'
    f = mysql("include: *.*")
    assert f.matches(("books", "mystery"))
    assert f.matches(("crm", "accounts"))


def test_aws_mysql_include_all_tables_in_books() -> None:
    # 'include: books.*'
    f = mysql("include: books.*")
    assert f.matches(("books", "stephen_king"))
    assert not f.matches(("films", "stephen_king"))


def test_aws_mysql_exclude_tables_named_mystery() -> None:
    # 'include: *.*, exclude: *.mystery'
    f = mysql("include: *.*, exclude: *.mystery")
    assert not f.matches(("books", "mystery"))
    assert not f.matches(("films", "mystery"))
    assert f.matches(("books", "mystery_2"))
    assert f.matches(("books", "thriller"))


def test_aws_mysql_include_two_specific_tables() -> None:
    # 'include: books.stephen_king, include: books.carolyn_keene'
    f = mysql("include: books.stephen_king, include: books.carolyn_keene")
    assert f.matches(("books", "stephen_king"))
    assert f.matches(("books", "carolyn_keene"))
    assert not f.matches(("books", "agatha_christie"))


def test_aws_mysql_exclude_tables_containing_mystery() -> None:
    # 'include: books.*, exclude: books./.*mystery.*/'
    f = mysql("include: books.*, exclude: books./.*mystery.*/")
    for table in ("mystery", "mystery_novels", "old_mystery", "a_mystery_b"):
        assert not f.matches(("books", table))
    assert f.matches(("books", "thriller"))
    assert f.matches(("books", "Mystery"))  # case-sensitive, as the module docstring says


def test_aws_mysql_exclude_tables_starting_with_mystery() -> None:
    # 'include: books.*, exclude: books./mystery.*/'
    f = mysql("include: books.*, exclude: books./mystery.*/")
    assert not f.matches(("books", "mystery_novels"))
    # Only a full match gives "starting with": a substring search would exclude this one too.
    assert f.matches(("books", "old_mystery"))


def test_aws_mysql_exclude_tables_ending_with_mystery() -> None:
    # 'include: books.*, exclude: books./.*mystery/'
    f = mysql("include: books.*, exclude: books./.*mystery/")
    assert not f.matches(("books", "old_mystery"))
    assert f.matches(("books", "mystery_novels"))


def test_aws_mysql_include_table_prefix_except_one() -> None:
    # 'include: books./table_.*/, exclude: books.table_stephen_king'
    f = mysql("include: books./table_.*/, exclude: books.table_stephen_king")
    assert f.matches(("books", "table_movies"))
    assert f.matches(("books", "table_books"))
    assert not f.matches(("books", "table_stephen_king"))
    assert not f.matches(("books", "movies"))


# -- AWS page: "Aurora PostgreSQL examples" --------------------------------------------------------


def test_aws_postgres_include_all_tables_in_books() -> None:
    # 'include: books.*.*'
    f = postgres("include: books.*.*")
    assert f.matches(("books", "public", "stephen_king"))
    assert f.matches(("books", "mystery", "x"))
    assert not f.matches(("employee", "public", "x"))


def test_aws_postgres_exclude_tables_named_mystery() -> None:
    # 'include: books.*.*, exclude: books.*.mystery'
    f = postgres("include: books.*.*, exclude: books.*.mystery")
    assert not f.matches(("books", "public", "mystery"))
    assert not f.matches(("books", "fiction", "mystery"))
    assert f.matches(("books", "public", "thriller"))


def test_aws_postgres_include_one_table_in_each_of_two_databases() -> None:
    # 'include: books.mystery.stephen_king, include: employee.finance.benefits'
    f = postgres("include: books.mystery.stephen_king, include: employee.finance.benefits")
    assert f.matches(("books", "mystery", "stephen_king"))
    assert f.matches(("employee", "finance", "benefits"))
    assert not f.matches(("books", "mystery", "carolyn_keene"))
    assert not f.matches(("employee", "finance", "salaries"))


def test_aws_postgres_include_schema_except_tables_containing_king() -> None:
    # 'include: books.science_fiction.*, exclude: books.*./.*king.*/'
    # (the page leaves the closing shell quote off this one; the filter itself is complete)
    f = postgres("include: books.science_fiction.*, exclude: books.*./.*king.*/")
    assert f.matches(("books", "science_fiction", "asimov"))
    assert not f.matches(("books", "science_fiction", "stephen_king"))
    assert not f.matches(("books", "science_fiction", "kingdom"))
    assert not f.matches(("books", "mystery", "asimov"))


def test_aws_postgres_exclude_schemas_starting_with_sci() -> None:
    # 'include: books.*.*, exclude: books./sci.*/.*'
    f = postgres("include: books.*.*, exclude: books./sci.*/.*")
    assert not f.matches(("books", "science_fiction", "asimov"))
    assert not f.matches(("books", "sci", "x"))
    assert f.matches(("books", "mystery", "x"))
    assert f.matches(("books", "nonsci", "x"))


def test_aws_postgres_exclude_tables_ending_with_king_in_mystery_schema() -> None:
    # 'include: books.*.*, exclude: books.mystery./.*king/'
    f = postgres("include: books.*.*, exclude: books.mystery./.*king/")
    assert not f.matches(("books", "mystery", "stephen_king"))
    assert f.matches(("books", "mystery", "kingdom"))
    assert f.matches(("books", "horror", "stephen_king"))


def test_aws_postgres_include_table_prefix_in_any_schema_except_one() -> None:
    # 'include: books.*./table_.*/, exclude: books.*.table_stephen_king'
    f = postgres("include: books.*./table_.*/, exclude: books.*.table_stephen_king")
    assert f.matches(("books", "fiction", "table_movies"))
    assert f.matches(("books", "mystery", "table_books"))
    assert not f.matches(("books", "fiction", "table_stephen_king"))
    assert not f.matches(("books", "mystery", "table_stephen_king"))


# -- AWS page: "Data filters in the AWS CLI" -------------------------------------------------------


@pytest.mark.parametrize(
    ("console", "levels"),
    [
        # Console grouping under one Include: 'mydb.mytable, mydb./table_\d+/'
        (r"mydb.mytable, mydb./table_\d+/", 2),
        # and its PostgreSQL twin: 'mydb.myschema.mytable, mydb.myschema./table_\d+/'
        (r"mydb.myschema.mytable, mydb.myschema./table_\d+/", 3),
        # Half-converted: a type on the first pattern only.
        (r"include: mydb.mytable, mydb./table_\d+/", 2),
    ],
)
def test_aws_console_grouping_is_not_api_syntax(console: str, levels: int) -> None:
    err = error(console, levels)
    assert "must start with 'include:' or 'exclude:'" in err.message
    assert "put a type before every pattern" in err.message


def test_aws_cli_form_mysql() -> None:
    # 'include: mydb.mytable, include: mydb./table_\d+/'
    f = mysql(r"include: mydb.mytable, include: mydb./table_\d+/")
    assert f.matches(("mydb", "mytable"))
    assert f.matches(("mydb", "table_42"))
    assert not f.matches(("mydb", "table_x"))


def test_aws_cli_form_postgres() -> None:
    # 'include: mydb.myschema.mytable, include: mydb.myschema./table_\d+/'
    f = postgres(r"include: mydb.myschema.mytable, include: mydb.myschema./table_\d+/")
    assert f.matches(("mydb", "myschema", "mytable"))
    assert f.matches(("mydb", "myschema", "table_7"))
    assert not f.matches(("mydb", "other", "table_7"))


def test_aws_cli_shell_quotes_pasted_into_the_api_are_explained() -> None:
    # The page's CLI examples are shell-quoted: 'include: *.*'
    err = error("'include: *.*'", 2)
    assert "Remove the shell quotes" in err.message


# -- AWS page: "Filter logic" and "Filter precedence" ----------------------------------------------


def test_aws_no_filter_means_include_everything() -> None:
    # Default when no filter is given: 'include:*.*' (written without a space on the page)
    assert DataFilter.default(2) == mysql("include:*.*")
    assert DataFilter.default(2).matches(("any", "table"))
    assert str(DataFilter.default(2)) == "include: *.*"
    assert str(DataFilter.default(1)) == "include: *"


def test_aws_any_filter_starts_from_exclude_everything() -> None:
    # 'include: db.table1, include: db.table2' is evaluated as
    # 'exclude:*.*, include: db.table1, include: db.table2'
    given_ = mysql("include: db.table1, include: db.table2")
    evaluated = mysql("exclude:*.*, include: db.table1, include: db.table2")
    for name in [("db", "table1"), ("db", "table2"), ("db", "table3"), ("other", "table1")]:
        assert given_.matches(name) == evaluated.matches(name)
    assert given_.matches(("db", "table1")) and not given_.matches(("db", "table3"))


def test_aws_later_exclude_overrides_earlier_include() -> None:
    # Filter precedence: 'Include books.stephenking' then 'Exclude books.*'
    f = mysql("include: books.stephenking, exclude: books.*")
    assert not f.matches(("books", "stephenking"))


def test_aws_modify_integration_example() -> None:
    # --data-filter 'include: foodb.*, exclude: foodb.tbl, exclude: foodb./table_\d+/'
    f = mysql(r"include: foodb.*, exclude: foodb.tbl, exclude: foodb./table_\d+/")
    assert f.matches(("foodb", "orders"))
    assert not f.matches(("foodb", "tbl"))
    assert not f.matches(("foodb", "table_12"))
    assert f.matches(("foodb", "table_"))
    assert not f.matches(("bardb", "orders"))


# -- AWS page: "Format of a data filter" -----------------------------------------------------------


def test_aws_mysql_allows_regex_in_the_database_part() -> None:
    # Note: "For Aurora MySQL, regular expressions are supported in both the database and table"
    f = mysql("include: /books_.*/.*")
    assert f.matches(("books_2024", "x"))
    assert not f.matches(("films", "x"))


def test_aws_postgres_rejects_regex_in_the_database_part() -> None:
    # Note: for PostgreSQL regular expressions are supported "not in the database name"
    err = error("include: /books.*/.*.*", 3)
    assert "regular expression in the database part" in err.message
    assert "Aurora PostgreSQL" in err.message
    assert "'/books.*/.*.*'" in err.message


def test_aws_postgres_allows_regex_in_schema_and_table() -> None:
    f = postgres("include: books./sci.*/./a.*/")
    assert f.matches(("books", "science", "asimov"))


def test_aws_postgres_requires_at_least_one_pattern() -> None:
    # Important: PostgreSQL needs at least one pattern, at minimum 'database-name.*.*'
    for err in (error("", 3), error("  ", 3)):
        assert "Aurora PostgreSQL" in err.message and "at least one" in err.message
        assert "include: mydb.*.*" in err.message
    with pytest.raises(AwsError) as info:
        DataFilter.default(3)
    assert info.value.code == "ValidationException"
    assert "at least one" in info.value.message
    assert postgres("include: mydb.*.*").matches(("mydb", "public", "t"))


def test_aws_postgres_filter_must_include_something() -> None:
    err = error("exclude: books.*.mystery", 3)
    assert "only exclude: rules" in err.message and "include: mydb.*.*" in err.message


def test_postgres_wildcard_database_part_is_allowed() -> None:
    # The page forbids regexes, not *, in the database part; the engine's fallback uses this.
    assert postgres("include: *.*.*").matches(("any", "public", "t"))


def test_aws_no_column_filters() -> None:
    # "You can't include column-level filters" (Maxwell's form: 'exclude: db.tbl.col = reject')
    for text in ("exclude: db.tbl.col = reject", "exclude: db.tbl.col=reject"):
        assert "column-level filter" in error(text, 2).message


def test_aws_no_denylists() -> None:
    # "You can't include ... denylists" (Maxwell's form: 'blacklist: bad_db.*')
    err = error("blacklist: bad_db.*", 2)
    assert "denylist" in err.message and "exclude:" in err.message


def test_aws_at_most_99_patterns() -> None:
    ok = ", ".join(f"include: db.t{i}" for i in range(99))
    assert len(mysql(ok).rules) == 99
    err = error(ok + ", include: db.t99", 2)
    assert "100 patterns" in err.message and "at most 99" in err.message


def test_aws_pattern_at_most_256_characters() -> None:
    table = "t" * (256 - len("db."))
    assert mysql(f"include: db.{table}").matches(("db", table))
    err = error(f"include: db.{table}x", 2)
    assert "257 characters" in err.message and "at most 256" in err.message
    assert "'db.ttt" in err.message  # names the offending pattern


def test_api_filter_at_most_2048_characters() -> None:
    # The 2048 limit is the API reference's length constraint on DataFilter.
    text = ", ".join(f"include: d.{'t' * 190}{i}" for i in range(10))
    text += "t" * (MAX_FILTER_CHARS - len(text))  # the last table name takes up the slack
    assert len(text) == MAX_FILTER_CHARS
    assert len(mysql(text).rules) == 10
    err = error(text + ", include: d.x", 2)
    assert "2062 characters long; the limit is 2048" in err.message


# -- Maxwell's own examples (the syntax AWS adopts) ------------------------------------------------


def test_maxwell_exclude_database_except_some_tables() -> None:
    # 'exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/'
    f = mysql(r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/")
    assert f.matches(("foodb", "tbl"))
    assert f.matches(("foodb", "table_3"))
    assert not f.matches(("foodb", "other"))


def test_maxwell_exclude_everything_but_one_database() -> None:
    # 'exclude: *.*, include: db1.*'
    f = mysql("exclude: *.*, include: db1.*")
    assert f.matches(("db1", "x")) and not f.matches(("db2", "x"))


# -- matching -------------------------------------------------------------------------------------


def test_unmatched_table_is_excluded() -> None:
    f = mysql("include: shop.orders")
    assert f.matches(("shop", "orders"))
    assert not f.matches(("shop", "customers"))


def test_exclude_only_excludes_everything_for_mysql() -> None:
    f = mysql("exclude: shop.audit")
    assert not f.matches(("shop", "orders"))
    assert not f.matches(("shop", "audit"))


def test_last_matching_rule_wins() -> None:
    f = mysql("exclude: shop.*, include: shop.orders")
    assert f.matches(("shop", "orders"))
    assert not f.matches(("shop", "customers"))
    assert not mysql("include: shop.orders, exclude: shop.*").matches(("shop", "orders"))


def test_later_non_matching_rule_does_not_change_the_verdict() -> None:
    assert mysql("include: shop.*, exclude: crm.*").matches(("shop", "orders"))


def test_wrong_number_of_parts_never_matches() -> None:
    f = postgres("include: shop.public.*, exclude: shop.public./tmp_.*/")
    assert f.matches(("shop", "public", "orders"))
    assert not f.matches(("shop", "public", "tmp_x"))
    assert not f.matches(("shop", "orders"))
    assert not f.matches(("shop", "public", "orders", "x"))


def test_one_level_for_saas() -> None:
    f = DataFilter.parse("include: Account, include: /Opp.*/", levels=1)
    assert f.matches(("Account",))
    assert f.matches(("Opportunity",))
    assert not f.matches(("Lead",))
    assert DataFilter.parse("include: *", 1).matches(("Lead",))


def test_star_is_a_whole_part_and_matches_any_name() -> None:
    f = mysql("include: shop.*")
    assert f.matches(("shop", "orders"))
    assert f.matches(("shop", "a.b, c"))


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("include: shop.audit_*", "/audit_.*/"),
        ("include: shop.*_log", "/.*_log/"),
        ("include: Opp*", "/Opp.*/"),
        ("include: shop$*.x", r"/shop\$.*/"),
    ],
)
def test_star_inside_a_name_is_rejected_with_the_regex_to_use(text: str, suggestion: str) -> None:
    levels = text.count(".") + 1
    err = error(text, levels)
    assert "stands only for a whole name part" in err.message
    assert suggestion in err.message


def test_regex_must_match_the_whole_part() -> None:
    f = mysql("include: shop./order/")
    assert f.matches(("shop", "order"))
    assert not f.matches(("shop", "orders"))
    assert not f.matches(("shop", "reorder"))


def test_regex_may_hold_commas_dots_quotes_and_escaped_slashes() -> None:
    f = mysql(r'include: shop./a{1,2}\.b"\/c/, exclude: shop.x')
    assert f.rules[0].pattern == ("shop", Regex(r'a{1,2}\.b"\/c'))
    assert f.matches(("shop", 'aa.b"/c'))
    assert mysql(r"include: a./x\\/").matches(("a", "x\\"))  # \\ then the closing slash


def test_matching_is_case_sensitive_quoted_or_not() -> None:
    f = mysql("include: Shop.Orders")
    assert f.matches(("Shop", "Orders"))
    assert not f.matches(("shop", "orders"))
    assert mysql('include: "Shop"."Orders"') == f
    assert mysql("include: shop./(?i)orders/").matches(("shop", "ORDERS"))


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    f = mysql("  INCLUDE :shop.*  ,Exclude:   shop.audit ")
    assert f.rules == (FilterRule(True, ("shop", ANY)), FilterRule(False, ("shop", "audit")))


# -- includes_database ----------------------------------------------------------------------------


def test_includes_database() -> None:
    f = mysql("include: books.*, include: films.a, exclude: films.*, include: /crm_.*/.x")
    assert f.includes_database("books")
    assert not f.includes_database("films")  # the later exclude: films.* covers every table
    assert f.includes_database("crm_eu")
    assert not f.includes_database("crm")
    assert not f.includes_database("other")
    g = postgres("include: books.*.*, exclude: books.mystery.*")
    assert g.includes_database("books")
    assert not postgres("include: books.*.*, exclude: books.*.*").includes_database("books")


def test_includes_database_needs_a_database_part() -> None:
    with pytest.raises(AwsError):
        DataFilter.parse("include: Account", 1).includes_database("Account")


# -- quoted identifiers --------------------------------------------------------------------------


def test_quoted_identifier_keeps_its_dots() -> None:
    f = mysql('include: "my.db".orders')
    assert f.rules == (FilterRule(True, ("my.db", "orders")),)
    assert f.matches(("my.db", "orders"))
    assert not f.matches(("my", "db.orders"))


def test_quoted_identifier_with_commas_spaces_stars_and_doubled_quotes() -> None:
    f = mysql('include: "a, b"."say ""hi""", exclude: x."*"')
    assert f.rules == (
        FilterRule(True, ("a, b", 'say "hi"')),
        FilterRule(False, ("x", "*")),
    )
    assert not f.matches(("x", "*")) and not f.matches(("x", "y"))


def test_every_part_may_be_quoted() -> None:
    assert postgres('include: "shop"."public"."Order Items"').matches(
        ("shop", "public", "Order Items")
    )


def test_quoted_parts_round_trip() -> None:
    f = mysql('include: "my.db"."Order Items", exclude: "a""b".c, exclude: x."*"')
    assert mysql(str(f)) == f
    assert str(f) == 'include: "my.db"."Order Items", exclude: "a""b".c, exclude: x."*"'


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "levels", "hint"),
    [
        ("", 2, "DataFilter is empty"),
        ("   ", 2, "DataFilter is empty"),
        ("", 1, "omit DataFilter to replicate every table"),
        ("shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("allow: shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("include shop.*", 2, "must start with 'include:' or 'exclude:'"),
        ("include:", 2, "has no pattern"),
        ("include: shop.*,", 2, "must start with 'include:' or 'exclude:'"),
        ("include: shop.*,", 2, "empty rule"),
        ("include: shop.*,, exclude: shop.a", 2, "must start with 'include:' or 'exclude:'"),
        ("include: shop", 2, "has 1 part(s); this source needs 2"),
        ("include: shop.public.orders", 2, "has 3 part(s); this source needs 2"),
        ("include: shop.orders", 3, "has 2 part(s); this source needs 3"),
        ("include: shop.orders", 1, "has 2 part(s); this source needs 1"),
        ("include: *.*", 3, "has 2 part(s); this source needs 3"),
        ("include: shop.", 2, "ends with a dot"),
        ("include: .orders", 2, "is not a dotted name"),
        ("include: shop..orders", 2, "is not a dotted name"),
        ('include: "shop.orders', 2, "is not a dotted name"),
        ('include: "shop.orders', 2, "never closed"),
        ('include: "".orders', 2, "is not a dotted name"),
        ("include: shop orders", 2, "has an unexpected ' '"),
        ('include: shop"x".orders', 2, "has an unexpected '\"'"),
        ("include: shop.orders extra", 2, "has an unexpected ' '"),
        ("include: shop.or?ders", 2, "has an unexpected '?'"),
        ("include: shop./orders", 2, "no closing '/'"),
        ("include: shop./orders\\/", 2, "no closing '/'"),
        ("include: shop.//", 2, "empty //"),
        ("include: shop./(/", 2, "is not a valid regular expression"),
        ("include: shop./a/b", 2, "has an unexpected 'b'"),
    ],
)
def test_malformed_filters_are_validation_errors(text: str, levels: int, hint: str) -> None:
    err = error(text, levels)
    assert hint in err.message
    assert err.message.startswith("DataFilter")


@pytest.mark.parametrize(
    ("levels", "example"), [(1, "Account"), (2, "mydb.*"), (3, "mydb.public.*")]
)
def test_errors_show_an_example_for_the_source(levels: int, example: str) -> None:
    assert example in error("include: a.b.c.d", levels).message
    assert f"include: {example}" in error("garbage", levels).message


def test_errors_name_the_field_passed() -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse("", 2, field="ModifyIntegration.DataFilter")
    assert info.value.message.startswith("ModifyIntegration.DataFilter is empty")
    with pytest.raises(AwsError) as info:
        DataFilter.parse("include: a./(/", 2, field="X.DataFilter")
    assert info.value.message.startswith("X.DataFilter pattern 'a./(/'")


def test_error_quotes_the_offending_rule() -> None:
    assert "'oops'" in error("include: shop.*, oops", 2).message


def test_unknown_levels_are_rejected() -> None:
    with pytest.raises(AwsError) as info:
        DataFilter.parse("include: a.b.c.d", 4)
    assert "levels=4" in info.value.message


def test_direct_construction_is_checked_like_parse() -> None:
    with pytest.raises(AwsError, match="has 1 part"):
        DataFilter((FilterRule(True, ("a",)),), 2)
    with pytest.raises(AwsError, match="database part"):
        DataFilter((FilterRule(True, (Regex("a.*"), ANY, ANY)),), 3)
    with pytest.raises(AwsError, match="only exclude"):
        DataFilter((FilterRule(False, ("a", ANY, ANY)),), 3)
    with pytest.raises(AwsError, match="no rules"):
        DataFilter((), 2)
    with pytest.raises(AwsError, match="empty name"):
        FilterRule(True, ("", "x"))
    with pytest.raises(AwsError, match="not a valid regular expression"):
        Regex("(")


def test_regex_built_in_code_escapes_its_slashes() -> None:
    r = Regex("a/b")
    assert r == Regex(r"a\/b")
    assert str(r) == r"/a\/b/"
    assert r.matches("a/b")


def test_str_falls_back_to_the_compact_form_near_the_limit() -> None:
    # 'include:d.x,...' fits in 2048 characters; with ", " and ": " it would not.
    text = ",".join(f"include:d.{'t' * 88}{i:02d}" for i in range(20))
    assert len(text) <= MAX_FILTER_CHARS < len(text) + 20 * 2
    f = mysql(text)
    assert str(f) == text
    assert mysql(str(f)) == f


# -- properties -----------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
identifiers = st.builds(
    str.__add__,
    st.sampled_from(_LETTERS),
    st.text(alphabet=_LETTERS + "0123456789$", max_size=8),
)
# Names a database may really use: dots, spaces, commas, quotes, slashes, stars, non-ASCII.
odd_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8
)
names = identifiers | odd_names
regexes = st.sampled_from(
    [r"table_\d+", ".*mystery.*", "sci.*", "a/b", "x,y{1,2}", '"q"', "(?i)orders", "[/.]", r"\\"]
).map(Regex) | odd_names.map(lambda s: Regex(re.escape(s)))
parts: st.SearchStrategy[Part] = names | st.just(ANY) | regexes
database_parts: dict[int, st.SearchStrategy[Part]] = {
    1: parts,
    2: parts,
    3: names | st.just(ANY),  # PostgreSQL: no regex in the database part
}


@st.composite
def filters(draw: st.DrawFn, levels: int | None = None) -> DataFilter:
    n = levels if levels is not None else draw(st.integers(min_value=1, max_value=3))
    rule = st.builds(
        FilterRule,
        st.booleans(),
        st.tuples(database_parts[n], *[parts] * (n - 1)),
    )
    rules = draw(st.lists(rule, min_size=1, max_size=5))
    if n == 3 and not any(r.include for r in rules):
        rules[0] = FilterRule(True, rules[0].pattern)
    return DataFilter(tuple(rules), n)


def table_names(f: DataFilter) -> st.SearchStrategy[tuple[str, ...]]:
    """Names likely to hit the filter's rules: its own literals, common names, random ones."""
    literals = [p for r in f.rules for p in r.pattern if isinstance(p, str)]
    pool = st.sampled_from([*literals, "a", "orders", "table_1", "mystery", "x,y"]) | names
    return st.tuples(*[pool] * f.levels)


@given(filters())
def test_str_then_parse_is_identity(f: DataFilter) -> None:
    assert DataFilter.parse(str(f), f.levels) == f


@given(st.lists(st.tuples(st.booleans(), odd_names, odd_names), min_size=1, max_size=4))
def test_str_then_parse_is_identity_for_quoted_names(rules: list[tuple[bool, str, str]]) -> None:
    f = DataFilter(tuple(FilterRule(inc, (a, b)) for inc, a, b in rules), 2)
    assert DataFilter.parse(str(f), 2) == f


@given(filters(), st.data())
def test_trailing_exclude_of_an_exact_table_excludes_it(f: DataFilter, data: st.DataObject) -> None:
    name = data.draw(table_names(f))
    other = data.draw(table_names(f))
    g = DataFilter.parse(f"{f}, {FilterRule(False, name)}", f.levels)
    assert not g.matches(name)
    if other != name:
        assert g.matches(other) == f.matches(other)


@given(filters(), st.data())
def test_matches_follows_the_last_matching_rule(f: DataFilter, data: st.DataObject) -> None:
    name = data.draw(table_names(f))
    hits = [r.include for r in f.rules if r.matches(name)]
    assert f.matches(name) == (hits[-1] if hits else False)


@given(filters(), st.booleans(), st.data())
def test_an_appended_matching_rule_decides(
    f: DataFilter, include: bool, data: st.DataObject
) -> None:
    name = data.draw(table_names(f))
    covering = [
        data.draw(st.sampled_from([part, ANY, Regex(re.escape(part))] if i else [part, ANY]))
        for i, part in enumerate(name)
    ]
    g = DataFilter((*f.rules, FilterRule(include, tuple(covering))), f.levels)
    assert g.matches(name) is include


@given(filters(levels=2), st.data())
def test_a_database_ruled_out_has_no_replicated_table(f: DataFilter, data: st.DataObject) -> None:
    name = data.draw(table_names(f))
    if not f.includes_database(name[0]):
        assert not f.matches(name)


@given(odd_names, odd_names)
def test_escaped_regex_matches_exactly_its_text(text: str, other: str) -> None:
    r = Regex(re.escape(text))
    assert r.matches(text)
    assert r.matches(other) == (other == text)
    assert not r.matches(text + "x")
