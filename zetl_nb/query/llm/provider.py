"""litellm, loaded once and offline, with the offline model registered as provider ``local``.

:func:`litellm` is the one place zetl_nb imports litellm. Before the import it sets
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (unless the user chose otherwise), so litellm reads its
bundled price list instead of fetching one from the internet; then it registers a
``litellm.CustomLLM`` handler for the offline model (:mod:`.offline`) in
``litellm.custom_provider_map``, so ``local/zetl``, ``local/sentiment`` and ``local/reply``
answer through the real ``litellm.completion`` and ``acompletion`` path — the same response
objects, usage and error handling as any provider. Other providers registered there are kept.

litellm is imported with ``importlib`` and typed ``Any`` on purpose: it ships type hints, and
letting mypy follow them costs about 45 s per cold check of the package.

>>> llm = litellm()                                                          # doctest: +SKIP
>>> msgs = [{"role": "user", "content": "Love it"}]                          # doctest: +SKIP
>>> answer = llm.completion(model="local/sentiment", messages=msgs)          # doctest: +SKIP
>>> answer.choices[0].message.content                                        # doctest: +SKIP
'positive'
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...core.errors import MissingDependencyError
from .offline import answer, estimate_tokens

__all__ = ["PROVIDER", "handler", "litellm"]

#: The litellm provider name of the offline model (``local/<model>``).
PROVIDER: Final = "local"

_lock = threading.Lock()
_module: Any = None
_handler: Any = None


def _respond(model: str, messages: Sequence[Mapping[str, Any]], response: Any) -> Any:
    """Fill litellm's ``ModelResponse`` with the offline model's answer and a token estimate."""
    text = answer(model, messages)
    prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    completion = estimate_tokens(text)
    response.choices[0].message.content = text
    response.choices[0].finish_reason = "stop"
    response.model = f"{PROVIDER}/{model}"
    response.usage = _module.Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    return response


def _handler_class(base: type[Any]) -> type[Any]:
    class LocalModel(base):  # type: ignore[misc]
        """The offline model as a litellm custom provider (sync and async, no streaming).

        ``calls`` counts the requests it answered: tests use it to prove a cache hit made none.
        """

        def __init__(self) -> None:
            super().__init__()
            self._counter = itertools.count()
            self.calls = 0

        def _count(self) -> None:
            self.calls = next(self._counter) + 1

        def completion(self, *args: Any, **kwargs: Any) -> Any:
            self._count()
            return _respond(kwargs["model"], kwargs["messages"], kwargs["model_response"])

        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
            self._count()
            return _respond(kwargs["model"], kwargs["messages"], kwargs["model_response"])

    return LocalModel


def litellm() -> Any:
    """The ``litellm`` module, imported offline on first use, with provider ``local`` registered.

    Raises :class:`~zetl_nb.MissingDependencyError` naming the package when it is missing.
    """
    global _module, _handler
    with _lock:
        if _module is not None:
            return _module
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        try:
            module: Any = importlib.import_module("litellm")
        except ImportError as exc:  # pragma: no cover - litellm is a main dependency
            raise MissingDependencyError(
                "LLM functions need litellm: pip install 'litellm>=1.106,<1.106.3'."
            ) from exc
        module.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
        _module = module
        _handler = _handler_class(module.CustomLLM)()
        providers = [p for p in module.custom_provider_map if p.get("provider") != PROVIDER]
        module.custom_provider_map = [
            *providers,
            {"provider": PROVIDER, "custom_handler": _handler},
        ]
        return module


def handler() -> Any:
    """The registered offline-model handler (its ``calls`` counts requests answered)."""
    litellm()
    return _handler
