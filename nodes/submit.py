"""Submit: turn the best solution into a test-set predictor, validate submission.csv, fall back if needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import PipelineState, Solution, Submission
from nodes.common import emit, fmt_score, goals_for, task_header, task_of
from nodes.debug import run_with_debugging
from nodes.ensemble import final_candidates
from nodes.human_review import ask_person, wants_review
from nodes.llm import NO_ANSWER, ask, run_budget_problem, run_started_at
from prompts.common import PREDICTION_NOTES
from prompts.submit import SUBMISSION_PROBLEMS, SUBMISSION_RULES, SUBMISSION_SCRIPT
from runtime import board, keys
from runtime.catalog import applicable, render_example
from runtime.journal import open_journal
from runtime.parsing import extract_code
from runtime.task import Task, bring_probabilities_into_range, validate_submission

MAX_SOURCES = 3
PREVIEW_LINES = 6
EDIT_SUBMISSION = '{"submission_path": "/path/to/submission.csv"}: use that file instead (it is validated first)'
FLAG_OFF, FLAG_ON = "SUBMIT = False", "SUBMIT = True"


def submission_check(task: Task):
    """The problems of a script's submission, told to the debugger; probabilities out of range are mapped
    into it first, as the metric reads them (no model call for what the agent can fix itself)."""
    def check(result) -> str | None:
        problems = checked_submission(task, Path(result.attempt_dir) / board.SUBMISSION)
        return SUBMISSION_PROBLEMS.format(problems="; ".join(problems)) if problems else None
    return check


def checked_submission(task: Task, csv: Path) -> list[str]:
    """`validate_submission` after bringing out-of-range probabilities into range (which is recorded)."""
    if bring_probabilities_into_range(task, csv):
        emit(node="submit", event="repaired", path=str(csv), reason="probabilities mapped into [0, 1]")
    return validate_submission(task, csv)


def submission_goal(state: Mapping[str, Any]) -> str:
    return "".join(f"Goal: {g['focus']}\n" for g in goals_for(state, "submission"))


def submission_rules(task: Task, ctx: Context) -> str:
    return SUBMISSION_RULES.format(test_file=task.test_file, timeout_s=ctx.script_timeout_s,
                                   prediction_columns=", ".join(task.target_columns),
                                   submission_columns=", ".join([task.id_column, *task.target_columns]))


def flip_submit_flag(ctx: Context, state: Mapping[str, Any], source: Solution, index: int, *,
                     model_allowed: bool = True) -> Solution | None:
    """Scripts derived from the catalog carry a SUBMIT flag: setting it is the cheapest, surest conversion.

    Not used when the meta loop set a submission goal and the model may still be asked: then the model
    writes the script, to act on it. With the budget spent the flag is the best conversion left.
    """
    if FLAG_OFF not in source["code"] or (submission_goal(state) and model_allowed):
        return None
    task = task_of(state)
    solution, _ = run_with_debugging(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=source["code"].replace(FLAG_OFF, FLAG_ON, 1),
                                     exec_key=keys.pipeline_key(keys.SUBMIT, f"s{index}", "flag"), node="submit",
                                     check=submission_check(task), rules=submission_rules(task, ctx))
    return solution and {**solution, "origin": source.get("origin", "?")}


def write_submission_script(ctx: Context, state: Mapping[str, Any], source: Solution, index: int) -> Solution | None:
    task = task_of(state)
    refit = ("refit the same model on ALL training rows" if ctx.full_data_submission
             else "keep the model trained on the training split")
    prompt = SUBMISSION_SCRIPT.format(
        task_header=task_header(task, state["data_summary"]), metric=task.metric,
        score=fmt_score(source["score"]), code=source["code"], refit=refit, test_file=task.test_file,
        submission_columns=", ".join([task.id_column, *task.target_columns]),
        sample_file=task.sample_submission_file, prediction_note=PREDICTION_NOTES[task.prediction],
        goal=submission_goal(state), rules=submission_rules(task, ctx))
    key = keys.pipeline_key(keys.SUBMIT, f"s{index}")
    try:
        code = ask(ctx, run_id=state["run_id"], node="submit", role="coder", call_key=key, prompt=prompt,
                   parse=extract_code)
    except NO_ANSWER:
        return None
    solution, _ = run_with_debugging(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=code, exec_key=key, node="submit",
                                     origin=prompt, check=submission_check(task))
    return solution and {**solution, "origin": source.get("origin", "?")}


def catalog_submission(ctx: Context, state: Mapping[str, Any]) -> Solution | None:
    task = task_of(state)
    for approach in applicable(task):
        solution, _ = run_with_debugging(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=render_example(approach, task, submit=True),
                                         exec_key=keys.pipeline_key(keys.SUBMIT, "catalog", approach.key), node="submit",
                                         check=submission_check(task), rules=submission_rules(task, ctx))
        if solution:
            return {**solution, "origin": f"catalog:{approach.key}"}
    return None


def submission_proposal(workspace: str, held: dict) -> dict:
    """What the person reviewing sees: the board's submission, where it came from and its first lines."""
    csv = Path(workspace) / board.SUBMISSION
    with open(csv, encoding="utf-8", errors="replace") as f:
        head = [next(f, "").rstrip("\n") for _ in range(PREVIEW_LINES)]
    return {"submission_csv": str(csv), "script": str(Path(held["csv"]).parent), "source": held["source"],
            "validation_score": held["score"], "preview": [line for line in head if line]}


def edited_submission_problem(task: Task, edit: dict) -> str | None:
    path = edit.get("submission_path")
    if not isinstance(path, str) or not Path(path).is_file():
        return f"edit needs 'submission_path': an existing CSV file, not {path!r}"
    problems = validate_submission(task, path)
    return f"{path} is not a valid submission: {'; '.join(problems)}" if problems else None


def convert_best(ctx: Context, state: Mapping[str, Any], held: dict | None) -> tuple[Solution | None, Solution | None]:
    """The best solutions that beat the board, turned into a valid submission: (submission, its source).

    A solution no better on validation than what the board holds is not converted: that would cost model
    calls and script runs for a submission that could not replace the board's.
    """
    task = task_of(state)
    sources = [s for s in final_candidates(state)  # (all scored)
               if held is None or (s["score"] is not None and board.beats(s["score"], held["score"],
                                                                            task.lower_is_better))][:MAX_SOURCES]
    model_allowed = run_budget_problem(ctx, state["run_id"]) is None
    for index, source in enumerate(sources):
        final = (flip_submit_flag(ctx, state, source, index, model_allowed=model_allowed)
                 or write_submission_script(ctx, state, source, index))
        if final:
            return final, source
    if held is None and ctx.catalog_fallback:
        final = catalog_submission(ctx, state)
        return final, final
    return None, None


def ended(ctx: Context, state: Mapping[str, Any], reason: str, event: str) -> dict:
    open_journal(ctx.journal_path).upsert_run(state["run_id"], status="failed", stop_reason=reason)
    emit(node="submit", event=event, reason=reason)
    return {"status": "failed", "stop_reason": reason, "submission": {}}


def submit(state: PipelineState, runtime: Runtime[Context]) -> dict:
    """Offer the best solution's submission to the board, then end the run with what the board holds."""
    ctx = run_context(state, runtime)
    task, workspace = task_of(state), state["workspace"]
    started_at = run_started_at(ctx, state["run_id"])
    final, used = convert_best(ctx, state, board.current(workspace))
    if final and used:  # (both or neither)
        score = final["score"] if final.get("score") is not None else used["score"]
        assert score is not None  # a submission script counts only with a score, and so does its source
        board.offer(workspace, Path(final["path"]) / board.SUBMISSION, score=score, source=used.get("origin", "?"),
                    lower_is_better=task.lower_is_better, started_at=started_at)
    budget = run_budget_problem(ctx, state["run_id"])  # budgets only grow: spent now if it cut anything short
    held = board.current(workspace)
    if held is None:
        reason = ("no solution produced a valid submission" if final_candidates(state)
                  else "no generated script produced a validation score")
        return ended(ctx, state, f"{reason} ({budget})" if budget else reason, "failed")
    stop_reason = budget or "finished"
    if wants_review(ctx, "submission"):
        decision = ask_person("submission", submission_proposal(workspace, held), EDIT_SUBMISSION,
                              lambda edit: edited_submission_problem(task, edit))
        if decision["action"] == "reject":
            return ended(ctx, state, "the submission was rejected at human review", "rejected")
        if decision["action"] == "edit":
            board.offer(workspace, decision["edit"]["submission_path"], score=held["score"], force=True,
                        source=f"human review (instead of {held['source']})", lower_is_better=task.lower_is_better,
                        started_at=started_at)
            stop_reason = f"{stop_reason}; submission replaced at human review"
            held = board.current(workspace)
            assert held is not None  # just written: the board never empties
    path = str(Path(workspace) / board.SUBMISSION)
    open_journal(ctx.journal_path).upsert_run(state["run_id"], status="done", best_score=held["score"],
                                              submission=path, stop_reason=stop_reason)
    emit(node="submit", event="submitted", path=path, source=held["source"], score=held["score"],
         stop_reason=stop_reason)
    best: Solution
    if final and used and held["source"] == used.get("origin"):
        best = {**used, "submission_score": final["score"]}
    else:
        best = {"score": held["score"], "origin": held["source"], "path": str(Path(held["csv"]).parent)}
    submission: Submission = {"path": path, "source": held["source"], "script": str(Path(held["csv"]).parent),
                              "validation_score": held["score"], "history": held["history"]}
    return {"status": "done", "stop_reason": stop_reason, "best": best, "submission": submission}
