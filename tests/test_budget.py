"""Budgets and cost accounting: prices, budget checks, settings, a budget reached mid-run, status and report."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from graph import routing
from graph.context import ConfigError, build_context
from nodes.debug import execute, script_time_limit
from nodes.llm import ask
from runtime.budget import BudgetExhausted, RunUsage, budget_problem, call_cost, parse_prices, price_of, unpriced_models
from runtime.journal import SqliteJournal, open_journal, sha256_text
from runtime.parsing import AnswerError
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT, SCRIPTED, run_pipeline, scripted_context


def limits(calls=0, tokens=0, cost=0.0, seconds=0) -> SimpleNamespace:
    return SimpleNamespace(max_model_calls=calls, max_total_tokens=tokens, max_cost_usd=cost,
                           run_time_budget_s=seconds)


# -- prices --------------------------------------------------------------------------------------------


def test_prices_builtin_user_free_and_unknown():
    assert price_of("openai:gpt-4o-mini") == (0.15, 0.60)
    assert price_of("openai:gpt-4o-mini-2024-07-18") == (0.15, 0.60)  # dated names price like their base
    assert price_of("openai:gpt-4o-mini", {"openai:gpt-4o-mini": (1.0, 2.0)}) == (1.0, 2.0)  # user wins
    assert price_of("local") == price_of("hf:Qwen/Qwen2.5-Coder-7B-Instruct") == price_of(SCRIPTED) == (0.0, 0.0)
    assert price_of("openai:my-finetune") is None
    assert price_of("openai:gpt-4o@http://127.0.0.1:8000/v1") is None  # someone else's server: not OpenAI's price
    assert price_of("openai:gpt-4o@http://127.0.0.1:8000/v1", {"openai:gpt-4o": (1.0, 1.0)}) == (1.0, 1.0)
    assert call_cost("openai:gpt-4o", 1_000_000, 500_000) == pytest.approx(2.5 + 5.0)
    assert call_cost("openai:my-finetune", 10, 10) is None
    assert unpriced_models(["local", "openai:my-finetune", "openai:gpt-4o"], {}) == ["openai:my-finetune"]


def test_parse_prices_and_its_errors():
    assert parse_prices("") == {}
    assert parse_prices("openai:gpt-4o-mini=0.15/0.60, openai:x@http://h:1/v1=1/2") == {
        "openai:gpt-4o-mini": (0.15, 0.60), "openai:x@http://h:1/v1": (1.0, 2.0)}
    for bad in ("openai:gpt-4o=0.15", "openai:gpt-4o", "=1/2", "openai:gpt-4o=a/b", "openai:gpt-4o=-1/2",
                "openai:gpt-4o=nan/1"):
        with pytest.raises(ValueError, match="SPEC=INPUT/OUTPUT|non-negative"):
            parse_prices(bad)


def test_price_settings_are_validated_with_the_fix_named():
    with pytest.raises(ConfigError, match=r"model_prices: price entry 'openai:gpt-4o=cheap'.*write e\.g\."):
        build_context({}, {"model_prices": "openai:gpt-4o=cheap"})
    with pytest.raises(ConfigError, match=r"max_cost_usd=1 needs prices.*openai:my-model.*model_prices="):
        build_context({}, {"coder_model": "openai:my-model", "max_cost_usd": "1"})
    ctx = build_context({}, {"coder_model": "openai:my-model", "max_cost_usd": "1",
                             "model_prices": "openai:my-model=1/2"})
    assert ctx.max_cost_usd == 1.0
    with pytest.raises(ConfigError, match="out of bounds"):
        build_context({}, {"max_model_calls": "-1"})


# -- budget checks -------------------------------------------------------------------------------------


def test_budget_problem_names_the_first_limit_reached():
    used = RunUsage(calls=12, tokens_in=900, tokens_out=100, cost_usd=0.25)
    assert budget_problem(limits(), used, 0.0, 10_000.0) is None  # 0 = no limit
    assert budget_problem(limits(calls=13, tokens=1001, cost=0.26, seconds=100), used, 0.0, 99.0) is None
    assert budget_problem(limits(calls=12), used, None, 0.0) == \
        "budget: 12 model calls reached (max_model_calls=12)"
    assert "max_total_tokens=1000" in budget_problem(limits(tokens=1000), used, None, 0.0)
    assert "max_cost_usd=0.25" in budget_problem(limits(cost=0.25), used, None, 0.0)
    assert "run_time_budget_s=100" in budget_problem(limits(seconds=100), used, 0.0, 100.0)
    assert budget_problem(limits(seconds=100), used, None, 1e9) is None  # run not started: no clock yet
    assert not issubclass(BudgetExhausted, AnswerError)  # "budget spent" is not "bad answer"


def test_an_ablation_skipped_for_the_budget_says_so_instead_of_reporting_a_failed_study(tmp_path):
    from nodes.refine import ablate

    ctx = scripted_context(tmp_path, max_model_calls=1)
    open_journal(ctx.journal_path).record_answer(run_id="b", node="search", role="planner", model=SCRIPTED,
                                                 call_key="k", prompt="p", answer="a", tokens_in=1, tokens_out=1,
                                                 latency_s=0.1, cost_usd=0.0)
    state = {"run_id": "b", "lane": 0, "step": 0, "ablations": [], "data_summary": "rows",
             "task": load_task(EXAMPLES / "penguins").to_dict(), "solution": {"code": "print(1)\n", "score": 1.0}}
    [finding] = ablate(state, SimpleNamespace(context=ctx))["ablations"]
    assert finding["summary"].startswith("No ablation study: ") and "max_model_calls=1" in finding["summary"]


def test_routing_skips_model_work_once_the_budget_is_spent(tmp_path):
    ctx = scripted_context(tmp_path, max_model_calls=1)
    journal = open_journal(ctx.journal_path)
    rt = SimpleNamespace(context=ctx)
    lane = {"run_id": "b", "solution": {"score": 1}, "merge_queue": [{}], "step": 0, "attempts": [{}]}
    assert routing.after_evaluate(lane, rt) == "merge" and routing.after_refine(lane, rt) == "plan_refinement"
    journal.record_answer(run_id="b", node="evaluate", role="coder", model=SCRIPTED, call_key="k", prompt="p",
                          answer="a", tokens_in=1, tokens_out=1, latency_s=0.1, cost_usd=0.0)
    assert routing.after_evaluate(lane, rt) == "finish_lane"
    assert routing.after_merge(lane, rt) == "finish_lane"
    assert routing.after_refine(lane, rt) == "conclude_step"
    assert routing.after_conclude(lane, rt) == "finish_lane"
    assert routing.after_ensemble({"run_id": "b", "ensemble_rounds": [{}]},
                                  SimpleNamespace(context=scripted_context(tmp_path, max_model_calls=1,
                                                                           ensemble_rounds=3))) == "blend"
    assert routing.after_evaluate({**lane, "run_id": "other"}, rt) == "merge"  # budgets are per run


def test_answers_reused_from_the_journal_are_free_and_not_counted(tmp_path):
    ctx = scripted_context(tmp_path, max_model_calls=2, max_reasks=0)

    def ask_job(key: str) -> str:
        return ask(ctx, run_id="r", node="search", role="planner", call_key=key,
                   prompt="## Job: plan a new refinement\n" + key)

    first, second = ask_job("a"), ask_job("b")
    # a resumed node asks the same prompts again: answered from the journal, though the budget is spent
    assert (ask_job("a"), ask_job("b")) == (first, second)
    journal = open_journal(ctx.journal_path)
    assert journal.run_usage("r").calls == 2 and journal.usage("r")["answers_reused"] == 2
    with pytest.raises(BudgetExhausted, match=r"budget: 2 model calls reached \(max_model_calls=2\)"):
        ask_job("c")
    assert journal.run_usage("r").calls == 2
    # the Enhancer works between runs: no run's budget blocks it
    assert ask(ctx, run_id="r", node="enhance", role="enhancer", call_key="e",
               prompt="## Job: plan a new refinement\ne")


def test_cost_is_recorded_per_call_and_grouped_by_role_and_phase(tmp_path):
    ctx = scripted_context(tmp_path, model_prices=f"{SCRIPTED}=1000/2000")
    for node, role in (("search", "planner"), ("refine", "planner"), ("refine", "coder")):
        ask(ctx, run_id="m-run0", node=node, role=role, call_key=f"{node}/{role}",
            prompt=f"## Job: plan a new refinement\n{node} {role}")
    journal = open_journal(ctx.journal_path)
    journal.upsert_run("m-run0", meta_id="m")  # a pipeline run of the meta run "m"
    rows = list(journal.db["model_calls"].rows)
    for row in rows:
        assert row["cost_usd"] == pytest.approx((row["tokens_in"] * 1000 + row["tokens_out"] * 2000) / 1e6)
    usage = journal.usage_breakdown("m")  # the meta id covers its pipeline runs
    assert [r["name"] for r in usage["role"]] == ["planner", "coder"]
    assert [(r["name"], r["calls"]) for r in usage["phase"]] == [("search", 1), ("refine", 2)]
    assert sum(r["cost_usd"] for r in usage["phase"]) == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert journal.usage("m")["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)


def test_an_older_journal_gets_the_cost_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table model_calls (id integer primary key, run_id text, node text, role text, "
                     "model text, call_key text, prompt_sha text, prompt text, answer text, tokens_in integer, "
                     "tokens_out integer, latency_s float, created_at float, reused integer)")
        conn.execute("insert into model_calls (run_id, node, role, tokens_in, tokens_out, latency_s, reused) "
                     "values ('old', 'search', 'planner', 5, 5, 1.0, 0)")
    journal = SqliteJournal(path)
    assert "cost_usd" in journal.db["model_calls"].columns_dict
    [planner] = journal.usage_breakdown("old")["role"]
    assert (planner["calls"], planner["unpriced"]) == (1, 1)  # recorded before prices: cost unknown


# -- a budget reached mid-run ------------------------------------------------------------------------------


def test_budget_reached_mid_run_still_submits_and_says_why_even_across_a_crash(tmp_path, monkeypatch):
    """5 calls: the planner's search (3 tries) and the first candidate's script, then a crash while the
    debugger asks for its fix. On resume the answers already given are re-used for free, so the fix is the
    5th call; then the budget is spent: no second candidate, merge or refinement, but a valid submission."""
    limit = 5
    ctx = scripted_context(tmp_path, num_lanes=1, max_model_calls=limit)
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    (crash_dir / "fix_a_failing_script").touch()
    monkeypatch.setenv("SCRIPTED_CRASH_DIR", str(crash_dir))
    with pytest.raises(RuntimeError, match="scripted crash"):
        run_pipeline(ctx, tmp_path, run_id="b")

    state = run_pipeline(ctx, tmp_path, run_id="b", graph_input=None)

    reason = f"budget: {limit} model calls reached (max_model_calls={limit})"
    assert state["status"] == "done" and state["stop_reason"] == reason
    grade = grade_submission(load_task(EXAMPLES / "titanic"), state["submission"]["path"])
    assert grade.valid, grade.problems
    journal = open_journal(ctx.journal_path)
    assert journal.get_run("b")["stop_reason"] == reason
    calls = list(journal.db["model_calls"].rows_where("run_id = 'b'"))
    assert len(calls) == limit  # reused answers did not count twice (else fewer), nothing beyond the limit
    assert sum(c["reused"] for c in calls) >= 1
    assert not {"ablate", "extract", "refine", "ensemble", "submit"} & {c["node"] for c in calls}
    [lane] = state["lane_results"]
    assert lane["solution"]["score"] is not None and lane["history"] == []  # finished with what it had


@pytest.mark.slow
def test_cli_status_and_report_show_usage_per_role_and_phase_and_the_stop_reason(tmp_path):
    settings = ["--set", "num_lanes=1", "--set", "num_candidates=2", "--set", "ensemble_rounds=0",
                "--set", "debug_rounds=1", "--set", "max_model_calls=4",
                "--set", f"workspace_root={tmp_path / 'ws'}", "--set", f"journal_path={tmp_path / 'journal.db'}",
                "--checkpoints", str(tmp_path / "cp.db")]
    run = subprocess.run([sys.executable, "-m", "graph.cli", "run", str(EXAMPLES / "titanic"), "--model", SCRIPTED,
                          "--run-id", "cost-1", *settings], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    status = subprocess.run([sys.executable, "-m", "graph.cli", "status", "cost-1", "--journal",
                             str(tmp_path / "journal.db"), "--checkpoints", str(tmp_path / "cp.db")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    assert status.returncode == 0, status.stdout + status.stderr
    out = status.stdout
    assert "Model usage by role" in out and "Model usage by phase" in out
    role_lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 6}
    assert {"planner", "coder", "search", "evaluate", "total"} <= set(role_lines)
    assert "max_model_calls=4" in out  # the pipeline run's stop reason
    journal = open_journal(str(tmp_path / "journal.db"))
    assert journal.usage("cost-1")["model_calls"] == 4
    report = (tmp_path / "ws" / "titanic" / "cost-1" / "report.md").read_text()
    assert "## Model usage and cost" in report and "| planner |" in report and "| evaluate |" in report
    assert report.count("| total | 4 |") == 3  # the role and phase cost tables, and the time table (4 calls)
    assert "budget: 4 model calls reached" in report


def test_exploration_scripts_stop_with_the_time_budget_and_the_submission_keeps_its_limit(tmp_path):
    ctx = scripted_context(tmp_path, run_time_budget_s=100, script_timeout_s=300)
    journal = open_journal(ctx.journal_path)
    journal.upsert_run("r", status="running")
    journal.db["runs"].update("r", {"started_at": time.time() - 90})
    assert 5 < script_time_limit(ctx, "r", "lane0/eval/lightgbm/d0") <= 10  # what is left of the budget
    assert script_time_limit(ctx, "r", "submit/s0/flag/d0") == 300
    journal.db["runs"].update("r", {"started_at": time.time() - 200})
    state = {"run_id": "r", "workspace": str(tmp_path / "ws"), "input_dir": str(tmp_path / "in"), "lane": 0}
    result = execute(ctx, state, code="print('Final Validation Performance: 1')", exec_key="lane0/eval/x/d0")
    assert result.status == "timeout" and "not started" in result.stderr_tail
    assert journal.find_execution("r", "lane0/eval/x/d0", sha256_text("print('Final Validation Performance: 1')")) \
        is None  # not recorded: a resume with a larger budget runs it
    assert script_time_limit(scripted_context(tmp_path), "r", "lane0/eval/x/d0") == 120  # no time budget: its own
