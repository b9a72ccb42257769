"""The LLM functions of the Lab's DuckDB database.

Every Lab's SQL has two functions from the start, both answered by the Lab's model
(``LabConfig.llm_model``, default the offline ``local/zetl``):

- ``llm_sentiment(text)`` — one bare label: ``positive``, ``negative``, ``neutral`` or ``mixed``
  (many rows per prompt, :func:`.functions.llm_sentiment`);
- ``llm_complete(prompt)`` — the model's answer to each prompt.

Redshift ML's ``CREATE EXTERNAL MODEL`` adds more (:class:`ModelFunction`, registered by
:mod:`zetl_nb.query.redshift_ml`): ``f(text [, inference_config [, additional_fields]])`` for a
``UNIFIED`` model, ``f(request)`` for a ``RAW`` one.

Each is a DuckDB Arrow function (a chunk of up to 2,048 rows per call, chunks one after another)
behind a SQL macro that casts the arguments and overloads the optional ones. Inside a chunk the
:class:`~.calls.LlmClient` fans the prompts out (``LabConfig.llm_concurrency`` at a time),
retries rate limits and answers repeats from the cache in ``<home>/llm/cache.sqlite``. NULL in
gives NULL out; a failed call gives NULL and its reason goes to the query's ``result.llm``
(:mod:`.usage`). Nothing a model does fails the query.

litellm is imported by the first chunk that needs a provider, not before.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .usage import Recorder

__all__ = ["BUILTINS", "ModelFunction", "SqlFunctions"]

log = logging.getLogger("zetl_nb.llm")

#: The functions every Lab has: name → what it returns.
BUILTINS: Final = {
    "llm_sentiment": "the sentiment label of a text (positive, negative, neutral or mixed)",
    "llm_complete": "the Lab model's answer to a prompt",
}
_PREFIX: Final = "__zetl_llm_"


@dataclass(frozen=True)
class ModelFunction:
    """A SQL function over a model, as ``CREATE EXTERNAL MODEL`` defines one.

    ``model_id`` is the MODEL_ID (mapped to litellm by :func:`.models.resolve`); ``prompt`` and
    ``suffix`` wrap the text of a ``UNIFIED`` request; ``response_type`` ``SUPER`` returns the
    whole response document as JSON, ``VARCHAR`` its text.
    """

    function: str
    model_id: str
    prompt: str | None = None
    suffix: str | None = None
    request_type: str = "UNIFIED"
    response_type: str = "VARCHAR"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqlFunctions:
    """Registers the LLM functions on a DuckDB connection and answers their chunks.

    Args:
        con: the DuckDB connection (its cursors share the functions).
        model: the Lab's model for ``llm_sentiment`` / ``llm_complete``.
        concurrency: calls in flight per chunk.
        cache: the response cache file (None: no cache).
        per_prompt: texts per ``llm_sentiment`` prompt.
        client: an :class:`~.calls.LlmClient` to use instead of making one.
    """

    def __init__(
        self,
        con: Any,
        *,
        model: str = "local/zetl",
        concurrency: int = 8,
        cache: Path | None = None,
        per_prompt: int = 50,
        client: Any = None,
    ) -> None:
        self.con = con
        self.model = model
        self.concurrency = concurrency
        self.cache = cache
        self.per_prompt = per_prompt
        self.recorder = Recorder()
        self._client = client
        self.functions: dict[str, ModelFunction] = {}
        self._register_builtins()

    @property
    def client(self) -> Any:
        """The :class:`~.calls.LlmClient` (made on first use)."""
        if self._client is None:
            from .calls import LlmClient

            self._client = LlmClient(self.cache, concurrency=self.concurrency)
        return self._client

    # -- registration ---------------------------------------------------------------------------
    def _udf(self, name: str, call: Callable[..., Any], arity: int) -> None:
        import pyarrow as pa

        def run(*columns: Any) -> Any:
            values = [c.to_pylist() for c in columns]
            try:
                out = call(*values)
            except Exception as exc:  # a bug here must not fail the query: NULLs, with why
                log.exception("LLM function %s failed on a chunk", name)
                reason = f"{type(exc).__name__}: {exc}"
                self._record(name, values[0], [None] * len(values[0]), [reason] * len(values[0]))
                out = [None] * len(values[0])
            return pa.array(out, pa.string())

        # DuckDB reads the arity off the Python signature: no *args.
        def one(a: Any) -> Any:
            return run(a)

        def three(a: Any, b: Any, c: Any) -> Any:
            return run(a, b, c)

        internal = _PREFIX + name
        with contextlib.suppress(Exception):  # not registered yet
            self.con.remove_function(internal)
        self.con.create_function(
            internal,
            one if arity == 1 else three,
            ["VARCHAR"] * arity,
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,  # a constant prompt is asked once, when DuckDB folds it
        )

    def _register_builtins(self) -> None:
        self._udf("llm_sentiment", self._sentiment, 1)
        self._udf("llm_complete", self._complete, 1)
        for name in BUILTINS:
            self.con.execute(
                f"CREATE OR REPLACE MACRO {_ident(name)}(a) AS "
                f"{_ident(_PREFIX + name)}(CAST(a AS VARCHAR))"
            )

    def register(self, spec: ModelFunction) -> None:
        """Define ``spec.function`` in SQL (replacing an earlier definition)."""
        name = spec.function
        self._udf(name, lambda *cols: self._model_call(spec, *cols), 3)
        udf = _ident(_PREFIX + name)
        if spec.request_type == "RAW":
            body = f"(a) AS CAST({udf}(CAST(to_json(a) AS VARCHAR), NULL, NULL) AS JSON)"
        else:
            wrap = "CAST({} AS JSON)" if spec.response_type == "SUPER" else "{}"
            text = "CAST(a AS VARCHAR)"
            config, extra = "CAST(to_json(b) AS VARCHAR)", "CAST(to_json(c) AS VARCHAR)"
            body = ", ".join(
                f"({args}) AS " + wrap.format(f"{udf}({text}, {b}, {c})")
                for args, b, c in (
                    ("a", "NULL", "NULL"),
                    ("a, b", config, "NULL"),
                    ("a, b, c", config, extra),
                )
            )
        self.con.execute(f"CREATE OR REPLACE MACRO {_ident(name)}{body}")
        self.functions[name] = spec

    def unregister(self, function: str) -> None:
        """Remove the SQL function ``function`` made by :meth:`register`."""
        self.functions.pop(function, None)
        self.con.execute(f"DROP MACRO IF EXISTS {_ident(function)}")
        with contextlib.suppress(Exception):  # already gone
            self.con.remove_function(_PREFIX + function)

    # -- chunks ---------------------------------------------------------------------------------
    def _record(
        self,
        function: str,
        values: Sequence[Any],
        answers: Sequence[Any],
        reasons: Sequence[str | None],
        tally: Any = None,
    ) -> None:
        from .calls import Tally

        for usage in self.recorder.targets():
            usage.add(function, tally or Tally(), values, answers, reasons)

    def _sentiment(self, texts: list[str | None]) -> list[str | None]:
        from .functions import llm_sentiment

        got = llm_sentiment(self.client, texts, self.model, per_prompt=self.per_prompt)
        self._record("llm_sentiment", texts, got.values, got.errors, got.tally)
        return got.values

    def _complete(self, prompts: list[str | None]) -> list[str | None]:
        from .functions import llm_complete

        got = llm_complete(self.client, prompts, self.model)
        self._record("llm_complete", prompts, got.values, got.errors, got.tally)
        return got.values

    def _model_call(
        self,
        spec: ModelFunction,
        texts: list[str | None],
        configs: list[str | None],
        extras: list[str | None],
    ) -> list[str | None]:
        from .calls import Tally

        answers: list[str | None] = [None] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        groups: dict[str, list[tuple[int, Any, str]]] = {}  # params → (row, prompt, family)
        for i, (text, config, extra) in enumerate(zip(texts, configs, extras, strict=True)):
            if text is None:
                continue
            try:
                prompt, params, family = _request(spec, text, config, extra)
            except ValueError as exc:  # BedrockRequestError, bad JSON
                reasons[i] = str(exc)
                continue
            key = json.dumps(params, sort_keys=True, default=str)
            groups.setdefault(key, []).append((i, prompt, family))
        tally = Tally()
        for key, rows in groups.items():
            batch = self.client.complete(spec.model_id, [p for _, p, _ in rows], **json.loads(key))
            tally.merge(batch.tally)
            for (i, _, family), result in zip(rows, batch, strict=True):
                answers[i], reasons[i] = _answer(spec, family, result), result.error
        self._record(spec.function, texts, answers, reasons, tally)
        return answers


def _request(
    spec: ModelFunction, text: str, config: str | None, extra: str | None
) -> tuple[Any, dict[str, Any], str]:
    """``(prompt, litellm params, response family)`` of one row of a model function."""
    from .bedrock import (
        additional_fields,
        decode_super,
        inference_params,
        raw_request,
        unified_prompt,
    )

    if spec.request_type == "RAW":
        messages, params, family = raw_request(spec.model_id, decode_super(text))
        return messages, params, family
    params = inference_params(decode_super(config))
    params.update(additional_fields(decode_super(extra)))
    return unified_prompt(text, spec.prompt, spec.suffix), params, "converse"


def _answer(spec: ModelFunction, family: str, result: Any) -> str | None:
    """The value a row gets: the text, or (SUPER / RAW) the response document as JSON."""
    from .bedrock import converse_response, raw_response

    if result.text is None:
        return None
    if spec.request_type == "RAW":
        doc = raw_response(family, result.text, result.prompt_tokens, result.completion_tokens)
    elif spec.response_type == "SUPER":
        doc = converse_response(result.text, result.prompt_tokens, result.completion_tokens)
    else:
        return str(result.text)
    return json.dumps(doc, ensure_ascii=False)
