"""Merge: fold the next-best candidate into the lane's solution; stop at the first merge that does not help."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import LaneState, Merge, Solution
from nodes.checks import validation_checks
from nodes.common import emit, fmt_score, not_worse, script_rules, task_header, task_of
from nodes.debug import run_with_debugging
from nodes.llm import NO_ANSWER, ask
from prompts.merge import MERGE_SCRIPT
from runtime import keys
from runtime.parsing import extract_code


def merge(state: LaneState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    base, other, rest = state["solution"], state["merge_queue"][0], state["merge_queue"][1:]
    key = keys.lane_key(state["lane"], f"merge{len(state['merges'])}")
    prompt = MERGE_SCRIPT.format(task_header=task_header(task, state["data_summary"]), metric=task.metric,
                                 base_score=fmt_score(base["score"]), base_code=base["code"],
                                 other_score=fmt_score(other["score"]), other_code=other["code"],
                                 rules=script_rules(task, ctx))
    merged: Solution | None = None
    try:
        code = ask(ctx, run_id=state["run_id"], node="merge", role="coder", call_key=key, prompt=prompt,
                   parse=extract_code)
        merged, _ = run_with_debugging(ctx, state, code=code, exec_key=key, node="merge", origin=prompt,
                                       advisory=validation_checks(ctx, state))
    except NO_ANSWER:
        pass
    kept = merged is not None and not_worse(merged["score"], base["score"], task.lower_is_better)
    emit(lane=state["lane"], node="merge", event="merge", with_=other["origin"],
         score=merged and merged["score"], kept=kept)
    record: Merge = {"candidate": other["origin"], "score": None if merged is None else merged["score"], "kept": kept}
    solution: Solution = {**merged, "origin": "merge"} if merged is not None and kept else base
    return {"solution": solution, "merge_queue": rest if kept else [], "merges": [*state["merges"], record]}
