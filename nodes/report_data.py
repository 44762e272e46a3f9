"""The facts a report shows, derived from a meta loop's final state and its journal's script executions.

Pure functions, no I/O. The state says what each attempt scored and what the lane did with it; the journal
says when its script finished (debug rounds included) and what an ablation study printed. An attempt is
*kept* when it became its lane's solution (the first-ranked candidate, a merge that did not hurt, the best
attempt of a refinement step when it beat the step's starting score), or, for an ensemble round, when the
run's submission came from it. Every other scored attempt is *discarded*; an attempt without a score *failed*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nodes.common import is_better
from runtime import keys
from runtime.keys import PIPELINE_LANE, exec_phase, key_lane

ENSEMBLE_LANE = PIPELINE_LANE  # the attempts of the ensemble rounds belong to no lane
# The ablation prompt asks for one `<variant name>: <score>` line per variant and the original's score as
# `Final Validation Performance: <score>`; log lines such as "[LightGBM] [Info] ...: 3" are not variants.
SCORE_LINE = re.compile(r"^\s*([^:\[\n][^:\n]{0,79}?)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$", re.M)
ORIGINAL_NAME = re.compile(r"^(final validation performance|original|baseline|base|full)\b", re.I)
MAX_VARIANTS = 8
#: a lane that started from the catalog's code (nodes/evaluate.py: the floor's run, or the fallback)
CATALOG_START = re.compile(r"catalog:(?P<key>.+)")
#: the origin of an ablation variant kept by a refinement step (nodes/refine.py)
ABLATION_VARIANT = re.compile(r"ablation:t\d+v(?P<i>\d+)")


def attempt_key(exec_key: str) -> str:
    """The journal key of an attempt without its debug round: `lane0/t1/k0/d2` -> `lane0/t1/k0`."""
    return keys.without_debug_round(exec_key)


def finish_times(executions: list[dict]) -> dict[tuple[str, str], float]:
    """(pipeline run id, attempt key) -> when the attempt's last script finished (rows come oldest first)."""
    return {(row["run_id"], attempt_key(row["exec_key"])): row["created_at"] for row in executions}


def first_best(scores: list[float | None], lower_is_better: bool) -> int | None:
    """Index of the best score, the earliest among ties (as the graph's stable ranking picks it)."""
    best = None
    for i, score in enumerate(scores):
        if is_better(score, None if best is None else scores[best], lower_is_better):
            best = i
    return best


def best_lane_score(run: dict, lower_is_better: bool) -> float | None:
    scores = [lane.get("score") for lane in run.get("lanes", [])]
    index = first_best(scores, lower_is_better)
    return None if index is None else scores[index]


def run_attempts(run: dict, lower_is_better: bool, times: dict, started_at: float | None) -> list[dict]:
    """Every attempt of one pipeline run: run, lane (ENSEMBLE_LANE: ensemble), kind, label, plan, base, score, kept, time."""
    found: list[dict] = []

    def add(lane: int, kind: str, key: str, label: str, score, kept: bool, plan=None, base=None) -> None:
        finished = times.get((run["run_id"], key))
        found.append({"run": run["run_index"], "lane": lane, "kind": kind, "label": label, "plan": plan,
                      "base": base, "score": score, "kept": bool(kept) and score is not None,
                      "time": None if finished is None or started_at is None else finished - started_at})

    for lane in run.get("lanes", []):
        n = lane["lane"]
        candidates = lane.get("candidates", [])
        start = lane.get("start")  # recorded by evaluate; older runs: the best candidate
        initial = first_best([c.get("score") for c in candidates], lower_is_better)
        for i, candidate in enumerate(candidates):
            kept = start.get("origin") == f"candidate:{candidate['key']}" if start is not None else i == initial
            add(n, "candidate", keys.lane_key(n, "eval", candidate["key"]), f"candidate {candidate['key']}",
                candidate.get("score"), kept)
        catalog = CATALOG_START.fullmatch((start or {}).get("origin") or "")
        if catalog:  # the fallback to the catalog's code in the lane, or the floor's run of the approach
            key = keys.lane_key(n, "catalog", catalog["key"])
            key = key if (run["run_id"], key) in times else keys.pipeline_key(keys.FLOOR, catalog["key"])
            add(n, "catalog", key, f"catalog {catalog['key']}", start.get("score"), True)
        for i, merge in enumerate(lane.get("merges", [])):
            add(n, "merge", keys.lane_key(n, f"merge{i}"), f"merge {merge.get('candidate')}", merge.get("score"),
                merge.get("kept"))
        for step in lane.get("history", []):
            t = step["step"]
            if "kept" in step:  # recorded by conclude_step
                kept_k = next((k for k in range(len(step.get("attempts", []))) if step["kept"] == f"refine:t{t}k{k}"),
                              None)
            else:  # runs recorded before it said so
                scores = [a.get("score") for a in step.get("attempts", [])]
                kept_k = first_best(scores, lower_is_better)
                if kept_k is None or not is_better(scores[kept_k], step.get("before"), lower_is_better):
                    kept_k = None
            for k, attempt in enumerate(step.get("attempts", [])):
                add(n, "refine", keys.step_key(n, t, f"k{k}"), f"step {t} attempt {k}",
                    attempt.get("score"), k == kept_k, attempt.get("plan"), step.get("before"))
            variant = ABLATION_VARIANT.fullmatch(step.get("kept") or "")
            if variant:
                add(n, "ablation", keys.step_key(n, t, "ablation", f"v{variant['i']}"),
                    f"step {t} ablation variant {variant['i']}", step.get("after"), True, None, step.get("before"))
    lanes_best = best_lane_score(run, lower_is_better)
    for r in run.get("ensemble_rounds", []):
        add(ENSEMBLE_LANE, "ensemble", keys.pipeline_key("ensemble", f"r{r['round']}"), f"ensemble round {r['round']}", r.get("score"),
            run.get("best_origin") == f"ensemble:r{r['round']}", r.get("plan"), lanes_best)
    return found


def all_attempts(state: Mapping[str, Any], executions: list[dict]) -> list[dict]:
    times = finish_times(executions)
    lower = state["task"]["lower_is_better"]
    return [a for run in state.get("history", [])
            for a in run_attempts(run, lower, times, state.get("started_at"))]


def attempt_counts(attempts: list[dict]) -> dict[str, int]:
    scored = [a for a in attempts if a["score"] is not None]
    kept = sum(a["kept"] for a in scored)
    return {"attempts": len(attempts), "kept": kept, "discarded": len(scored) - kept,
            "failed": len(attempts) - len(scored)}


def run_spans(state: Mapping[str, Any], executions: list[dict]) -> list[tuple[int, float, float]]:
    """(run index, first, last script time) in seconds since the thread started, for runs with scripts."""
    started = state.get("started_at")
    if started is None:
        return []
    spans = []
    for run in state.get("history", []):
        times = [row["created_at"] for row in executions if row["run_id"] == run["run_id"]]
        if times:
            spans.append((run["run_index"], min(times) - started, max(times) - started))
    return spans


def parse_ablation(stdout: str | None) -> tuple[float | None, list[tuple[str, float]]]:
    """(the original's score, [(variant, score), ...]) from an ablation study's printed lines."""
    original: float | None = None
    variants: list[tuple[str, float]] = []
    for name, value in SCORE_LINE.findall(stdout or ""):
        if ORIGINAL_NAME.match(name.strip()):
            original = float(value) if original is None or name.lower().startswith("final") else original
        elif len(variants) < MAX_VARIANTS:
            variants.append((name.strip(), float(value)))
    return original, variants


def ablation_effects(state: Mapping[str, Any], executions: list[dict]) -> list[dict]:
    """Per refinement step with a finished study: run, lane, step, original, variants (name, score, effect =
    variant score - original) and the findings. Effects are raw differences: read them with the metric's
    direction. The studies are read from the state, where the ablate node recorded the scores it measured;
    runs recorded before that (one model-written ablation script per study) are read from the script's output."""
    runs = {run["run_id"]: run for run in state.get("history", [])}
    studies: dict[tuple, dict] = {}
    for run in runs.values():
        for lane in run.get("lanes", []):
            for study in lane.get("ablations", []):
                scored = [v for v in study.get("variants") or [] if v.get("score") is not None]
                if study.get("original") is None or not scored:
                    continue
                studies[(run["run_index"], lane["lane"], study["step"])] = {
                    "run": run["run_index"], "lane": lane["lane"], "step": study["step"],
                    "original": study["original"], "summary": study["summary"],
                    "variants": [{**v, "effect": v["score"] - study["original"]} for v in scored]}
    for row in executions:
        study = keys.ablation_step(attempt_key(row["exec_key"]))
        if not study or row["run_id"] not in runs or row.get("status") != "ok":
            continue
        original, variants = parse_ablation(row.get("stdout_tail"))
        original = row.get("score") if original is None else original
        if original is None or not variants:
            continue
        run, (lane, step) = runs[row["run_id"]], study
        if (run["run_index"], lane, step) in studies:
            continue
        summary = next((a["summary"] for ln in run.get("lanes", []) if ln["lane"] == lane
                        for a in ln.get("ablations", []) if a["step"] == step), "")
        studies[(run["run_index"], lane, step)] = {
            "run": run["run_index"], "lane": lane, "step": step, "original": original, "summary": summary,
            "variants": [{"name": name, "score": score, "effect": score - original} for name, score in variants]}
    return [studies[key] for key in sorted(studies)]


def refinement_steps(state: Mapping[str, Any]) -> list[dict]:
    """Every refinement step: run, lane, step, block, before, after, attempts (plan, score)."""
    return [{"run": run["run_index"], "lane": lane["lane"], **step}
            for run in state.get("history", []) for lane in run.get("lanes", []) for step in lane.get("history", [])]


def ensemble_results(state: Mapping[str, Any]) -> list[dict]:
    """Per run with ensemble rounds: the best single-lane score and each round (plan, score, kept)."""
    lower = state["task"]["lower_is_better"]
    return [{"run": run["run_index"], "lanes_best": best_lane_score(run, lower),
             "rounds": [{**r, "kept": run.get("best_origin") == f"ensemble:r{r['round']}"}
                        for r in run["ensemble_rounds"]]}
            for run in state.get("history", []) if run.get("ensemble_rounds")]


def final_solution(state: Mapping[str, Any]) -> dict | None:
    """The champion run's best solution (its validation script), if the state kept it."""
    champion = state.get("champion") or {}
    solution = champion.get("best_solution") or {}
    return solution if solution.get("code") else None


# -- the timeline: where the time went ---------------------------------------------------------------
#
# One interval per journal row: a model call ran from created_at - latency_s to created_at (the answer is
# recorded when it arrives), a script from created_at - duration_s to created_at (recorded when it ended).
# A row's `reused` counter counts the times a resumed node read it back instead of redoing the work: the
# re-reads took no time and have no rows of their own, while the row itself is work that was done once,
# so every row is drawn and the re-reads are only counted.

def call_interval(row: dict) -> dict:
    """A model-call row as an interval in absolute time (seconds since the epoch)."""
    duration = row.get("latency_s") or 0.0
    return {"kind": "model", "run_id": row["run_id"], "lane": key_lane(row.get("call_key")),
            "phase": row.get("node") or "?", "key": row.get("call_key"), "start": row["created_at"] - duration,
            "duration": duration, "failed": False, "reused": row.get("reused") or 0}


def exec_interval(row: dict) -> dict:
    """A script-execution row as an interval in absolute time; `failed` unless its status is ok."""
    duration = row.get("duration_s") or 0.0
    lane = row["lane"] if row.get("lane") is not None else key_lane(row["exec_key"])
    return {"kind": "script", "run_id": row["run_id"], "lane": lane, "phase": exec_phase(row["exec_key"]),
            "key": row["exec_key"], "start": row["created_at"] - duration, "duration": duration,
            "failed": row.get("status") != "ok", "reused": row.get("reused") or 0}


def union_length(intervals: list[dict]) -> float:
    """Seconds during which at least one of the intervals was running."""
    total, reach = 0.0, float("-inf")
    for s in sorted(intervals, key=lambda s: s["start"]):
        end = s["start"] + s["duration"]
        if end > reach:
            total += end - max(s["start"], reach)
            reach = end
    return total


def run_index(run_id: str | None, runs: dict[str, int] | None) -> int | None:
    """The pipeline run of a row: from the state's history (run_id -> run_index) when given, else from the
    `<meta>-run<k>` form of the id; None for the meta loop's own rows (the Enhancer)."""
    if runs is not None:
        return None if run_id is None else runs.get(run_id)
    return keys.run_index_of(run_id)


def run_bounds(intervals: list[dict], runs: dict[str, int] | None = None) -> list[dict]:
    """Per pipeline run, in run order: run (index), start (first start) and end (last end)."""
    bounds: dict[int, dict] = {}
    for s in intervals:
        index = run_index(s["run_id"], runs)
        if index is None:
            continue
        run = bounds.setdefault(index, {"run": index, "start": s["start"], "end": s["start"]})
        run["start"] = min(run["start"], s["start"])
        run["end"] = max(run["end"], s["start"] + s["duration"])
    return [bounds[k] for k in sorted(bounds)]


def first_submission(intervals: list[dict]) -> float | None:
    """When the first submission script (floor/ or submit/) ended ok as the last debug round of its attempt.

    A script that ran but wrote an invalid submission.csv is followed by another debug round, so the last
    round stands for the attempt; one that stayed invalid after the last round still counts (approximate)."""
    last: dict[tuple, dict] = {}
    for s in sorted(intervals, key=lambda s: s["start"]):
        if s["kind"] == "script" and keys.writes_submission(s["key"]):
            last[(s["run_id"], attempt_key(s["key"]))] = s
    ends = [s["start"] + s["duration"] for s in last.values() if not s["failed"]]
    return min(ends) if ends else None


def phase_times(intervals: list[dict]) -> list[dict]:
    """Per phase, in order of first start: phase, calls, model_s, scripts, failed, script_s."""
    phases: dict[str, dict] = {}
    for s in sorted(intervals, key=lambda s: s["start"]):
        row = phases.setdefault(s["phase"], {"phase": s["phase"], "calls": 0, "model_s": 0.0, "scripts": 0,
                                             "failed": 0, "script_s": 0.0})
        if s["kind"] == "model":
            row["calls"] += 1
            row["model_s"] += s["duration"]
        else:
            row["scripts"] += 1
            row["failed"] += s["failed"]
            row["script_s"] += s["duration"]
    return list(phases.values())


def time_totals(intervals: list[dict], wall_s: float, calls_known: bool) -> dict:
    """wall_s, model_s, calls, script_s, scripts, failed, busy_s (something ran), idle_s (nothing did) and
    reused (re-reads on resume). Model and script seconds add up over lanes, so they can exceed the wall time.
    Without the model-call rows, model_s, calls and idle_s are None (the scripts' gaps are not idle)."""
    models = [s for s in intervals if s["kind"] == "model"]
    scripts = [s for s in intervals if s["kind"] == "script"]
    busy = union_length(intervals)
    return {"wall_s": wall_s, "model_s": sum(s["duration"] for s in models) if calls_known else None,
            "calls": len(models) if calls_known else None, "script_s": sum(s["duration"] for s in scripts),
            "scripts": len(scripts), "failed": sum(s["failed"] for s in scripts), "busy_s": busy,
            "idle_s": max(0.0, wall_s - busy) if calls_known else None,
            "reused": sum(s["reused"] for s in intervals)}


def timeline(calls: list[dict] | None, executions: list[dict], started_at: float | None = None,
             runs: dict[str, int] | None = None) -> dict | None:
    """Where a thread's time went, from journal rows: model calls (run_id, node, call_key, latency_s,
    created_at, reused; None: not known) and script executions (run_id, lane, exec_key, status, duration_s,
    created_at, reused). Times are seconds since the thread's start: `started_at` or the earliest start.
    `runs` (run_id -> run index, from the state's history) names the pipeline runs.

    Returns None without rows, else intervals (kind model|script, run_id, lane, phase, key, start, duration,
    failed, reused; by start), end (the last end), runs (run_bounds), first_submission, phases (phase_times)
    and totals (time_totals)."""
    absolute = [*(call_interval(r) for r in calls or []), *(exec_interval(r) for r in executions or [])]
    if not absolute:
        return None
    t0 = min(s["start"] for s in absolute)
    t0 = t0 if started_at is None else min(t0, started_at)
    intervals = sorted(({**s, "start": s["start"] - t0} for s in absolute), key=lambda s: (s["start"], s["lane"]))
    end = max(s["start"] + s["duration"] for s in intervals)
    return {"intervals": intervals, "end": end, "runs": run_bounds(intervals, runs),
            "first_submission": first_submission(intervals), "phases": phase_times(intervals),
            "totals": time_totals(intervals, end, calls is not None)}
