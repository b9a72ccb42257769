"""The prompts of the sentiment lab, and reading answers back.

The same text works for a real model (Bedrock, OpenAI, Ollama) and for the offline model, which
reads the labelled fields back (:func:`parse_fields`). Batching many reviews into one prompt —
numbered lines in, ``<number>: <label>`` lines out — is what makes 100,000 reviews affordable:
litellm costs a millisecond or two per call before any model runs.

>>> print(sentiment_batch_prompt(["Love it!", "Broke on day one."]).splitlines()[-2:])
['1. Love it!', '2. Broke on day one.']
>>> parse_batch_labels("1: positive\\n2: Negative", 2)
['positive', 'negative']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, cast

from .sentiment import Label

__all__ = [
    "BATCH_INSTRUCTION",
    "FIELDS",
    "REPLY_INSTRUCTION",
    "SENTIMENT_INSTRUCTION",
    "field_start",
    "one_line",
    "parse_batch_labels",
    "parse_fields",
    "parse_label",
    "reply_prompt",
    "sentiment_batch_prompt",
    "sentiment_prompt",
]

SENTIMENT_INSTRUCTION: Final = (
    "Classify the sentiment of the following customer review as positive, negative, neutral "
    "or mixed. Answer with one word: positive, negative, neutral or mixed."
)
BATCH_INSTRUCTION: Final = (
    "Classify the sentiment of each numbered customer review below as positive, negative, "
    "neutral or mixed. Answer with one line per review, in order, formatted as "
    "'<number>: <label>', and nothing else."
)
REPLY_INSTRUCTION: Final = (
    "Draft a short, friendly reply from our customer care team to the customer below. If they "
    "are happy, thank them and suggest the next best product for them. If they are unhappy, "
    "apologise and offer free shipping on their next order, or a discount if they are a loyal "
    "customer or have complained before. Answer with the reply only."
)

#: Field labels the offline model reads (canonical name → labels as written in prompts).
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "customer": ("customer name", "customer"),
    "tier": ("loyalty tier", "tier"),
    "product": ("reviewed product", "product"),
    "review": ("review text", "review", "text"),
    "sentiment": ("sentiment",),
    "purchases": ("products bought", "purchase history", "purchased", "purchases", "bought"),
    "history": ("earlier reviews", "previous reviews", "past reviews", "review history"),
    "candidates": ("recommend from", "candidates", "suggestions"),
}
_LABEL_OF = {label: name for name, labels in FIELDS.items() for label in labels}
_FIELD = re.compile(
    r"(?:^|(?<=\n)|(?<=[.;|!?])[ \t]+)[ \t]*(?:[-*][ \t]*)?(?P<label>"
    + "|".join(sorted((re.escape(k) for k in _LABEL_OF), key=len, reverse=True))
    + r")[ \t]*:",
    re.IGNORECASE,
)
_LABEL_WORD = re.compile(r"\b(positive|negative|neutral|mixed)\b", re.IGNORECASE)
_BATCH_LINE = re.compile(
    r"^\W*(?:review\s*)?(\d+)\s*[:.)\-]+\s*\W*(positive|negative|neutral|mixed)\b",
    re.IGNORECASE | re.MULTILINE,
)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) collapsed to one space."""
    return " ".join(text.split())


def sentiment_prompt(text: str) -> str:
    """A one-review prompt: the instruction, then ``Review: <text>``."""
    return f"{SENTIMENT_INSTRUCTION}\n\nReview: {one_line(text)}"


def sentiment_batch_prompt(texts: Sequence[str]) -> str:
    """A many-review prompt: the instruction, then one numbered line per review (from 1)."""
    lines = "\n".join(f"{n}. {one_line(t)}" for n, t in enumerate(texts, start=1))
    return f"{BATCH_INSTRUCTION}\n\n{lines}"


def parse_label(answer: str | None) -> Label | None:
    """The first of positive/negative/neutral/mixed in ``answer`` (any case), else ``None``."""
    found = _LABEL_WORD.search(answer or "")
    return cast(Label, found.group(1).lower()) if found else None


def parse_batch_labels(answer: str | None, count: int) -> list[Label | None]:
    """Labels of reviews 1..``count`` from ``<number>: <label>`` lines; ``None`` where missing."""
    found: dict[int, Label] = {}
    for number, label in _BATCH_LINE.findall(answer or ""):
        found.setdefault(int(number), cast(Label, label.lower()))
    return [found.get(n) for n in range(1, count + 1)]


def reply_prompt(
    customer: str,
    review: str,
    *,
    product: str | None = None,
    sentiment: str | None = None,
    purchases: Sequence[str] = (),
    history: Sequence[str] = (),
    tier: str | None = None,
    candidates: Sequence[str] = (),
) -> str:
    """A prompt asking for a reply to ``customer`` about ``review``, with what we know of them.

    ``purchases`` are product names (repeats allowed); ``history`` earlier reviews, each
    optionally led by its label (``"negative: The lid broke."``); ``candidates`` products a
    real model may recommend (the offline model also knows the sample catalog).
    """
    lines = [REPLY_INSTRUCTION, "", f"Customer: {one_line(customer)}"]
    if tier:
        lines.append(f"Loyalty tier: {tier}")
    if product:
        lines.append(f"Product: {one_line(product)}")
    lines.append(f"Review: {one_line(review)}")
    if sentiment:
        lines.append(f"Sentiment: {sentiment}")
    if purchases:
        lines.append("Purchased: " + "; ".join(one_line(p) for p in purchases))
    if history:
        lines.append("Earlier reviews: " + " | ".join(one_line(h) for h in history))
    if candidates:
        lines.append("Recommend from: " + "; ".join(one_line(c) for c in candidates))
    return "\n".join(lines)


def field_start(prompt: str) -> int | None:
    """Where the first labelled field of ``prompt`` starts, or ``None`` if it has none."""
    match = _FIELD.search(prompt)
    return match.start() if match else None


def parse_fields(prompt: str) -> dict[str, str]:
    """The labelled fields of ``prompt`` (``Customer: ...``), by canonical name (:data:`FIELDS`).

    A field runs to the next label, which may start a line or follow ``.``/``;``/``|`` on the
    same line, so prompts concatenated in SQL on one line parse too. The first occurrence wins.

    >>> parse_fields("Reply to this. Customer: Ana. Review: Broke. Sentiment: negative")
    {'customer': 'Ana', 'review': 'Broke.', 'sentiment': 'negative'}
    """
    matches = list(_FIELD.finditer(prompt))
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(prompt)
        name = _LABEL_OF[match.group("label").lower()]
        value = prompt[match.end() : end].strip()
        if name not in {"review", "history"}:
            value = value.rstrip(" .;|")
        fields.setdefault(name, value)
    return fields
