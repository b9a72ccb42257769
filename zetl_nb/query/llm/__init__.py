"""LLM calls of the query layer: the offline model, routing, batching, retries, cache, tally.

- :mod:`.calls` — ``LlmClient.complete(model, prompts, **params)`` over a batch: concurrent,
  retried on rate limits, cached in the Lab home, failures as ``None`` plus a reason, tokens and
  cost tallied; :func:`complete` for one-off use.
- :mod:`.functions` — ``llm_sentiment`` / ``llm_complete`` over a column of values (what the SQL
  functions call), with many reviews per prompt.
- :mod:`.models` — MODEL_ID → litellm name (``bedrock/``, ``openai/``, ``ollama/``, ``local/``);
  Bedrock and OpenAI ids without credentials run on the offline model, with a notice.
- :mod:`.provider` — litellm, imported once and offline, with provider ``local`` registered.
- :mod:`.offline` — the offline model: reads the prompt, classifies or drafts a reply.
- :mod:`.sentiment` / :mod:`.lexicon` — the lexicon-based classifier (positive, negative,
  neutral, mixed); :mod:`.replies` — reply drafting; :mod:`.prompts` — the lab's prompts.
- :mod:`.cache` — the SQLite response cache.
- :mod:`.udf` — the SQL functions on DuckDB (Arrow UDFs behind macros); :mod:`.usage` — the
  per-query tally (``result.llm``); :mod:`.bedrock` — Bedrock's request and response shapes
  (Converse, and the RAW bodies of Titan, Claude, Nova, Llama, Mistral).

Importing this package does not import litellm; the first call does.

>>> from zetl_nb.query.llm import LlmClient, llm_sentiment
>>> client = LlmClient(cache=lab.home / "llm" / "cache.sqlite")          # doctest: +SKIP
>>> llm_sentiment(client, ["Love it!", "Broke on day one."], "local/zetl").values  # doctest: +SKIP
['positive', 'negative']
"""

from __future__ import annotations

from .cache import ResponseCache
from .calls import CallBatch, CallResult, LlmClient, Tally, complete
from .functions import Answers, llm_complete, llm_sentiment
from .models import OFFLINE_MODEL, ModelRoute, litellm_name, resolve
from .prompts import (
    parse_batch_labels,
    parse_label,
    reply_prompt,
    sentiment_batch_prompt,
    sentiment_prompt,
)
from .replies import draft_reply
from .sentiment import LABELS, Sentiment, classify, sentiment_label
from .udf import ModelFunction, SqlFunctions
from .usage import LlmFailure, LlmUsage, Recorder

__all__ = [
    "LABELS",
    "OFFLINE_MODEL",
    "Answers",
    "CallBatch",
    "CallResult",
    "LlmClient",
    "LlmFailure",
    "LlmUsage",
    "ModelFunction",
    "ModelRoute",
    "Recorder",
    "ResponseCache",
    "Sentiment",
    "SqlFunctions",
    "Tally",
    "classify",
    "complete",
    "draft_reply",
    "litellm_name",
    "llm_complete",
    "llm_sentiment",
    "parse_batch_labels",
    "parse_label",
    "reply_prompt",
    "resolve",
    "sentiment_batch_prompt",
    "sentiment_label",
    "sentiment_prompt",
]
