"""Named routing functions: every conditional edge of the meta, pipeline and lane graphs.

Once the run's budget is spent (`budget_spent`), no edge leads to another model call: lanes finish with
what they have, no further ensemble round starts (the ensemble node itself skips a first round, since the
lanes join it by a plain edge), and submit, which can still submit without a model, ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Send

from graph.context import Context, run_context
from graph.state import LaneState, MetaState, PipelineState
from nodes.llm import run_budget_problem
from nodes.search import lane_input
from runtime.budget import has_budget


def should_continue(state: MetaState) -> Literal["enhance", "report"]:
    """More runs while the plan, the time budget and (optionally) the improvement streak allow.

    Reads only state (the rules are copied there by the first plan_run), so that extending a finished
    thread with `update_state(..., as_node="record")` can evaluate it without a runtime context.
    """
    history, rules = state["history"], state.get("stop_rules", {})
    if len(history) >= state["runs_planned"]:
        return "report"
    if rules.get("budget_s") and time.time() - state["started_at"] >= rules["budget_s"]:
        return "report"
    if rules.get("patience"):
        champion = state.get("champion")
        if len(history) - 1 - (champion["run_index"] if champion else 0) >= rules["patience"]:
            return "report"
    return "enhance"


def fan_out_lanes(state: PipelineState, runtime: Runtime[Context]) -> list[Send]:
    ctx = run_context(state, runtime)
    return [Send("lane", lane_input(state, lane, ctx)) for lane in range(ctx.num_lanes)]


def budget_spent(state: Mapping[str, Any], ctx: Context) -> bool:
    """True once the run's budget allows no new model call (always False without a budget)."""
    return has_budget(ctx) and run_budget_problem(ctx, state["run_id"]) is not None


def _refine_or_finish(state: Mapping[str, Any], ctx: Context) -> Literal["ablate", "finish_lane"]:
    more = state.get("step", 0) < ctx.refine_steps
    return "ablate" if more and not budget_spent(state, ctx) else "finish_lane"


def after_evaluate(state: LaneState, runtime: Runtime[Context]) -> Literal["merge", "ablate", "finish_lane"]:
    """No working candidate: the lane ends empty. Others wait in the merge queue: merge. Else refine."""
    if not state.get("solution"):
        return "finish_lane"
    return after_merge(state, runtime)


def after_merge(state: LaneState, runtime: Runtime[Context]) -> Literal["merge", "ablate", "finish_lane"]:
    """Keep merging while merges help (a failed merge empties the queue) and the budget allows; then refine."""
    ctx = run_context(state, runtime)
    if state.get("merge_queue") and not budget_spent(state, ctx):
        return "merge"
    return _refine_or_finish(state, ctx)


def after_extract(state: LaneState) -> Literal["refine", "conclude_step"]:
    """Without a usable code block and plan the step ends unchanged. (A spent budget needs no check here:
    the rewrite is then refused before any model call, and after_refine ends the step.)"""
    return "refine" if state.get("target") else "conclude_step"


def after_refine(state: LaneState, runtime: Runtime[Context]) -> Literal["plan_refinement", "conclude_step"]:
    """K rewrites, fewer when the budget runs out: the step then keeps its best attempt so far."""
    ctx = run_context(state, runtime)
    more = len(state.get("attempts", [])) < ctx.inner_steps
    return "plan_refinement" if more and not budget_spent(state, ctx) else "conclude_step"


def after_conclude(state: LaneState, runtime: Runtime[Context]) -> Literal["ablate", "finish_lane"]:
    return _refine_or_finish(state, run_context(state, runtime))


def after_ensemble(state: PipelineState, runtime: Runtime[Context]) -> Literal["ensemble", "blend"]:
    """Another round while rounds remain, the previous round actually ran and the budget allows."""
    ctx = run_context(state, runtime)
    rounds = state.get("ensemble_rounds", [])
    ran = bool(rounds)
    more = ran and len(rounds) < ctx.ensemble_rounds
    return "ensemble" if more and not budget_spent(state, ctx) else "blend"
