"""LLM functions in SQL over a real Lab: llm_sentiment / llm_complete, Redshift ML's CREATE
EXTERNAL MODEL, the per-query tally, the cache in the home, failures as NULL with a reason.

Tables are real Iceberg tables in the Lab's catalog, read through the query layer's views. The
offline model answers through litellm's real path; where a provider's behaviour is needed (echo
what it was sent, fail, take time) a scripted provider is registered with litellm the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from zetl_nb import Lab
from zetl_nb.config import load_config
from zetl_nb.core.errors import ConfigError, ReadOnlyLabError
from zetl_nb.query.errors import QueryError, RedshiftSQLError
from zetl_nb.query.llm import LABELS, offline
from zetl_nb.query.llm.provider import handler, litellm
from zetl_nb.sample_retail import generate_retail, retail_arrow

REVIEWS = 3000  # two chunks of DuckDB rows (2,048 + 952)
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"


class Scripted:
    """A provider that echoes what it was sent (``echo``), fails (``boom``) or sleeps."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            text = kwargs["messages"][-1]["content"]
            if "sleep" in text:
                await asyncio.sleep(0.05)
            if "boom" in text:
                raise ValueError(f"the provider cannot answer {text!r}")
            response = kwargs["model_response"]
            if kwargs["model"] == "echo":
                answer = json.dumps({"messages": kwargs["messages"], **kwargs["optional_params"]})
            else:
                answer = offline.answer("zetl", kwargs["messages"])
            response.choices[0].message.content = answer
            return response
        finally:
            self.in_flight -= 1


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    llm = litellm()
    provider = Scripted()
    custom = type("ScriptedLLM", (llm.CustomLLM,), {"acompletion": provider.acompletion})
    llm.custom_provider_map = [
        *llm.custom_provider_map,
        {"provider": "scripted", "custom_handler": custom()},
    ]
    yield provider
    llm.custom_provider_map = [p for p in llm.custom_provider_map if p["provider"] != "scripted"]


def _write(lab: Lab, name: str, table: pa.Table) -> None:
    catalog = lab.catalog.catalog
    if ("lakehouse",) not in [tuple(n) for n in catalog.list_namespaces()]:
        catalog.create_namespace("lakehouse")
    catalog.create_table(("lakehouse", name), table.schema).append(table)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, scripted: Scripted) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("llm-sql-home"), embedded_postgres=False)
    _write(lab, "reviews", retail_arrow("reviews").slice(0, REVIEWS))
    prompts = ["Summarize: The kettle is red. It boils fast. It whistles.", None, "Hello there"]
    _write(lab, "prompts", pa.table({"id": [1, 2, 3], "prompt": pa.array(prompts, pa.string())}))
    yield lab
    lab.close()


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere (moto's placeholder keys do not count either)."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "ZETL_LLM_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def _expected(count: int = REVIEWS) -> dict[str, str]:
    data = generate_retail()
    return {row[0]: label for row, label in zip(data.reviews[:count], data.labels, strict=False)}


# -- the built-in functions ------------------------------------------------------------------------


def test_llm_sentiment_labels_the_generated_reviews(lab: Lab) -> None:
    res = lab.sql(
        "SELECT review_id, llm_sentiment(review_text) AS label FROM lakehouse.reviews "
        "ORDER BY review_id"
    )
    got = dict(res.fetchall())
    expected = _expected()
    assert len(got) == REVIEWS and set(got.values()) <= set(LABELS)
    agree = sum(got[k] == v for k, v in expected.items()) / REVIEWS
    assert agree >= 0.97, f"agreement {agree:.3f}"
    assert res.llm is not None and res.llm.functions == {"llm_sentiment": REVIEWS}
    assert res.llm.failed == 0 and res.llm.models == {"local/zetl": "local/zetl"}
    assert 0 < res.llm.calls <= REVIEWS / 50 + 10  # 50 reviews per prompt
    assert res.llm.cost_usd == 0.0 and not res.notices


def test_a_rerun_makes_zero_provider_calls(lab: Lab) -> None:
    query = "SELECT llm_sentiment(review_text) FROM lakehouse.reviews"
    first = lab.sql(query).fetchall()
    before = handler().calls
    again = lab.sql(query)
    assert handler().calls == before, "a re-run called the model"
    assert again.fetchall() == first
    assert again.llm.calls == 0 and again.llm.cached > 0 and again.llm.tokens_in == 0
    # Other rows per chunk (a filter, another order): labels are cached per review.
    subset = lab.sql(f"{query} WHERE rating <= 2 ORDER BY review_text DESC")
    assert handler().calls == before and subset.llm.calls == 0 and len(subset) > 100


def test_llm_complete_keeps_nulls_and_tallies(lab: Lab) -> None:
    res = lab.sql("SELECT id, llm_complete(prompt) FROM lakehouse.prompts ORDER BY id")
    rows = res.fetchall()
    assert rows[0] == (1, "The kettle is red. It boils fast.")
    assert rows[1] == (2, None)
    assert rows[2][1] is not None and "offline model" in rows[2][1]
    assert res.llm.rows == 3 and res.llm.failed == 0 and res.llm.functions == {"llm_complete": 3}
    assert res.llm.calls + res.llm.cached == 2  # the NULL asked nothing
    assert "llm_complete" in repr(res.llm.as_dict()) and "LLM: 3 rows" in res._repr_html_()


def test_functions_work_in_both_dialects_and_in_duckdb_connections(lab: Lab) -> None:
    top = lab.sql(
        "SELECT TOP 3 llm_sentiment(review_text) FROM lakehouse.reviews ORDER BY review_id",
        dialect="redshift",
    )  # labels every review (DuckDB computes the projection first): cached by now
    assert [r[0] for r in top.fetchall()] == [_expected()[f"r{n:05d}"] for n in (1, 2, 3)]
    con = lab.duckdb()
    try:
        got = con.execute(
            "SELECT llm_sentiment('I love it!'), llm_sentiment(NULL), llm_sentiment('')"
        ).fetchall()
        assert got == [("positive", None, None)]
        assert con.llm is not None and con.llm.rows == 3 and con.llm.failed == 0
        relation = con.sql("SELECT llm_complete('Classify the sentiment: awful') AS c")
        assert relation.fetchall() == [("negative",)] and con.llm.functions == {"llm_complete": 1}
    finally:
        con.close()


# -- Redshift ML ----------------------------------------------------------------------------------


def _create(lab: Lab, name: str, settings: str, function: str | None = None) -> Any:
    sql = (
        f"CREATE EXTERNAL MODEL {name} FUNCTION {function or name + '_func'} "
        f"IAM_ROLE default MODEL_TYPE BEDROCK SETTINGS ({settings})"
    )
    return lab.sql(sql, dialect="redshift")


@pytest.mark.usefixtures("no_aws")
def test_a_bedrock_model_runs_offline_and_says_so(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    created = _create(
        lab,
        "sentiment_claude",
        f"MODEL_ID '{CLAUDE}', PROMPT 'Classify the sentiment of this review as positive, "
        "negative, neutral or mixed:', SUFFIX 'Answer with one word.'",
    )
    assert any("runs on the offline model local/zetl" in n for n in created.notices)
    query = (  # LIMIT in a subquery: DuckDB computes a projection before a top-N
        "SELECT review_id, sentiment_claude_func(review_text) FROM (SELECT * FROM "
        "lakehouse.reviews ORDER BY review_id LIMIT 40) AS r ORDER BY review_id"
    )
    with caplog.at_level(logging.WARNING, logger="zetl_nb.llm"):
        res = lab.sql(query, dialect="redshift")
        lab.sql(query, dialect="redshift")
    expected = _expected()
    assert all(label == expected[rid] for rid, label in res.fetchall())
    assert res.llm.models == {CLAUDE: "local/zetl"} and res.llm.substituted
    assert res.notices == res.llm.notices and "no AWS credentials" in res.notices[0]
    assert [r.message for r in caplog.records].count(res.notices[0]) <= 1  # logged once


def test_prompt_suffix_and_inference_config_reach_the_model(lab: Lab, scripted: Scripted) -> None:
    _create(lab, "echo", "MODEL_ID 'scripted/echo', PROMPT 'Before:', SUFFIX 'After.'")
    res = lab.sql(
        "SELECT echo_func('the text'), echo_func('the text', JSON_PARSE("
        '\'{"temperature": 0.2, "maxTokens": 7, "stopSequences": ["END"], "topP": 0.9}\'))',
        dialect="redshift",
    )
    [(plain_json, tuned_json)] = res.fetchall()
    plain, tuned = json.loads(plain_json), json.loads(tuned_json)
    assert plain == {"messages": [{"role": "user", "content": "Before:\nthe text\nAfter."}]}
    assert {k: tuned[k] for k in ("temperature", "max_tokens", "stop", "top_p")} == {
        "temperature": 0.2,
        "max_tokens": 7,
        "stop": ["END"],
        "top_p": 0.9,
    }
    bad = lab.sql("SELECT echo_func('x', OBJECT('colour', 'red'))", dialect="redshift")
    assert bad.fetchall() == [(None,)]
    assert "inference_config has no key 'colour'" in bad.llm.failures[0].reason


def test_response_type_super_returns_the_response_document(lab: Lab) -> None:
    _create(
        lab,
        "super_model",
        "MODEL_ID 'local/zetl', PROMPT 'Classify the sentiment of this review:', "
        "RESPONSE_TYPE SUPER",
    )
    res = lab.sql(
        "SELECT super_model_func('I love this kettle!') AS doc, "
        "super_model_func('Broke in a week.').output.message.content[0].text AS label",
        dialect="redshift",
    )
    [(doc, label)] = res.fetchall()
    assert res.description[0][1] == "JSON"
    parsed = json.loads(doc)
    assert parsed["output"]["message"]["content"][0]["text"] == "positive"
    assert parsed["usage"]["inputTokens"] > 0 and parsed["stopReason"] == "end_turn"
    assert json.loads(label) == "negative"


@pytest.mark.usefixtures("no_aws")
def test_raw_requests_take_and_return_the_models_own_shapes(lab: Lab) -> None:
    _create(
        lab,
        "titan_raw",
        "MODEL_ID 'amazon.titan-text-express-v1', REQUEST_TYPE RAW, RESPONSE_TYPE SUPER",
    )
    res = lab.sql(
        "SELECT titan_raw_func(OBJECT('inputText', 'Classify the sentiment: ' || review_text, "
        "'textGenerationConfig', OBJECT('temperature', 0, 'maxTokenCount', 5))) "
        "FROM (SELECT * FROM lakehouse.reviews ORDER BY review_id LIMIT 1) AS r",
        dialect="redshift",
    )
    [(raw,)] = res.fetchall()
    answer = json.loads(raw)
    assert answer["results"][0]["outputText"] == _expected()["r00001"]
    assert answer["results"][0]["completionReason"] == "FINISH"


@pytest.mark.parametrize(
    ("settings", "construct"),
    [
        ("MODEL_ID 'local/zetl', TEMPERATURE '1'", "unknown setting TEMPERATURE"),
        ("MODEL_ID 'local/zetl', REQUEST_TYPE BATCH", "REQUEST_TYPE BATCH is not valid"),
        ("MODEL_ID 'local/zetl', RESPONSE_TYPE XML", "RESPONSE_TYPE XML is not valid"),
        ("MODEL_ID 'local/zetl', REQUEST_TYPE RAW", "REQUEST_TYPE RAW needs RESPONSE_TYPE SUPER"),
        (
            "MODEL_ID 'local/zetl', PROMPT 'x', REQUEST_TYPE RAW, RESPONSE_TYPE SUPER",
            "PROMPT is only supported with REQUEST_TYPE UNIFIED",
        ),
        ("PROMPT 'x'", "SETTINGS needs MODEL_ID"),
        ("MODEL_ID local", "MODEL_ID takes a quoted string"),
        ("MODEL_ID 'local/zetl', MODEL_ID 'x'", "setting MODEL_ID is given twice"),
    ],
)
def test_bad_settings_name_the_construct(lab: Lab, settings: str, construct: str) -> None:
    with pytest.raises(RedshiftSQLError, match="CREATE EXTERNAL MODEL") as err:
        _create(lab, "bad_model", settings)
    assert construct in str(err.value)


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        (
            "CREATE EXTERNAL MODEL m FUNCTION f IAM_ROLE default MODEL_TYPE SAGEMAKER "
            "SETTINGS (MODEL_ID 'x')",
            "MODEL_TYPE SAGEMAKER is not supported",
        ),
        (
            "CREATE EXTERNAL MODEL m FUNCTION f IAM_ROLE 'admin' MODEL_TYPE BEDROCK "
            "SETTINGS (MODEL_ID 'x')",
            "IAM_ROLE 'admin' is not an IAM role ARN",
        ),
        (
            "CREATE EXTERNAL MODEL m FUNCTION f MODEL_TYPE BEDROCK SETTINGS (MODEL_ID 'x')",
            "IAM_ROLE is missing",
        ),
        (
            "CREATE EXTERNAL MODEL m FUNCTION upper IAM_ROLE default MODEL_TYPE BEDROCK "
            "SETTINGS (MODEL_ID 'x')",
            'function name "upper" is taken',
        ),
        ("CREATE MODEL m FROM t TARGET y FUNCTION f", "CREATE MODEL trains a model"),
        ("DROP MODEL no_such_model", 'model "no_such_model" does not exist'),
    ],
)
def test_bad_statements_name_the_construct(lab: Lab, sql: str, construct: str) -> None:
    with pytest.raises(RedshiftSQLError) as err:
        lab.sql(sql, dialect="redshift")
    assert construct in str(err.value)


def test_model_statements_in_duckdb_sql_point_to_the_redshift_dialect(lab: Lab) -> None:
    with pytest.raises(QueryError, match="need dialect='redshift'"):
        lab.sql("DROP MODEL whatever")
    with pytest.raises(QueryError, match=r"LLM functions: llm_sentiment\(text\)"):
        lab.sql("SELECT no_such_llm_function('x')")


def test_a_failing_provider_gives_null_and_a_reason(lab: Lab, scripted: Scripted) -> None:
    _create(lab, "flaky", "MODEL_ID 'scripted/x'")
    res = lab.sql(
        "SELECT flaky_func(t) FROM (VALUES ('Classify the sentiment: great'), ('boom now'), "
        "(NULL)) AS v(t)",
        dialect="redshift",
    )
    assert res.fetchall() == [("positive",), (None,), (None,)]
    assert res.llm.failed == 1 and sum(res.llm.tally.errors.values()) == 1
    failure = res.llm.failures[0]
    assert failure.function == "flaky_func" and failure.value == "boom now"
    assert "the provider cannot answer 'boom now'" in failure.reason


def test_models_are_kept_in_the_home_and_dropped(tmp_path: Path, scripted: Scripted) -> None:
    home = tmp_path / "home"
    scripted.peak = 0
    with Lab(home, embedded_postgres=False, llm_model="scripted/x", llm_concurrency=3) as lab:
        _create(lab, "kept", "MODEL_ID 'local/sentiment'", function="kept_sentiment")
        prompts = ", ".join(f"('sleep {n} boom')" for n in range(12))
        res = lab.sql(f"SELECT llm_complete(p) FROM (VALUES {prompts}) AS v(p)")
        assert scripted.peak == 3, "llm_concurrency bounds the calls in flight"
        assert res.fetchall() == [(None,)] * 12 and res.llm.failed == 12
        assert res.llm.models == {"scripted/x": "scripted/x"}
    assert json.loads((home / "redshift_models.json").read_text())["kept"]["model_id"]
    with Lab(home, embedded_postgres=False) as again:
        assert again.sql("SELECT kept_sentiment('Awful!')").fetchall() == [("negative",)]
        reader = Lab(home, read_only=True)
        try:
            assert reader.sql("SHOW MODEL ALL", dialect="redshift").fetchall() == [
                ("public", "kept")
            ]
            with pytest.raises(ReadOnlyLabError):
                reader.sql("DROP MODEL kept", dialect="redshift")
        finally:
            reader.close()
        shown = dict(again.sql("SHOW MODEL kept", dialect="redshift").fetchall())
        assert shown["Function Name"] == "kept_sentiment" and shown["Model Type"] == "bedrock"
        again.sql("DROP MODEL kept", dialect="redshift")
        with pytest.raises(RedshiftSQLError, match="KEPT_SENTIMENT"):
            again.sql("SELECT kept_sentiment('x')", dialect="redshift")
        again.sql("DROP MODEL IF EXISTS kept", dialect="redshift")


def test_llm_settings_are_lab_settings(tmp_path: Path) -> None:
    config = load_config(
        tmp_path, env={"ZETL_LLM_MODEL": "gpt-4o-mini", "ZETL_LLM_CONCURRENCY": "4"}
    )
    assert (config.llm_model, config.llm_concurrency, config.llm_per_prompt) == (
        "gpt-4o-mini",
        4,
        50,
    )
    assert load_config(tmp_path, env={}).llm_model == "local/zetl"
    with pytest.raises(ConfigError, match="llm_concurrency"):
        load_config(tmp_path, env={}, llm_concurrency=0)
