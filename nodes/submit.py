"""Submit: turn the best solution into a test-set predictor, validate submission.csv, fall back if needed."""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from nodes.common import emit, fmt_score, task_header, task_of
from nodes.debug import run_with_debugging
from nodes.ensemble import final_candidates
from nodes.llm import ask, run_budget_problem
from nodes.review import ask_person, wants_review
from prompts.submit import SUBMISSION_PROBLEMS, SUBMISSION_RULES, SUBMISSION_SCRIPT
from runtime.catalog import applicable, render_example
from runtime.files import atomic_copy
from runtime.journal import open_journal
from runtime.parsing import AnswerError, extract_code
from runtime.task import Task, validate_submission

MAX_SOURCES = 3
PREVIEW_LINES = 6
EDIT_SUBMISSION = '{"submission_path": "/path/to/submission.csv"}: use that file instead (it is validated first)'
FLAG_OFF, FLAG_ON = "SUBMIT = False", "SUBMIT = True"
PREDICTION_NOTES = {
    "label": "one predicted label per row, same type as in the training data",
    "probability": "the predicted probability of the positive class",
    "class_probabilities": "one probability column per class, each row summing to 1",
    "value": "the predicted value",
}


def submission_check(task: Task):
    def check(result) -> str | None:
        problems = validate_submission(task, Path(result.attempt_dir) / "submission.csv")
        return SUBMISSION_PROBLEMS.format(problems="; ".join(problems)) if problems else None
    return check


def submission_goal(state: dict) -> str:
    goals = [g for g in state.get("goals", []) if g.get("target_agent_phase") == "submission"]
    return "".join(f"Goal: {g['focus']}\n" for g in sorted(goals, key=lambda g: g["priority"]))


def submission_rules(task: Task, ctx: Context) -> str:
    return SUBMISSION_RULES.format(test_file=task.test_file, timeout_s=ctx.script_timeout_s,
                                   submission_columns=", ".join([task.id_column, *task.target_columns]))


def flip_submit_flag(ctx: Context, state: dict, source: dict, index: int, *, model_allowed: bool = True) -> dict | None:
    """Scripts derived from the catalog carry a SUBMIT flag: setting it is the cheapest, surest conversion.

    Not used when the meta loop set a submission goal and the model may still be asked: then the model
    writes the script, to act on it. With the budget spent the flag is the best conversion left.
    """
    if FLAG_OFF not in source["code"] or (submission_goal(state) and model_allowed):
        return None
    task = task_of(state)
    solution, _ = run_with_debugging(ctx, {**state, "lane": -1}, code=source["code"].replace(FLAG_OFF, FLAG_ON, 1),
                                     exec_key=f"submit/s{index}/flag", node="submit",
                                     check=submission_check(task), rules=submission_rules(task, ctx))
    return solution and {**solution, "origin": source.get("origin", "?")}


def write_submission_script(ctx: Context, state: dict, source: dict, index: int) -> dict | None:
    task = task_of(state)
    refit = ("refit the same model on ALL training rows" if ctx.full_data_submission
             else "keep the model trained on the training split")
    prompt = SUBMISSION_SCRIPT.format(
        task_header=task_header(task, state["data_summary"]), metric=task.metric,
        score=fmt_score(source["score"]), code=source["code"], refit=refit, test_file=task.test_file,
        submission_columns=", ".join([task.id_column, *task.target_columns]),
        sample_file=task.sample_submission_file, prediction_note=PREDICTION_NOTES[task.prediction],
        goal=submission_goal(state), rules=submission_rules(task, ctx))
    key = f"submit/s{index}"
    try:
        code = ask(ctx, run_id=state["run_id"], node="submit", role="coder", call_key=key, prompt=prompt,
                   parse=extract_code)
    except AnswerError:
        return None
    solution, _ = run_with_debugging(ctx, {**state, "lane": -1}, code=code, exec_key=key, node="submit",
                                     check=submission_check(task), rules=submission_rules(task, ctx))
    return solution and {**solution, "origin": source.get("origin", "?")}


def catalog_submission(ctx: Context, state: dict) -> dict | None:
    task = task_of(state)
    for approach in applicable(task):
        solution, _ = run_with_debugging(ctx, {**state, "lane": -1}, code=render_example(approach, task, submit=True),
                                         exec_key=f"submit/catalog/{approach.key}", node="submit",
                                         check=submission_check(task), rules=submission_rules(task, ctx))
        if solution:
            return {**solution, "origin": f"catalog:{approach.key}"}
    return None


def publish(csv_path: str | Path, workspace: str) -> str:
    """Copy a submission CSV to the workspace atomically (a reader never sees half a file)."""
    return str(atomic_copy(Path(csv_path), Path(workspace) / "submission.csv"))


def submission_proposal(final: dict, used: dict) -> dict:
    csv = Path(final["path"]) / "submission.csv"
    with open(csv, encoding="utf-8", errors="replace") as f:
        head = [next(f, "").rstrip("\n") for _ in range(PREVIEW_LINES)]
    return {"submission_csv": str(csv), "script": final["path"], "source": used.get("origin"),
            "validation_score": used["score"], "preview": [line for line in head if line]}


def edited_submission_problem(task: Task, edit: dict) -> str | None:
    path = edit.get("submission_path")
    if not isinstance(path, str) or not Path(path).is_file():
        return f"edit needs 'submission_path': an existing CSV file, not {path!r}"
    problems = validate_submission(task, path)
    return f"{path} is not a valid submission: {'; '.join(problems)}" if problems else None


def submit(state: dict, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    sources = final_candidates(state)[:MAX_SOURCES]
    final, used = None, None
    model_allowed = run_budget_problem(ctx, state["run_id"]) is None
    for index, source in enumerate(sources):
        final = (flip_submit_flag(ctx, state, source, index, model_allowed=model_allowed)
                 or write_submission_script(ctx, state, source, index))
        if final:
            used = source
            break
    if final is None and ctx.catalog_fallback:
        final = catalog_submission(ctx, state)
        used = final
    journal = open_journal(ctx.journal_path)
    budget = run_budget_problem(ctx, state["run_id"])  # budgets only grow: spent now if it cut anything short
    if final is None:
        reason = ("no solution produced a valid submission" if sources
                  else "no generated script produced a validation score")
        reason = f"{reason} ({budget})" if budget else reason
        journal.upsert_run(state["run_id"], status="failed", stop_reason=reason)
        emit(node="submit", event="failed", reason=reason)
        return {"status": "failed", "stop_reason": reason, "submission": {}}
    stop_reason, source = budget or "finished", used.get("origin")
    if wants_review(ctx, "submission"):
        decision = ask_person("submission", submission_proposal(final, used), EDIT_SUBMISSION,
                              lambda edit: edited_submission_problem(task_of(state), edit))
        if decision["action"] == "reject":
            reason = "the reviewer rejected the submission"
            journal.upsert_run(state["run_id"], status="failed", stop_reason=reason)
            emit(node="submit", event="rejected", reason=reason)
            return {"status": "failed", "stop_reason": reason, "submission": {}}
        if decision["action"] == "edit":
            final = {**final, "csv": decision["edit"]["submission_path"]}
            source = f"reviewer (instead of {source})"
            stop_reason = f"{stop_reason}; submission replaced by the reviewer"
    path = publish(final.get("csv") or Path(final["path"]) / "submission.csv", state["workspace"])
    best = {**used, "submission_score": final["score"]}
    journal.upsert_run(state["run_id"], status="done", best_score=used["score"], submission=path,
                       stop_reason=stop_reason)
    emit(node="submit", event="submitted", path=path, source=source, score=used["score"], stop_reason=stop_reason)
    return {"status": "done", "stop_reason": stop_reason, "best": best,
            "submission": {"path": path, "source": source, "script": final["path"],
                           "validation_score": used["score"]}}
