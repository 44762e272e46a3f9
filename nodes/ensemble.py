"""Ensemble: R rounds of plan + implement over the lanes' final solutions; later rounds see earlier ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import EnsembleRound, PipelineState, Solution
from nodes.checks import validation_checks
from nodes.common import direction, distinct, emit, fmt_score, goals_for, ranked, script_rules, task_header, task_of
from nodes.debug import run_with_debugging
from nodes.llm import NO_ANSWER, ask, run_budget_problem
from nodes.refine import goals_note
from prompts import ensemble as P
from runtime import keys
from runtime.parsing import extract_code


def lane_solutions(state: Mapping[str, Any]) -> list[Solution]:
    results = sorted(state.get("lane_results", []), key=lambda r: r["lane"])
    return distinct(r["solution"] for r in results if r.get("solution") and r["solution"].get("score") is not None)


def ensemble_focus(state: Mapping[str, Any]) -> str:
    goals = goals_for(state, "ensemble")
    return f"Primary focus: {goals[0]['focus']}\n" if goals else P.DEFAULT_FOCUS + "\n"


def ensemble(state: PipelineState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    solutions = lane_solutions(state)
    rounds = state.get("ensemble_rounds", [])
    if len(solutions) < 2 or len(rounds) >= ctx.ensemble_rounds:
        return {"ensemble_rounds": rounds}
    if run_budget_problem(ctx, state["run_id"]):  # the lanes' edge is a plain join, so the skip is decided here
        emit(node="ensemble", event="skipped", reason="budget spent")
        return {"ensemble_rounds": rounds}
    r = len(rounds)
    tried = "".join(f"Round {x['round']}: {x['plan']} -> {fmt_score(x['score'])}\n" for x in rounds)
    plan_prompt = P.PLAN_ENSEMBLE.format(metric=task.metric, direction=direction(task), n=len(solutions),
                                         scores=", ".join(fmt_score(s["score"]) for s in solutions),
                                         tried=f"Tried so far:\n{tried}" if tried else "",
                                         focus=ensemble_focus(state) if r == 0 else goals_note(state, "ensemble"))
    solution: Solution | None = None
    plan = P.DEFAULT_FOCUS
    try:
        plan = ask(ctx, run_id=state["run_id"], node="ensemble", role="planner", call_key=keys.pipeline_key("ensemble", f"r{r}", "plan"),
                   prompt=plan_prompt, parse=lambda text: text.strip()[:600] or P.DEFAULT_FOCUS)
        listing = "".join(P.SOLUTION_ITEM.format(i=i + 1, metric=task.metric, score=fmt_score(s["score"]),
                                                 code=s["code"]) for i, s in enumerate(solutions))
        prompt = P.IMPLEMENT_ENSEMBLE.format(task_header=task_header(task, state["data_summary"]),
                                             solutions=listing, plan=plan, rules=script_rules(task, ctx))
        key = keys.pipeline_key("ensemble", f"r{r}")
        code = ask(ctx, run_id=state["run_id"], node="ensemble", role="coder", call_key=key,
                   prompt=prompt, parse=extract_code)
        solution, _ = run_with_debugging(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=code, exec_key=key,
                                         node="ensemble", origin=prompt, advisory=validation_checks(ctx, state))
    except NO_ANSWER:
        pass
    emit(node="ensemble", event="round", round=r, score=solution and solution["score"])
    record: EnsembleRound = {"round": r, "plan": plan, "score": None if solution is None else solution["score"],
                             "solution": None if solution is None else {**solution, "origin": f"ensemble:r{r}"}}
    return {"ensemble_rounds": [*rounds, record]}


def final_candidates(state: Mapping[str, Any]) -> list[Solution]:
    """Every scored solution of the run, best validation score first (ties: single solutions first)."""
    task = task_of(state)
    pool = lane_solutions(state) + [x["solution"] for x in state.get("ensemble_rounds", []) if x["solution"]]
    return ranked(pool, task.lower_is_better)
