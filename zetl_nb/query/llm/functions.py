"""The LLM functions over columns: ``llm_sentiment`` and ``llm_complete`` on lists of values.

What a SQL function calls with a column chunk: a list in, a list out, the same length, ``None``
in → ``None`` out (no call), a failed call → ``None`` with its reason in ``errors``.

:func:`llm_sentiment` puts ``per_prompt`` reviews into one numbered prompt and reads the labels
back (:mod:`.prompts`): litellm's own overhead is a millisecond or two per call, so one review
per call caps out at a few hundred per second, while 50 per prompt classify thousands. A review
whose label is missing from a batch answer (real models skip lines now and then) is asked again
on its own.

>>> client = LlmClient()                                                     # doctest: +SKIP
>>> llm_sentiment(client, ["Love it!", None, "Broke."], "local/zetl").values  # doctest: +SKIP
['positive', None, 'negative']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .calls import CallBatch, LlmClient, Tally
from .prompts import parse_batch_labels, parse_label, sentiment_batch_prompt, sentiment_prompt
from .sentiment import Label

__all__ = ["Answers", "llm_complete", "llm_sentiment"]


@dataclass(frozen=True)
class Answers:
    """Per input value: the answer (``values``) or why there is none (``errors``); the tally."""

    values: list[str | None]
    errors: list[str | None]
    tally: Tally


def llm_complete(
    client: LlmClient, prompts: Sequence[str | None], model: str, **params: Any
) -> Answers:
    """Answer each prompt with ``model`` (``None`` prompts stay ``None`` and cost nothing)."""
    present = [i for i, p in enumerate(prompts) if p is not None]
    values: list[str | None] = [None] * len(prompts)
    errors: list[str | None] = [None] * len(prompts)
    batch = client.complete(model, [prompts[i] or "" for i in present], **params)
    for i, result in zip(present, batch, strict=True):
        values[i], errors[i] = result.text, result.error
    return Answers(values, errors, batch.tally)


def _singles(
    client: LlmClient, model: str, texts: Sequence[str], params: dict[str, Any]
) -> tuple[list[Label | None], list[str | None], CallBatch]:
    batch = client.complete(model, [sentiment_prompt(t) for t in texts], **params)
    labels = [parse_label(r.text) for r in batch]
    errors = [
        r.error or (None if label else f"NoLabel: no sentiment label in {r.text!r:.80}")
        for r, label in zip(batch, labels, strict=True)
    ]
    return labels, errors, batch


def llm_sentiment(
    client: LlmClient,
    texts: Sequence[str | None],
    model: str,
    *,
    per_prompt: int = 50,
    **params: Any,
) -> Answers:
    """The sentiment label (positive, negative, neutral or mixed) of each text.

    ``per_prompt`` texts share one prompt (1: one call per text). Empty and ``None`` texts get
    ``None`` without a call; a text that repeats is asked once. Labels are cached per text
    (under its one-text prompt), so a re-run finds them however the texts are grouped.
    """
    present = [i for i, t in enumerate(texts) if t and t.strip()]
    values: list[str | None] = [None] * len(texts)
    errors: list[str | None] = [None] * len(texts)
    unique = list(dict.fromkeys(str(texts[i]) for i in present))
    labels, reasons, tally = _labels(client, model, unique, per_prompt, params)
    found = {t: (label, reason) for t, label, reason in zip(unique, labels, reasons, strict=True)}
    for i in present:
        values[i], errors[i] = found[str(texts[i])]
    return Answers(values, errors, tally)


def _labels(
    client: LlmClient, model: str, texts: list[str], per_prompt: int, params: dict[str, Any]
) -> tuple[list[Label | None], list[str | None], Tally]:
    """Labels of distinct ``texts``: cached ones first, the rest in prompts of ``per_prompt``."""
    if per_prompt <= 1:
        alone, why, answered = _singles(client, model, texts, params)
        return alone, why, Tally().merge(answered.tally)
    cached, tally = client.lookup(model, [sentiment_prompt(t) for t in texts], **params)
    labels: list[Label | None] = [parse_label(a) for a in cached]
    reasons: list[str | None] = [None] * len(texts)
    todo = [k for k, label in enumerate(labels) if label is None]
    chunks = [todo[s : s + per_prompt] for s in range(0, len(todo), per_prompt)]
    prompts = [sentiment_batch_prompt([texts[k] for k in c]) for c in chunks]
    batch: CallBatch | None = client.complete(model, prompts, **params) if prompts else None
    again: list[int] = []  # texts to ask on their own
    for chunk, result in zip(chunks, batch or (), strict=True):
        for k, label in zip(chunk, parse_batch_labels(result.text, len(chunk)), strict=True):
            labels[k], reasons[k] = label, result.error
            if label is None and result.error is None:
                again.append(k)
    if batch is not None:
        tally.merge(batch.tally)
        learned = [k for c in chunks for k in c if labels[k] is not None]
        client.remember(
            model,
            [sentiment_prompt(texts[k]) for k in learned],
            [str(labels[k]) for k in learned],
            **params,
        )
    if again:
        single, why, retry = _singles(client, model, [texts[k] for k in again], params)
        tally.merge(retry.tally)
        for k, label, reason in zip(again, single, why, strict=True):
            labels[k], reasons[k] = label, reason
    return labels, reasons, tally
