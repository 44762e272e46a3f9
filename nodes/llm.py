"""Asking a model: journal-backed (a resumed node re-uses finished answers) with bounded re-asks."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable

from graph.context import Context
from prompts.common import REASK, SYSTEM
from runtime import keys
from runtime.budget import UNBUDGETED_ROLES, BudgetExhausted, budget_problem, call_cost, has_budget, parse_prices
from runtime.compute import exclusive_compute
from runtime.journal import open_journal, sha256_text
from runtime.models import is_local_compute, json_mode, make_chat_model, parse_model_spec, provider_failure
from runtime.parsing import AnswerError
from runtime.rate_limit import parse_rate_limits, request_slot
from runtime.stop import raise_if_stopped
from runtime.time_plan import expected_call_s, expected_script_s

TIMEOUT_PROVIDERS = ("local", "openai")  # ChatOpenAI: a request takes a timeout
#: What `ask` raises when there is no answer to use: an unusable one, or none asked for (budget spent).
NO_ANSWER = (AnswerError, BudgetExhausted)
request_limits = lru_cache(maxsize=8)(parse_rate_limits)
model_prices = lru_cache(maxsize=8)(parse_prices)


def run_budget_problem(ctx: Context, run_id: str) -> str | None:
    """Why pipeline run `run_id` may make no new model call (a budget is spent), or None."""
    if not has_budget(ctx):
        return None
    journal = open_journal(ctx.journal_path)
    run = journal.get_run(run_id) or {}
    return budget_problem(ctx, journal.run_usage(run_id), run.get("started_at"), time.time())


@lru_cache(maxsize=32)
def chat_model(spec: str, temperature: float, max_tokens: int, timeout_s: float, retries: int,
               hf_quantization: str) -> BaseChatModel:
    return make_chat_model(spec, temperature=temperature, max_tokens=max_tokens, timeout_s=timeout_s,
                           retries=retries, hf_quantization=hf_quantization)


def run_started_at(ctx: Context, run_id: str) -> float | None:
    """When pipeline run `run_id` started (epoch seconds), as the journal recorded it."""
    return (open_journal(ctx.journal_path).get_run(run_id) or {}).get("started_at")


def time_left(ctx: Context, run_id: str) -> float | None:
    """Seconds left of the run's wall-clock budget (None: no time budget)."""
    if not ctx.run_time_budget_s:
        return None
    started = run_started_at(ctx, run_id)
    return None if started is None else ctx.run_time_budget_s - (time.time() - started)


def plan_problem(ctx: Context, run_id: str, role: str, node: str, prompt: str) -> str | None:
    """Why a new answer should not be asked for: it (and, for the coder, the script it writes) is not
    expected to finish in what is left of the run's time budget. None without a budget or measurements."""
    left = time_left(ctx, run_id)
    if left is None:
        return None
    journal = open_journal(ctx.journal_path)
    call_s = expected_call_s(journal.measured_calls(ctx.role_model(role)), node, prompt)
    if call_s is None:
        return None
    script_s = (expected_script_s(journal.script_durations(run_id)) or 0.0) if role == "coder" else 0.0
    if call_s + script_s <= left:
        return None
    what = f"the {role}'s answer" + (" and its script" if script_s else "")
    return f"time plan: {what} would take about {call_s + script_s:.0f} s and {max(left, 0):.0f} s are left"


def _call(model: Runnable, spec: str, messages: list[BaseMessage], seconds_left: Callable[[], float | None],
          timeout_s: float):
    """One request; an OpenAI-compatible one (local or hosted) is cut off when the run's time budget ends
    before its own timeout, so a budget of minutes is not overrun by a long answer (the run then submits what
    it has). A timeout of the request itself stays a model failure (it pauses the run)."""
    left = seconds_left()
    if left is None or left >= timeout_s or parse_model_spec(spec)[0] not in TIMEOUT_PROVIDERS:
        return model.invoke(messages)
    if left <= 1:
        raise BudgetExhausted("budget: the run's wall-clock budget (run_time_budget_s) is spent")
    import openai

    try:
        return model.invoke(messages, timeout=left)
    except openai.APITimeoutError:
        raise BudgetExhausted(f"budget: the run's wall-clock budget (run_time_budget_s) ended during a "
                              f"{spec} answer") from None


def _invoke(model: Runnable, spec: str, messages: list[BaseMessage],
            seconds_left: Callable[[], float | None] = lambda: None,
            timeout_s: float = float("inf")) -> tuple[BaseMessage, float]:
    """The model's reply and its latency. A hosted model that stays unavailable after its retries raises
    ModelUnavailable, which pauses the run (resumable) instead of failing it."""
    try:
        raise_if_stopped("this model call")
        if is_local_compute(spec):
            with exclusive_compute():  # the latency counts inference only, not the wait for the CPU
                raise_if_stopped("this model call")
                started = time.monotonic()
                return _call(model, spec, messages, seconds_left, timeout_s), time.monotonic() - started
        started = time.monotonic()
        return _call(model, spec, messages, seconds_left, timeout_s), time.monotonic() - started
    except BudgetExhausted:
        raise
    except Exception as exc:
        failure = provider_failure(spec, exc)
        if failure is None:
            raise
        raise failure from exc


def unread_text(messages: list[BaseMessage]) -> str:
    """What the model server has to read anew: the messages after the conversation's last answer. The server
    keeps the prompt and answer it handled last in its prompt cache, and a re-ask or a follow-up continues
    exactly that conversation; the first question of a conversation is read whole."""
    answered = [i for i, message in enumerate(messages) if isinstance(message, AIMessage)]
    return transcript(messages[answered[-1] + 1:] if answered else messages)


def transcript(messages: list[BaseMessage]) -> str:
    return "\n\n".join(f"[{m.type}]\n{m.content}" for m in messages)


def _answer(ctx: Context, *, run_id: str, node: str, role: str, call_key: str,
            messages: list[BaseMessage], schema: dict | None) -> str:
    journal = open_journal(ctx.journal_path)
    prompt = transcript(messages)
    cached = journal.find_answer(run_id, call_key, sha256_text(prompt))
    if cached is not None:
        return cached
    problem = None if role in UNBUDGETED_ROLES else (
        run_budget_problem(ctx, run_id) or plan_problem(ctx, run_id, role, node, unread_text(messages)))
    if problem:
        raise BudgetExhausted(f"{role} not asked for {call_key}: {problem}")
    spec = ctx.role_model(role)
    chat = chat_model(spec, ctx.temperature, ctx.max_tokens, ctx.model_timeout_s, ctx.model_retries,
                      ctx.hf_quantization)
    model: Runnable = chat if schema is None else json_mode(chat, spec, schema, ctx.structured_output)
    with request_slot(spec, request_limits(ctx.rate_limits), journal.request_count):
        deadline = (lambda: None) if role in UNBUDGETED_ROLES else (lambda: time_left(ctx, run_id))
        reply, latency = _invoke(model, spec, messages, deadline, ctx.model_timeout_s)
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        usage = getattr(reply, "usage_metadata", None) or {}
        tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cache_read = (usage.get("input_token_details") or {}).get("cache_read") or 0
        journal.record_answer(run_id=run_id, node=node, role=role, model=spec, call_key=call_key, prompt=prompt,
                              answer=text, tokens_in=tokens_in, tokens_out=tokens_out, latency_s=latency,
                              tokens_cached=cache_read,
                              cost_usd=call_cost(spec, tokens_in, tokens_out, model_prices(ctx.model_prices)))
    return text


def ask(ctx: Context, *, run_id: str, node: str, role: str, call_key: str, prompt: str,
        parse: Callable[[str], Any] | None = None, schema: dict | None = None,
        history: Sequence[tuple[str, str]] = ()) -> Any:
    """Ask `role`'s model; re-ask with the parser's complaint until `parse` accepts the answer.

    `history`: earlier (prompt, answer) turns the question follows, oldest first.

    Raises AnswerError when every try (1 + ctx.max_reasks) was unusable, and BudgetExhausted when the run's
    budget allows no new call (catch NO_ANSWER for both); answers already in the journal are returned either way.
    Parallel lanes check the budget independently, so a run may end up to (lanes - 1) calls over it.
    """
    turns = [message for asked, answered in history for message in (HumanMessage(asked), AIMessage(answered))]
    messages: list[BaseMessage] = [SystemMessage(SYSTEM), *turns, HumanMessage(prompt)]
    problem = ""
    for attempt in range(ctx.max_reasks + 1):
        text = _answer(ctx, run_id=run_id, node=node, role=role, call_key=keys.try_key(call_key, attempt),
                       messages=messages, schema=schema)
        if parse is None:
            return text
        try:
            return parse(text)
        except AnswerError as exc:
            problem = str(exc)
            messages = [*messages, AIMessage(text), HumanMessage(REASK.format(problem=problem))]
    raise AnswerError(f"{role} gave no usable answer for {call_key} in {ctx.max_reasks + 1} tries: {problem}")
