"""Redshift ML on DuckDB: ``CREATE EXTERNAL MODEL``, ``DROP MODEL`` and ``SHOW MODEL``.

``lab.sql(..., dialect="redshift")`` runs Redshift's statement for Bedrock models::

    CREATE EXTERNAL MODEL model_name
    FUNCTION function_name
    IAM_ROLE { default | 'arn:aws:iam::<account-id>:role/<role-name>' }
    MODEL_TYPE BEDROCK
    SETTINGS (
        MODEL_ID 'model_id'
        [, PROMPT 'prompt prefix']
        [, SUFFIX 'prompt suffix']
        [, REQUEST_TYPE { RAW | UNIFIED }]
        [, RESPONSE_TYPE { VARCHAR | SUPER }]
    )

It defines the SQL function ``function_name`` in every dialect and in ``lab.duckdb()``
connections (see :mod:`.llm.udf`): ``f(input_text [, inference_config
[, additional_model_request_fields]])`` for ``UNIFIED`` (the default; ``RESPONSE_TYPE`` defaults
to ``VARCHAR``), ``f(request)`` for ``RAW`` (which needs ``RESPONSE_TYPE SUPER`` and takes no
``PROMPT``/``SUFFIX``), as AWS's reference says. The MODEL_ID goes to litellm
(:func:`.llm.models.resolve`): a Bedrock id calls Bedrock when AWS credentials are configured
and the offline model otherwise, with a notice; ``openai/...``, ``ollama/...`` and
``local/...`` ids work too. ``IAM_ROLE`` is checked for its form and kept, not used.

Models are kept in ``<home>/redshift_models.json`` and come back when the Lab reopens (a
read-only Lab sees the writer's). ``DROP MODEL [IF EXISTS] name`` removes one with its function;
``SHOW MODEL ALL`` lists them and ``SHOW MODEL name`` describes one, as Redshift does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..core.errors import ReadOnlyLabError
from .errors import RedshiftSQLError
from .llm.udf import BUILTINS, ModelFunction

__all__ = ["ExternalModel", "RedshiftModels", "parse_create"]

_FILE: Final = "redshift_models.json"
_SETTINGS: Final = ("MODEL_ID", "PROMPT", "SUFFIX", "REQUEST_TYPE", "RESPONSE_TYPE")
_ROLE: Final = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_SYNTAX: Final = (
    "CREATE EXTERNAL MODEL model_name FUNCTION function_name IAM_ROLE default "
    "MODEL_TYPE BEDROCK SETTINGS (MODEL_ID '<bedrock model id>' [, PROMPT '...'] "
    "[, SUFFIX '...'] [, REQUEST_TYPE RAW|UNIFIED] [, RESPONSE_TYPE VARCHAR|SUPER])"
)
_STATEMENT: Final = re.compile(
    r"^\s*(?:CREATE\s+(?:EXTERNAL\s+)?MODEL|DROP\s+MODEL|SHOW\s+MODEL)\b", re.I
)
_DROP: Final = re.compile(
    r'^\s*DROP\s+MODEL\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>(?:[\w$]+|"(?:[^"]|"")+")'
    r'(?:\.(?:[\w$]+|"(?:[^"]|"")+"))?)\s*$',
    re.I,
)
_SHOW: Final = re.compile(r'^\s*SHOW\s+MODEL\s+(?P<name>ALL|[\w$.]+|"(?:[^"]|"")+")\s*$', re.I)


@dataclass(frozen=True)
class ExternalModel:
    """A model made by ``CREATE EXTERNAL MODEL`` (``name`` may carry its schema)."""

    name: str
    schema: str
    function: str
    model_id: str
    iam_role: str = "default"
    prompt: str | None = None
    suffix: str | None = None
    request_type: str = "UNIFIED"
    response_type: str = "VARCHAR"
    created: float = 0.0

    @property
    def spec(self) -> ModelFunction:
        """The SQL function this model defines."""
        return ModelFunction(
            self.function,
            self.model_id,
            self.prompt,
            self.suffix,
            self.request_type,
            self.response_type,
        )

    def as_doc(self) -> dict[str, Any]:
        """The JSON document kept in the Lab home."""
        return dict(self.__dict__)


def _short(sql: str, limit: int = 200) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _fail(message: str, statement: str) -> RedshiftSQLError:
    return RedshiftSQLError(f"CREATE EXTERNAL MODEL: {message}. Statement: {_short(statement)}")


class _Tokens:
    """A cursor over sqlglot's Redshift tokens of one statement."""

    def __init__(self, statement: str) -> None:
        import sqlglot

        self.statement = statement
        self.tokens = sqlglot.Dialect.get_or_raise("redshift").tokenize(statement)
        self.pos = 0

    def peek(self) -> Any:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def word(self) -> str:
        """The next token's text, upper-cased when unquoted ('' at the end)."""
        tok = self.peek()
        if tok is None:
            return ""
        return str(tok.text) if self._quoted(tok) else str(tok.text).upper()

    @staticmethod
    def _quoted(tok: Any) -> bool:
        return tok.token_type.name in {"STRING", "IDENTIFIER"}

    def take(self, *expected: str) -> str:
        """The next word, which must be one of ``expected`` (upper case)."""
        got = self.word()
        if got not in expected or self._quoted(self.peek()):
            found = f"'{self.peek().text}'" if self.peek() is not None else "the end"
            raise _fail(f"expected {' or '.join(expected)}, found {found}", self.statement)
        self.pos += 1
        return got

    def name(self, what: str) -> str:
        """An identifier: quoted keeps its case, unquoted folds to lower case."""
        tok = self.peek()
        if tok is None or tok.token_type.name in {"STRING", "L_PAREN", "R_PAREN", "COMMA"}:
            raise _fail(f"expected the {what} name", self.statement)
        self.pos += 1
        return str(tok.text) if self._quoted(tok) else str(tok.text).lower()

    def string(self, what: str) -> str:
        tok = self.peek()
        if tok is None or tok.token_type.name != "STRING":
            raise _fail(f"{what} takes a quoted string, e.g. {what} '...'", self.statement)
        self.pos += 1
        return str(tok.text)

    def skip_parens(self) -> None:
        """Skip a parenthesized list (the optional argument types after FUNCTION f)."""
        if self.word() != "(":
            return
        depth = 0
        while self.peek() is not None:
            depth += {"(": 1, ")": -1}.get(self.word(), 0)
            self.pos += 1
            if depth == 0:
                return
        raise _fail("unbalanced parentheses", self.statement)


def parse_create(statement: str) -> ExternalModel:
    """The model a ``CREATE EXTERNAL MODEL`` statement defines (:class:`RedshiftSQLError` when
    it is not valid, naming the clause or setting at fault)."""
    toks = _Tokens(statement)
    if toks.word() == "CREATE" and toks.tokens[1:2] and toks.tokens[1].text.upper() == "MODEL":
        raise RedshiftSQLError(
            "CREATE MODEL trains a model with Amazon SageMaker, which does not run locally; "
            f"Bedrock models work: {_SYNTAX}. Statement: {_short(statement)}"
        )
    toks.take("CREATE")
    toks.take("EXTERNAL")
    toks.take("MODEL")
    schema, name = "public", toks.name("model")
    if toks.word() == ".":
        toks.pos += 1
        schema, name = name, toks.name("model")
    toks.take("FUNCTION")
    function = toks.name("function")
    toks.skip_parens()
    clauses: dict[str, Any] = {}
    while toks.peek() is not None:
        clause = toks.take("IAM_ROLE", "MODEL_TYPE", "SETTINGS")
        if clause in clauses:
            raise _fail(f"{clause} is given twice", statement)
        clauses[clause] = _clause(toks, clause)
    for clause in ("IAM_ROLE", "MODEL_TYPE", "SETTINGS"):
        if clause not in clauses:
            raise _fail(f"{clause} is missing; the syntax is {_SYNTAX}", statement)
    settings = _check_settings(clauses["SETTINGS"], statement)
    return ExternalModel(
        name=name,
        schema=schema,
        function=function,
        model_id=settings["MODEL_ID"],
        iam_role=clauses["IAM_ROLE"],
        prompt=settings.get("PROMPT"),
        suffix=settings.get("SUFFIX"),
        request_type=settings["REQUEST_TYPE"],
        response_type=settings["RESPONSE_TYPE"],
        created=time.time(),
    )


def _clause(toks: _Tokens, clause: str) -> Any:
    if clause == "IAM_ROLE":
        if toks.word() == "DEFAULT":
            toks.pos += 1
            return "default"
        role = toks.string("IAM_ROLE")
        if not _ROLE.fullmatch(role):
            raise _fail(
                f"IAM_ROLE '{role}' is not an IAM role ARN "
                "('arn:aws:iam::<account-id>:role/<role-name>') or default",
                toks.statement,
            )
        return role
    if clause == "MODEL_TYPE":
        kind = toks.word()
        toks.pos += 1
        if kind != "BEDROCK":
            raise _fail(
                f"MODEL_TYPE {kind or '(missing)'} is not supported: CREATE EXTERNAL MODEL "
                "takes MODEL_TYPE BEDROCK, the only type Redshift defines for it",
                toks.statement,
            )
        return kind
    toks.take("(")
    settings: dict[str, str] = {}
    while True:
        key = toks.word()
        toks.pos += 1
        if key not in _SETTINGS:
            raise _fail(
                f"unknown setting {key or '(none)'} in SETTINGS; the settings are "
                f"{', '.join(_SETTINGS)}",
                toks.statement,
            )
        if key in settings:
            raise _fail(f"setting {key} is given twice", toks.statement)
        if key in ("MODEL_ID", "PROMPT", "SUFFIX"):
            settings[key] = toks.string(key)
        else:
            settings[key] = toks.word().upper()
            toks.pos += 1
        if toks.take(",", ")") == ")":
            return settings


def _check_settings(settings: dict[str, str], statement: str) -> dict[str, str]:
    if not settings.get("MODEL_ID", "").strip():
        raise _fail("SETTINGS needs MODEL_ID '<model id>', e.g. 'amazon.nova-lite-v1:0'", statement)
    request = settings.setdefault("REQUEST_TYPE", "UNIFIED")
    if request not in ("RAW", "UNIFIED"):
        raise _fail(f"REQUEST_TYPE {request} is not valid; use RAW or UNIFIED", statement)
    response = settings.get("RESPONSE_TYPE")
    if response is not None and response not in ("VARCHAR", "SUPER"):
        raise _fail(f"RESPONSE_TYPE {response} is not valid; use VARCHAR or SUPER", statement)
    if request == "RAW":
        if response != "SUPER":
            raise _fail(
                "REQUEST_TYPE RAW needs RESPONSE_TYPE SUPER (its only valid value)", statement
            )
        for key in ("PROMPT", "SUFFIX"):
            if key in settings:
                raise _fail(
                    f"{key} is only supported with REQUEST_TYPE UNIFIED, not RAW", statement
                )
    settings.setdefault("RESPONSE_TYPE", "VARCHAR")
    return settings


class RedshiftModels:
    """The external models of a Lab: parsed, kept in the home, defined as SQL functions."""

    def __init__(self, home: Path | None, read_only: bool = False) -> None:
        self.path = home / _FILE if home is not None else None
        self.read_only = read_only
        self.models: dict[str, ExternalModel] = {}
        self._mtime: float | None = None

    # -- persistence ----------------------------------------------------------------------------
    def _load(self) -> bool:
        """Re-read the file when it changed; whether it did."""
        if self.path is None or not self.path.exists():
            changed = self._mtime is not None
            if changed:
                self.models, self._mtime = {}, None
            return changed
        mtime = self.path.stat().st_mtime
        if mtime == self._mtime:
            return False
        docs = json.loads(self.path.read_text())
        self.models = {name: ExternalModel(**doc) for name, doc in docs.items()}
        self._mtime = mtime
        return True

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        docs = {name: model.as_doc() for name, model in self.models.items()}
        tmp.write_text(json.dumps(docs, indent=1, sort_keys=True))
        tmp.replace(self.path)
        self._mtime = self.path.stat().st_mtime

    # -- statements -------------------------------------------------------------------------------
    @staticmethod
    def handles(statement: str) -> bool:
        """Whether ``statement`` is a CREATE [EXTERNAL] MODEL, DROP MODEL or SHOW MODEL."""
        return bool(_STATEMENT.match(statement))

    def run(self, statement: str, functions: Any) -> tuple[Any, list[str]]:
        """Run one model statement; ``(rows as a pyarrow.Table or None, notices)``."""
        self.refresh(functions)
        if m := _SHOW.match(statement):
            return self._show(m["name"], functions), []
        if self.read_only:
            raise ReadOnlyLabError(
                "CREATE/DROP MODEL changes the Lab home; this Lab is attached read-only. "
                "Run it in the Lab that writes the home."
            )
        if re.match(r"^\s*DROP\b", statement, re.I):
            m = _DROP.match(statement)
            if m is None:
                raise RedshiftSQLError(
                    f"the syntax is DROP MODEL [IF EXISTS] model_name. Statement: {statement}"
                )
            self._drop(m["name"], bool(m["exists"]), functions)
            return None, []
        model = parse_create(statement)
        self._check_new(model, functions)
        functions.register(model.spec)
        self.models[model.name] = model
        self._save()
        route = functions.client.route(model.model_id)
        return None, [route.notice] if route.notice else []

    def _check_new(self, model: ExternalModel, functions: Any) -> None:
        if model.name in self.models:
            raise RedshiftSQLError(
                f'model "{model.name}" already exists; DROP MODEL {model.name} first.'
            )
        users = {m.function: m.name for m in self.models.values()}
        if model.function in users:
            raise RedshiftSQLError(
                f'function "{model.function}" already exists: model {users[model.function]} '
                "defines it. Choose another FUNCTION name."
            )
        taken = {
            str(r[0]).lower()
            for r in functions.con.execute(
                "SELECT DISTINCT function_name FROM duckdb_functions()"
            ).fetchall()
        }
        if model.function.lower() in taken | set(BUILTINS):
            raise RedshiftSQLError(
                f'function name "{model.function}" is taken by a built-in or existing '
                "function; choose another FUNCTION name."
            )

    def _find(self, name: str) -> str | None:
        bare = name.split(".")[-1].strip('"')
        folded = bare if name.endswith('"') else bare.lower()
        return next((k for k in self.models if k == folded), None)

    def _drop(self, name: str, if_exists: bool, functions: Any) -> None:
        key = self._find(name)
        if key is None:
            if if_exists:
                return
            known = ", ".join(sorted(self.models)) or "none"
            raise RedshiftSQLError(f'model "{name}" does not exist (models: {known}).')
        model = self.models.pop(key)
        functions.unregister(model.function)
        self._save()

    def _show(self, name: str, functions: Any) -> Any:
        import pyarrow as pa

        if name.upper() == "ALL":
            models = sorted(self.models.values(), key=lambda m: (m.schema, m.name))
            return pa.table(
                {
                    "schema_name": [m.schema for m in models],
                    "model_name": [m.name for m in models],
                }
            )
        key = self._find(name)
        if key is None:
            raise RedshiftSQLError(f'model "{name}" does not exist; SHOW MODEL ALL lists them.')
        m = self.models[key]
        route = functions.client.route(m.model_id)
        runs_on = route.litellm_model
        if route.litellm_model != route.target:
            runs_on += f" (offline, in place of {route.target}: no credentials)"
        rows = [
            ("Model Name", m.name),
            ("Schema Name", m.schema),
            ("Creation Time", time.strftime("%a, %d.%m.%Y %H:%M:%S", time.gmtime(m.created))),
            ("Model State", "READY"),
            ("Model Type", "bedrock"),
            ("Function Name", m.function),
            ("Function Parameters", "request" if m.request_type == "RAW" else "input_text"),
            ("Function Parameter Types", "super" if m.request_type == "RAW" else "varchar"),
            ("IAM Role", m.iam_role),
            ("Model ID", m.model_id),
            ("Request Type", m.request_type.lower()),
            ("Response Type", m.response_type.lower()),
            ("Prompt", m.prompt or ""),
            ("Suffix", m.suffix or ""),
            ("Runs On", runs_on),
        ]
        return pa.table({"key": [k for k, _ in rows], "value": [v for _, v in rows]})

    # -- functions --------------------------------------------------------------------------------
    def refresh(self, functions: Any) -> None:
        """Define every kept model's function (after a reopen, or another Lab's change)."""
        if not self._load() and all(
            m.function in functions.functions for m in self.models.values()
        ):
            return
        wanted = {m.function: m.spec for m in self.models.values()}
        for gone in set(functions.functions) - set(wanted):
            functions.unregister(gone)
        for name, spec in wanted.items():
            if functions.functions.get(name) != spec:
                functions.register(spec)

    def super_functions(self) -> frozenset[str]:
        """Lower-cased names of functions that return SUPER (JSON)."""
        return frozenset(
            m.function.lower()
            for m in self.models.values()
            if m.response_type == "SUPER" or m.request_type == "RAW"
        )
