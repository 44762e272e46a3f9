"""The time plan: speeds fitted from the journal; a step that cannot finish in time is not started."""

from __future__ import annotations

import pytest

from nodes.llm import ask, plan_problem
from runtime.budget import BudgetExhausted
from runtime.journal import open_journal
from runtime.time_plan import expected_call_s, fit_speed, prompt_tokens
from tests.conftest import SCRIPTED, scripted_context


def test_speeds_are_fitted_separately_for_prompt_and_answer():
    calls = [(t_in, t_out, t_in / 70 + t_out / 20) for t_in, t_out in [(800, 100), (1500, 400), (300, 600), (2000, 50)]]
    speed = fit_speed(calls)
    assert speed.prompt_tps == pytest.approx(70) and speed.answer_tps == pytest.approx(20)
    assert fit_speed(calls[:2]) is None  # too few calls to tell
    alike = fit_speed([(900, 300, 900 / 60 + 300 / 20)] * 3)  # cannot separate: the usual 3:1 ratio
    assert alike.prompt_tps == pytest.approx(60) and alike.answer_tps == pytest.approx(20)


def test_expected_call_uses_the_nodes_own_answer_length():
    calls = [(1000, 500, 1000 / 50 + 500 / 10, "evaluate")] * 3 + [(1000, 20, 1000 / 50 + 20 / 10, "search")] * 3
    prompt = "x" * 3500  # about 1000 tokens
    assert expected_call_s(calls, "evaluate", prompt) == pytest.approx(prompt_tokens(prompt) / 50 + 50, rel=0.05)
    assert expected_call_s(calls, "search", prompt) == pytest.approx(prompt_tokens(prompt) / 50 + 2, rel=0.05)


def record_slow_calls(journal, run_id):
    for _ in range(4):
        journal.record_answer(run_id="earlier", node="evaluate", role="coder", model=SCRIPTED, call_key="k",
                              prompt="p", answer="a", tokens_in=1000, tokens_out=600, latency_s=120.0,
                              cost_usd=0.0)


def test_an_answer_that_cannot_finish_in_the_time_left_is_not_asked_for(tmp_path):
    ctx = scripted_context(tmp_path, run_time_budget_s=60)
    journal = open_journal(ctx.journal_path)
    journal.upsert_run("r", status="running")
    record_slow_calls(journal, "r")  # this model took 120 s per answer here
    assert "time plan" in plan_problem(ctx, "r", "coder", "evaluate", "## Job: write a solution script\n")
    with pytest.raises(BudgetExhausted, match="time plan"):
        ask(ctx, run_id="r", node="evaluate", role="coder", call_key="c", prompt="## Job: write a solution script\n")
    assert journal.db["model_calls"].count_where("run_id = 'r'") == 0


def test_without_a_time_budget_or_measurements_nothing_is_skipped(tmp_path):
    ctx = scripted_context(tmp_path)
    journal = open_journal(ctx.journal_path)
    journal.upsert_run("r", status="running")
    record_slow_calls(journal, "r")
    assert plan_problem(ctx, "r", "coder", "evaluate", "prompt") is None
    budgeted = scripted_context(tmp_path, run_time_budget_s=60, journal_path=str(tmp_path / "fresh.db"))
    open_journal(budgeted.journal_path).upsert_run("r", status="running")
    assert plan_problem(budgeted, "r", "coder", "evaluate", "prompt") is None
