"""DataFilter: which source tables an integration replicates, in AWS's Maxwell-style syntax.

Follows AWS's "Data filtering for Aurora zero-ETL integrations" (AuroraUserGuide,
``zero-etl.filtering``), which adopts Maxwell's filter syntax (maxwells-daemon.io/filtering).

Grammar (whitespace is free around keywords, colons and commas, not inside a pattern)::

    filter   := rule ("," rule)*                 at most 99 rules, at most 2048 characters
    rule     := ("include" | "exclude") ":" pattern          keywords in any case
    pattern  := part ("." part)*                  exactly ``levels`` parts, at most 256 characters
    part     := "*"                               any name
              | "/" regex "/"                     Python ``re``, full match of the whole part;
                                                  backslash escapes the next character
              | '"' ( any character but '"' | '""' )+ '"'
              | bare                              letters, digits, ``_``, ``$``, ``-``

``levels`` is 2 for MySQL (``database.table``), 3 for PostgreSQL (``database.schema.table``) and
1 for SaaS sources (entity names). Rules apply left to right and the last rule that matches a
table decides; a table no rule matches is excluded (AWS puts an implicit ``exclude: *.*`` first).
With no DataFilter at all AWS replicates everything: :meth:`DataFilter.default`.

>>> f = DataFilter.parse("include: shop.*, exclude: shop./audit_.*/", levels=2)
>>> f.matches(("shop", "orders")), f.matches(("shop", "audit_log"))
(True, False)

Choices where the page is silent, ambiguous or contradicts itself:

- **Full match.** Maxwell itself applies ``/regex/`` with ``find()`` (a substring search), but
  AWS's examples only read correctly as full matches: ``/mystery.*/`` is "starting with
  mystery", ``/.*mystery/`` "ending with", ``/.*mystery.*/`` "containing". A regex must match
  the whole part; Python's ``re`` dialect is used (Java's differs only in rarely used corners).
- **``*`` is a whole part only.** It means "any name"; ``audit_*`` is rejected with the regex to
  write instead (``/audit_.*/``), as the page uses regexes for every prefix/suffix example.
- **Case.** The page says nothing about case, so names match case-sensitively, quoted or not
  (as Maxwell's patterns do), against the names the source catalog reports. PostgreSQL's SQL
  folding of unquoted identifiers is *not* applied: catalogs already store folded names, so
  ``include: shop.public.orders`` matches the table created as ``CREATE TABLE Orders``. Quoting
  exists to carry dots, commas, spaces and other characters a bare name cannot; ``"shop"`` and
  ``shop`` are the same pattern. Use ``/(?i)orders/`` for a case-insensitive match.
- **One type per pattern.** The console groups patterns under one Include/Exclude, but the page
  says the CLI/API string needs ``include:`` or ``exclude:`` before every pattern; this is the
  API's grammar, so ``include: a.b, a.c`` is an error that says so.
- **No filter vs. PostgreSQL.** The page gives ``include: *.*`` as the default when no filter is
  specified, but also says a PostgreSQL source must specify at least one pattern. So
  ``default(1)``/``default(2)`` are ``include: *`` / ``include: *.*`` and ``default(3)`` raises.
  "At minimum, the pattern must include a single database" is read as: a PostgreSQL filter needs
  at least one ``include:`` rule. ``*`` stays legal in its database part (the page forbids only
  regular expressions there); a ``/regex/`` database part is rejected.
- **Limits.** 99 patterns and 256 characters per pattern are the page's; a pattern's length is
  its text after the keyword, as written. 2048 characters for the whole filter is the API
  reference's length constraint on ``DataFilter``.
- **Not supported**, as the page says: column-level filters (Maxwell's
  ``exclude: db.tbl.col = value``) and denylists (Maxwell's ``blacklist:``); both are errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import AwsError, validation

__all__ = [
    "ANY",
    "MAX_FILTER_CHARS",
    "MAX_PATTERNS",
    "MAX_PATTERN_CHARS",
    "DataFilter",
    "FilterRule",
    "Part",
    "Regex",
    "Wildcard",
]

MAX_PATTERNS = 99
MAX_PATTERN_CHARS = 256
MAX_FILTER_CHARS = 2048

_KEYWORD = re.compile(r"\s*([A-Za-z]+)\s*:(.*)", re.DOTALL)
_BARE = re.compile(r"[\w$-]+")
_EXAMPLE = {1: "Account", 2: "mydb.*", 3: "mydb.public.*"}
_POSTGRESQL = 3  # levels of a PostgreSQL source: database.schema.table


@dataclass(frozen=True)
class Wildcard:
    """``*``: a pattern part that matches any name. Use the :data:`ANY` instance."""

    def __str__(self) -> str:
        return "*"


ANY = Wildcard()


@dataclass(frozen=True)
class Regex:
    r"""``/source/``: a pattern part whose regular expression must match the whole name part.

    Unescaped ``/`` in ``source`` is escaped (``a/b`` becomes ``a\/b``), the form the parser
    reads back, so filters built in code print as text that parses to an equal filter.

    >>> Regex(r"table_\d+").matches("table_12"), Regex(r"table_\d+").matches("my_table_12")
    (True, False)
    """

    source: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        source = _escape_slashes(self.source)
        if not source:
            raise validation("The regular expression // is empty; write * to match any name.")
        try:
            compiled = re.compile(source)
        except re.error as err:
            raise validation(
                f"/{source}/ is not a valid regular expression ({err}); fix it, or quote the "
                'name to match it literally (e.g. "a+b").'
            ) from None
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "compiled", compiled)

    def matches(self, name: str) -> bool:
        """Whether the regex matches all of ``name``."""
        return self.compiled.fullmatch(name) is not None

    def __str__(self) -> str:
        return f"/{self.source}/"


#: One part of a pattern: a literal name (``str``), :data:`ANY` or a :class:`Regex`.
Part = str | Wildcard | Regex


@dataclass(frozen=True)
class FilterRule:
    """One ``include:`` or ``exclude:`` rule over a dotted pattern.

    A ``str`` part is a literal name (``"*"`` is a table named ``*``); the wildcard is :data:`ANY`.

    >>> FilterRule(False, ("shop", Regex("audit_.*"))).matches(("shop", "audit_log"))
    True
    """

    include: bool
    pattern: tuple[Part, ...]

    def __post_init__(self) -> None:
        for part in self.pattern:
            if part == "":
                raise validation(f"Rule '{self}' has an empty name; name a table or use *.")

    def matches(self, name: tuple[str, ...]) -> bool:
        """Whether ``name`` has as many parts as the pattern and every part matches."""
        return len(name) == len(self.pattern) and all(
            _part_matches(pat, part) for pat, part in zip(self.pattern, name, strict=True)
        )

    @property
    def pattern_text(self) -> str:
        """The pattern as the parser reads it back, e.g. ``books./.*mystery.*/``."""
        return ".".join(_part_text(p) for p in self.pattern)

    def __str__(self) -> str:
        return f"{'include' if self.include else 'exclude'}: {self.pattern_text}"


@dataclass(frozen=True)
class DataFilter:
    """A parsed DataFilter. ``levels`` is how many dotted parts a table name has.

    Constructing one directly checks the same limits and PostgreSQL rules as :meth:`parse`, so
    ``DataFilter.parse(str(f), f.levels) == f`` holds for every ``DataFilter``.
    """

    rules: tuple[FilterRule, ...]
    levels: int

    def __post_init__(self) -> None:
        _check_levels(self.levels)
        if not self.rules:
            raise validation(
                "DataFilter has no rules; use DataFilter.default(levels) for 'no filter'."
            )
        _check_filter(self.rules, self.levels, "DataFilter", [r.pattern_text for r in self.rules])
        length = len(str(self))
        if length > MAX_FILTER_CHARS:
            raise validation(
                f"DataFilter is {length} characters long; the limit is {MAX_FILTER_CHARS}. "
                "Merge rules with regular expressions."
            )

    @classmethod
    def parse(cls, text: str, levels: int, field: str = "DataFilter") -> DataFilter:
        """Parse ``text``; errors are ``ValidationException`` naming the offending rule.

        ``field`` names the request member in messages (e.g. ``ModifyIntegration.DataFilter``).
        """
        _check_levels(levels)
        if not text or not text.strip():
            if levels == _POSTGRESQL:
                raise validation(f"{field} is empty; {_postgresql_needs_a_pattern()}")
            raise validation(
                f"{field} is empty; omit {field} to replicate every table (AWS then assumes "
                f"'{cls.default(levels)}'), or write rules like 'include: {_EXAMPLE[levels]}'."
            )
        if len(text) > MAX_FILTER_CHARS:
            raise validation(
                f"{field} is {len(text)} characters long; the limit is {MAX_FILTER_CHARS}. "
                "Merge rules with regular expressions (e.g. 'include: mydb./orders_.*/') or "
                "drop some."
            )
        raw_rules = _split_rules(text)
        if len(raw_rules) > MAX_PATTERNS:
            raise validation(
                f"{field} has {len(raw_rules)} patterns; an integration allows at most "
                f"{MAX_PATTERNS}. Merge patterns with regular expressions "
                "(e.g. 'include: mydb./orders_.*/')."
            )
        parsed = [_parse_rule(raw, levels, field) for raw in raw_rules]
        rules = [rule for rule, _ in parsed]
        _check_filter(rules, levels, field, [shown for _, shown in parsed])
        return cls(tuple(rules), levels)

    @classmethod
    def default(cls, levels: int, field: str = "DataFilter") -> DataFilter:
        """The filter AWS assumes when none is given: ``include: *.*`` (``include: *`` for SaaS).

        PostgreSQL sources (``levels=3``) have no default: AWS requires at least one pattern
        there, so this raises ``ValidationException``.
        """
        _check_levels(levels)
        if levels == _POSTGRESQL:
            raise validation(f"{field} is required; {_postgresql_needs_a_pattern()}")
        return cls((FilterRule(True, (ANY,) * levels),), levels)

    def matches(self, name: tuple[str, ...]) -> bool:
        """Whether the table ``name`` (``levels`` parts) is replicated: the last match decides."""
        for rule in reversed(self.rules):
            if rule.matches(name):
                return rule.include
        return False

    def includes_database(self, database: str) -> bool:
        """Whether any table of ``database`` may be replicated (``False`` guarantees none is).

        Lets a source skip databases the filter rules out (for PostgreSQL, which replicates one
        database per connection, whether to open one at all). It is exact for whole-database
        rules (``exclude: books.*`` after ``include: books.*``) and errs towards ``True`` when
        only table-level rules could exclude every table.
        """
        if self.levels == 1:
            raise validation(
                "includes_database needs a filter with a database part (levels 2 or 3); "
                "SaaS filters name entities only."
            )
        for rule in reversed(self.rules):
            if not _part_matches(rule.pattern[0], database):
                continue
            if rule.include:
                return True
            if all(isinstance(p, Wildcard) for p in rule.pattern[1:]):
                return False
        return False

    def __str__(self) -> str:
        """``include: a.b, exclude: c.d``; without the optional spaces if that is too long.

        The compact form is never longer than any text that parses to this filter, so the
        string always parses back within the 2048-character limit.
        """
        text = ", ".join(str(r) for r in self.rules)
        if len(text) <= MAX_FILTER_CHARS:
            return text
        return ",".join(
            f"{'include' if r.include else 'exclude'}:{r.pattern_text}" for r in self.rules
        )


# -- checks shared by parse() and direct construction ---------------------------------------------


def _check_levels(levels: int) -> None:
    if levels not in _EXAMPLE:
        raise validation(
            f"levels={levels} is not a source shape: use 1 (SaaS entity), 2 (MySQL "
            "database.table) or 3 (PostgreSQL database.schema.table)."
        )


def _check_filter(rules: Sequence[FilterRule], levels: int, field: str, shown: list[str]) -> None:
    """Pattern count and length, part count, and PostgreSQL's rules; ``shown`` quotes patterns."""
    if len(rules) > MAX_PATTERNS:
        raise validation(
            f"{field} has {len(rules)} patterns; an integration allows at most {MAX_PATTERNS}."
        )
    for rule, text in zip(rules, shown, strict=True):
        if len(rule.pattern) != levels:
            raise validation(
                f"{field} pattern '{text}' has {len(rule.pattern)} part(s); this source needs "
                f"{levels} (e.g. {_EXAMPLE[levels]})."
            )
        if len(rule.pattern_text) > MAX_PATTERN_CHARS:
            raise validation(_too_long(field, text))
        if levels == _POSTGRESQL and isinstance(rule.pattern[0], Regex):
            raise validation(
                f"{field} pattern '{text}' has a regular expression in the database part; "
                "Aurora PostgreSQL sources allow regular expressions only in the schema and "
                "table parts. Name the database (one rule per database), e.g. "
                "'include: mydb./sales_.*/.*'."
            )
    if levels == _POSTGRESQL and not any(r.include for r in rules):
        raise validation(f"{field} has only exclude: rules; {_postgresql_needs_a_pattern()}")


def _postgresql_needs_a_pattern() -> str:
    return (
        "Aurora PostgreSQL sources need at least one include: pattern naming what to "
        "replicate, at minimum a database, e.g. 'include: mydb.*.*'."
    )


def _too_long(field: str, text: str) -> str:
    return (
        f"{field} pattern '{text[:60]}...' is {len(text)} characters long; a pattern may have at "
        f"most {MAX_PATTERN_CHARS}. Shorten it, e.g. with a regular expression."
    )


# -- matching and printing ------------------------------------------------------------------------


def _part_matches(pattern: Part, name: str) -> bool:
    if isinstance(pattern, Wildcard):
        return True
    if isinstance(pattern, Regex):
        return pattern.matches(name)
    return pattern == name


def _part_text(part: Part) -> str:
    """A part as the parser reads it back: bare when it can be, else double-quoted."""
    if isinstance(part, Wildcard | Regex):
        return str(part)
    if _BARE.fullmatch(part):
        return part
    return '"' + part.replace('"', '""') + '"'


def _escape_slashes(source: str) -> str:
    """Escape every ``/`` a backslash does not already escape."""
    out: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            out.append(source[i : i + 2])
            i += 2
            continue
        out.append("\\/" if ch == "/" else ch)
        i += 1
    return "".join(out)


# -- parsing --------------------------------------------------------------------------------------


def _split_rules(text: str) -> list[str]:
    """Split on commas outside double quotes and outside ``/regex/`` parts.

    A ``/`` opens a regex only where a part starts (after ``:`` or ``.``), so a stray slash
    elsewhere reaches the rule parser and is reported there.
    """
    out: list[str] = []
    buf: list[str] = []
    state = ""  # "", '"' (in a quoted name) or "/" (in a regex)
    part_start = False
    i = 0
    while i < len(text):
        ch = text[i]
        step = 1
        if state == '"':
            if ch == '"' and text[i + 1 : i + 2] == '"':
                step = 2
            elif ch == '"':
                state = ""
        elif state == "/":
            if ch == "\\":
                step = 2
            elif ch == "/":
                state = ""
        elif ch == ",":
            out.append("".join(buf))
            buf = []
            part_start = False
            i += 1
            continue
        elif ch == '"' or (ch == "/" and part_start):
            state = ch
            part_start = False
        elif ch in ":.":
            part_start = True
        elif not ch.isspace():
            part_start = False
        buf.append(text[i : i + step])
        i += step
    out.append("".join(buf))
    return out


def _parse_rule(raw: str, levels: int, field: str) -> tuple[FilterRule, str]:
    """A rule and its pattern text as written (for messages)."""
    example = f"'include: {_EXAMPLE[levels]}'"
    if not raw.strip():
        raise validation(
            f"{field} has an empty rule (a trailing comma or two commas in a row); every rule "
            f"must start with 'include:' or 'exclude:', e.g. {example}."
        )
    m = _KEYWORD.match(raw)
    keyword = m.group(1).lower() if m else ""
    if keyword == "blacklist":
        raise validation(
            f"{field} rule '{raw.strip()}' is a denylist, which zero-ETL integrations do not "
            "support; use 'exclude:' instead."
        )
    if not m or keyword not in ("include", "exclude"):
        hint = ""
        if raw.strip().startswith(("'", '"')):
            hint = " Remove the shell quotes around the filter: they belong to the CLI command."
        elif not m:
            hint = (
                " Unlike the console, the API has no grouping: put a type before every "
                "pattern (e.g. 'include: a.b, include: a.c')."
            )
        raise validation(
            f"{field} rule '{raw.strip()}' must start with 'include:' or 'exclude:', "
            f"e.g. {example}.{hint}"
        )
    text = m.group(2).strip()
    if not text:
        raise validation(f"{field} rule '{raw.strip()}' has no pattern; e.g. {example}.")
    if len(text) > MAX_PATTERN_CHARS:
        raise validation(_too_long(field, text))
    try:
        return FilterRule(keyword == "include", _parse_pattern(text, levels, field)), text
    except AwsError as err:
        if err.message.startswith(field):
            raise
        raise validation(f"{field} pattern '{text}': {err.message}") from None


def _parse_pattern(text: str, levels: int, field: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    pos = 0
    while True:
        part, pos = _parse_part(text, pos, levels, field)
        parts.append(part)
        if pos == len(text):
            return tuple(parts)
        ch = text[pos]
        if ch == ".":
            pos += 1
            if pos == len(text):
                raise validation(f"{field} pattern '{text}' ends with a dot.")
            continue
        if text[pos:].lstrip().startswith("="):
            raise validation(
                f"{field} pattern '{text}' is a column-level filter, which zero-ETL "
                "integrations do not support; filter whole tables."
            )
        if ch == "*":
            raise validation(_partial_star(field, text, None))
        raise validation(_unexpected(field, text, ch))


def _parse_part(text: str, pos: int, levels: int, field: str) -> tuple[Part, int]:
    ch = text[pos]
    if ch == '"':
        return _parse_quoted(text, pos, field)
    if ch == "/":
        return _parse_regex(text, pos, field)
    if ch == "*":
        if _BARE.match(text, pos + 1):
            raise validation(_partial_star(field, text, pos))
        return ANY, pos + 1
    bare = _BARE.match(text, pos)
    if bare:
        if text[bare.end() : bare.end() + 1] == "*":
            raise validation(_partial_star(field, text, pos))
        return bare.group(), bare.end()
    if ch != ".":
        raise validation(_unexpected(field, text, ch))
    raise validation(
        f"{field} pattern '{text}' is not a dotted name like {_EXAMPLE[levels]}: a name, * or "
        f"/regex/ must come before and after every dot."
    )


def _parse_quoted(text: str, pos: int, field: str) -> tuple[str, int]:
    name: list[str] = []
    i = pos + 1
    while i < len(text):
        if text[i] == '"':
            if text[i + 1 : i + 2] != '"':
                if not name:
                    raise validation(
                        f"{field} pattern '{text}' is not a dotted name: \"\" is empty."
                    )
                return "".join(name), i + 1
            i += 1
        name.append(text[i])
        i += 1
    raise validation(
        f"{field} pattern '{text}' is not a dotted name: its double quote is never closed "
        '(write "" for a quote inside a quoted name).'
    )


def _parse_regex(text: str, pos: int, field: str) -> tuple[Regex, int]:
    i = pos + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            source = text[pos + 1 : i]
            if not source:
                raise validation(f"{field} pattern '{text}' has an empty //; use * for any name.")
            return Regex(source), i + 1
        i += 1
    raise validation(
        f"{field} pattern '{text}' has a regular expression with no closing '/' "
        "(write \\/ for a slash inside it)."
    )


def _unexpected(field: str, text: str, ch: str) -> str:
    return (
        f"{field} pattern '{text}' has an unexpected '{ch}'. Double-quote a name that contains "
        'it (write "" for a quote inside), or match it with a /regex/.'
    )


def _partial_star(field: str, text: str, pos: int | None) -> str:
    """The error for ``audit_*``, suggesting the regex for the name part at ``pos``."""
    example = "/audit_.*/ for names starting with audit_"
    if pos is not None:
        chunk = re.match(r"[\w$*-]+", text[pos:])
        if chunk:
            regex = "".join(".*" if c == "*" else re.escape(c) for c in chunk.group())
            example = f"/{regex}/ for {chunk.group()}"
    return (
        f"{field} pattern '{text}' uses * inside a name, but * stands only for a whole name "
        f"part (AWS's wildcard). Use a regular expression, e.g. {example}."
    )
