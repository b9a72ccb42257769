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
    ``None`` without a call.
    """
    present = [i for i, t in enumerate(texts) if t and t.strip()]
    values: list[str | None] = [None] * len(texts)
    errors: list[str | None] = [None] * len(texts)
    wanted = [str(texts[i]) for i in present]
    if per_prompt <= 1:
        labels, reasons, batch = _singles(client, model, wanted, params)
        for i, label, reason in zip(present, labels, reasons, strict=True):
            values[i], errors[i] = label, reason
        return Answers(values, errors, batch.tally)
    chunks = [wanted[s : s + per_prompt] for s in range(0, len(wanted), per_prompt)]
    batch = client.complete(model, [sentiment_batch_prompt(c) for c in chunks], **params)
    tally = Tally().merge(batch.tally)
    again: list[int] = []  # positions in `present` to ask on their own
    for c, (chunk, result) in enumerate(zip(chunks, batch, strict=True)):
        labels = parse_batch_labels(result.text, len(chunk))
        for k, label in enumerate(labels):
            position = c * per_prompt + k
            values[present[position]] = label
            if result.error is not None:
                errors[present[position]] = result.error
            elif label is None:
                again.append(position)
    if again:
        labels, reasons, retry = _singles(client, model, [wanted[p] for p in again], params)
        tally.merge(retry.tally)
        for position, label, reason in zip(again, labels, reasons, strict=True):
            values[present[position]], errors[present[position]] = label, reason
    return Answers(values, errors, tally)
