"""Budgets and prices: what a model call costs, and whether a pipeline run may still make one.

Pure functions of settings and usage numbers; the journal supplies the numbers (`Journal.run_usage`) and
`nodes.llm` asks `budget_problem` before every new model call. A budget counts the calls a run actually
made (rows of the journal), so an answer re-used from the journal on resume is free and never counted twice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

PER_MILLION = 1_000_000
# USD per 1M input / output tokens (standard tier) as published on https://openai.com/api/pricing in 2025.
# Prices change: the `model_prices` setting overrides or extends this table.
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "openai:gpt-4o": (2.50, 10.00),
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4.1": (2.00, 8.00),
    "openai:gpt-4.1-mini": (0.40, 1.60),
    "openai:gpt-4.1-nano": (0.10, 0.40),
    "openai:o3-mini": (1.10, 4.40),
    "openai:o4-mini": (1.10, 4.40),
    "openai:gpt-4-turbo": (10.00, 30.00),
    "openai:gpt-3.5-turbo": (0.50, 1.50),
}
# Models that run on this machine (or answer from a script) cost nothing per token.
FREE_PROVIDERS = ("local", "hf", "scripted")
# The Enhancer works between pipeline runs, so no run's budget covers (or blocks) its calls.
UNBUDGETED_ROLES = ("enhancer",)
DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
PRICES_EXAMPLE = "openai:gpt-4o-mini=0.15/0.60,openai:gpt-4o=2.5/10"

Prices = dict[str, tuple[float, float]]


class BudgetExhausted(Exception):
    """A run's budget is spent: no new model call. Not an AnswerError: the answer was never asked for, and
    a node says so ("skipped: budget spent") instead of recording a failed step. Callers of `ask` catch
    both (NO_ANSWER in nodes/llm.py) where either way they keep what they have and skip the step."""


class BudgetSettings(Protocol):
    max_model_calls: int
    max_total_tokens: int
    max_cost_usd: float
    run_time_budget_s: int


@dataclass(frozen=True)
class RunUsage:
    """What one pipeline run has spent on model calls so far."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


def parse_prices(text: str) -> Prices:
    """`'openai:gpt-4o-mini=0.15/0.60,openai:gpt-4o=2.5/10'` -> {spec: (USD per 1M input, per 1M output)}.

    Raises ValueError naming the bad entry and showing the expected form.
    """
    prices: Prices = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        spec, sep, pair = entry.rpartition("=")
        price_in, slash, price_out = pair.partition("/")
        try:
            numbers = (float(price_in), float(price_out)) if slash else None
        except ValueError:
            numbers = None
        if not sep or not spec.strip() or numbers is None:
            raise ValueError(f"price entry {entry!r} is not of the form SPEC=INPUT/OUTPUT (USD per 1M tokens); "
                             f"write e.g. {PRICES_EXAMPLE!r}")
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise ValueError(f"price entry {entry!r} needs two finite, non-negative prices in USD per 1M tokens; "
                             f"write e.g. {PRICES_EXAMPLE!r}")
        prices[spec.strip()] = numbers
    return prices


def price_of(spec: str, custom: Prices | None = None) -> tuple[float, float] | None:
    """USD per 1M input/output tokens for a model spec; None when no price is known.

    The user's prices win over everything (a rented GPU may cost money too), then local, hf and scripted
    models are free, then the built-in table applies. A spec with its own server (`openai:MODEL@URL`) never
    gets a built-in OpenAI price: that server's prices are its own, so only `model_prices` can name them.
    A dated model name (`gpt-4o-mini-2024-07-18`) gets the price of its undated name.
    """
    custom = custom or {}
    base = spec.partition("@")[0]
    for key in (spec, base):
        if key in custom:
            return custom[key]
    if spec.partition(":")[0] in FREE_PROVIDERS:
        return (0.0, 0.0)
    if "@" in spec:
        return None
    return BUILTIN_PRICES.get(base) or BUILTIN_PRICES.get(DATE_SUFFIX.sub("", base))


def call_cost(spec: str, tokens_in: int, tokens_out: int, custom: Prices | None = None) -> float | None:
    """The USD cost of one call, or None when the model's price is unknown."""
    price = price_of(spec, custom)
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / PER_MILLION


def has_budget(settings: BudgetSettings) -> bool:
    return bool(settings.max_model_calls or settings.max_total_tokens or settings.max_cost_usd
                or settings.run_time_budget_s)


def budget_problem(settings: BudgetSettings, usage: RunUsage, started_at: float | None,
                   now: float) -> str | None:
    """Why the run may make no further model call (the first budget reached), or None while all allow it.

    A limit of 0 means no limit. `started_at` is the run's start (None: the time budget cannot apply yet).
    """
    if settings.max_model_calls and usage.calls >= settings.max_model_calls:
        return f"budget: {usage.calls} model calls reached (max_model_calls={settings.max_model_calls})"
    if settings.max_total_tokens and usage.tokens >= settings.max_total_tokens:
        return f"budget: {usage.tokens} tokens used (max_total_tokens={settings.max_total_tokens})"
    if settings.max_cost_usd and usage.cost_usd >= settings.max_cost_usd:
        return f"budget: ${usage.cost_usd:.4f} spent on models (max_cost_usd={settings.max_cost_usd:g})"
    if settings.run_time_budget_s and started_at is not None and now - started_at >= settings.run_time_budget_s:
        return (f"budget: {now - started_at:.0f} s since the run started "
                f"(run_time_budget_s={settings.run_time_budget_s})")
    return None


def unpriced_models(specs: list[str], custom: Prices) -> list[str]:
    """The specs whose calls would cost an unknown amount (a money budget could not see them)."""
    return sorted({spec for spec in specs if price_of(spec, custom) is None})
