"""Named routing functions: every conditional edge of the pipeline and lane graphs."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from graph.context import Context, run_context


def _refine_or_finish(state: dict, ctx: Context) -> Literal["ablate", "finish_lane"]:
    return "ablate" if state.get("step", 0) < ctx.refine_steps else "finish_lane"


def after_evaluate(state: dict, runtime: Runtime[Context]) -> Literal["merge", "ablate", "finish_lane"]:
    """No working candidate: the lane ends empty. Others wait in the merge queue: merge. Else refine."""
    if not state.get("solution"):
        return "finish_lane"
    if state.get("merge_queue"):
        return "merge"
    return _refine_or_finish(state, run_context(state, runtime))


def after_merge(state: dict, runtime: Runtime[Context]) -> Literal["merge", "ablate", "finish_lane"]:
    """Keep merging while merges help (a failed merge empties the queue); then refine."""
    if state.get("merge_queue"):
        return "merge"
    return _refine_or_finish(state, run_context(state, runtime))


def after_extract(state: dict) -> Literal["refine", "conclude_step"]:
    """Without a usable code block and plan the step ends unchanged."""
    return "refine" if state.get("target") else "conclude_step"


def after_refine(state: dict, runtime: Runtime[Context]) -> Literal["plan_refinement", "conclude_step"]:
    return "plan_refinement" if len(state.get("attempts", [])) < run_context(state, runtime).inner_steps else "conclude_step"


def after_conclude(state: dict, runtime: Runtime[Context]) -> Literal["ablate", "finish_lane"]:
    return _refine_or_finish(state, run_context(state, runtime))


def after_ensemble(state: dict, runtime: Runtime[Context]) -> Literal["ensemble", "submit"]:
    """Another round while rounds remain and the previous round actually ran."""
    rounds = state.get("ensemble_rounds", [])
    ran = bool(rounds)
    return "ensemble" if ran and len(rounds) < run_context(state, runtime).ensemble_rounds else "submit"
