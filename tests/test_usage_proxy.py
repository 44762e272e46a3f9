"""The counting proxy between a competitor and the model endpoint: pass-through, counts, key handling."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from bench.systems import Endpoint, ServedModel, answer_cap, endpoint_for
from bench.usage_proxy import UsageProxy, capped
from graph.context import Context
from tests.fake_openai_server import FakeOpenAIServer


def chat(base_url: str, text: str, key: str = "client-key") -> dict:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.fixture
def server():
    with FakeOpenAIServer(respond=lambda messages: "four words of answer") as fake:
        yield fake


def test_answers_pass_through_and_usage_is_counted_per_attempt(server):
    proxy = UsageProxy(server.base_url).start()
    try:
        answer = chat(proxy.base_url, "one two three")
        chat(proxy.base_url, "five")
        assert answer["choices"][0]["message"]["content"] == "four words of answer"
        first = proxy.take()
        assert (first.calls, first.tokens_in, first.tokens_out) == (2, server.prompt_tokens, server.completion_tokens)
        assert (first.tokens_in, first.tokens_out) == (4, 8)
        chat(proxy.base_url, "again")
        assert proxy.take().calls == 1  # take() starts the next attempt's count from zero
        assert server.authorizations == ["Bearer client-key"] * 3  # without a key of its own it forwards the client's
    finally:
        proxy.stop()


def test_refusals_pass_through_uncounted_and_a_dead_upstream_is_a_502(server):
    proxy = UsageProxy(server.base_url).start()
    try:
        server.fail_next = [429]
        with pytest.raises(urllib.error.HTTPError) as refused:
            chat(proxy.base_url, "hello")
        assert refused.value.code == 429
        usage = proxy.take()
        assert (usage.calls, usage.failed, usage.tokens_in) == (0, 1, 0)
    finally:
        proxy.stop()
    dead = UsageProxy("http://127.0.0.1:9/v1").start()  # nothing listens on port 9
    try:
        with pytest.raises(urllib.error.HTTPError) as unreachable:
            chat(dead.base_url, "hello")
        assert unreachable.value.code == 502 and b"upstream unreachable" in unreachable.value.read()
    finally:
        dead.stop()


def test_the_proxy_holds_the_real_key_so_the_competitor_never_does(server):
    proxy = UsageProxy(server.base_url, api_key="sk-real-secret").start()
    try:
        chat(proxy.base_url, "hello", key="sk-dummy")
        assert server.authorizations == ["Bearer sk-real-secret"]
    finally:
        proxy.stop()


def test_requests_without_an_answer_length_get_mlestars_cap(server):
    proxy = UsageProxy(server.base_url, max_tokens=77).start()
    try:
        chat(proxy.base_url, "hello")
        assert server.bodies[-1]["max_tokens"] == 77
    finally:
        proxy.stop()
    assert capped(b'{"max_tokens": 5}', 77) == b'{"max_tokens": 5}'  # the client's own cap stands
    assert capped(b'{"max_completion_tokens": 5}', 77) == b'{"max_completion_tokens": 5}'
    assert capped(b"not json", 77) == b"not json"
    assert answer_cap([]) == Context().max_tokens and answer_cap(["max_tokens=300", "num_lanes=1"]) == 300


def test_endpoints_of_model_specs(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert endpoint_for("openai:qwen@http://127.0.0.1:8000/v1") == Endpoint("http://127.0.0.1:8000/v1", "qwen", "sk-test")
    assert endpoint_for("openai:gpt-4o-mini") == Endpoint("https://api.openai.com/v1", "gpt-4o-mini", "sk-test")
    with pytest.raises(ValueError, match="no HTTP endpoint that AIDE could use"):
        endpoint_for("scripted:tests.scripted_model:respond")


def test_a_served_model_lives_exactly_as_long_as_one_attempt():
    """The endpoint process is killed after the attempt: nothing a killed competitor asked for runs on."""
    serve = ("import json, time; print(json.dumps({'base_url': 'http://127.0.0.1:1/v1', 'model': 'm', "
             "'api_key': None}), flush=True); time.sleep(600)")
    served = ServedModel([sys.executable, "-c", serve])
    endpoint = served.start()
    assert endpoint == Endpoint("http://127.0.0.1:1/v1", "m", None)
    process = psutil.Process(served.proc.pid)
    served.stop()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    with pytest.raises(RuntimeError, match="did not start"):
        ServedModel([sys.executable, "-c", "pass"], startup_s=20).start()


def test_a_client_that_gave_up_is_counted_without_a_traceback(capfd):
    """A system killed at its deadline drops the connection mid-answer: the answer is still counted."""
    release = threading.Event()

    def slow(messages):
        release.wait(10)
        return "late answer"

    with FakeOpenAIServer(respond=slow) as upstream:
        proxy = UsageProxy(upstream.base_url).start()
        try:
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
            port = int(proxy.base_url.rsplit(":", 1)[1].split("/")[0])
            with socket.create_connection(("127.0.0.1", port)) as client:  # send, then hang up unanswered
                client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            release.set()
            deadline = time.monotonic() + 10
            while upstream.answers == 0 or proxy.usage.calls == 0:
                assert time.monotonic() < deadline, "the answer never came back through the proxy"
                time.sleep(0.05)
            time.sleep(0.2)  # the proxy's write to the closed connection
        finally:
            proxy.stop()
    assert proxy.take().calls == 1
    assert "Traceback" not in capfd.readouterr().err
