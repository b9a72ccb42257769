"""The call layer: routing, fan-out, retries, the cache, failures as values, and the tally.

The offline model answers through litellm's real path. Where a provider's behaviour is needed
(rate limits, latency, errors on some prompts) a scripted provider is registered with litellm the
same way, or litellm's ``mock_response`` stands in for OpenAI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from zetl_nb.query.llm import offline
from zetl_nb.query.llm.calls import LlmClient, Tally, complete
from zetl_nb.query.llm.functions import llm_complete, llm_sentiment
from zetl_nb.query.llm.models import OFFLINE_MODEL, has_credentials, litellm_name, resolve
from zetl_nb.query.llm.prompts import sentiment_prompt
from zetl_nb.query.llm.provider import handler, litellm

OPENAI = {"OPENAI_API_KEY": "sk-test-not-real"}


class Scripted:
    """A provider whose behaviour the prompt chooses: ``sleep``, ``flaky``, ``boom``, ``drop``."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        llm = litellm()
        text = kwargs["messages"][-1]["content"]
        self.seen[text] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if text.startswith("sleep"):
                await asyncio.sleep(0.2)
            if text.startswith("flaky") and self.seen[text] <= 2:
                headers = {"retry-after": "0.3"} if "after" in text else {}
                response = httpx.Response(429, headers=headers, request=httpx.Request("POST", "x"))
                raise llm.RateLimitError("slow down", "scripted", "x", response=response)
            if text.startswith("boom"):
                raise ValueError(f"cannot answer {text!r}")
            answer = offline.answer("zetl", kwargs["messages"])
            if "numbered" in text:  # a batch answer that skips review 2, as real models do
                answer = "\n".join(a for a in answer.splitlines() if not a.startswith("2:"))
            response = kwargs["model_response"]
            response.choices[0].message.content = answer if "eview" in text else f"echo {text}"
            return response
        finally:
            self.in_flight -= 1


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    llm = litellm()
    provider = Scripted()
    base = type("ScriptedLLM", (llm.CustomLLM,), {"acompletion": provider.acompletion})
    llm.custom_provider_map = [
        *llm.custom_provider_map,
        {"provider": "scripted", "custom_handler": base()},
    ]
    yield provider
    llm.custom_provider_map = [p for p in llm.custom_provider_map if p["provider"] != "scripted"]


# -- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        ),
        ("amazon.nova-lite-v1:0", "bedrock/amazon.nova-lite-v1:0"),
        ("meta.llama3-8b-instruct-v1:0", "bedrock/meta.llama3-8b-instruct-v1:0"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
            "bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
        ),
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("o3-mini", "openai/o3-mini"),
        ("openai/gpt-4.1", "openai/gpt-4.1"),
        ("OLLAMA/llama3.2:1b", "ollama/llama3.2:1b"),
        ("bedrock/amazon.titan-text-express-v1", "bedrock/amazon.titan-text-express-v1"),
        ("local/sentiment", "local/sentiment"),
        ("", OFFLINE_MODEL),
        ("local", OFFLINE_MODEL),
        ("some-custom-model", "some-custom-model"),
    ],
)
def test_model_ids_map_to_litellm_names(model_id: str, name: str) -> None:
    assert litellm_name(model_id) == name


def test_bedrock_and_openai_fall_back_without_credentials() -> None:
    claude = "anthropic.claude-3-haiku-20240307-v1:0"
    route = resolve(claude, env={})
    assert (route.litellm_model, route.target, route.offline) == (
        OFFLINE_MODEL,
        f"bedrock/{claude}",
        True,
    )
    assert route.notice and "no AWS credentials for Bedrock" in route.notice
    keys = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    assert resolve(claude, env=keys).litellm_model == f"bedrock/{claude}"
    assert resolve(claude, env={"AWS_PROFILE": "dev"}).offline is False
    # moto-style placeholder keys are not credentials
    assert not has_credentials(
        "bedrock", {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    )
    assert resolve("gpt-4o-mini", env={}).litellm_model == OFFLINE_MODEL
    assert resolve("gpt-4o-mini", env=OPENAI).litellm_model == "openai/gpt-4o-mini"
    assert resolve("ollama/llama3.2", env={}).litellm_model == "ollama/llama3.2"


def test_zetl_llm_offline_forces_either_way() -> None:
    assert resolve("gpt-4o-mini", env={**OPENAI, "ZETL_LLM_OFFLINE": "1"}).offline is True
    route = resolve("gpt-4o-mini", env={"ZETL_LLM_OFFLINE": "0"})
    assert route.litellm_model == "openai/gpt-4o-mini" and route.notice is None


# -- calls through the offline model ---------------------------------------------------------------


def test_batch_answers_in_order_and_asks_each_prompt_once() -> None:
    prompts = [sentiment_prompt(t) for t in ("Love it!", "Broke on day one.", "Love it!")]
    before = handler().calls
    batch = complete("local/zetl", prompts)
    assert batch.texts == ["positive", "negative", "positive"]
    assert handler().calls == before + 2
    assert batch.tally.prompts == 3 and batch.tally.calls == 2 and batch.tally.failed == 0
    assert batch.tally.prompt_tokens > 0 and batch.tally.cost_usd == 0.0
    assert [r.litellm_model for r in batch] == ["local/zetl"] * 3


def test_substitution_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    client = LlmClient(env={})
    claude = "anthropic.claude-3-haiku-20240307-v1:0"
    with caplog.at_level(logging.WARNING, logger="zetl_nb.llm"):
        first = client.complete(claude, [sentiment_prompt("Awful.")])
        second = client.complete(claude, [sentiment_prompt("Great!")])
    assert first.texts == ["negative"] and second.texts == ["positive"]
    assert first.tally.substituted and first.tally.models == {claude: OFFLINE_MODEL}
    assert "runs on the offline model local/zetl" in first.tally.notices[0]
    assert second.tally.notices == first.tally.notices  # every batch's tally says so
    assert [r.message for r in caplog.records].count(first.tally.notices[0]) == 1  # logged once
    assert first[0].offline and first[0].model == claude
    assert not complete("local/zetl", ["Classify the sentiment: ok"]).tally.substituted


def test_cache_makes_a_rerun_call_nothing(tmp_path: Path) -> None:
    path = tmp_path / "llm" / "cache.sqlite"
    prompts = [sentiment_prompt(f"Review {n}: {'great' if n % 2 else 'awful'}") for n in range(40)]
    first = LlmClient(path).complete("local/zetl", prompts, temperature=0)
    assert first.tally.calls == 40 and first.tally.cached == 0
    before = handler().calls
    again = LlmClient(path).complete("local/zetl", prompts, temperature=0)  # a new process, say
    assert handler().calls == before, "a re-run made provider calls"
    assert again.tally.calls == 0 and again.tally.cached == 40
    assert again.tally.prompt_tokens == 0 and again.texts == first.texts
    assert all(r.cached and r.attempts == 0 for r in again)
    other = LlmClient(path).complete("local/zetl", prompts[:1], temperature=0.5)
    assert other.tally.calls == 1, "other parameters are another request"
    timeout_only = LlmClient(path).complete("local/zetl", prompts[:1], temperature=0, timeout=9)
    assert timeout_only.tally.cached == 1, "a timeout does not change the answer"


def test_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> list[str | None]:  # Jupyter runs cells inside a loop
        return LlmClient().complete("local/sentiment", ["Love it"]).texts

    assert asyncio.run(notebook_cell()) == ["positive"]


# -- providers that fail, throttle and take time ---------------------------------------------------


def test_rate_limits_are_retried_then_reported(tmp_path: Path) -> None:
    client = LlmClient(tmp_path / "c.sqlite", env=OPENAI, max_retries=2, backoff_s=0.05)
    started = time.perf_counter()
    batch = client.complete("gpt-4o-mini", ["hi", "there"], mock_response="litellm.RateLimitError")
    assert time.perf_counter() - started >= 0.05 * 0.5 * 3  # two backoffs, jittered to >= 50 %
    assert batch.texts == [None, None]
    assert batch.errors[0] is not None and batch.errors[0].startswith("RateLimitError:")
    assert "(after 3 attempts)" in batch.errors[0]
    assert batch.tally.calls == 6 and batch.tally.retries == 4 and batch.tally.failed == 2
    assert batch.tally.errors == {"RateLimitError": 2}
    again = client.complete("gpt-4o-mini", ["hi"], mock_response="litellm.RateLimitError")
    assert again.tally.cached == 0, "failures are not cached"


def test_a_throttled_call_succeeds_on_retry(scripted: Scripted) -> None:
    client = LlmClient(backoff_s=0.01)
    started = time.perf_counter()
    batch = client.complete("scripted/x", ["flaky one", "flaky after two", "fine"])
    assert batch.texts == ["echo flaky one", "echo flaky after two", "echo fine"]
    assert [r.attempts for r in batch] == [3, 3, 1]
    assert batch.tally.retries == 4 and batch.tally.failed == 0
    assert time.perf_counter() - started >= 0.6, "Retry-After: 0.3 was honoured twice"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, on litellm's ollama module
def test_failures_are_values_not_exceptions(scripted: Scripted) -> None:
    batch = LlmClient().complete("scripted/x", ["fine", "boom now", "also fine"])
    assert batch.texts == ["echo fine", None, "echo also fine"]
    assert batch.errors[1] is not None and "cannot answer 'boom now'" in batch.errors[1]
    assert batch.tally.failed == 1 and sum(batch.tally.errors.values()) == 1
    unreachable = LlmClient().complete("ollama/llama3.2", ["hi"], api_base="http://127.0.0.1:9")
    assert unreachable.texts == [None] and unreachable.tally.errors == {"APIConnectionError": 1}


def test_concurrency_is_bounded_and_used(scripted: Scripted) -> None:
    prompts = [f"sleep {n}" for n in range(16)]
    started = time.perf_counter()
    LlmClient(concurrency=16).complete("scripted/x", prompts)
    wide = time.perf_counter() - started
    assert scripted.peak == 16 and wide < 0.2 * 4
    scripted.peak = 0
    started = time.perf_counter()
    LlmClient(concurrency=4).complete("scripted/x", [p + " again" for p in prompts])
    assert scripted.peak == 4 and time.perf_counter() - started >= 0.2 * 4


def test_cost_and_tokens_are_tallied() -> None:
    client = LlmClient(env=OPENAI)
    batch = client.complete("gpt-4o-mini", ["hi", "yo", "hi"], mock_response="Hello!")
    assert batch.texts == ["Hello!"] * 3 and batch.tally.calls == 2  # "hi" is asked once
    assert batch.tally.prompt_tokens > 0 and batch.tally.completion_tokens > 0
    assert 0 < batch.tally.cost_usd < 0.01  # litellm's price list for gpt-4o-mini
    assert batch[0].cost_usd == batch[2].cost_usd == batch.tally.cost_usd / 2
    total = Tally().merge(batch.tally).merge(complete("local/zetl", ["Summarize: ok."]).tally)
    assert total.calls == 3 and total.cost_usd == batch.tally.cost_usd
    assert json.loads(json.dumps(total.as_dict()))["models"] == {
        "gpt-4o-mini": "openai/gpt-4o-mini",
        "local/zetl": "local/zetl",
    }


# -- column functions ------------------------------------------------------------------------------


def test_llm_sentiment_batches_many_reviews_per_prompt() -> None:
    texts = [
        "Love it!",
        None,
        "Broke on day one.",
        "",
        "It arrived.",
        "Great sound, awful battery.",
    ]
    client = LlmClient()
    batched = llm_sentiment(client, texts, "local/zetl", per_prompt=2)
    single = llm_sentiment(client, texts, "local/zetl", per_prompt=1)
    expected = ["positive", None, "negative", None, "neutral", "mixed"]
    assert batched.values == single.values == expected
    assert batched.tally.calls == 2 and single.tally.calls == 4
    assert batched.errors == [None] * 6


def test_llm_sentiment_asks_again_for_labels_a_batch_answer_skipped(scripted: Scripted) -> None:
    texts = ["Love it!", "Awful.", "It arrived."]
    got = llm_sentiment(LlmClient(), texts, "scripted/x", per_prompt=3)
    assert got.values == ["positive", "negative", "neutral"]
    assert got.tally.calls == 2  # the batch, then review 2 on its own


def test_llm_complete_keeps_nulls() -> None:
    got = llm_complete(LlmClient(), ["Classify the sentiment: great", None], "local/zetl")
    assert got.values == ["positive", None] and got.errors == [None, None]
    assert got.tally.prompts == 1
