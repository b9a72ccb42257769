"""The offline model: through litellm's real completion path, reading prompts, drafting replies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from zetl_nb.query.llm import offline
from zetl_nb.query.llm.prompts import (
    REPLY_INSTRUCTION,
    SENTIMENT_INSTRUCTION,
    parse_batch_labels,
    parse_fields,
    reply_prompt,
    sentiment_batch_prompt,
    sentiment_prompt,
)
from zetl_nb.query.llm.provider import handler, litellm
from zetl_nb.query.llm.replies import (
    ReplyRequest,
    draft_reply,
    next_best_product,
    parse_reply_request,
)
from zetl_nb.sample_retail import generate_retail


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# -- through litellm -------------------------------------------------------------------------------


def test_completion_goes_through_litellm() -> None:
    llm = litellm()
    before = handler().calls
    response = llm.completion(model="local/sentiment", messages=user("Love it, works great!"))
    assert response.choices[0].message.content == "positive"
    assert response.model == "local/sentiment"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert handler().calls == before + 1


def test_acompletion_goes_through_litellm() -> None:
    llm = litellm()

    async def ask() -> list[str]:
        texts = ["Awful, it broke.", "Love it!", "It arrived on Monday."]
        got = await asyncio.gather(
            *(llm.acompletion(model="local/sentiment", messages=user(t)) for t in texts)
        )
        return [r.choices[0].message.content for r in got]

    assert asyncio.run(ask()) == ["negative", "positive", "neutral"]


def test_no_network_at_import_or_call() -> None:
    out = run(
        """
        import os, socket
        attempts = []
        def refuse(self, address, *a):
            attempts.append(address)
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
        import sys
        import zetl_nb.query.llm as llm
        assert "litellm" not in sys.modules  # importing the package does not import litellm
        batch = llm.complete("local/zetl", ["Classify the sentiment: I hate it."])
        print(batch.texts, attempts, os.environ["LITELLM_LOCAL_MODEL_COST_MAP"])
        """
    )
    assert out == "['negative'] [] True"


# -- reading prompts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        sentiment_prompt("The kettle leaks and support never replied to my emails."),
        # Redshift ML style: PROMPT prefix + the column + SUFFIX, no labels.
        "Classify the sentiment of the following review as positive, negative, neutral or mixed. "
        "The kettle leaks and support never replied to my emails. Answer with one word only.",
        "What is the sentiment of this review: the kettle leaks, awful!",
    ],
)
def test_instructions_are_not_classified(prompt: str) -> None:
    # The instruction's own words ("positive, negative ...", "reply") do not sway the label.
    assert offline.answer("zetl", user(prompt)) == "negative"


def test_system_message_carries_the_instruction() -> None:
    messages = [{"role": "system", "content": SENTIMENT_INSTRUCTION}, *user("Works great!")]
    assert offline.answer("zetl", messages) == "positive"


def test_numbered_reviews_get_numbered_labels() -> None:
    texts = ["Love it", "Broke in a day", "It arrived.", "Great sound but terrible battery"]
    got = offline.answer("zetl", user(sentiment_batch_prompt(texts)))
    assert got == "1: positive\n2: negative\n3: neutral\n4: mixed"
    assert parse_batch_labels(got, 5) == ["positive", "negative", "neutral", "mixed", None]


def test_model_names_pick_the_task() -> None:
    text = "The lid broke after a week."
    assert offline.answer("sentiment", user(text)) == "negative"
    assert offline.answer("reply", user(text)).startswith("Hi there, we're sorry")
    assert offline.answer("zetl", user(f"Summarize the following text: {text} Sad.")) == (
        "The lid broke after a week. Sad."
    )
    assert "offline model" in offline.answer("zetl", user("What is the capital of France?"))


def test_fields_parse_on_one_line_as_sql_concatenates_them() -> None:
    prompt = "Draft a reply. Customer: Ana Silva. Product: Contoso Pro Kettle. Review: Love it!"
    assert parse_fields(prompt) == {
        "customer": "Ana Silva",
        "product": "Contoso Pro Kettle",
        "review": "Love it!",
    }
    assert offline.answer("zetl", user(prompt)).startswith(
        "Hi Ana, thank you for the lovely review of the Contoso Pro Kettle!"
    )


# -- replies ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def names() -> dict[str, tuple[str, str]]:
    return {p[0]: (p[1], p[2]) for p in generate_retail().products}


def test_happy_customer_gets_the_next_best_product(names: dict[str, tuple[str, str]]) -> None:
    bought = [names["p0001"][0], names["p0006"][0], names["p0002"][0]]  # two electronics
    reply = draft_reply(
        ReplyRequest("Ana Silva", "Love it!", product=bought[0], purchases=tuple(bought))
    )
    suggestion = next_best_product(bought)
    assert suggestion is not None and suggestion not in bought
    assert {c for n, c in names.values() if n == suggestion} == {"Electronics"}
    assert reply == (
        f"Hi Ana, thank you for the lovely review of the {bought[0]}! Since you liked it, you "
        f"might enjoy the {suggestion} next."
    )
    assert next_best_product(bought, candidates=[bought[1], "Gift Card"]) == "Gift Card"


def test_unhappy_customers_get_shipping_or_a_discount() -> None:
    review = "Terrible, the lid broke."
    first_time = draft_reply(ReplyRequest("Ben", review, tier="bronze"))
    assert "ships free with code FREESHIP-" in first_time and "20%" not in first_time
    loyal = draft_reply(ReplyRequest("Ben", review, tier="gold"))
    assert "20% off your next order with code SORRY20-" in loyal
    frequent = draft_reply(ReplyRequest("Ben", review, purchases=("a", "b", "c", "d", "e")))
    assert "SORRY20-" in frequent
    again = draft_reply(ReplyRequest("Ben", review, history=("negative: broke too", "Love it")))
    assert "let you down again" in again and "SORRY20-" in again
    unlabelled = draft_reply(ReplyRequest("Ben", review, history=("Awful, returned it.",)))
    assert "again" in unlabelled
    mixed = draft_reply(ReplyRequest("Ben", "Great sound, awful battery."))
    assert "honest review" in mixed and "FREESHIP-" in mixed
    neutral = draft_reply(ReplyRequest("Ben", "It arrived."))
    assert neutral.startswith("Hi Ben, thanks for reviewing your order.")


def test_given_sentiment_wins_and_replies_are_deterministic() -> None:
    request = ReplyRequest("c0042", "Love it!", sentiment="negative")
    assert draft_reply(request) == draft_reply(request)
    assert draft_reply(request).startswith("Hi c0042, we're sorry")
    assert draft_reply(ReplyRequest("c0043", "x", sentiment="negative")) != draft_reply(request)


def test_reply_prompt_round_trips(names: dict[str, tuple[str, str]]) -> None:
    kettle = names["p0002"][0]
    prompt = reply_prompt(
        "Ana Silva",
        "The lid\nbroke.",
        product=kettle,
        sentiment="negative",
        purchases=[kettle, "p0007 (x2)"],
        history=["positive: Love the knives", "Slow delivery, poor packaging."],
        tier="Silver",
    )
    assert prompt.startswith(REPLY_INSTRUCTION)
    assert parse_reply_request(prompt) == ReplyRequest(
        customer="Ana Silva",
        review="The lid broke.",
        sentiment="negative",
        product=kettle,
        purchases=(kettle, "p0007 (x2)"),
        history=("positive: Love the knives", "Slow delivery, poor packaging."),
        tier="silver",
    )
    reply = offline.answer("zetl", user(prompt))
    assert reply.startswith(f"Hi Ana, we're sorry the {kettle} let you down again.")
