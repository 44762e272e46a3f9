"""One factory for every chat model the graph uses.

A model is named by a spec string:

* ``local``                     - the embedded Qwen2.5-Coder-1.5B served in-process (default)
* ``local:/path/to/model.gguf`` - any other GGUF file, served the same way
* ``openai:gpt-4o-mini``        - an OpenAI(-compatible) API; ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``
* ``openai:MODEL@http://127.0.0.1:8000/v1`` - one OpenAI-compatible server (vLLM, Ollama, LM Studio,
  llama.cpp, OpenRouter) for this spec only, so roles can use different servers; a key is optional
* ``hf:Qwen/Qwen2.5-Coder-7B-Instruct`` or ``hf:/path/to/folder`` - a Hugging Face causal LM run in-process by
  transformers (4-bit NF4 on a CUDA GPU by default; full precision on CPU). Its weights are loaded once per
  process and shared by every role that names it (``runtime.model_pool``).
* ``scripted:pkg.module:func``  - a deterministic Python responder, for tests and dry runs
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable, Literal, get_args

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

from runtime.rate_limit import ModelUnavailable, QuotaExhausted

if TYPE_CHECKING:
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from langchain_openai import ChatOpenAI
    from transformers import BitsAndBytesConfig

    from runtime.model_pool import ModelPool

log = logging.getLogger(__name__)

ROLES = ("coder", "planner", "reviewer", "enhancer")
PROVIDERS = ("local", "openai", "hf", "scripted")
DEFAULT_SPEC = "local"
HfQuantization = Literal["4bit", "8bit", "none"]
StructuredOutput = Literal["schema", "json", "off"]
HF_QUANTIZATIONS = get_args(HfQuantization)
STRUCTURED_OUTPUT_MODES = get_args(StructuredOutput)
_SPEC_EXAMPLES = ("'local', 'local:/models/x.gguf', 'openai:gpt-4o-mini', 'hf:Qwen/Qwen2.5-Coder-7B-Instruct', "
                  "'scripted:my_pkg.answers:respond'")
# A Hub repository id: "name" or "owner/name" (letters, digits, '-', '_', '.').
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")

Responder = Callable[[list[BaseMessage]], str]
_OPENAI_KEY_MISSING = ("model spec 'openai:{model}' needs the OPENAI_API_KEY environment variable "
                       "(or a server of your own: 'openai:MODEL@http://host:port/v1' or OPENAI_BASE_URL); "
                       "or use the embedded model: 'local'")


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
    if provider == "openai" and not model.partition("@")[0]:
        raise ValueError(f"spec {spec!r} names no model; write e.g. 'openai:gpt-4o-mini'")
    if provider == "openai" and "@" in model and not model.partition("@")[2].startswith(("http://", "https://")):
        raise ValueError(f"spec {spec!r}: the server after '@' must be a URL, e.g. "
                         f"'openai:{model.partition('@')[0]}@http://127.0.0.1:8000/v1'")
    if provider == "hf" and not model:
        raise ValueError(f"spec {spec!r} names no model; write e.g. 'hf:Qwen/Qwen2.5-Coder-7B-Instruct' or "
                         f"'hf:/path/to/model/folder'")
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
    elif provider == "openai":
        openai_endpoint(model)
    elif provider == "hf":
        _check_hf_reference(model)


def _is_local_folder_ref(ref: str) -> bool:
    """A reference written as a path (absolute, relative or ``~``), or naming an existing folder."""
    return ref.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(ref))


def _check_hf_reference(ref: str) -> None:
    if _is_local_folder_ref(ref):
        folder = os.path.expanduser(ref)
        if not os.path.isdir(folder):
            raise ValueError(f"Hugging Face model folder {ref} does not exist; give a folder written by "
                             f"save_pretrained (config.json, weights, tokenizer) or a Hub id such as "
                             f"'hf:Qwen/Qwen2.5-Coder-7B-Instruct'")
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise ValueError(f"Hugging Face model folder {ref} has no config.json; point the spec at the folder "
                             f"that save_pretrained wrote")
    elif not _HUB_ID.match(ref):
        raise ValueError(f"{ref!r} is neither an existing folder nor a Hugging Face Hub id; write "
                         f"'hf:owner/name' (e.g. 'hf:Qwen/Qwen2.5-Coder-7B-Instruct') or 'hf:/path/to/folder'")


def is_local_compute(spec: str) -> bool:
    """True when inference for ``spec`` runs on this machine (competes with training runs)."""
    return parse_model_spec(spec)[0] in ("local", "hf")


def _import_responder(ref: str) -> Responder:
    module_name, _, func_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        # as `python -m` would: the current folder is where a user's own responder module usually is
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import responder module {module_name!r} ({exc}), neither from the "
                             f"installed packages nor from the current folder {os.getcwd()}; run from the "
                             f"folder that holds it or add that folder to PYTHONPATH") from exc
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


# --------------------------------------------------------------------------- Hugging Face models


def quantization_config(mode: str, cuda_available: bool) -> BitsAndBytesConfig | None:
    """The bitsandbytes configuration to load an ``hf`` model with; None for full precision.

    Quantisation is requested only with CUDA: bitsandbytes' 4/8-bit kernels need a GPU, and on CPU
    transformers would refuse or silently fall back.
    """
    if mode not in HF_QUANTIZATIONS:
        raise ValueError(f"unknown hf quantization {mode!r}; use one of {', '.join(HF_QUANTIZATIONS)}")
    if not cuda_available or mode == "none":
        return None
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    import torch

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)


def effective_quantization(mode: str, cuda_available: bool) -> str:
    """What ``mode`` amounts to on this machine: always ``none`` without CUDA."""
    return mode if quantization_config(mode, cuda_available) is not None else "none"


def load_hf_pipeline(ref: str, quantization: str = "4bit") -> HuggingFacePipeline:
    """Load a causal LM and its tokenizer (the slow, memory-heavy part) as a LangChain pipeline LLM.

    A folder is read with ``local_files_only`` so that a typo never turns into a Hub download.
    """
    import torch
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    cuda = torch.cuda.is_available()
    local = _is_local_folder_ref(ref)
    source = os.path.expanduser(ref) if local else ref
    quantization_settings = quantization_config(quantization, cuda)
    if not cuda:
        log.warning("hf model %s runs on the CPU in full precision (no CUDA GPU found; hf_quantization=%s applies "
                    "only on a GPU): expect slow answers and about 4 bytes of RAM per parameter", ref, quantization)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    model = AutoModelForCausalLM.from_pretrained(
        source, local_files_only=local, quantization_config=quantization_settings,
        dtype=torch.bfloat16 if cuda else torch.float32, device_map="auto" if cuda else None)
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer, return_full_text=False)
    return HuggingFacePipeline(pipeline=generator, model_id=ref)


def generation_kwargs(temperature: float, max_tokens: int | None) -> dict[str, Any]:
    """transformers ``generate`` settings: greedy at temperature 0 (sampling needs a positive one)."""
    if temperature > 0:
        return {"max_new_tokens": max_tokens, "do_sample": True, "temperature": temperature}
    return {"max_new_tokens": max_tokens, "do_sample": False}


@functools.cache
def _hf_chat_class() -> type[ChatHuggingFace]:
    """ChatHuggingFace that applies its temperature/max_tokens to the local pipeline and reports usage.

    Over a pipeline, ChatHuggingFace ignores its own generation fields (they reach only endpoints) and
    returns no token counts; the journal's accounting needs both.
    """
    from langchain_huggingface import ChatHuggingFace

    class LocalChatHuggingFace(ChatHuggingFace):
        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                      run_manager: CallbackManagerForLLMRun | None = None, stream: bool | None = None,
                      **kwargs: Any) -> ChatResult:
            kwargs.setdefault("pipeline_kwargs", generation_kwargs(self.temperature or 0.0, self.max_tokens))
            result = super()._generate(messages, stop=stop, run_manager=run_manager, stream=stream, **kwargs)
            input_tokens = self._count_tokens(self._to_chat_prompt(messages))
            for generation in result.generations:
                message = generation.message
                if not isinstance(message, AIMessage):  # ChatHuggingFace answers with AIMessages only
                    continue
                output_tokens = self._count_tokens(message.text)
                message.usage_metadata = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                                          "total_tokens": input_tokens + output_tokens}
            return result

        def _count_tokens(self, text: str) -> int:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    return LocalChatHuggingFace


def _make_hf(spec: str, ref: str, *, temperature: float, max_tokens: int, quantization: str,
             pool: ModelPool | None) -> BaseChatModel:
    import torch

    from runtime.model_pool import shared_pool

    loaded_as = effective_quantization(quantization, torch.cuda.is_available())
    llm = (pool or shared_pool()).get(spec, lambda: load_hf_pipeline(ref, quantization), variant=loaded_as)
    return _hf_chat_class()(llm=llm, tokenizer=llm.pipeline.tokenizer, model_id=ref,
                            temperature=temperature, max_tokens=max_tokens)


# --------------------------------------------------------------------------- factory


def make_chat_model(
    spec: str = DEFAULT_SPEC,
    *,
    temperature: float = 0.2,
    max_tokens: int = 2048,
    timeout_s: float = 600,
    retries: int = 6,
    hf_quantization: str = "4bit",
    pool: ModelPool | None = None,
) -> BaseChatModel:
    """Build the chat model named by ``spec`` (see module docstring).

    ``local`` starts (once per process) the in-process llama.cpp server, which takes a few
    seconds and ~1 GB of RAM; the first call also joins and verifies the model file.
    ``hf`` loads the weights on first use into ``pool`` (default: the process-wide pool); later
    calls only wrap the loaded pipeline, so building one per call is cheap.
    """
    provider, model = parse_model_spec(spec)
    if provider == "local":
        return _make_local(model, temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s)
    if provider == "openai":
        return _make_openai(model, temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s,
                            retries=retries)
    if provider == "hf":
        return _make_hf(spec, model, temperature=temperature, max_tokens=max_tokens,
                        quantization=hf_quantization, pool=pool)
    return ScriptedChatModel(responder=_import_responder(model))


@functools.cache
def _local_chat_class() -> type[ChatOpenAI]:
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
    # pydantic's signature of ChatOpenAI names max_tokens by its alias (max_completion_tokens) and api_key by its
    # validated type (SecretStr); the model takes the field name and a plain str, as in its own docs
    return _local_chat_class()(  # type: ignore[call-arg]
        model=server.model_name,
        base_url=server.base_url,
        api_key="not-needed",  # type: ignore[arg-type]
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout_s,
        max_retries=0,  # a local failure (e.g. context overflow) will not heal by retrying
        # 127.0.0.1 must never be sent through an HTTP(S)_PROXY from the environment
        http_client=httpx.Client(trust_env=False),
        http_async_client=httpx.AsyncClient(trust_env=False),
    )


def openai_endpoint(model: str) -> tuple[str, str | None, str]:
    """``MODEL[@BASE_URL]`` -> (model name, base URL or None for OpenAI itself, API key).

    OpenAI itself needs ``OPENAI_API_KEY``; a server of the user's own may need none.
    """
    name, _, given_url = model.partition("@")
    base_url = given_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key and base_url is None:
        raise ValueError(_OPENAI_KEY_MISSING.format(model=model))
    return name, base_url, api_key or "not-needed"


def _make_openai(model: str, *, temperature: float, max_tokens: int, timeout_s: float,
                 retries: int) -> BaseChatModel:
    """Through LangChain's ``init_chat_model``. The OpenAI client retries 429 and 5xx answers, timeouts
    and dropped connections ``retries`` times with exponential backoff, honouring Retry-After."""
    from langchain.chat_models import init_chat_model

    name, base_url, api_key = openai_endpoint(model)
    return init_chat_model(name, model_provider="openai", base_url=base_url, api_key=api_key,
                           temperature=temperature, max_tokens=max_tokens, timeout=timeout_s,
                           max_retries=retries)


def provider_failure(spec: str, exc: Exception) -> ModelUnavailable | None:
    """A hosted model's error that retrying now cannot fix, as the exception that pauses the run.

    Still refused after every retry (429: quota or rate limit), the server down or unreachable, or the
    key refused: the run stops at its last checkpoint, resumable once the cause is gone. Anything else
    (None) is a bug and propagates as it is.
    """
    import openai

    detail = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, openai.RateLimitError):
        return QuotaExhausted(f"{spec} still refuses requests after all retries (HTTP 429: {detail}); its quota or "
                              f"rate limit is spent. Resume later, or lower rate_limits so that requests are spaced")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ModelUnavailable(f"{spec} refused the API key (HTTP {exc.status_code}: {detail}); set a valid "
                                f"OPENAI_API_KEY, then resume")
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(f"{spec} gave no answer within model_timeout_s after all retries ({detail}); if "
                                f"the model is merely slow (a busy CPU), resume with a larger model_timeout_s, "
                                f"else check the server")
    if isinstance(exc, (openai.APIConnectionError, openai.InternalServerError)):
        return ModelUnavailable(f"{spec} is unreachable or failing after all retries ({type(exc).__name__}: "
                                f"{detail}); check the server or OPENAI_BASE_URL, then resume")
    return None


def json_mode(model: BaseChatModel, spec: str, schema: dict | None = None,
              mode: str = "schema") -> Runnable[LanguageModelInput, BaseMessage]:
    """``model`` constrained to answer JSON, where the provider supports it (structured output).

    ``mode`` "schema": decoding follows ``schema`` (``response_format`` type ``json_schema``, which
    llama.cpp turns into a grammar and OpenAI enforces); "json": any one JSON object (``json_object``);
    "off": no constraint. A scripted model and an ``hf`` pipeline (no constrained decoding) are returned
    unchanged. Parse and validate the answer with ``runtime.parsing`` either way: the text parser is the
    fallback, and a schema cannot express every rule.
    """
    if mode not in STRUCTURED_OUTPUT_MODES:
        raise ValueError(f"unknown structured output mode {mode!r}; use one of {', '.join(STRUCTURED_OUTPUT_MODES)}")
    if parse_model_spec(spec)[0] in ("scripted", "hf") or mode == "off":
        return model
    if mode == "schema" and schema is not None:
        return model.bind(response_format={"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": schema}})
    return model.bind(response_format={"type": "json_object"})
