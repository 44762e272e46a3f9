"""The `langgraph dev` server's own HTTP layer (langgraph.json `http.app`).

The server hands a run only the context keys its schema knows and drops the rest without a word, so a
typo (`num_lanez`) would run with the default. Requests that start a run are checked here first, as the
CLI checks its flags: an unknown, mistyped or out-of-bounds setting is a 422 naming it and the fix. (The
graphs' first nodes check the context again, for callers that bypass the server.)
"""

from __future__ import annotations

import json
import re

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from graph.context import ConfigError, build_context

RUN_START = re.compile(r"^(/threads/[^/]+)?/runs(/wait|/stream)?$")


def context_problem(context) -> str | None:
    """What is wrong with a run request's `context` (None: nothing)."""
    if context is None:
        return None
    if not isinstance(context, dict):
        return f'context must be an object of settings, e.g. {{"num_lanes": 1}}; got {type(context).__name__}.'
    try:
        build_context({}, context)
    except ConfigError as exc:
        return str(exc)
    return None


class CheckRunSettings(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        if request.method == "POST" and RUN_START.match(request.url.path):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                body = None  # the server answers malformed JSON itself
            problem = context_problem(body.get("context")) if isinstance(body, dict) else None
            if problem:
                return JSONResponse({"detail": problem}, status_code=422)
        return await call_next(request)


app = Starlette(middleware=[Middleware(CheckRunSettings)])
