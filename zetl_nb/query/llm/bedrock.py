"""Bedrock's request and response shapes, as Redshift ML's inference functions use them.

A function made by ``CREATE EXTERNAL MODEL`` (see :mod:`zetl_nb.query.redshift_ml`) talks to
the model through litellm's chat API; this module translates at both ends:

- ``REQUEST_TYPE UNIFIED`` (the default, Bedrock's Converse API): the text with the model's
  ``PROMPT`` before it and ``SUFFIX`` after it (:func:`unified_prompt`); the optional
  ``inference_config`` (``maxTokens``, ``stopSequences``, ``temperature``, ``topP``) becomes
  litellm's parameters (:func:`inference_params`); ``RESPONSE_TYPE SUPER`` returns the Converse
  response document (:func:`converse_response`).
- ``REQUEST_TYPE RAW``: the model family's own request body (Titan's ``inputText``, Claude's and
  Nova's ``messages``, the ``prompt`` of Llama, Mistral and Claude 2) is read for its messages
  and generation settings (:func:`raw_request`), and the answer comes back in that family's
  response shape (:func:`raw_response`).

A request this module cannot read raises :class:`BedrockRequestError`, which the function turns
into a ``NULL`` with the reason, as Bedrock's ``ValidationException`` would fail the row.

>>> inference_params({"maxTokens": 50, "temperature": 0})
{'max_tokens': 50, 'temperature': 0}
>>> unified_prompt("Great kettle.", "Classify the sentiment:", "One word.")
'Classify the sentiment:\\nGreat kettle.\\nOne word.'
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "INFERENCE_CONFIG",
    "BedrockRequestError",
    "additional_fields",
    "converse_response",
    "decode_super",
    "inference_params",
    "raw_request",
    "raw_response",
    "unified_prompt",
]

#: Converse ``inferenceConfig`` keys → litellm parameters.
INFERENCE_CONFIG: Final = {
    "maxTokens": "max_tokens",
    "stopSequences": "stop",
    "temperature": "temperature",
    "topP": "top_p",
}
_BY_LOWER: Final = {k.lower(): v for k, v in INFERENCE_CONFIG.items()}
# Generation settings of RAW bodies (any family) → litellm parameters.
_RAW_PARAMS: Final = {
    "maxtokencount": "max_tokens",
    "max_tokens": "max_tokens",
    "max_tokens_to_sample": "max_tokens",
    "max_gen_len": "max_tokens",
    "max_new_tokens": "max_tokens",
    "maxtokens": "max_tokens",
    "temperature": "temperature",
    "topp": "top_p",
    "top_p": "top_p",
    "stopsequences": "stop",
    "stop_sequences": "stop",
    "stop": "stop",
}


class BedrockRequestError(ValueError):
    """A request the model would reject (Bedrock's ``ValidationException``)."""

    def __str__(self) -> str:
        return f"ValidationException: {self.args[0]}"


def decode_super(value: Any) -> Any:
    """A SUPER argument as Python data: JSON text is parsed (twice when it was a JSON string
    holding JSON, which is what ``to_json`` makes of a VARCHAR argument); ``None`` stays."""
    if value is None:
        return None
    data = json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def unified_prompt(text: str, prompt: str | None = None, suffix: str | None = None) -> str:
    """The text sent for a ``UNIFIED`` model: ``PROMPT``, the text and ``SUFFIX``, one per line."""
    return "\n".join(p for p in (prompt, text, suffix) if p)


def inference_params(config: Any) -> dict[str, Any]:
    """litellm parameters from an ``inference_config`` object (keys matched in any case)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise BedrockRequestError(
            f"inference_config must be an object such as OBJECT('temperature', 0.2), not "
            f"{json.dumps(config)[:60]}"
        )
    params: dict[str, Any] = {}
    for key, value in config.items():
        name = _BY_LOWER.get(str(key).lower())
        if name is None:
            raise BedrockRequestError(
                f"inference_config has no key {key!r}; its keys are "
                f"{', '.join(INFERENCE_CONFIG)} (put model-specific fields in the third "
                "argument, additional_model_request_fields)"
            )
        params[name] = [value] if name == "stop" and isinstance(value, str) else value
    return params


def additional_fields(fields: Any) -> dict[str, Any]:
    """``additional_model_request_fields`` as extra litellm parameters (an object, or none)."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise BedrockRequestError("additional_model_request_fields must be an object")
    return {str(k): v for k, v in fields.items()}


def converse_response(text: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The Converse API's response document (what ``RESPONSE_TYPE SUPER`` returns)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": prompt_tokens,
            "outputTokens": completion_tokens,
            "totalTokens": prompt_tokens + completion_tokens,
        },
    }


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(block.get("text", "")) for block in content if isinstance(block, Mapping)
        )
    raise BedrockRequestError("message content must be text or a list of {'text': ...} blocks")


def _params(body: Mapping[str, Any]) -> dict[str, Any]:
    """Generation settings found at the top of ``body`` or in its config objects."""
    found: dict[str, Any] = {}
    nested = ("textGenerationConfig", "inferenceConfig", "generation_config")
    for source in (body, *(body.get(k) for k in nested)):
        if isinstance(source, Mapping):
            for key, value in source.items():
                name = _RAW_PARAMS.get(str(key).lower())
                if name is not None:
                    found[name] = [value] if name == "stop" and isinstance(value, str) else value
    return found


def raw_request(model_id: str, body: Any) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """``(messages, params, family)`` of a ``RAW`` request body for ``model_id``.

    Families: ``titan`` (``inputText``), ``anthropic`` and ``nova`` (``messages``, optional
    ``system``), ``claude-text`` (Claude 2's ``prompt``), ``mistral`` and ``llama``
    (``prompt``).
    """
    if not isinstance(body, Mapping):
        raise BedrockRequestError(
            "a RAW request is the model's request body as an object, e.g. "
            "OBJECT('inputText', 'Summarize: ...') for Titan"
        )
    name = model_id.lower()
    params = _params(body)
    if "inputText" in body:
        return [{"role": "user", "content": str(body["inputText"])}], params, "titan"
    if "messages" in body:
        messages = _messages(body)
        family = "anthropic" if "anthropic" in name or "claude" in name else "nova"
        return messages, params, family
    if "prompt" in body:
        family = "claude-text" if "anthropic" in name else "mistral" if "mistral" in name else ""
        prompt = [{"role": "user", "content": str(body["prompt"])}]
        return prompt, params, family or "llama"
    raise BedrockRequestError(
        f"the RAW request for {model_id} has none of the fields a model reads: 'messages' "
        "(Claude, Nova), 'inputText' (Titan) or 'prompt' (Llama, Mistral)"
    )


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = body["messages"]
    if not isinstance(raw, list) or not raw:
        raise BedrockRequestError("'messages' must be a non-empty list of {role, content}")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for message in raw:
        if not isinstance(message, Mapping) or "content" not in message:
            raise BedrockRequestError("each message needs a role and a content")
        role = str(message.get("role") or "user")
        messages.append({"role": role, "content": _text_of(message["content"])})
    return messages


def raw_response(family: str, text: str, prompt_tokens: int, completion_tokens: int) -> Any:
    """The answer in the response shape of ``family`` (see :func:`raw_request`)."""
    if family == "titan":
        return {
            "inputTextTokenCount": prompt_tokens,
            "results": [
                {"tokenCount": completion_tokens, "outputText": text, "completionReason": "FINISH"}
            ],
        }
    if family == "anthropic":
        return {
            "id": f"msg_{uuid.uuid5(uuid.NAMESPACE_OID, text).hex[:24]}",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        }
    if family == "nova":
        return converse_response(text, prompt_tokens, completion_tokens)
    if family == "claude-text":
        return {"completion": text, "stop_reason": "stop_sequence"}
    if family == "mistral":
        return {"outputs": [{"text": text, "stop_reason": "stop"}]}
    return {
        "generation": text,
        "prompt_token_count": prompt_tokens,
        "generation_token_count": completion_tokens,
        "stop_reason": "stop",
    }
