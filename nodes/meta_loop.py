"""The meta loop's bookkeeping: plan each run, record it (whether to go on: `graph.routing.should_continue`)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from graph.context import Context
from graph.inputs import check_context, check_input, check_thread
from graph.state import Enhancement, LaneResult, LaneSummary, MetaState, RunSummary, Solution
from nodes.common import emit, is_better, ranked
from nodes.ensemble import final_candidates
from nodes.evaluate import floor_solutions
from runtime import keys
from runtime.files import atomic_write_text
from runtime.journal import open_journal, redact
from runtime.task import load_task


def champion_of(history: Sequence[RunSummary], lower_is_better: bool) -> RunSummary | None:
    """The best run so far (ties: the earliest), not merely the latest one."""
    best: RunSummary | None = None
    for run in history:
        if is_better(run.get("best_score"), None if best is None else best.get("best_score"), lower_is_better):
            best = run
    return best


def meta_workspace(state: Mapping[str, Any], ctx: Context) -> Path:
    return (Path(ctx.workspace_root) / state["task"]["name"] / state["meta_id"]).resolve()


def register_run(state: Mapping[str, Any], task, ctx: Context) -> str:
    """The run's name, and its journal row for a run started through the API (the CLI and the Python client
    write it before they start): without a name the run is named after its thread, so `mlestar` finds it."""
    thread_id = get_config()["configurable"]["thread_id"]
    meta_id = state.get("meta_id") or thread_id
    check_thread(meta_id, thread_id)
    journal = open_journal(ctx.journal_path)
    if not (journal.get_run(meta_id) or {}).get("context"):
        journal.upsert_run(meta_id, task=task.name, task_dir=task.root, status="running", context=asdict(ctx))
    return meta_id


def plan_run(state: MetaState, runtime: Runtime[Context]) -> dict:
    """Configuration of the next run: the user's settings, then the last Enhancer's overrides and goals."""
    ctx = check_context(runtime.context)
    update: dict = {}
    if "task" not in state:
        check_input(state, "mle_star", run_id_key="meta_id", run_id_required=False)
        task = load_task(state["task_dir"])
        update.update(meta_id=register_run(state, task, ctx),
                      task={"name": task.name, "metric": task.metric, "lower_is_better": task.lower_is_better},
                      started_at=time.time(), runs_planned=ctx.num_runs, history=[], enhancements=[],
                      stop_rules={"budget_s": ctx.computational_budget_s,
                                  "patience": ctx.early_stop_patience})
        state = {**state, **update}
    index = len(state["history"])
    enhancement = state["enhancements"][-1] if state["enhancements"] and index > 0 else None
    overrides = enhancement["config_overrides"] if enhancement and ctx.allow_config_override else {}
    champion = champion_of(state["history"], state["task"]["lower_is_better"])
    warm = champion.get("best_solution") if champion and ctx.warm_start else None
    # A run of that name exists when the thread is replayed from an earlier checkpoint (a fork on the same
    # thread, e.g. from Studio): the branch gets its own run id, journal rows and folder. A run rebuilt from
    # the journal keeps the names, which is how it finds its finished work.
    run_id = keys.pipeline_run_id(state["meta_id"], index)
    if not state.get("from_journal"):
        run_id = open_journal(ctx.journal_path).unused_run_id(run_id)
    emit(node="plan_run", event="run", index=index, overrides=overrides or None,
         goals=len(enhancement["strategic_goals"]) if enhancement else 0)
    return {**update, "run_id": run_id, "run_started_at": time.time(),
            "workspace_dir": str(meta_workspace(state, ctx) / run_id.removeprefix(f"{state['meta_id']}-")),
            "overrides": overrides, "goals": enhancement["strategic_goals"] if enhancement else [],
            "warm_start": warm or {}, "floor": []}


def compact_lanes(lane_results: Sequence[LaneResult] | None) -> list[LaneSummary]:
    return [{"lane": r["lane"], "score": (r.get("solution") or {}).get("score"), "start": r.get("start") or {},
             "candidates": r.get("candidates", []), "merges": r.get("merges", []), "history": r.get("history", []),
             "ablations": [{"step": a["step"], "summary": a["summary"][:400], "original": a.get("original"),
                            "variants": a.get("variants", [])} for a in r.get("ablations", [])]}
            for r in sorted(lane_results or [], key=lambda r: r["lane"])]


def write_json_atomic(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def history_file(history: Sequence[RunSummary], enhancements: Sequence[Enhancement]) -> list[dict]:
    """run_history.json: the seed document's format (run_id, status, start_time_iso, duration_seconds,
    best_score, best_solution_path, config_used, enhancer_rationale, enhancer_output) plus our extras."""
    after = {e["after_run"]: e for e in enhancements}
    return [{
        "run_id": h["run_index"], "status": h["status"], "start_time_iso": h["start_time_iso"],
        "duration_seconds": round(h["duration_s"], 1), "best_score": h["best_score"],
        "best_solution_path": h["best_solution_path"],
        "config_used": {**h["config"], "journal_path": redact(h["config"].get("journal_path", ""))},  # no password
        "enhancer_rationale": (h["shaped_by"].get("strategic_summary") if h["shaped_by"] else None) or "Baseline run.",
        "enhancer_output": {k: v for k, v in after.get(h["run_index"], {}).items() if k != "after_run"},
        "thread_run_id": h["run_id"], "submission_path": h["submission_path"], "stop_reason": h["stop_reason"],
    } for h in history]


def submitted_solution(state: Mapping[str, Any]) -> Solution | None:
    """The script behind the run's submission, as the board's source names it: a lane's or an ensemble round's
    solution, or the floor's catalog code. The blend combines several scripts' predictions and has no script of
    its own: then, as when nothing was submitted, the best single solution. None when nothing scored."""
    source = (state.get("submission") or {}).get("source")
    floor = dict(zip((f"floor:{f['key']}" for f in state.get("floor", [])), floor_solutions(state)))
    candidates = final_candidates(state)
    chosen = (None if source is None else floor.get(source)) or next(
        (s for s in candidates if s.get("origin") == source), None)
    return chosen or next(iter(ranked([*candidates, *floor.values()], state["task"]["lower_is_better"])), None)


def record(state: MetaState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    index = len(state["history"])
    best = [s for s in [submitted_solution(state)] if s]
    submission = state.get("submission") or {}
    usage = open_journal(ctx.journal_path).usage(state["run_id"])
    enhancement = state["enhancements"][-1] if state["enhancements"] and index > 0 else None
    config = asdict(replace(ctx, **(state.get("overrides") or {})))
    summary: RunSummary = {
        "run_index": index, "run_id": state["run_id"], "status": state.get("status", "failed"),
        "stop_reason": state.get("stop_reason"),
        "start_time_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state["run_started_at"])),
        "duration_s": time.time() - state["run_started_at"],
        "best_score": submission.get("validation_score", best[0]["score"] if best else None),
        "best_origin": submission.get("source") or (best[0]["origin"] if best else None),
        "best_solution": {"code": best[0]["code"], "score": best[0]["score"], "origin": best[0].get("origin")}
        if best else None,
        "best_solution_path": submission.get("script") or (best[0]["path"] if best else None),
        "submission_path": submission.get("path"), "submissions": submission.get("history") or [],
        "config": config, "overrides": state.get("overrides") or {},
        "goals": state.get("goals") or [], "shaped_by": enhancement,
        "scripts": usage["executions"], "scripts_ok": usage["executions_scored"],
        "lanes": compact_lanes(state.get("lane_results")),
        "ensemble_rounds": [{"round": r["round"], "plan": r["plan"], "score": r["score"]}
                            for r in state.get("ensemble_rounds", [])],
    }
    history = [*state["history"], summary]
    champion = champion_of(history, state["task"]["lower_is_better"])
    journal = open_journal(ctx.journal_path)
    journal.record_meta_run(state["meta_id"], {k: v for k, v in summary.items() if k not in ("best_solution", "lanes")})
    write_json_atomic(meta_workspace(state, ctx) / "run_history.json", history_file(history, state["enhancements"]))
    emit(node="record", event="run done", index=index, status=summary["status"], score=summary["best_score"])
    return {"history": history, "champion": champion}
