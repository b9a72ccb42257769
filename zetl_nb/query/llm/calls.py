"""Calling a model over a batch of prompts: routing, fan-out, retries, cache, and the tally.

:meth:`LlmClient.complete` is the one way zetl_nb calls a model. For a batch of prompts it

1. routes the model id (:func:`.models.resolve`): Bedrock/OpenAI ids without credentials run on
   the offline model, and the batch's tally says so (``substituted``, ``notices``, ``models``);
2. answers what it can from the cache in the Lab home (:class:`.cache.ResponseCache`);
3. sends each remaining distinct prompt once through ``litellm.acompletion``, at most
   ``concurrency`` at a time, on one event loop in a background thread (so it works the same
   from a notebook, whose own loop is running, and from a DuckDB function);
4. retries rate limits (``litellm.RateLimitError``), unavailable services and timeouts with
   exponential backoff and jitter, honouring ``Retry-After``;
5. turns any other failure into ``text=None`` with the reason — never an exception for the batch;
6. tallies calls, cache hits, failures, retries, tokens and cost (litellm's price list; the
   offline model costs 0).

>>> client = LlmClient(cache=lab.home / "llm" / "cache.sqlite")          # doctest: +SKIP
>>> batch = client.complete("amazon.nova-lite-v1:0", ["Classify: I love it"])  # doctest: +SKIP
>>> batch.texts, batch.tally.substituted                                     # doctest: +SKIP
(['positive'], True)
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from .cache import CachedAnswer, ResponseCache, request_key
from .models import ModelRoute, resolve

__all__ = ["CallBatch", "CallResult", "LlmClient", "Prompt", "Tally", "complete"]

log = logging.getLogger("zetl_nb.llm")

#: A prompt: a user message's text, or chat messages (``[{"role": ..., "content": ...}]``).
Prompt = str | Sequence[Mapping[str, Any]]
#: Bumped when the offline model's answers change, so cached offline answers are not reused.
OFFLINE_VERSION: Final = "1"
_RETRIED: Final = ("RateLimitError", "ServiceUnavailableError", "Timeout")
_T = TypeVar("_T")


@dataclass(frozen=True)
class CallResult:
    """One prompt's outcome: the answer (or ``None`` and the ``error``), and what it took.

    ``model`` is the id as requested, ``litellm_model`` what answered (``local/zetl`` when it
    ran offline); ``attempts`` counts provider calls (0 for a cache hit).
    """

    text: str | None
    error: str | None
    model: str
    litellm_model: str
    offline: bool
    cached: bool = False
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Tally:
    """What a batch (or a query, :meth:`merge` of its batches) cost.

    ``calls`` are requests sent to a provider (retries included), ``cached`` prompts answered
    from the cache, ``failed`` prompts with no answer. ``models`` maps each requested model to
    what answered it; ``substituted`` is true when any ran on the offline model in place of the
    real one asked for, and ``notices`` say why. Tokens and cost count new calls only: cache
    hits cost nothing.
    """

    prompts: int = 0
    calls: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    substituted: bool = False
    models: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Tally) -> Tally:
        """Add ``other`` into this tally (returns ``self``)."""
        for name in ("prompts", "calls", "cached", "failed", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.wall_s += other.wall_s
        self.substituted = self.substituted or other.substituted
        self.models.update(other.models)
        self.notices.extend(n for n in other.notices if n not in self.notices)
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        return self

    def as_dict(self) -> dict[str, Any]:
        """The tally as plain data (for JSON, a DataFrame row, a widget)."""
        return {
            "prompts": self.prompts,
            "calls": self.calls,
            "cached": self.cached,
            "failed": self.failed,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "wall_s": round(self.wall_s, 3),
            "substituted": self.substituted,
            "models": dict(self.models),
            "notices": list(self.notices),
            "errors": dict(self.errors),
        }


@dataclass(frozen=True)
class CallBatch(Sequence[CallResult]):
    """The results of :meth:`LlmClient.complete`, in prompt order, and their :class:`Tally`."""

    results: tuple[CallResult, ...]
    tally: Tally

    @property
    def texts(self) -> list[str | None]:
        """The answers in prompt order (``None`` where a call failed)."""
        return [r.text for r in self.results]

    @property
    def errors(self) -> list[str | None]:
        """The failure reasons in prompt order (``None`` where a call answered)."""
        return [r.error for r in self.results]

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: Any) -> Any:
        return self.results[index]

    def __iter__(self) -> Iterator[CallResult]:
        return iter(self.results)


class _Loop:
    """One asyncio loop in a daemon thread, shared by every client of the process.

    litellm keeps async HTTP clients per event loop; one long-lived loop reuses them and works
    whether or not the caller's thread already runs a loop (Jupyter does).
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, _T]) -> _T:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="zetl-llm", daemon=True).start()
                cls._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result()


def _messages(prompt: Prompt) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def _retry_after(exc: BaseException) -> float | None:
    """``Retry-After`` seconds from a provider's error response, when it sent one."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _reason(exc: BaseException, attempts: int) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
    return f"{type(exc).__name__}: {text}{suffix}"


@dataclass(frozen=True)
class _Outcome:
    text: str | None
    error: str | None
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    kind: str | None = None


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(
        getattr(usage, "completion_tokens", 0) or 0
    )


def _cost(llm: Any, route: ModelRoute, response: Any, tokens: tuple[int, int]) -> float:
    """The call's cost in USD from litellm's price list; 0 offline or when the model is unpriced."""
    if route.litellm_model.startswith("local/"):
        return 0.0
    try:
        return float(llm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # unpriced model names raise; try the requested name's prices
        pass
    try:
        prompt, completion = llm.cost_per_token(
            model=route.target, prompt_tokens=tokens[0], completion_tokens=tokens[1]
        )
        return float(prompt + completion)
    except Exception:
        return 0.0


class LlmClient:
    """Calls models for a Lab: one cache, one concurrency limit, one retry policy.

    ``cache`` is a :class:`~.cache.ResponseCache` or the path of its SQLite file (``None``: no
    cache); ``concurrency`` bounds calls in flight; a call that hits a rate limit is retried up
    to ``max_retries`` times after ``backoff_s``, doubling to at most ``max_backoff_s`` (with
    jitter). ``env`` is where credentials are looked up (default ``os.environ``).
    """

    def __init__(
        self,
        cache: ResponseCache | str | Path | None = None,
        *,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if concurrency < 1 or max_retries < 0 or backoff_s < 0:
            from ...core.errors import ConfigError

            raise ConfigError("concurrency must be >= 1, max_retries and backoff_s >= 0.")
        self.cache = ResponseCache(cache) if isinstance(cache, str | Path) else cache
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.env = os.environ if env is None else env
        self._noticed: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LlmClient cache={self.cache!r} concurrency={self.concurrency}>"

    def route(self, model: str) -> ModelRoute:
        """Where ``model``'s calls go (see :func:`.models.resolve`)."""
        return resolve(model, self.env)

    def complete(self, model: str, prompts: Sequence[Prompt], **params: Any) -> CallBatch:
        """Answer every prompt with ``model``; ``params`` go to ``litellm.acompletion``.

        ``params`` are litellm's (``temperature``, ``max_tokens``, ``mock_response``, ...) and
        are part of the cache key, except timeouts and keys. Never raises for a failed call:
        its result has ``text=None`` and the ``error``.
        """
        started = time.perf_counter()
        route = self.route(model)
        tally = Tally(prompts=len(prompts), models={model: route.litellm_model})
        if route.notice:
            tally.substituted = True
            tally.notices.append(route.notice)
            self._notify(route)
        messages = [_messages(p) for p in prompts]
        keys = self._keys(route, messages, params)
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        todo = {k: m for k, m in zip(keys, messages, strict=True) if k not in hits}
        outcomes: dict[str, _Outcome] = {}
        if todo:
            from .provider import litellm

            outcomes = _Loop.run(self._call_all(litellm(), route, todo, params))
        if self.cache is not None:
            self.cache.put_many(
                {
                    k: CachedAnswer(
                        route.litellm_model, o.text, o.prompt_tokens, o.completion_tokens,
                        o.cost_usd,
                    )
                    for k, o in outcomes.items()
                    if o.text is not None
                }
            )  # fmt: skip
        results = self._results(model, route, keys, hits, outcomes, tally)
        tally.wall_s = time.perf_counter() - started
        return CallBatch(tuple(results), tally)

    @staticmethod
    def _keys(
        route: ModelRoute, messages: Sequence[list[dict[str, Any]]], params: Mapping[str, Any]
    ) -> list[str]:
        keyed = dict(params)
        if route.litellm_model.startswith("local/"):
            keyed["offline_version"] = OFFLINE_VERSION
        return [request_key(route.litellm_model, m, keyed) for m in messages]

    def lookup(
        self, model: str, prompts: Sequence[Prompt], **params: Any
    ) -> tuple[list[str | None], Tally]:
        """The cached answers to ``prompts`` (``None`` where there is none), calling nothing.

        The tally counts the hits as cached prompts and records the model's route (and its
        substitution notice, logged once), as :meth:`complete` would have.
        """
        route = self.route(model)
        answers: list[str | None] = [None] * len(prompts)
        if self.cache is not None and prompts:
            keys = self._keys(route, [_messages(p) for p in prompts], params)
            hits = self.cache.get_many(keys)
            answers = [hits[k].response if k in hits else None for k in keys]
        found = sum(a is not None for a in answers)
        tally = Tally(prompts=found, cached=found, models={model: route.litellm_model})
        if route.notice and found:
            tally.substituted = True
            tally.notices.append(route.notice)
            self._notify(route)
        return answers, tally

    def remember(
        self, model: str, prompts: Sequence[Prompt], answers: Sequence[str], **params: Any
    ) -> None:
        """Cache ``answers`` as the answers to ``prompts``, as if each had been asked alone.

        :func:`.functions.llm_sentiment` asks many reviews in one prompt and remembers each
        review's label under its one-review prompt, so a re-run that groups the rows
        differently (another chunking, another filter) still finds every label.
        """
        if self.cache is None or not prompts:
            return
        route = self.route(model)
        keys = self._keys(route, [_messages(p) for p in prompts], params)
        self.cache.put_many(
            {
                k: CachedAnswer(route.litellm_model, a, 0, 0, 0.0)
                for k, a in zip(keys, answers, strict=True)
            }
        )

    def _notify(self, route: ModelRoute) -> None:
        with self._lock:
            if route.requested in self._noticed:
                return
            self._noticed.add(route.requested)
        log.warning("%s", route.notice)

    def _results(
        self,
        model: str,
        route: ModelRoute,
        keys: Sequence[str],
        hits: Mapping[str, CachedAnswer],
        outcomes: Mapping[str, _Outcome],
        tally: Tally,
    ) -> list[CallResult]:
        """Results in prompt order; the tally counts each distinct request once."""
        base = CallResult(None, None, model, route.litellm_model, route.offline)
        done: dict[str, CallResult] = {}
        for key in keys:
            if key in done:
                continue
            if key in hits:
                hit = hits[key]
                done[key] = replace(
                    base, text=hit.response, cached=True, prompt_tokens=hit.prompt_tokens,
                    completion_tokens=hit.completion_tokens, cost_usd=hit.cost_usd,
                )  # fmt: skip
                tally.cached += 1
                continue
            out = outcomes[key]
            done[key] = replace(
                base, text=out.text, error=out.error, attempts=out.attempts,
                prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens,
                cost_usd=out.cost_usd,
            )  # fmt: skip
            tally.calls += out.attempts
            tally.retries += max(out.attempts - 1, 0)
            tally.prompt_tokens += out.prompt_tokens
            tally.completion_tokens += out.completion_tokens
            tally.cost_usd += out.cost_usd
            if out.text is None:
                tally.failed += 1
                kind = out.kind or "NoText"
                tally.errors[kind] = tally.errors.get(kind, 0) + 1
        return [done[key] for key in keys]

    async def _call_all(
        self, llm: Any, route: ModelRoute, todo: Mapping[str, list[dict[str, Any]]], params: Any
    ) -> dict[str, _Outcome]:
        limit = asyncio.Semaphore(self.concurrency)
        retried = tuple(getattr(llm, name) for name in _RETRIED)
        keys = list(todo)
        outcomes = await asyncio.gather(
            *(self._call(llm, route, todo[k], params, limit, retried) for k in keys)
        )
        return dict(zip(keys, outcomes, strict=True))

    async def _call(
        self,
        llm: Any,
        route: ModelRoute,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any],
        limit: asyncio.Semaphore,
        retried: tuple[type[BaseException], ...],
    ) -> _Outcome:
        """One request with retries; every failure becomes an outcome with its reason."""
        attempts = 0
        while True:
            attempts += 1
            try:
                async with limit:
                    response = await llm.acompletion(
                        model=route.litellm_model, messages=messages, **params
                    )
            except Exception as exc:
                if isinstance(exc, retried) and attempts <= self.max_retries:
                    await asyncio.sleep(self._delay(attempts, exc))
                    continue
                return _Outcome(None, _reason(exc, attempts), attempts, kind=type(exc).__name__)
            tokens = _usage(response)
            try:
                text = response.choices[0].message.content
            except (AttributeError, IndexError):
                text = None
            if not isinstance(text, str):
                return _Outcome(None, "NoText: the response has no text", attempts, *tokens)
            return _Outcome(text, None, attempts, *tokens, _cost(llm, route, response, tokens))

    def _delay(self, attempt: int, exc: BaseException) -> float:
        """Exponential backoff, jittered to 50-100 %, at least the provider's ``Retry-After``."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        delay = ceiling * (0.5 + random.random() / 2)
        hint = _retry_after(exc)
        return min(max(delay, hint or 0.0), self.max_backoff_s)


def complete(
    model: str,
    prompts: Sequence[Prompt],
    *,
    cache: ResponseCache | str | Path | None = None,
    concurrency: int = 8,
    **params: Any,
) -> CallBatch:
    """:meth:`LlmClient.complete` with a client made for the call.

    >>> complete("local/sentiment", ["Love it!", "Broke on day one."]).texts   # doctest: +SKIP
    ['positive', 'negative']
    """
    client = LlmClient(cache, concurrency=concurrency)
    return client.complete(model, prompts, **params)
