"""Request limits per model provider, and the errors that pause a run instead of failing it.

A limit is written ``KEY=RPM/RPD``: KEY is a provider (``openai``) or a whole model spec
(``openai:meta-llama/llama-3.3-70b-instruct:free``), RPM the requests per minute, RPD the requests
per rolling 24 hours; 0 means no limit. Several limits are separated by commas:
``openai=20/50,openai:gpt-4o=500/0``. The spec's own entry wins over its provider's.

* Per minute: callers wait (LangChain's thread-safe token bucket, one per KEY, shared by every role
  and lane of the process), so a burst of parallel lanes never trips the provider's limit.
* Per day: the journal already holds every request's time, so the count survives restarts. When the
  day's quota is spent the call raises ``QuotaExhausted``: the run pauses at its last checkpoint and
  ``mlestar resume`` continues it once requests are allowed again.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from langchain_core.rate_limiters import InMemoryRateLimiter

DAY_S = 86_400
_ENTRY = re.compile(r"^(?P<key>[^=]+)=(?P<rpm>\d+)/(?P<rpd>\d+)$")
_EXAMPLE = "openai=20/50 (20 requests per minute, 50 per day; 0 = no limit)"


class ModelUnavailable(RuntimeError):
    """The model cannot answer now (provider down, quota spent); the run stays resumable."""


class QuotaExhausted(ModelUnavailable):
    """A request quota is spent; resuming later continues the run."""


@dataclass(frozen=True)
class RequestLimit:
    key: str
    per_minute: int = 0
    per_day: int = 0


def parse_rate_limits(text: str) -> dict[str, RequestLimit]:
    """``"openai=20/50, openai:gpt-4o=500/0"`` -> limits by key; ValueError naming the bad entry and the fix."""
    limits: dict[str, RequestLimit] = {}
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        match = _ENTRY.match(entry.replace(" ", ""))
        if not match:
            raise ValueError(f"rate limit {entry!r} is not of the form KEY=RPM/RPD; example: {_EXAMPLE}")
        key = match["key"]
        if key in limits:
            raise ValueError(f"rate limit for {key!r} is given twice; keep one entry per provider or model spec")
        limits[key] = RequestLimit(key, int(match["rpm"]), int(match["rpd"]))
    return limits


def limit_for(spec: str, limits: dict[str, RequestLimit]) -> RequestLimit | None:
    """The limit that applies to ``spec``: its own entry, else its provider's."""
    return limits.get(spec) or limits.get(spec.partition(":")[0])


def spec_pattern(limit: RequestLimit) -> str:
    """SQL LIKE pattern of the model specs a limit covers (a provider covers all of its specs)."""
    return limit.key if ":" in limit.key else f"{limit.key}:%"


@functools.cache
def _minute_bucket(key: str, per_minute: int) -> InMemoryRateLimiter:
    # max_bucket_size=1: requests are spaced evenly, never sent in a burst that the provider would refuse
    return InMemoryRateLimiter(requests_per_second=per_minute / 60, check_every_n_seconds=0.05,
                               max_bucket_size=1)


_day_lock = threading.Lock()
_in_flight: dict[str, int] = defaultdict(int)


@contextmanager
def request_slot(spec: str, limits: dict[str, RequestLimit], calls_since) -> Iterator[None]:
    """Hold one request slot of ``spec`` for the block: waits for the per-minute limit; raises
    QuotaExhausted when the daily quota is spent. Record the request before leaving the block.

    ``calls_since(pattern, since)`` -> (count, oldest time) of recorded requests whose model matches
    the LIKE ``pattern`` (``Journal.request_count``). Requests in flight in this process count too, so
    parallel lanes cannot overrun the quota between them.
    """
    limit = limit_for(spec, limits)
    if limit is None:
        yield
        return
    if limit.per_day:
        with _day_lock:
            count, oldest = calls_since(spec_pattern(limit), time.time() - DAY_S)
            count += _in_flight[limit.key]
            if count >= limit.per_day:
                free_at = time.strftime("%Y-%m-%d %H:%M", time.localtime((oldest or time.time()) + DAY_S))
                raise QuotaExhausted(
                    f"the daily quota of {limit.per_day} requests for {limit.key} is spent ({count} requests in "
                    f"the last 24 hours); the next request is allowed at {free_at}. Resume then, or raise the "
                    f"limit (--set rate_limits=...) if your plan allows more")
            _in_flight[limit.key] += 1
    try:
        if limit.per_minute:
            _minute_bucket(limit.key, limit.per_minute).acquire(blocking=True)
        yield
    finally:
        if limit.per_day:
            with _day_lock:
                _in_flight[limit.key] -= 1
