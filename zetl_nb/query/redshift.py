"""Redshift SQL on DuckDB: sqlglot transpiles, and ``CREATE DATABASE ... FROM INTEGRATION``.

``lab.sql(text, dialect="redshift")`` splits ``text`` into statements and runs each on the Lab's
DuckDB connection, returning the last one's result (``params`` go to the last statement):

- ``CREATE DATABASE <name> FROM INTEGRATION '<integration id>' [DATABASE <source db>]`` (parsed
  here; sqlglot does not know it) makes ``<name>`` a DuckDB database of views over the
  integration's tables: ``<name>.<target table>`` and Redshift's three-part
  ``<name>.<source schema>.<source table>`` (PostgreSQL: the source schema; MySQL: the source
  database; DynamoDB: ``public``). ``DATABASE`` keeps only the tables of that source database.
  Databases are kept in ``<home>/redshift_databases.json`` and come back when the Lab reopens.
  ``DROP DATABASE <name>`` removes one.
- ``SET enable_case_sensitive_identifier ...`` (which Redshift's zero-ETL guide asks for) is
  accepted and does nothing: DuckDB keeps identifiers' case and matches them case-insensitively.
- ``CREATE EXTERNAL MODEL``, ``DROP MODEL`` and ``SHOW MODEL`` (Redshift ML with Bedrock) are
  run by :mod:`.redshift_ml`. SUPER values are DuckDB ``JSON``: ``OBJECT(k, v, ...)`` becomes
  ``json_object``, ``JSON_SERIALIZE(x)`` a cast to ``VARCHAR``, and navigation into what a
  SUPER model function returns (``f(x).output.message.content[0].text``) ``json_extract`` with
  Redshift's 0-based indexes.
- Anything else goes through sqlglot (``read="redshift"``, ``write="duckdb"``). Distribution and
  sort keys and column encodings (``DISTKEY``, ``SORTKEY``, ``DISTSTYLE``, ``ENCODE``) are
  dropped: they change storage, not results. Statements with no local meaning (``COPY``,
  ``UNLOAD``, ``VACUUM``, ``GRANT``, ...) and constructs sqlglot cannot express in DuckDB raise
  :class:`RedshiftSQLError` naming the construct; so does a DuckDB error on the transpiled SQL,
  quoting the SQL that ran.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import ReadOnlyLabError
from .errors import RedshiftSQLError
from .views import INTERNAL, ident, schema_name

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_CREATE = re.compile(
    rf"^\s*CREATE\s+DATABASE\s+(?P<name>{_NAME})\s+FROM\s+INTEGRATION\s+'(?P<id>[^']+)'"
    rf"(?:\s+DATABASE\s+(?P<source>{_NAME}|'[^']+'))?\s*$",
    re.I | re.S,
)
_DROP = re.compile(rf"^\s*DROP\s+DATABASE\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>{_NAME})\s*$", re.I)
_NOOP_SET = re.compile(r"^\s*SET\s+enable_case_sensitive_identifier\b", re.I)
_RESERVED = {"memory", "system", "temp", "main", INTERNAL}
_FILE = "redshift_databases.json"

_NO_LOCAL_MEANING = {
    "Copy": "COPY loads files from Amazon S3 into Redshift; here data arrives through "
    "integrations (or use DuckDB's read_csv / read_parquet with dialect='duckdb')",
    "Grant": "GRANT: the local lab has no users or permissions",
    "Revoke": "REVOKE: the local lab has no users or permissions",
}


def _unquote(name: str) -> str:
    """Redshift identifier rules: unquoted names fold to lower case."""
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    if name.startswith("'"):
        return name[1:-1]
    return name.lower()


def split_statements(text: str) -> list[str]:
    """``text`` split at top-level semicolons (sqlglot's Redshift tokenizer finds them)."""
    import sqlglot
    from sqlglot import TokenType
    from sqlglot.errors import TokenError

    try:
        tokens = sqlglot.Dialect.get_or_raise("redshift").tokenize(text)
    except TokenError as exc:
        raise RedshiftSQLError(f"The SQL could not be tokenized as Redshift SQL: {exc}") from None
    out, start = [], 0
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            out.append(text[start : tok.start])
            start = tok.end + 1
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


@contextlib.contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning before falling back to a Command; we raise a clearer error."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def transpile(statement: str, super_functions: frozenset[str] = frozenset()) -> str | None:
    """One Redshift statement as DuckDB SQL (None: accepted, nothing to run).

    ``super_functions`` are the (lower-case) names of functions that return SUPER: navigation
    into their result becomes ``json_extract``.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    if _NOOP_SET.match(statement):
        return None
    try:
        with _quiet_sqlglot():
            tree = sqlglot.parse_one(statement, read="redshift")
    except ParseError as exc:
        raise RedshiftSQLError(_parse_message(statement, exc)) from None
    kind = type(tree).__name__
    if isinstance(tree, exp.Command):
        keyword = _statement_kind(statement)
        raise RedshiftSQLError(
            f"{keyword} is a Redshift statement with no local equivalent: sqlglot cannot "
            f"translate it and DuckDB cannot run it. Statement: {_short(statement)}"
        )
    if kind in _NO_LOCAL_MEANING:
        raise RedshiftSQLError(f"{_NO_LOCAL_MEANING[kind]}. Statement: {_short(statement)}")
    tree = tree.transform(_without_storage_hints)
    tree = tree.transform(lambda node: _super_functions(node, super_functions))
    try:
        return str(tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE))
    except UnsupportedError as exc:
        found = sorted({_construct(line) for line in str(exc).splitlines() if line.strip()})
        raise RedshiftSQLError(
            f"Redshift SQL uses constructs DuckDB has no equivalent for: {'; '.join(found)}. "
            f"Statement: {_short(statement)}"
        ) from None


def _construct(message: str) -> str:
    """sqlglot's "Unsupported property materializedproperty" → "MATERIALIZED (property)"."""
    m = re.fullmatch(r"\s*Unsupported property (\w+?)property\s*", message)
    return f"{m.group(1).upper()} (property)" if m else message.strip()


def _statement_kind(statement: str) -> str:
    """``VACUUM``, ``UNLOAD``, ``CREATE EXTERNAL SCHEMA``: the words that say what it is."""
    words = statement.upper().split()
    kind = words[:1]
    if kind and kind[0] in ("CREATE", "ALTER", "DROP", "SHOW"):
        for word in words[1:3]:
            if not word.isalpha():
                break
            kind.append(word)
    return " ".join(kind) or "(empty)"


def _without_storage_hints(node: Any) -> Any:
    """Drop DISTKEY, SORTKEY, DISTSTYLE and ENCODE: they change storage, not results."""
    from sqlglot import exp

    if isinstance(node, exp.DistKeyProperty | exp.SortKeyProperty | exp.DistStyleProperty):
        return None
    if isinstance(node, exp.ColumnConstraint) and isinstance(
        node.args.get("kind"), exp.EncodeColumnConstraint
    ):
        return None
    return node


def _super_functions(node: Any, returning_super: frozenset[str]) -> Any:
    """SUPER on DuckDB JSON: OBJECT, JSON_SERIALIZE, and navigation into a SUPER result."""
    from sqlglot import exp

    if isinstance(node, exp.Anonymous) and node.name.lower() == "object":
        node.set("this", "json_object")  # in place, so nested OBJECTs are visited too
        return node
    if isinstance(node, exp.Anonymous) and node.name.lower() == "json_serialize":
        return exp.cast(node.expressions[0].copy(), "VARCHAR")
    if not isinstance(node, exp.Dot | exp.Bracket) or isinstance(
        node.parent, exp.Dot | exp.Bracket
    ):
        return node
    parts: list[str] = []
    root = node
    while isinstance(root, exp.Dot | exp.Bracket):
        if isinstance(root, exp.Dot):
            parts.append("." + json.dumps(root.expression.name))
        else:
            keys = root.expressions
            if len(keys) != 1 or not isinstance(keys[0], exp.Literal):
                return node
            key = keys[0]
            parts.append(f"[{int(key.this)}]" if not key.is_string else "." + json.dumps(key.this))
        root = root.this
    if isinstance(root, exp.Anonymous) and root.name.lower() in returning_super:
        path = "$" + "".join(reversed(parts))
        return exp.Anonymous(
            this="json_extract", expressions=[root.copy(), exp.Literal.string(path)]
        )
    return node


def _parse_message(statement: str, exc: Any) -> str:
    details = []
    for err in getattr(exc, "errors", [])[:3]:
        near = err.get("highlight") or ""
        details.append(
            f"{err.get('description')} (line {err.get('line')}, column {err.get('col')}"
            + (f", near '{near}'" if near else "")
            + ")"
        )
    why = "; ".join(details) or str(exc)
    return f"The statement is not valid Redshift SQL: {why}. Statement: {_short(statement)}"


def _short(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def explain_failure(statement: str, duck_sql: str, error: Exception) -> RedshiftSQLError:
    """A DuckDB error on transpiled SQL, naming the construct when DuckDB says which."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    missing = re.search(r"(?:Function|function) with name \"?(\w+)\"? does not exist", str(error))
    hint = (
        f" `{missing.group(1).upper()}` has no DuckDB equivalent that sqlglot knows: "
        "rewrite that part, or run DuckDB SQL with dialect='duckdb'."
        if missing
        else read_only_hint(str(error))
    )
    return RedshiftSQLError(
        f"Redshift SQL {_short(statement)!r} ran as DuckDB SQL {_short(duck_sql)!r} and "
        f"failed: {message}.{hint}"
    )


def read_only_hint(message: str) -> str:
    """Why a write to a replicated table failed, when that is what DuckDB's message says."""
    if re.search(
        r"Can only (delete from|update|insert into|vacuum or analyze) base table", message
    ):
        return (
            " Replicated tables are read-only views over Iceberg snapshots: change the source "
            "and let the integration replicate it (or copy the rows into a table of your own)."
        )
    return ""


class RedshiftDatabases:
    """Databases made with ``CREATE DATABASE ... FROM INTEGRATION``, as DuckDB databases."""

    def __init__(
        self,
        home: Path | None,
        control: Any = None,
        read_only: bool = False,
        on_created: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        self.path = home / _FILE if home is not None else None
        self.control = control
        self.read_only = read_only
        self.on_created = on_created
        self.docs: dict[str, dict[str, Any]] = {}
        self._mtime: float | None = None
        self._attached: dict[str, tuple[Any, ...]] = {}  # name -> views defined (signature)

    # -- persistence ------------------------------------------------------------------------
    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            if self._mtime is not None:  # removed since it was read
                self.docs, self._mtime = {}, None
            return
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            self.docs = dict(json.loads(self.path.read_text()))
            self._mtime = mtime

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.docs, indent=1, sort_keys=True))
        tmp.replace(self.path)
        self._mtime = self.path.stat().st_mtime

    # -- statements -------------------------------------------------------------------------
    def handles(self, statement: str) -> bool:
        """Whether ``statement`` is a CREATE/DROP DATABASE this class runs."""
        return bool(re.match(r"^\s*(CREATE|DROP)\s+DATABASE\b", statement, re.I))

    def run(self, con: Any, statement: str) -> None:
        """Run a CREATE DATABASE ... FROM INTEGRATION or DROP DATABASE statement."""
        if self.read_only:
            raise ReadOnlyLabError(
                "CREATE/DROP DATABASE changes the Lab home; this Lab is attached read-only. "
                "Run it in the Lab that writes the home."
            )
        self._load()
        if m := _DROP.match(statement):
            self._drop(con, _unquote(m["name"]), bool(m["exists"]))
            return
        m = _CREATE.match(statement)
        if m is None:
            raise RedshiftSQLError(
                "Only CREATE DATABASE <name> FROM INTEGRATION '<integration_id>' "
                "[DATABASE <source_database>] is supported (a plain CREATE DATABASE has no "
                f"local meaning). Statement: {_short(statement)}"
            )
        name = _unquote(m["name"])
        source = _unquote(m["source"]) if m["source"] else None
        self._create(con, name, m["id"], source)

    def _create(self, con: Any, name: str, identifier: str, source: str | None) -> None:
        taken = {
            r[0].lower()
            for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
        }
        taken |= {
            r[0].lower() for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
        }
        if name.lower() in taken | _RESERVED or name.lower() in self.docs:
            raise RedshiftSQLError(
                f'database "{name}" already exists (as a created database, a Glue database or '
                "a DuckDB name). Choose another name, or DROP DATABASE it first."
            )
        integ = self._integration(identifier)
        tables = self._tables(integ.arn, None)
        sources = sorted({t[2] for t in tables if t[2]})
        if source is not None and tables and sources and source not in sources:
            raise RedshiftSQLError(
                f"Integration {integ.integration_id} replicates no tables from source database "
                f"'{source}'; its source databases are: {', '.join(sources)}."
            )
        self.docs[name] = {
            "IntegrationArn": integ.arn,
            "IntegrationId": integ.integration_id,
            "SourceDatabase": source,
            "CreateTime": time.time(),
        }
        self._save()
        if self.on_created is not None:
            try:
                self.on_created(integ.integration_id, name, source)
            except Exception as exc:  # the database exists; monitoring must not undo it
                warnings.warn(f"monitor could not record database {name}: {exc}", stacklevel=2)

    def _drop(self, con: Any, name: str, if_exists: bool) -> None:
        key = next((k for k in self.docs if k.lower() == name.lower()), None)
        if key is None:
            if if_exists:
                return
            made = ", ".join(sorted(self.docs)) or "none"
            raise RedshiftSQLError(
                f'database "{name}" does not exist among the databases created FROM INTEGRATION '
                f"({made}); Glue databases are dropped with glue.delete_database."
            )
        del self.docs[key]
        self._save()
        if key in self._attached:
            con.execute(f"DETACH DATABASE IF EXISTS {ident(key)}")
            del self._attached[key]

    def _integration(self, identifier: str) -> Any:
        if self.control is None:
            raise RedshiftSQLError(
                "CREATE DATABASE FROM INTEGRATION needs a Lab (no control plane)."
            )
        try:
            return self.control.find(identifier)
        except Exception:
            known = [f"{i.integration_id} ({i.name})" for i in self.control.integrations()]
            raise RedshiftSQLError(
                f"No integration '{identifier}'. Integration ids: {', '.join(known) or 'none'} "
                "(SELECT integration_id FROM svv_integration lists them)."
            ) from None

    def _tables(self, arn: str, source: str | None) -> list[tuple[str, str, str, str, str]]:
        """(namespace, target table, source database, source schema, source table)."""
        out = []
        for _, doc in self.control.store.docs("table_states") if self.control else []:
            if doc.get("IntegrationArn") != arn or doc.get("State") == "Deleted":
                continue
            parts = str(doc.get("SourceTable") or doc["TableName"]).split(".")
            db = parts[0] if len(parts) > 1 else ""
            schema = parts[1] if len(parts) == 3 else (db or "public")
            if source is not None and db and db != source:
                continue
            out.append((str(doc["Namespace"]), str(doc["TableName"]), db, schema, parts[-1]))
        return sorted(out)

    # -- views --------------------------------------------------------------------------------
    def refresh(self, con: Any, existing: set[tuple[str, ...]]) -> None:
        """Attach each created database and point its views at the integration's tables."""
        self._load()
        for gone in set(self._attached) - set(self.docs):  # dropped by another Lab
            con.execute(f"DETACH DATABASE IF EXISTS {ident(gone)}")
            del self._attached[gone]
        for name, doc in self.docs.items():
            tables = [
                t
                for t in self._tables(doc["IntegrationArn"], doc.get("SourceDatabase"))
                if (*t[0].split("."), t[1]) in existing
            ]
            signature = tuple(tables)
            if self._attached.get(name) == signature:
                continue
            self._define(con, name, tables)
            self._attached[name] = signature

    def _define(self, con: Any, name: str, tables: list[tuple[str, str, str, str, str]]) -> None:
        db = ident(name)
        con.execute(f"DETACH DATABASE IF EXISTS {db}")
        con.execute(f"ATTACH ':memory:' AS {db}")
        for namespace, target, _, schema, table in tables:
            source = f"memory.{ident(schema_name(tuple(namespace.split('.'))))}.{ident(target)}"
            con.execute(
                f"CREATE OR REPLACE VIEW {db}.main.{ident(target)} AS SELECT * FROM {source}"
            )
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{ident(schema)}")
            con.execute(
                f"CREATE OR REPLACE VIEW {db}.{ident(schema)}.{ident(table)} AS "
                f"SELECT * FROM {source}"
            )
