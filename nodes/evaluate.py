"""Evaluate: write, run and debug one simple script per retrieved approach; rank them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import Candidate, LaneState, RetrievedApproach, Solution
from nodes.checks import validation_checks
from nodes.common import distinct, emit, ranked, script_rules, task_header, task_of
from nodes.debug import run_with_debugging
from nodes.llm import NO_ANSWER, ask, time_left
from prompts.evaluate import FIRST_SCRIPT
from runtime import keys
from runtime.parsing import extract_code


def evaluate_approach(ctx: Context, state: Mapping[str, Any], approach: RetrievedApproach) -> Solution | None:
    """The model's first script for the approach. Under a time budget, an approach the floor already ran
    keeps the floor's tested code instead: a slow model would spend minutes writing the same script again,
    time the refinement steps use better."""
    tested = [f for f in floor_solutions(state) if f["origin"] == f"catalog:{approach['key']}"]
    if tested and time_left(ctx, state["run_id"]) is not None:
        return tested[0]
    task = task_of(state)
    key = keys.lane_key(state["lane"], "eval", approach["key"])
    prompt = FIRST_SCRIPT.format(task_header=task_header(task, state["data_summary"]), title=approach["title"],
                                 approach_description=approach["description"],
                                 example_code=approach["example_code"], rules=script_rules(task, ctx))
    try:
        code = ask(ctx, run_id=state["run_id"], node="evaluate", role="coder", call_key=key, prompt=prompt,
                   parse=extract_code)
    except NO_ANSWER:
        return None
    solution, _ = run_with_debugging(ctx, state, code=code, exec_key=key, node="evaluate", origin=prompt,
                                     advisory=validation_checks(ctx, state, usage=True))
    return solution and {**solution, "origin": f"candidate:{approach['key']}"}


def catalog_fallback(ctx: Context, state: Mapping[str, Any]) -> Solution | None:
    """The catalog's tested example code, run as is: a floor for lanes where no generated script worked."""
    for approach in state["approaches"]:
        solution, _ = run_with_debugging(ctx, state, code=approach["example_code"],
                                         exec_key=keys.lane_key(state["lane"], "catalog", approach["key"]),
                                         node="evaluate")
        if solution:
            return {**solution, "origin": f"catalog:{approach['key']}"}
    return None


def floor_solutions(state: Mapping[str, Any]) -> list[Solution]:
    """The floor's results for this lane's approaches, as solutions (they ran before the search: no new run)."""
    return [{"code": f["code"], "score": f["score"], "path": f["path"], "origin": f"catalog:{f['key']}"}
            for f in state.get("floor", [])]


def evaluate(state: LaneState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    candidates: list[Candidate] = []
    for approach in state["approaches"]:
        solution = evaluate_approach(ctx, state, approach)
        candidates.append({"key": approach["key"], "title": approach["title"], "solution": solution})
        emit(lane=state["lane"], node="evaluate", event="candidate", key=approach["key"],
             score=solution and solution["score"])
    if state.get("warm_start"):
        solution, _ = run_with_debugging(ctx, state, code=state["warm_start"]["code"],
                                         exec_key=keys.lane_key(state["lane"], "eval", "champion"), node="evaluate")
        candidates.append({"key": "champion", "title": "best solution of the champion run",
                           "solution": solution and {**solution, "origin": "champion"}})
    order = distinct(ranked([c["solution"] for c in candidates], task.lower_is_better))
    # The floor's code competes for the lane's starting point only (merging a model-written script into the
    # catalog code it was adapted from costs a model call and a run for little): the merge queue is unchanged.
    start = ranked(distinct([*order[:1], *floor_solutions(state)]), task.lower_is_better)
    if not start and ctx.catalog_fallback:
        fallback = catalog_fallback(ctx, state)
        start = [fallback] if fallback else []
    chosen: Solution = start[0] if start else {}
    return {"candidates": candidates, "solution": chosen,
            "start": {"origin": chosen.get("origin"), "score": chosen.get("score")} if chosen else {},
            "merge_queue": order[1:], "merges": [], "step": 0, "ablations": [], "refined_blocks": [],
            "history": []}
