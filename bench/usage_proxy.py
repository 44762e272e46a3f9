"""A counting pass-through for an OpenAI-compatible endpoint, so every system's model use is measured alike.

Competitors such as AIDE talk to the model over HTTP and keep no usage log we could read. The harness puts
this proxy on 127.0.0.1 between them and the real endpoint: requests go through unchanged and the proxy adds
up calls and the ``usage`` token counts of every successful answer.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from bench.loopback import LoopbackServer

FORWARDED_HEADERS = ("Content-Type", "Authorization", "Accept")


@dataclass
class Usage:
    calls: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


def capped(data: bytes | None, max_tokens: int) -> bytes | None:
    """The request body with ``max_tokens`` set, unless it sets an answer length already (or is not JSON)."""
    try:
        body = json.loads(data)
    except (TypeError, ValueError):
        return data
    if not isinstance(body, dict) or body.get("max_tokens") or body.get("max_completion_tokens"):
        return data
    return json.dumps({**body, "max_tokens": max_tokens}).encode()


class UsageProxy(LoopbackServer):
    """Forwards ``/v1/...`` to ``upstream`` (a base URL ending in /v1) and counts what passes.

    With ``api_key`` the proxy authenticates to the upstream itself, so the client never holds the key.
    With ``max_tokens`` a chat request that sets no answer length gets that cap, the one MLE-STAR uses:
    without it a small local model may ramble until its context is full (llama.cpp has no default cap).
    """

    def __init__(self, upstream: str, api_key: str | None = None, timeout_s: float = 900.0,
                 max_tokens: int | None = None):
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.usage = Usage()
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def take(self) -> Usage:
        """The usage counted since the last call (one attempt's share), resetting the counters."""
        with self._lock:
            usage, self.usage = self.usage, Usage()
        return usage

    def _count(self, status: int, body: bytes) -> None:
        with self._lock:
            if status != 200:
                self.usage.failed += 1
                return
            self.usage.calls += 1
            try:
                usage = json.loads(body).get("usage") or {}
            except (ValueError, AttributeError):
                return
            self.usage.tokens_in += int(usage.get("prompt_tokens") or 0)
            self.usage.tokens_out += int(usage.get("completion_tokens") or 0)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                path = self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                if method == "POST" and path.endswith("/chat/completions") and proxy.max_tokens:
                    data = capped(data, proxy.max_tokens)
                headers = {h: self.headers[h] for h in FORWARDED_HEADERS if self.headers.get(h)}
                if proxy.api_key:
                    headers["Authorization"] = f"Bearer {proxy.api_key}"
                request = urllib.request.Request(proxy.upstream + path, data=data, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(request, timeout=proxy.timeout_s) as answer:
                        status, body, kind = answer.status, answer.read(), answer.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, body, kind = exc.code, exc.read(), exc.headers.get("Content-Type")
                except OSError as exc:  # upstream down or too slow: the client sees a 502, as from a gateway
                    status, kind = 502, "application/json"
                    body = json.dumps({"error": {"message": f"upstream unreachable: {exc}"}}).encode()
                if method == "POST" and path.endswith("/chat/completions"):
                    proxy._count(status, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind or "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a system killed at its deadline): counted, nobody to answer

            def do_POST(self):  # noqa: N802 (http.server's naming)
                self._forward("POST")

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def log_message(self, *args):
                pass

        return Handler
