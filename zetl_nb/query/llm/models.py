"""Which model a MODEL_ID means, and whether it can run here or falls back to the offline model.

Redshift ML names Bedrock models the way Bedrock does (``anthropic.claude-3-haiku-...``,
``amazon.nova-lite-v1:0``, ``us.meta.llama3-...``, an inference-profile ARN); notebooks name
models the way litellm does (``openai/gpt-4o-mini``, ``ollama/llama3.2``, ``local/zetl``).
:func:`resolve` maps either to a litellm model name and decides where the call goes:

- ``local/...`` — the offline model (:mod:`.offline`), always;
- Bedrock and OpenAI models — the provider when its credentials are configured, otherwise the
  offline model, with a notice saying so (a workshop's SQL pasted from Redshift runs offline);
- anything else (``ollama/...``, ``anthropic/...``, ...) — the provider as configured; a call
  that cannot connect fails with its reason, like any provider error.

``ZETL_LLM_OFFLINE=1`` sends every model to the offline model; ``ZETL_LLM_OFFLINE=0`` never
substitutes (calls without credentials then fail with the provider's error).

>>> resolve("anthropic.claude-3-haiku-20240307-v1:0", env={}).litellm_model
'local/zetl'
>>> resolve("anthropic.claude-3-haiku-20240307-v1:0", env={"AWS_PROFILE": "dev"}).litellm_model
'bedrock/anthropic.claude-3-haiku-20240307-v1:0'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["OFFLINE_MODEL", "ModelRoute", "has_credentials", "litellm_name", "resolve"]

#: The offline model every unreachable Bedrock/OpenAI model falls back to.
OFFLINE_MODEL: Final = "local/zetl"

# Bedrock model ids: [geo.]vendor.model..., or a Bedrock ARN (inference profiles, custom models).
_BEDROCK_ID = re.compile(
    r"(?:(?:us|eu|apac|au|jp|ca|us-gov|global)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|qwen|openai|writer|stability"
    r"|twelvelabs|luma|moonshot|minimax|google|nvidia)\.[\w.:-]+"
)
_OPENAI_ID = re.compile(r"(?:gpt-|chatgpt-|o[134](?:-|$)|davinci|babbage)[\w.:-]*")
_KNOWN_PROVIDERS: Final = frozenset(
    re.findall(
        r"\S+",
        """local bedrock bedrock_converse openai azure azure_ai ollama ollama_chat anthropic
    vertex_ai gemini mistral groq cohere huggingface together_ai fireworks_ai deepseek xai
    openrouter perplexity hosted_vllm vllm lm_studio sagemaker databricks watsonx""",
    )
)
_PLACEHOLDER_KEYS: Final = frozenset({"", "testing", "test", "demo", "fake", "dummy", "none"})
_AWS_ENV: Final = (
    "AWS_PROFILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True)
class ModelRoute:
    """Where a requested model's calls go.

    ``requested`` is the name as given; ``target`` the litellm name it means; ``litellm_model``
    what is actually called (``target``, or :data:`OFFLINE_MODEL` when ``offline``);
    ``notice`` says why a substitution happened.
    """

    requested: str
    target: str
    litellm_model: str
    provider: str
    offline: bool
    notice: str | None = None


def litellm_name(model_id: str) -> str:
    """The litellm name of a MODEL_ID: Bedrock ids get ``bedrock/``, OpenAI ids ``openai/``.

    Names that already carry a provider prefix (``ollama/llama3.2``) are kept; an empty id or
    ``local``/``offline`` means the offline model.

    >>> litellm_name("amazon.nova-lite-v1:0"), litellm_name("gpt-4o-mini")
    ('bedrock/amazon.nova-lite-v1:0', 'openai/gpt-4o-mini')
    """
    name = model_id.strip()
    if name.lower() in {"", "local", "offline", "zetl"}:
        return OFFLINE_MODEL
    prefix, sep, _ = name.partition("/")
    if sep and prefix.lower() in _KNOWN_PROVIDERS:
        return f"{prefix.lower()}/{name.split('/', 1)[1]}"
    if name.startswith("arn:aws:bedrock:") or _BEDROCK_ID.fullmatch(name):
        return f"bedrock/{name}"
    if _OPENAI_ID.fullmatch(name):
        return f"openai/{name}"
    return name


def _set(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "").strip().lower() not in _PLACEHOLDER_KEYS


def has_credentials(provider: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``provider`` (``bedrock``, ``openai``) has credentials configured here.

    Bedrock: an access key pair, a profile, a Bedrock API key, web identity or container
    credentials in the environment, or a ``~/.aws/credentials`` file. Placeholder keys such as
    ``testing`` (what moto-based labs export) do not count. OpenAI: ``OPENAI_API_KEY``.
    """
    env = os.environ if env is None else env
    if provider in {"bedrock", "bedrock_converse"}:
        if _set(env, "AWS_ACCESS_KEY_ID") and _set(env, "AWS_SECRET_ACCESS_KEY"):
            return True
        if any(_set(env, key) for key in _AWS_ENV):
            return True
        if env.get("AWS_SHARED_CREDENTIALS_FILE"):
            return Path(env["AWS_SHARED_CREDENTIALS_FILE"]).is_file()
        return env is os.environ and (Path.home() / ".aws" / "credentials").is_file()
    if provider == "openai":
        return _set(env, "OPENAI_API_KEY")
    return True


def resolve(model_id: str, env: Mapping[str, str] | None = None) -> ModelRoute:
    """Route ``model_id``: its litellm name, and whether it runs on the offline model (and why)."""
    env = os.environ if env is None else env
    target = litellm_name(model_id)
    provider = target.split("/", 1)[0] if "/" in target else ""
    forced = env.get("ZETL_LLM_OFFLINE", "").strip().lower()
    if provider == "local":
        return ModelRoute(model_id, target, target, "local", True)
    if forced in {"1", "true", "yes", "on"}:
        notice = (
            f"model {model_id!r} runs on the offline model {OFFLINE_MODEL} because "
            "ZETL_LLM_OFFLINE is set; unset it to call the provider."
        )
        return ModelRoute(model_id, target, OFFLINE_MODEL, provider, True, notice)
    if forced in {"0", "false", "no", "off"} or has_credentials(provider, env):
        return ModelRoute(model_id, target, target, provider, False)
    what = "AWS credentials for Bedrock" if provider.startswith("bedrock") else "OPENAI_API_KEY"
    notice = (
        f"no {what} configured: model {model_id!r} ({target}) runs on the offline model "
        f"{OFFLINE_MODEL} instead. Configure {what} to call the real model "
        "(ZETL_LLM_OFFLINE=0 never substitutes)."
    )
    return ModelRoute(model_id, target, OFFLINE_MODEL, provider, True, notice)
