"""Running generated scripts: journal-backed execution and the debugger loop."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from graph.context import Context
from graph.state import Solution
from nodes.common import emit, script_rules, task_header, task_of
from nodes.llm import NO_ANSWER, ask, time_left
from prompts.debug import FIX_FOLLOWUP, FIX_SCRIPT, NO_PREDICTIONS, NO_SCORE, REFUSED
from runtime import keys
from runtime.journal import open_journal, sha256_text
from runtime.parsing import fix_parser
from runtime.predictions import PredictionError, recompute_score, scores_agree
from runtime.sandbox import ExecutionResult, run_script
from runtime.static_check import check_script
from runtime.time_plan import expected_script_s

# A check looks at a finished, scored attempt and returns a problem to fix, or None.
Check = Callable[[ExecutionResult], str | None]
# An advisory check also gets the code we ran (never re-read from the attempt folder the script could change).
Advisory = Callable[[str, ExecutionResult], str | None]


def attempt_dir(state: Mapping[str, Any], exec_key: str) -> Path:
    return Path(state["workspace"]) / "attempts" / re.sub(r"[^A-Za-z0-9_.-]+", "_", exec_key)


def refused(folder: Path, code: str, problems: list[str]) -> ExecutionResult:
    """The result of a script that static checks refused to run (kept on disk for inspection)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "solution.py").write_text(code)
    return ExecutionResult(status="refused", returncode=None, score=None, duration_s=0.0, attempt_dir=str(folder),
                           stdout_tail="", stderr_tail="\n".join(problems), isolation="static-check")


def script_time_limit(ctx: Context, run_id: str, exec_key: str) -> float:
    """A script's wall-clock limit: script_timeout_s, and for exploration scripts no more than what is left of
    the run's time budget, so that the submission, which always gets its full limit, still fits in."""
    left = None if keys.is_submission(exec_key) else time_left(ctx, run_id)
    return ctx.script_timeout_s if left is None else min(ctx.script_timeout_s, max(0.0, left))


def rescored(result: ExecutionResult, state: Mapping[str, Any]) -> ExecutionResult:
    """The result scored by the agent from the script's saved validation predictions.

    The printed score is kept as `printed_score`; when the two disagree, `score_note` says so (a finding the
    report shows). Without usable predictions the script has no score, whatever it printed.
    """
    if result.status != "ok":
        return result
    try:
        score = recompute_score(task_of(state), state["input_dir"], result.attempt_dir)
    except PredictionError as exc:
        return dataclasses.replace(result, score=None, printed_score=result.score, score_note=str(exc))
    note = ("recomputed from val_predictions.csv" if scores_agree(result.score, score) else
            f"printed {result.score} but its saved predictions score {score:.6g}: the recomputed score counts")
    return dataclasses.replace(result, score=score, printed_score=result.score, score_note=note)


def execute(ctx: Context, state: Mapping[str, Any], *, code: str, exec_key: str,
            scored: bool = True) -> ExecutionResult:
    """Run `code` once, or return the recorded result of the identical finished run.

    `scored`: the agent recomputes the score from the script's saved predictions (every script but an
    ablation study, whose printed findings are its output)."""
    journal = open_journal(ctx.journal_path)
    recorded = journal.find_execution(state["run_id"], exec_key, sha256_text(code))
    if recorded is not None:
        return ExecutionResult.from_dict(recorded)
    folder = attempt_dir(state, exec_key)
    timeout_s = script_time_limit(ctx, state["run_id"], exec_key)
    expected = (expected_script_s(journal.script_durations(state["run_id"]))
                if timeout_s < ctx.script_timeout_s else None)  # only when the budget, not the limit, binds
    if timeout_s <= 0 or (expected is not None and expected > timeout_s):
        # not recorded: resumed with a larger budget, the script runs then
        why = ("the run's wall-clock budget (run_time_budget_s) is spent" if timeout_s <= 0 else
               f"time plan: scripts of this run take about {expected:.0f} s and {timeout_s:.0f} s are left")
        return ExecutionResult(status="timeout", returncode=None, score=None, duration_s=0.0,
                               attempt_dir=str(folder), stdout_tail="", isolation="none",
                               stderr_tail=f"not started: {why}")
    problems = check_script(code) if ctx.static_checks else []
    if problems:
        result = refused(folder, code, problems)
    else:
        result = run_script(code, folder, state["input_dir"], timeout_s=timeout_s,
                            memory_mb=ctx.script_memory_mb, isolation=ctx.isolation,
                            max_processes=ctx.script_max_processes, max_file_mb=ctx.script_max_file_mb,
                            max_disk_mb=ctx.script_max_disk_mb)
        result = rescored(result, state) if scored else result
    journal.record_execution(run_id=state["run_id"], lane=state.get("lane", keys.PIPELINE_LANE), exec_key=exec_key, code=code,
                             code_path=str(folder / "solution.py"), result=result.to_dict())
    return result


def failure_report(result: ExecutionResult) -> str:
    if result.status == "timeout":
        return "The script was stopped: it ran longer than the time limit. Make it faster."
    if result.status == "memory":
        return "The script was stopped: it used more memory than allowed. Use less data or smaller models."
    if result.status == "disk":
        return "The script was stopped: it wrote too much to disk. Save only what is asked (no copies of the data)."
    if result.status == "processes":
        return "The script was stopped: it started too many processes. Use n_jobs=2 at most."
    if result.status == "refused":
        return REFUSED.format(problems=result.stderr_tail)
    if result.status == "ok" and result.score is None:
        return NO_PREDICTIONS.format(problem=result.score_note) if result.score_note else NO_SCORE
    return result.stderr_tail[-2500:] or result.stdout_tail[-1000:] or f"exit code {result.returncode}"


def fix_request(code: str, problem: str, *, origin: str | None,
                standalone: Callable[[], str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(prompt, history) of a request for a fix of `code`.

    With the `origin` prompt known, the request continues that conversation: the origin, the script as the
    model's answer, then only the failure. The model server has just read the origin (its prompt cache keeps
    it), so it reads a few new lines instead of the task and the script again. Else the `standalone` prompt.
    """
    if origin is None:
        return standalone(), ()
    return FIX_FOLLOWUP.format(error=problem), ((origin, f"```python\n{code.rstrip()}\n```"),)


def run_with_debugging(ctx: Context, state: Mapping[str, Any], *, code: str, exec_key: str, node: str,
                       check: Check | None = None, advisory: Advisory | None = None,
                       rules: str | None = None, scored: bool = True,
                       origin: str | None = None) -> tuple[Solution | None, ExecutionResult]:
    """Run a script; while it fails, ask the coder for a fix (at most ctx.debug_rounds times).

    `check` must pass for a scored script to count (e.g. a valid submission). `advisory` findings
    (data leakage, unused data) are sent to the coder too, but when no fix passes them the first scored
    script is kept with its `findings`. `rules` are the script rules the fix must follow (default: a
    validation script's rules). `scored`: see `execute`. `origin`: the prompt the model answered with `code`,
    if it did; each fix is then asked for as the next turn of that conversation (see `fix_request`).
    Returns (solution or None, last result); a solution is {code, score, path}.
    """
    task = task_of(state)
    flagged: Solution | None = None
    for round_ in range(ctx.debug_rounds + 1):
        result = execute(ctx, state, code=code, exec_key=keys.debug_round(exec_key, round_), scored=scored)
        problem = failure_report(result) if not result.succeeded else (check(result) if check else None)
        solution: Solution = {"code": code, "score": result.score, "path": result.attempt_dir}
        if problem is None and result.succeeded and advisory is not None:
            problem = advisory(code, result)
            if problem and flagged is None:
                flagged = {**solution, "findings": problem}
        emit(lane=state.get("lane"), node=node, event="script", key=exec_key, status=result.status,
             score=result.score, problem=bool(problem))
        if problem is None:
            return solution, result
        if round_ == ctx.debug_rounds:
            break
        prompt, history = fix_request(code, problem, origin=origin, standalone=lambda: FIX_SCRIPT.format(
            task_header=task_header(task, state["data_summary"]), code=code, error=problem,
            rules=rules or script_rules(task, ctx)))
        try:
            code = ask(ctx, run_id=state["run_id"], node=node, role="coder", call_key=keys.fix_key(exec_key, round_),
                       prompt=prompt, history=history, parse=fix_parser(code))
        except NO_ANSWER:
            break
    return flagged, result
