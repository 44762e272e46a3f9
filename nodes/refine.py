"""Refine: ablation study -> pick the most impactful code block + plan -> K rewrites of it -> keep the best.

Outer loop (T steps): ablate, extract, then the inner loop, then conclude_step.
Inner loop (K steps): refine (rewrite the block by the current plan, run) and plan_refinement (a new plan
that sees every earlier plan with its score). Every inner attempt, the last included, may win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import (
    AblationStudy,
    AblationVariant,
    Attempt,
    LaneResult,
    LaneState,
    Solution,
    StepRecord,
    Target,
)
from nodes.checks import validation_checks
from nodes.common import direction, emit, fmt_score, goals_for, is_better, ranked, task_header, task_of
from nodes.debug import execute, run_with_debugging
from nodes.llm import NO_ANSWER, ask
from prompts import refine as P
from runtime import keys
from runtime.budget import BudgetExhausted
from runtime.parsing import AnswerError, extract_code, extract_json, locate_block, replace_block, variants_parser

PLAN_LIMIT = 600


def goals_note(state: Mapping[str, Any], phase: str) -> str:
    """Goals the meta-learning loop aimed at this phase (empty in a plain pipeline run)."""
    return "".join(f"Goal (priority {g['priority']}): {g['focus']}\n" for g in goals_for(state, phase))


def step_key(state: Mapping[str, Any]) -> str:
    return keys.step_key(state["lane"], state["step"])


def ablate(state: LaneState, runtime: Runtime[Context]) -> dict:
    """The ablation study: the coder proposes 2-3 variants of the solution as edits (a short answer), the agent
    runs each and compares its score with the solution's; the findings are written from those scores.

    A variant that beats the solution is a tested, scored script like any rewrite: it is kept as `variant`, and
    the step ends with it unless a rewrite of the target block does better (`conclude_step`)."""
    ctx = run_context(state, runtime)
    task, solution = task_of(state), state["solution"]
    previous = "\n".join(f"- step {a['step']}: {a['summary']}" for a in state["ablations"])
    prompt = P.ABLATION_VARIANTS.format(
        task_header=task_header(task, state["data_summary"]), code=solution["code"],
        previous_ablations=P.PREVIOUS_ABLATIONS.format(summaries=previous) if previous else "",
        metric=task.metric)
    key = f"{step_key(state)}/ablation"
    study: AblationStudy = {"step": state["step"], "original": solution["score"], "variants": []}
    variant: Solution = {}
    try:
        proposed = ask(ctx, run_id=state["run_id"], node="ablate", role="coder", call_key=key, prompt=prompt,
                       parse=variants_parser(solution["code"]))
        for i, (name, code) in enumerate(proposed):
            result = execute(ctx, state, code=code, exec_key=f"{key}/v{i}")
            study["variants"].append({"name": name, "score": result.score})
            if is_better(result.score, (variant or solution)["score"], task.lower_is_better):
                variant = {"code": code, "score": result.score, "path": result.attempt_dir,
                           "origin": f"ablation:t{state['step']}v{i}"}
            emit(lane=state["lane"], node="ablate", event="script", key=f"{key}/v{i}", status=result.status,
                 score=result.score, problem=result.score is None)
        summary = findings(study, task)
    except AnswerError:
        summary = "The ablation study failed, so there are no findings; judge from the code."
    except BudgetExhausted as exc:
        summary = f"No ablation study: {exc}; judge from the code."
    emit(lane=state["lane"], node="ablate", event="ablation", step=state["step"], summary=summary[:200])
    return {"ablations": [*state["ablations"], {**study, "summary": summary}], "target": {}, "attempts": [],
            "variant": variant}


def findings(study: AblationStudy, task) -> str:
    """What the variants' scores say, in words: each variant's score and effect, the part that matters most
    (its change hurt most) and any change that helped."""
    scored = [v for v in study["variants"] if v["score"] is not None]
    if not scored or study["original"] is None:
        return P.NO_FINDINGS
    original, lower = study["original"], task.lower_is_better

    def effect(v: AblationVariant) -> str:
        if v["score"] is None:
            return "it failed to run"
        change = v["score"] - original
        if change == 0:
            return f"{fmt_score(v['score'])} (no change)"
        better = (change < 0) == lower
        return f"{fmt_score(v['score'])} ({'better' if better else 'worse'} by {fmt_score(abs(change))})"

    def harm(v: AblationVariant) -> float:
        """How much the variant's change hurt (positive: the score got worse); scored variants only."""
        assert v["score"] is not None
        return (v["score"] - original) * (1 if lower else -1)

    worst, best = max(scored, key=harm), min(scored, key=harm)
    verdict = P.MOST_IMPORTANT.format(name=worst["name"]) if not is_better(worst["score"], original, lower) else ""
    if is_better(best["score"], original, lower):
        verdict += P.PROMISING.format(name=best["name"])
    variants = "".join(P.ABLATION_VARIANT.format(name=v["name"], result=effect(v)) for v in study["variants"])
    return P.ABLATION_FINDINGS.format(metric=task.metric, original=fmt_score(original), variants=variants,
                                      verdict=verdict).strip()


def _empty() -> str:
    raise AnswerError("the answer was empty")


def parse_target(code: str, refined: list[str]):
    def parse(text: str) -> dict:
        data = extract_json(text)
        block, plan = data.get("code_block"), data.get("plan")
        if not isinstance(block, str) or not block.strip() or not isinstance(plan, str) or not plan.strip():
            raise AnswerError('expected {"code_block": "...", "plan": "..."} with both filled in')
        exact = locate_block(code, block)
        if exact.strip() == code.strip():
            raise AnswerError("the block is the whole script; choose a smaller part")
        if exact in refined:
            raise AnswerError("that block was already improved; choose a different one")
        return {"block": exact, "plan": plan.strip()[:PLAN_LIMIT]}
    return parse


def extract(state: LaneState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    solution, refined = state["solution"], state["refined_blocks"]
    prompt = P.EXTRACT_BLOCK.format(
        task_header=task_header(task, state["data_summary"]), metric=task.metric, score=fmt_score(solution["score"]), direction=direction(task),
        code=solution["code"], summary=state["ablations"][-1]["summary"],
        refined_note=P.REFINED_NOTE.format(blocks="\n".join(f"```\n{b}\n```" for b in refined)) if refined else "",
        goals=goals_note(state, "refinement"))
    try:
        target = ask(ctx, run_id=state["run_id"], node="extract", role="planner",
                     call_key=f"{step_key(state)}/extract", prompt=prompt,
                     parse=parse_target(solution["code"], refined), schema=P.TARGET_SCHEMA)
    except NO_ANSWER:
        target = {}
    emit(lane=state["lane"], node="extract", event="target", step=state["step"], plan=target.get("plan"))
    return {"target": target}


def refine(state: LaneState, runtime: Runtime[Context]) -> dict:
    """One inner step: rewrite the target block by the current plan, splice it in and score the script."""
    ctx = run_context(state, runtime)
    task = task_of(state)
    target, k = state["target"], len(state["attempts"])
    key = f"{step_key(state)}/k{k}"
    prompt = P.REWRITE_BLOCK.format(task_header=task_header(task, state["data_summary"]),
                                    code=state["solution"]["code"], block=target["block"], plan=target["plan"])
    solution: Solution | None = None
    try:
        new_block = ask(ctx, run_id=state["run_id"], node="refine", role="coder", call_key=key, prompt=prompt,
                        parse=extract_code)
        code = replace_block(state["solution"]["code"], target["block"], new_block)
        solution, _ = run_with_debugging(ctx, state, code=code, exec_key=key, node="refine",
                                         advisory=validation_checks(ctx, state))
    except NO_ANSWER:
        pass
    rewritten: Solution | None = None if solution is None else {**solution, "origin": f"refine:t{state['step']}k{k}"}
    attempt: Attempt = {"plan": target["plan"], "score": None if solution is None else solution["score"],
                        "solution": rewritten}
    emit(lane=state["lane"], node="refine", event="attempt", step=state["step"], k=k, score=attempt["score"])
    return {"attempts": [*state["attempts"], attempt]}


def plan_refinement(state: LaneState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    tried = "\n".join(f"{i + 1}. {a['plan']} -> {fmt_score(a['score'])}" for i, a in enumerate(state["attempts"]))
    prompt = P.PLAN_NEXT.format(metric=task.metric, direction=direction(task), block=state["target"]["block"],
                                base_score=fmt_score(state["solution"]["score"]), tried=tried,
                                goals=goals_note(state, "refinement"))
    try:
        plan = ask(ctx, run_id=state["run_id"], node="plan_refinement", role="planner",
                   call_key=f"{step_key(state)}/plan{len(state['attempts'])}", prompt=prompt,
                   parse=lambda text: text.strip()[:PLAN_LIMIT] or _empty())
    except NO_ANSWER:
        plan = state["target"]["plan"]
    return {"target": {**state["target"], "plan": plan}}


def conclude_step(state: LaneState, runtime: Runtime[Context]) -> dict:
    task = task_of(state)
    before = state["solution"]
    attempts = state.get("attempts", [])
    # the rewrites first: on a tie with the ablation's variant, the planned change is kept
    best = next(iter(ranked([*(a["solution"] for a in attempts), state.get("variant")], task.lower_is_better)), None)
    kept = best if best is not None and is_better(best["score"], before["score"], task.lower_is_better) else None
    target: Target = state.get("target") or {}
    record: StepRecord = {"step": state["step"], "block": target.get("block"), "before": before["score"],
                          "after": before["score"] if kept is None else kept["score"],
                          "kept": None if kept is None else kept["origin"],
                          "attempts": [{"plan": a["plan"], "score": a["score"]} for a in attempts]}
    emit(lane=state["lane"], node="conclude_step", event="step", step=state["step"], improved=kept is not None,
         score=record["after"])
    blocks = state["refined_blocks"] + ([target["block"]] if target.get("block") else [])
    return {"solution": before if kept is None else kept, "history": [*state["history"], record],
            "refined_blocks": blocks, "step": state["step"] + 1, "variant": {}}


def finish_lane(state: LaneState) -> dict:
    solution = state.get("solution") or None
    result: LaneResult = {
        "lane": state["lane"], "solution": solution, "start": state.get("start") or {},
        "candidates": [{"key": c["key"], "score": None if c["solution"] is None else c["solution"]["score"]}
                       for c in state.get("candidates", [])],
        "merges": state.get("merges", []), "ablations": state.get("ablations", []),
        "history": state.get("history", []),
    }
    return {"lane_results": [result]}
