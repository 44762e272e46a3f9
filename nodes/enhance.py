"""Enhance: the meta loop's Enhancer reads the run history and the last run, and steers the next run.

Its answer is untrusted: `validate_enhancement` keeps only what is well-formed (known settings within the
Enhancer's bounds, goals for known phases with priorities 1..n) and says why it dropped the rest. An
unusable answer never stops the loop: the next run then gets the safe default (no changes, no goals).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict

from langgraph.runtime import Runtime

from graph.context import ENHANCER_KNOBS, ConfigError, Context, coerce_value
from graph.state import MetaState, RunSummary
from nodes.common import emit, fmt_score
from nodes.human_review import ask_person, wants_review
from nodes.llm import NO_ANSWER, ask
from prompts.enhance import ENHANCE, ENHANCEMENT_SCHEMA
from runtime.parsing import extract_json

log = logging.getLogger(__name__)
PHASES = ("refinement", "ensemble", "submission")
SAFE_DEFAULT = {"strategic_summary": "", "config_overrides": {}, "strategic_goals": []}
TEXT_LIMIT = 600
EDIT_ENHANCEMENT = ('any of {"config_overrides": {...}, "strategic_goals": [...], "strategic_summary": "..."}: '
                    'replaces that part of the proposal (checked like the Enhancer\'s own answer)')


def validate_overrides(raw, problems: list[str]) -> dict:
    if not isinstance(raw, dict):
        problems.append("config_overrides is not an object: no settings changed")
        return {}
    clean = {}
    for name, value in raw.items():
        if name not in ENHANCER_KNOBS:
            problems.append(f"override {name!r} is not a setting the Enhancer may change: dropped")
            continue
        try:
            value = coerce_value(name, value)
        except ConfigError as exc:
            problems.append(f"override {name}={value!r} dropped: {exc}")
            continue
        bounds = ENHANCER_KNOBS[name]
        if bounds and not bounds[0] <= value <= bounds[1]:
            problems.append(f"override {name}={value} is outside [{bounds[0]}, {bounds[1]}]: dropped")
            continue
        clean[name] = value
    return clean


def validate_goals(raw, problems: list[str]) -> list[dict]:
    if not isinstance(raw, list):
        problems.append("strategic_goals is not a list: no goals")
        return []
    goals = []
    for goal in raw:
        if not isinstance(goal, dict) or not isinstance(goal.get("focus"), str) or not goal["focus"].strip():
            problems.append(f"goal {goal!r} has no focus text: dropped")
        elif goal.get("target_agent_phase") not in PHASES:
            problems.append(f"goal phase {goal.get('target_agent_phase')!r} is not one of {', '.join(PHASES)}: dropped")
        else:
            goals.append(goal)
    priorities = [g.get("priority") for g in goals]
    if sorted(p for p in priorities if isinstance(p, int)) != list(range(1, len(goals) + 1)):
        problems.append(f"goal priorities {priorities} are not unique and numbered from 1: no goals")
        return []
    return [{"target_agent_phase": g["target_agent_phase"], "focus": g["focus"].strip()[:TEXT_LIMIT],
             "priority": g["priority"], "rationale": str(g.get("rationale", ""))[:TEXT_LIMIT]}
            for g in sorted(goals, key=lambda g: g["priority"])]


def validate_enhancement(data) -> tuple[dict, list[str]]:
    """(clean answer, problems). Missing required keys mean the whole answer falls back to the default."""
    if not isinstance(data, dict):
        return dict(SAFE_DEFAULT), ["the answer is not a JSON object: safe defaults"]
    missing = [k for k in SAFE_DEFAULT if k not in data]
    if missing:
        return dict(SAFE_DEFAULT), [f"the answer lacks {', '.join(missing)}: safe defaults"]
    problems: list[str] = []
    summary = data["strategic_summary"] if isinstance(data["strategic_summary"], str) else ""
    clean = {"strategic_summary": summary.strip()[:2 * TEXT_LIMIT],
             "config_overrides": validate_overrides(data["config_overrides"], problems),
             "strategic_goals": validate_goals(data["strategic_goals"], problems)}
    return clean, problems


def real_changes(overrides: dict, base: Context) -> dict:
    """The overrides that change something: a small model often restates every current setting as an
    "override", which would be recorded and reported as a change. Overrides apply over the user's settings
    (`base`), so a value equal to the base one is a no-op."""
    return {name: value for name, value in overrides.items() if value != getattr(base, name)}


def edit_problem(proposal: dict, edit: dict) -> str | None:
    """An edit the Enhancer's own validation would change (unknown setting, out of bounds...) is refused."""
    _, problems = validate_enhancement({**proposal, **edit})
    return "; ".join(problems) or None


def reviewed(enhancement: dict) -> dict:
    """The person's decision on the Enhancer's proposal: kept, replaced field by field, or dropped."""
    proposal = {k: enhancement[k] for k in SAFE_DEFAULT}
    decision = ask_person("enhancer", proposal, EDIT_ENHANCEMENT, lambda edit: edit_problem(proposal, edit))
    if decision["action"] == "reject":
        return {**enhancement, **SAFE_DEFAULT, "strategic_summary": "Rejected at human review: no changes.",
                "reviewed": "rejected"}
    if decision["action"] == "edit":
        clean, _ = validate_enhancement({**proposal, **decision["edit"]})
        return {**enhancement, **clean, "reviewed": "edited"}
    return {**enhancement, "reviewed": "approved"}


def digest_run(run: RunSummary) -> str:
    """A few lines per lane and phase: scores, plans and their effect, failures. Never raw state."""
    lines = [f"status {run.get('status')}, best validation score {fmt_score(run.get('best_score'))} "
             f"from {run.get('best_origin') or '-'}, {run.get('duration_s', 0):.0f} s, "
             f"scripts {run.get('scripts_ok', 0)}/{run.get('scripts', 0)} scored"]
    for lane in run.get("lanes", []):
        cands = ", ".join(f"{c['key']} {fmt_score(c['score'])}" for c in lane.get("candidates", []))
        lines.append(f"lane {lane['lane']}: candidates {cands or 'none'}; final {fmt_score(lane.get('score'))}")
        for step in lane.get("history", []):
            tried = "; ".join(f"{a['plan'][:120]} -> {fmt_score(a['score'])}" for a in step.get("attempts", []))
            lines.append(f"  refinement step {step['step']}: {fmt_score(step['before'])} -> "
                         f"{fmt_score(step['after'])}; tried: {tried or 'nothing'}")
        for ablation in lane.get("ablations", [])[-1:]:
            lines.append(f"  ablation: {ablation['summary'][:300]}")
    for r in run.get("ensemble_rounds", []):
        lines.append(f"ensemble round {r['round']}: {r['plan'][:160]} -> {fmt_score(r['score'])}")
    return "\n".join(lines)


def history_lines(history: Sequence[RunSummary]) -> str:
    return "\n".join(f"run {h['run_index']}: {h['status']}, score {fmt_score(h['best_score'])}, "
                     f"{h['duration_s']:.0f} s, settings changed: {h.get('overrides') or 'none'}"
                     for h in history)


def knob_lines(ctx: Context) -> str:
    values = asdict(ctx)
    return "\n".join(f"- {name}: {values[name]} ({'true/false' if b is None else f'{b[0]}..{b[1]}'})"
                     for name, b in ENHANCER_KNOBS.items())


def enhance(state: MetaState, runtime: Runtime[Context]) -> dict:
    history = state["history"]
    last, champion = history[-1], state.get("champion")
    ctx = runtime.context
    prompt = ENHANCE.format(
        task_name=state["task"]["name"], metric=state["task"]["metric"],
        direction="lower is better" if state["task"]["lower_is_better"] else "higher is better",
        history=history_lines(history),
        champion=(f"run {champion['run_index']} with score {fmt_score(champion['best_score'])}" if champion
                  else "none yet"),
        digest=digest_run(last), knobs=knob_lines(Context(**last["config"])))
    problems: list[str] = []
    try:
        answer = ask(ctx, run_id=state["meta_id"], node="enhance", role="enhancer",
                     call_key=f"enhance/after-run{last['run_index']}", prompt=prompt, parse=extract_json,
                     schema=ENHANCEMENT_SCHEMA)
        clean, problems = validate_enhancement(answer)
        clean["config_overrides"] = real_changes(clean["config_overrides"], ctx)
    except NO_ANSWER as exc:
        clean, problems = dict(SAFE_DEFAULT), [f"no usable answer ({exc}): safe defaults"]
    for problem in problems:
        log.warning("Enhancer after run %s: %s", last["run_index"], problem)
    enhancement = {**clean, "after_run": last["run_index"], "problems": problems}
    if wants_review(ctx, "enhancer"):
        enhancement = reviewed(enhancement)
    emit(node="enhance", event="enhancement", overrides=clean["config_overrides"],
         goals=len(clean["strategic_goals"]), problems=len(problems))
    return {"enhancements": [*state.get("enhancements", []), enhancement]}
