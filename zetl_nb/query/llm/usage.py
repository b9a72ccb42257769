"""What a query's LLM functions did: ``result.llm``, an :class:`LlmUsage` per query.

The SQL functions (:mod:`.udf`) report every chunk they answer to a :class:`Recorder`; the query
layer opens a recording around each statement and hands its :class:`LlmUsage` to the
``Result``: rows asked, provider calls, cache hits, tokens, estimated cost, the models that
answered (with substitutions and their notices), and the rows that got ``NULL`` with the reason.

DuckDB runs a Python function on the thread that runs the query (and a chunk at a time), so a
chunk is credited to the recording opened on its thread; a chunk run on a thread with no
recording of its own (a DuckDB worker) is credited to every open recording.

>>> res = lab.sql("SELECT llm_sentiment(review_text) FROM lakehouse.reviews")   # doctest: +SKIP
>>> res.llm.calls, res.llm.cached, res.llm.models                                # doctest: +SKIP
(120, 0, {'local/zetl': 'local/zetl'})
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .calls import Tally

__all__ = ["LlmFailure", "LlmUsage", "Recorder"]

#: Failures kept per query with their input (the count covers them all).
MAX_FAILURES: Final = 100
_EXCERPT = 80


@dataclass(frozen=True)
class LlmFailure:
    """A row an LLM function answered with ``NULL``: the function, its input (cut), and why."""

    function: str
    value: str | None
    reason: str


@dataclass(eq=False)  # recordings are told apart by identity
class LlmUsage:
    """The LLM functions' work in one query (``result.llm``).

    ``rows`` counts values the functions were given (NULLs included), ``failed`` the ones
    answered with NULL because something failed (the first :data:`MAX_FAILURES` are in
    ``failures`` with their reason; a NULL or empty input is no failure); ``functions`` maps
    each function to its rows. The rest is the merged :class:`~.calls.Tally` of the calls,
    exposed as properties.
    """

    tally: Tally = field(default_factory=Tally)
    rows: int = 0
    failed: int = 0
    functions: dict[str, int] = field(default_factory=dict)
    failures: list[LlmFailure] = field(default_factory=list)

    # -- the tally, by the names a reader looks for ---------------------------------------------
    @property
    def calls(self) -> int:
        """Requests sent to a provider (retries included); 0 when everything was cached."""
        return self.tally.calls

    @property
    def cached(self) -> int:
        """Prompts answered from the cache in the Lab home."""
        return self.tally.cached

    @property
    def tokens_in(self) -> int:
        """Prompt tokens of the calls made (cache hits cost none)."""
        return self.tally.prompt_tokens

    @property
    def tokens_out(self) -> int:
        """Completion tokens of the calls made."""
        return self.tally.completion_tokens

    @property
    def cost_usd(self) -> float:
        """Estimated cost of the calls made, from litellm's price list (offline: 0)."""
        return self.tally.cost_usd

    @property
    def models(self) -> dict[str, str]:
        """Each model asked for → the litellm model that answered (``local/zetl`` offline)."""
        return self.tally.models

    @property
    def substituted(self) -> bool:
        """Whether a model ran on the offline model in place of the one asked for."""
        return self.tally.substituted

    @property
    def notices(self) -> list[str]:
        """Why models were substituted (one line each)."""
        return self.tally.notices

    def add(
        self,
        function: str,
        tally: Tally,
        values: Sequence[str | None],
        answers: Sequence[Any],
        reasons: Sequence[str | None],
    ) -> None:
        """Count one chunk of ``function``: its inputs, answers and failure reasons."""
        self.tally.merge(tally)
        self.rows += len(values)
        self.functions[function] = self.functions.get(function, 0) + len(values)
        for value, answer, reason in zip(values, answers, reasons, strict=True):
            if answer is not None or reason is None:  # answered, or nothing to ask (NULL, '')
                continue
            self.failed += 1
            if len(self.failures) < MAX_FAILURES:
                text = None if value is None else " ".join(str(value).split())
                if text is not None and len(text) > _EXCERPT:
                    text = text[: _EXCERPT - 1] + "…"
                self.failures.append(LlmFailure(function, text, reason))

    def as_dict(self) -> dict[str, Any]:
        """Plain data: the tally's fields plus rows, failed, functions and failures."""
        return {
            **self.tally.as_dict(),
            "rows": self.rows,
            "failed_rows": self.failed,
            "functions": dict(self.functions),
            "failures": [f.__dict__.copy() for f in self.failures],
        }

    def summary(self) -> str:
        """One line for a notebook: rows, calls, cache hits, tokens, cost, failures."""
        text = (
            f"LLM: {self.rows} rows, {self.calls} calls, {self.cached} cached, "
            f"{self.tokens_in}+{self.tokens_out} tokens, ${self.cost_usd:.4f}"
        )
        if self.failed:
            text += f", {self.failed} NULL (see .llm.failures)"
        models = ", ".join(f"{k} → {v}" if k != v else k for k, v in self.models.items())
        return f"{text}; models: {models}" if models else text

    def __repr__(self) -> str:
        return f"<LlmUsage {self.summary()}>"


class Recorder:
    """Where the SQL functions report: the recordings open now, by thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, list[LlmUsage]] = {}

    def open(self) -> LlmUsage:
        """Start collecting what LLM functions do on this thread (and on DuckDB workers)."""
        usage = LlmUsage()
        with self._lock:
            self._open.setdefault(threading.get_ident(), []).append(usage)
        return usage

    def close(self, usage: LlmUsage) -> None:
        """Stop collecting into ``usage`` (from any thread; closing twice is harmless)."""
        with self._lock:
            for thread, stack in list(self._open.items()):
                if usage in stack:
                    stack.remove(usage)
                    if not stack:
                        del self._open[thread]
                    return

    @contextlib.contextmanager
    def recording(self) -> Iterator[LlmUsage]:
        """:meth:`open` and :meth:`close` around a block."""
        usage = self.open()
        try:
            yield usage
        finally:
            self.close(usage)

    def targets(self) -> list[LlmUsage]:
        """The recordings a chunk run on this thread counts towards."""
        with self._lock:
            mine = self._open.get(threading.get_ident())
            if mine:
                return [mine[-1]]
            return [stack[-1] for stack in self._open.values()]
