"""The facts a report shows, derived from a meta loop's final state and its journal's script executions.

Pure functions, no I/O. The state says what each attempt scored and what the lane did with it; the journal
says when its script finished (debug rounds included) and what an ablation study printed. An attempt is
*kept* when it became its lane's solution (the first-ranked candidate, a merge that did not hurt, the best
attempt of a refinement step when it beat the step's starting score), or, for an ensemble round, when the
run's submission came from it. Every other scored attempt is *discarded*; an attempt without a score *failed*.
"""

from __future__ import annotations

import re

from nodes.common import is_better

ENSEMBLE_LANE = -1
DEBUG_ROUND = re.compile(r"/d\d+$")
ABLATION_KEY = re.compile(r"^lane(\d+)/t(\d+)/ablation$")
# The ablation prompt asks for one `<variant name>: <score>` line per variant and the original's score as
# `Final Validation Performance: <score>`; log lines such as "[LightGBM] [Info] ...: 3" are not variants.
SCORE_LINE = re.compile(r"^\s*([^:\[\n][^:\n]{0,79}?)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$", re.M)
ORIGINAL_NAME = re.compile(r"^(final validation performance|original|baseline|base|full)\b", re.I)
MAX_VARIANTS = 8


def attempt_key(exec_key: str) -> str:
    """The journal key of an attempt without its debug round: `lane0/t1/k0/d2` -> `lane0/t1/k0`."""
    return DEBUG_ROUND.sub("", exec_key)


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
    """Every attempt of one pipeline run: run, lane (-1: ensemble), kind, label, plan, base, score, kept, time."""
    found: list[dict] = []

    def add(lane: int, kind: str, key: str, label: str, score, kept: bool, plan=None, base=None) -> None:
        finished = times.get((run["run_id"], key))
        found.append({"run": run["run_index"], "lane": lane, "kind": kind, "label": label, "plan": plan,
                      "base": base, "score": score, "kept": bool(kept) and score is not None,
                      "time": None if finished is None or started_at is None else finished - started_at})

    for lane in run.get("lanes", []):
        n = lane["lane"]
        candidates = lane.get("candidates", [])
        initial = first_best([c.get("score") for c in candidates], lower_is_better)
        for i, candidate in enumerate(candidates):
            add(n, "candidate", f"lane{n}/eval/{candidate['key']}", f"candidate {candidate['key']}",
                candidate.get("score"), i == initial)
        for i, merge in enumerate(lane.get("merges", [])):
            add(n, "merge", f"lane{n}/merge{i}", f"merge {merge.get('candidate')}", merge.get("score"),
                merge.get("kept"))
        for step in lane.get("history", []):
            scores = [a.get("score") for a in step.get("attempts", [])]
            best = first_best(scores, lower_is_better)
            improved = best is not None and is_better(scores[best], step.get("before"), lower_is_better)
            for k, attempt in enumerate(step.get("attempts", [])):
                add(n, "refine", f"lane{n}/t{step['step']}/k{k}", f"step {step['step']} attempt {k}",
                    attempt.get("score"), improved and k == best, attempt.get("plan"), step.get("before"))
    lanes_best = best_lane_score(run, lower_is_better)
    for r in run.get("ensemble_rounds", []):
        add(ENSEMBLE_LANE, "ensemble", f"ensemble/r{r['round']}", f"ensemble round {r['round']}", r.get("score"),
            run.get("best_origin") == f"ensemble:r{r['round']}", r.get("plan"), lanes_best)
    return found


def all_attempts(state: dict, executions: list[dict]) -> list[dict]:
    times = finish_times(executions)
    lower = state["task"]["lower_is_better"]
    return [a for run in state.get("history", [])
            for a in run_attempts(run, lower, times, state.get("started_at"))]


def attempt_counts(attempts: list[dict]) -> dict[str, int]:
    scored = [a for a in attempts if a["score"] is not None]
    kept = sum(a["kept"] for a in scored)
    return {"attempts": len(attempts), "kept": kept, "discarded": len(scored) - kept,
            "failed": len(attempts) - len(scored)}


def run_spans(state: dict, executions: list[dict]) -> list[tuple[int, float, float]]:
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
    original, variants = None, []
    for name, value in SCORE_LINE.findall(stdout or ""):
        if ORIGINAL_NAME.match(name.strip()):
            original = float(value) if original is None or name.lower().startswith("final") else original
        elif len(variants) < MAX_VARIANTS:
            variants.append((name.strip(), float(value)))
    return original, variants


def ablation_effects(state: dict, executions: list[dict]) -> list[dict]:
    """Per refinement step with a finished study: run, lane, step, original, variants (name, score, effect =
    variant score - original) and the reviewer's summary. Effects are raw differences: read them with the
    metric's direction."""
    runs = {run["run_id"]: run for run in state.get("history", [])}
    studies: dict[tuple, dict] = {}
    for row in executions:
        match = ABLATION_KEY.match(attempt_key(row["exec_key"]))
        if not match or row["run_id"] not in runs or row.get("status") != "ok":
            continue
        original, variants = parse_ablation(row.get("stdout_tail"))
        original = row.get("score") if original is None else original
        if original is None or not variants:
            continue
        run, lane, step = runs[row["run_id"]], int(match.group(1)), int(match.group(2))
        summary = next((a["summary"] for l in run.get("lanes", []) if l["lane"] == lane
                        for a in l.get("ablations", []) if a["step"] == step), "")
        studies[(run["run_index"], lane, step)] = {
            "run": run["run_index"], "lane": lane, "step": step, "original": original, "summary": summary,
            "variants": [{"name": name, "score": score, "effect": score - original} for name, score in variants]}
    return [studies[key] for key in sorted(studies)]


def refinement_steps(state: dict) -> list[dict]:
    """Every refinement step: run, lane, step, block, before, after, attempts (plan, score)."""
    return [{"run": run["run_index"], "lane": lane["lane"], **step}
            for run in state.get("history", []) for lane in run.get("lanes", []) for step in lane.get("history", [])]


def ensemble_results(state: dict) -> list[dict]:
    """Per run with ensemble rounds: the best single-lane score and each round (plan, score, kept)."""
    lower = state["task"]["lower_is_better"]
    return [{"run": run["run_index"], "lanes_best": best_lane_score(run, lower),
             "rounds": [{**r, "kept": run.get("best_origin") == f"ensemble:r{r['round']}"}
                        for r in run["ensemble_rounds"]]}
            for run in state.get("history", []) if run.get("ensemble_rounds")]


def final_solution(state: dict) -> dict | None:
    """The champion run's best solution (its validation script), if the state kept it."""
    champion = state.get("champion") or {}
    solution = champion.get("best_solution") or {}
    return solution if solution.get("code") else None
