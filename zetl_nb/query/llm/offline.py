"""The offline model: what ``local/...`` answers, read from the prompt like an LLM would.

Models (the part after ``local/``):

- ``sentiment`` — always classifies: one label for one text, or ``<n>: <label>`` lines for a
  numbered list of texts;
- ``reply`` — always drafts a customer reply (:mod:`.replies`);
- ``zetl`` (and any other name) — reads the prompt: a request to draft/write a reply, response
  or e-mail drafts one; a prompt about sentiment or classification classifies; "summarize"
  gives the first sentences of the text; anything else gets a short note of what it can do.

The text to classify is the ``Review:``/``Text:`` field when there is one, else the prompt with
its instruction sentences (Redshift ML's PROMPT prefix and SUFFIX) taken off, else the user
message when a system message carries the instruction. Deterministic, no network.

>>> answer("zetl", [{"role": "user", "content": "What is the sentiment of: I love it!"}])
'positive'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from .prompts import field_start, parse_fields
from .replies import draft_reply, parse_reply_request
from .sentiment import classify

__all__ = ["MODELS", "answer", "estimate_tokens", "prompt_text"]

#: The offline models and what each does.
MODELS: Final = {
    "zetl": "reads the prompt: sentiment, customer replies or a summary",
    "sentiment": "sentiment label(s): positive, negative, neutral or mixed",
    "reply": "a customer-care reply drafted from sentiment, purchases and history",
}

_REPLY = re.compile(
    r"\b(draft|write|compose|prepare|generate)\b[^.\n]{0,60}\b(reply|response|e-?mail|message)\b"
    r"|\b(reply|respond) to (this|the|a|our) (customer|review|message)",
    re.IGNORECASE,
)
_SENTIMENT = re.compile(r"\b(sentiment|classify|classification|categori[sz]e)\b", re.IGNORECASE)
_SUMMARY = re.compile(r"\bsummar(y|ise|ize)\b", re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"\b(sentiment|classify|classification|categori[sz]e|label|one word|answer with|"
    r"respond with|reply with|return only|output|summar(y|ise|ize)|following|below)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBERED = re.compile(r"^\s*(\d+)\s*[.):]\s+(.*\S)\s*$", re.MULTILINE)


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """``(instruction, text)`` of chat messages: system content, and the user content."""
    system: list[str] = []
    user: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # multimodal parts: keep the text ones
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        (system if message.get("role") == "system" else user).append(str(content or ""))
    return "\n".join(system), "\n".join(user)


def estimate_tokens(text: str) -> int:
    """A token count estimate (about four characters per token), at least 1."""
    return max(1, (len(text) + 3) // 4)


def _strip_instructions(text: str) -> tuple[str, str]:
    """``(text, instructions)``: leading and trailing instruction sentences taken off ``text``.

    What follows a colon in the first instruction ("... of this review: I love it") is text.
    """
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    removed: list[str] = []
    while sentences and _INSTRUCTION.search(sentences[0]):
        head, colon, rest = sentences[0].rpartition(":")
        if colon and rest.strip() and not _INSTRUCTION.search(rest):
            removed.append(head)
            sentences[0] = rest.strip()
            break
        removed.append(sentences.pop(0))
    while len(sentences) > 1 and _INSTRUCTION.search(sentences[-1]):
        removed.append(sentences.pop())
    return (" ".join(sentences) if sentences else text), " ".join(removed)


def _read(instruction: str, text: str) -> tuple[str, str]:
    """``(task, subject)``: the words that say what to do, and the text to do it on.

    The task is the system message plus what precedes the first field or numbered line, or
    the instruction sentences when the prompt has neither; the subject is the ``Review:`` field,
    else the text without those instructions (the whole user message under a system message).
    """
    marks = [m for m in (field_start(text), _first_numbered(text)) if m is not None]
    fields = parse_fields(text)
    if marks:
        task, subject = text[: min(marks)], fields.get("review", text)
    elif instruction:
        task, subject = "", text
    else:
        subject, task = _strip_instructions(text)
    return f"{instruction}\n{task}", subject


def _first_numbered(text: str) -> int | None:
    match = _NUMBERED.search(text)
    return match.start() if match else None


def _classify(task: str, text: str, subject: str) -> str:
    items = _NUMBERED.findall(text)
    if len(items) >= 2 or (items and re.search(r"\beach\b", task, re.IGNORECASE)):
        return "\n".join(f"{n}: {classify(item).label}" for n, item in items)
    return classify(subject).label


def _summarize(subject: str) -> str:
    summary = " ".join(s for s in _SENTENCE.split(subject)[:2] if s.strip())
    return summary if len(summary) <= 240 else summary[:237].rstrip() + "..."


def _fallback(text: str) -> str:
    return (
        "I am zetl_nb's offline model: I classify sentiment (positive, negative, neutral, mixed), "
        "draft customer replies and summarize text. I cannot answer: "
        f"{' '.join(text.split())[:80]!r}. Configure a real model (Bedrock, OpenAI or Ollama) "
        "for other questions."
    )


def answer(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The offline model ``model``'s answer to chat ``messages`` (see the module docstring)."""
    instruction, text = prompt_text(messages)
    task, subject = _read(instruction, text)
    name = model.split("/", 1)[-1].lower()
    if name == "sentiment":
        return _classify(task, text, subject)
    if name == "reply" or _REPLY.search(task):
        request = parse_reply_request(f"{instruction}\n{text}")
        if not request.review:  # no Review: field: the text itself is the review
            request = replace(request, review=subject)
        return draft_reply(request)
    if _SENTIMENT.search(task):
        return _classify(task, text, subject)
    if _SUMMARY.search(task):
        return _summarize(subject)
    return _fallback(text)
