"""A local OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, scripted answers and failures.

It answers ``POST /v1/chat/completions`` with the scripted model's answers (real, working code), reports
token usage like OpenAI does, and can be told to refuse: ``fail_next`` is a list of HTTP statuses for the
next requests (429, 503, ...); ``quota`` makes every request after that many answers a 429 until
``quota`` is raised again (a provider's daily quota).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from langchain_core.messages import convert_to_messages

from bench.loopback import LoopbackServer
from tests import scripted_model


def count_tokens(text: str) -> int:
    """The server's own (word-level) token count: what it reports in ``usage``."""
    return len(text.split())


class FakeOpenAIServer(LoopbackServer):
    def __init__(self, respond=scripted_model.respond):
        self.respond = respond
        self.fail_next: list[int] = []
        self.quota: int | None = None
        self.requests = 0  # every request received, refused ones included
        self.answers = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.bodies: list[dict] = []
        self.authorizations: list[str | None] = []  # the Authorization header of every request
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def spec(self, model: str = "fake-coder") -> str:
        return f"openai:{model}@{self.base_url}"

    def _decide(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, {"error": {"message": f"scripted failure {status}", "type": "server_error"}}
            if self.quota is not None and self.answers >= self.quota:
                return 429, {"error": {"message": "daily request quota exceeded", "type": "insufficient_quota",
                                       "code": "insufficient_quota"}}
            self.answers += 1
        messages = convert_to_messages(body["messages"])
        text = self.respond(messages)
        prompt_tokens = sum(count_tokens(m.content) for m in messages)
        completion_tokens = count_tokens(text)
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
        return 200, {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.authorizations.append(self.headers.get("Authorization"))
                status, payload = server._decide(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status != 200:
                    self.send_header("retry-after-ms", "5")  # keep the client's backoff short in tests
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
