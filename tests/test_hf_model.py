"""The ``hf`` provider through the real transformers + langchain-huggingface path, offline.

The model is a tiny random Qwen2 (2 layers, hidden 64) with a word-level tokenizer, both built and saved
by the test: nothing is downloaded.
"""

from __future__ import annotations

import logging

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from runtime import models
from runtime.model_pool import ModelPool
from runtime.models import (
    check_model_spec,
    is_local_compute,
    json_mode,
    make_chat_model,
    parse_model_spec,
    quantization_config,
)

WORDS = "hello world write a python script that prints the answer ok yes no code model data".split()
SPECIALS = ["<unk>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> {{ message['role'] }} {{ message['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def _save_tiny_qwen2(folder) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|im_end|>"])
    Qwen2ForCausalLM(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    _save_tiny_qwen2(folder)
    return folder


def test_hf_spec_parsing_and_local_compute():
    assert parse_model_spec("hf:Qwen/Qwen2.5-Coder-7B-Instruct") == ("hf", "Qwen/Qwen2.5-Coder-7B-Instruct")
    assert parse_model_spec("hf:/models/qwen") == ("hf", "/models/qwen")
    assert is_local_compute("hf:Qwen/Qwen2.5-Coder-7B-Instruct")
    with pytest.raises(ValueError, match="hf:Qwen/Qwen2.5-Coder-7B-Instruct"):
        parse_model_spec("hf:")


def test_check_model_spec_hf(tiny_model_dir, tmp_path):
    check_model_spec(f"hf:{tiny_model_dir}")
    check_model_spec("hf:Qwen/Qwen2.5-Coder-7B-Instruct")  # a Hub id: only its form can be checked offline
    with pytest.raises(ValueError, match="does not exist.*save_pretrained"):
        check_model_spec(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="no config.json"):
        check_model_spec(f"hf:{tmp_path}")
    with pytest.raises(ValueError, match="neither an existing folder nor a Hugging Face Hub id"):
        check_model_spec("hf:not a/valid/id")


def test_quantization_config_4bit_nf4_on_cuda():
    config = quantization_config("4bit", cuda_available=True)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert config.bnb_4bit_use_double_quant is True


def test_quantization_config_8bit_and_none():
    config = quantization_config("8bit", cuda_available=True)
    assert config.load_in_8bit and not config.load_in_4bit
    assert quantization_config("none", cuda_available=True) is None


@pytest.mark.parametrize("mode", ["4bit", "8bit", "none"])
def test_no_quantization_without_cuda(mode):
    assert quantization_config(mode, cuda_available=False) is None


def test_quantization_config_unknown_mode():
    with pytest.raises(ValueError, match="4bit, 8bit, none"):
        quantization_config("2bit", cuda_available=True)


def test_hf_model_end_to_end_on_cpu(tiny_model_dir, monkeypatch, caplog):
    """No CUDA: full precision, no quantisation requested, one warning; the chat model answers with usage."""
    from transformers import AutoModelForCausalLM

    requested = []
    real_from_pretrained = AutoModelForCausalLM.from_pretrained

    def recording_from_pretrained(*args, **kwargs):
        requested.append(kwargs)
        return real_from_pretrained(*args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recording_from_pretrained)
    pool = ModelPool()
    spec = f"hf:{tiny_model_dir}"
    with caplog.at_level(logging.WARNING, logger="runtime.models"):
        model = make_chat_model(spec, temperature=0.0, max_tokens=6, hf_quantization="4bit", pool=pool)
        answer = model.invoke([SystemMessage("be brief"), HumanMessage("write a python script")])

    assert isinstance(answer, AIMessage) and isinstance(answer.content, str)
    usage = answer.usage_metadata
    assert usage["input_tokens"] > 5 and 0 <= usage["output_tokens"] <= 6
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert len(requested) == 1
    assert requested[0]["quantization_config"] is None
    assert requested[0]["local_files_only"] is True and requested[0]["dtype"] == torch.float32
    warnings = [r for r in caplog.records if "full precision" in r.getMessage()]
    assert len(warnings) == 1 and "no CUDA GPU" in warnings[0].getMessage()

    # a second role naming the same spec shares the loaded weights; json_mode leaves an hf model alone
    again = make_chat_model(spec, temperature=0.7, max_tokens=3, pool=pool)
    assert again.llm is model.llm and len(requested) == 1
    assert json_mode(again, spec) is again
    assert pool.memory_report()[spec]["variant"] == "none" and pool.memory_report()[spec]["bytes"] > 0


def test_hf_requests_4bit_when_cuda_is_present(tiny_model_dir, monkeypatch):
    """With CUDA, the loader asks transformers for the NF4 config and bf16 on device_map=auto."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    seen = {}

    def stop_at_load(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop before touching a GPU")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", stop_at_load)
    with pytest.raises(RuntimeError, match="stop before"):
        models.load_hf_pipeline(str(tiny_model_dir), "4bit")
    config = seen["quantization_config"]
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert seen["dtype"] == torch.bfloat16 and seen["device_map"] == "auto"
