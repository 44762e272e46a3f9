"""One factory for every chat model the graph uses.

A model is named by a spec string:

* ``local``                     - the embedded Qwen2.5-Coder-1.5B served in-process (default)
* ``local:/path/to/model.gguf`` - any other GGUF file, served the same way
* ``openai:gpt-4o-mini``        - an OpenAI(-compatible) API; ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``
* ``scripted:pkg.module:func``  - a deterministic Python responder, for tests and dry runs
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, Callable

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

ROLES = ("coder", "planner", "reviewer", "enhancer")
PROVIDERS = ("local", "openai", "scripted")
DEFAULT_SPEC = "local"
_SPEC_EXAMPLES = "'local', 'local:/models/x.gguf', 'openai:gpt-4o-mini', 'scripted:my_pkg.answers:respond'"

Responder = Callable[[list[BaseMessage]], str]
_OPENAI_KEY_MISSING = ("model spec 'openai:{model}' needs the OPENAI_API_KEY environment variable "
                       "(and OPENAI_BASE_URL for an OpenAI-compatible server); or use the embedded model: 'local'")


# --------------------------------------------------------------------------- specs


def parse_model_spec(spec: str) -> tuple[str, str]:
    """Split ``provider[:model]`` into ``(provider, model)``; ``model`` is ``""`` for plain ``local``.

    Only the first colon separates, so paths and ``module:function`` references stay intact.
    """
    text = (spec or "").strip()
    provider, _, model = text.partition(":")
    provider, model = provider.strip().lower(), model.strip()
    if provider not in PROVIDERS:
        raise ValueError(
            f"unknown model provider {provider!r} in spec {spec!r}; known providers: "
            f"{', '.join(PROVIDERS)} (e.g. {_SPEC_EXAMPLES})"
        )
    if provider == "openai" and not model:
        raise ValueError(f"spec {spec!r} names no model; write e.g. 'openai:gpt-4o-mini'")
    if provider == "scripted" and not _is_callable_ref(model):
        raise ValueError(
            f"spec {spec!r} must name a responder as 'scripted:package.module:function', "
            f"e.g. 'scripted:tests.scripted_answers_example:respond'"
        )
    return provider, model


def _is_callable_ref(ref: str) -> bool:
    module, sep, func = ref.partition(":")
    return bool(sep and module and func.isidentifier())


def check_model_spec(spec: str) -> None:
    """What ``make_chat_model(spec)`` would fail on, checked without loading a model: the responder
    imports, the GGUF file exists, the OpenAI key is set. Raises ValueError naming the fix."""
    provider, model = parse_model_spec(spec)
    if provider == "scripted":
        _import_responder(model)
    elif provider == "local" and model and not os.path.isfile(os.path.expanduser(model)):
        raise ValueError(f"GGUF model file {model} does not exist; give the path of a .gguf file, or 'local' "
                         f"for the embedded model")
    elif provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
        raise ValueError(_OPENAI_KEY_MISSING.format(model=model))


def is_local_compute(spec: str) -> bool:
    """True when inference for ``spec`` runs on this machine's CPU (compete with training runs)."""
    return parse_model_spec(spec)[0] == "local"


def _import_responder(ref: str) -> Responder:
    module_name, _, func_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import responder module {module_name!r}: {exc}") from exc
    responder = getattr(module, func_name, None)
    if not callable(responder):
        raise ValueError(f"{module_name!r} has no callable {func_name!r}")
    return responder


# --------------------------------------------------------------------------- scripted model


def _approx_tokens(text: str) -> int:
    """~4 characters per token; never 0 so usage sums stay meaningful."""
    return max(1, len(text) // 4)


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answers come from a plain Python function of the messages.

    Deterministic and offline: used by tests and dry runs of the graph. Usage metadata is
    approximated from text length so token accounting code paths run too.
    """

    responder: Responder

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.responder(list(messages))
        if not isinstance(text, str):
            raise TypeError(f"scripted responder returned {type(text).__name__}, expected str")
        input_tokens = _approx_tokens("".join(m.text for m in messages))
        output_tokens = _approx_tokens(text)
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
            response_metadata={"model_name": "scripted", "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# --------------------------------------------------------------------------- factory


def make_chat_model(
    spec: str = DEFAULT_SPEC,
    *,
    temperature: float = 0.2,
    max_tokens: int = 2048,
    timeout_s: float = 600,
) -> BaseChatModel:
    """Build the chat model named by ``spec`` (see module docstring).

    ``local`` starts (once per process) the in-process llama.cpp server, which takes a few
    seconds and ~1 GB of RAM; the first call also joins and verifies the model file.
    """
    provider, model = parse_model_spec(spec)
    if provider == "local":
        return _make_local(model, temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s)
    if provider == "openai":
        return _make_openai(model, temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s)
    return ScriptedChatModel(responder=_import_responder(model))


@functools.cache
def _local_chat_class() -> type[BaseChatModel]:
    """ChatOpenAI whose sync calls hold ``exclusive_compute`` (inference uses all our cores)."""
    from langchain_openai import ChatOpenAI

    from runtime.compute import exclusive_compute

    class LocalChatOpenAI(ChatOpenAI):
        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            with exclusive_compute():
                return super()._generate(*args, **kwargs)

        def _stream(self, *args: Any, **kwargs: Any):
            with exclusive_compute():
                yield from super()._stream(*args, **kwargs)

    return LocalChatOpenAI


def _make_local(path: str, *, temperature: float, max_tokens: int, timeout_s: float) -> BaseChatModel:
    import httpx

    from runtime import local_model

    server = local_model.get_local_server(path or None)
    return _local_chat_class()(
        model=server.model_name,
        base_url=server.base_url,
        api_key="not-needed",
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout_s,
        max_retries=1,  # a local failure (e.g. context overflow) will not heal by retrying
        # 127.0.0.1 must never be sent through an HTTP(S)_PROXY from the environment
        http_client=httpx.Client(trust_env=False),
        http_async_client=httpx.AsyncClient(trust_env=False),
    )


def _make_openai(model: str, *, temperature: float, max_tokens: int, timeout_s: float) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise ValueError(_OPENAI_KEY_MISSING.format(model=model))
    return ChatOpenAI(
        model=model,
        base_url=os.environ.get("OPENAI_BASE_URL") or None,
        api_key=api_key,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout_s,
    )


def json_mode(model: BaseChatModel, spec: str) -> Runnable[LanguageModelInput, BaseMessage]:
    """``model`` constrained to answer with one JSON object, where the provider supports it.

    llama.cpp and OpenAI both honour ``response_format={"type": "json_object"}``; a scripted
    model is returned unchanged (its responder decides what to say). Parse the answer with
    ``runtime.parsing.extract_json`` either way.
    """
    if parse_model_spec(spec)[0] == "scripted":
        return model
    return model.bind(response_format={"type": "json_object"})
