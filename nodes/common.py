"""Helpers every phase uses: reading the run's task and context, comparing scores, filling prompt headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Iterable, TypeVar

from langgraph.config import get_stream_writer

from graph.context import Context
from graph.state import Goal
from prompts.common import PREDICTION_NOTES, SCRIPT_RULES, TASK_HEADER
from runtime.task import Task

DESCRIPTION_LIMIT = 1800
#: a solution record: graph.state.Solution, or a plain dict with its keys
SolutionT = TypeVar("SolutionT", bound=Mapping[str, Any])


def task_of(state: Mapping[str, Any]) -> Task:
    return Task.from_dict(state["task"])


def direction(task: Task) -> str:
    return "lower is better" if task.lower_is_better else "higher is better"


def is_better(score: float | None, than: float | None, lower_is_better: bool) -> bool:
    """True when `score` exists and strictly beats `than` (a missing `than` is beaten by any score)."""
    if score is None:
        return False
    if than is None:
        return True
    return score < than if lower_is_better else score > than


def not_worse(score: float | None, than: float | None, lower_is_better: bool) -> bool:
    return score is not None and (than is None or score == than or is_better(score, than, lower_is_better))


def ranked(solutions: Iterable[SolutionT | None], lower_is_better: bool) -> list[SolutionT]:
    """Scored solutions, best first."""
    scored = [s for s in solutions if s and s.get("score") is not None]
    return sorted(scored, key=lambda s: s["score"], reverse=not lower_is_better)


def distinct(solutions: Iterable[SolutionT]) -> list[SolutionT]:
    """Solutions with different code, first of each kept: merging or ensembling a script with itself
    costs model calls and script runs and cannot help (e.g. the champion's code re-found by a lane)."""
    seen: set[str] = set()
    kept: list[SolutionT] = []
    for solution in solutions:
        key = solution["code"].strip()
        if key not in seen:
            seen.add(key)
            kept.append(solution)
    return kept


def goals_for(state: Mapping[str, Any], phase: str) -> list[Goal]:
    """The meta loop's goals aimed at `phase` (refinement, ensemble, submission), most important first;
    none in a plain pipeline run."""
    return sorted((g for g in state.get("goals", []) if g.get("target_agent_phase") == phase),
                  key=lambda g: g["priority"])


def fmt_score(score: float | None) -> str:
    return "no score" if score is None else f"{score:.6g}"


def task_header(task: Task, data_summary: str) -> str:
    description = task.description.strip()
    if len(description) > DESCRIPTION_LIMIT:
        description = description[:DESCRIPTION_LIMIT] + " ..."
    return TASK_HEADER.format(
        name=task.name, description=as_data(description, "task_description"), target=", ".join(task.targets),
        metric=task.metric, direction=direction(task),
        submission_columns=", ".join([task.id_column, *task.target_columns]),
        data_summary=as_data(data_summary, "data_summary"))


def as_data(text: str, tag: str) -> str:
    """User text to show between <tag> and </tag>: a closing tag inside it cannot end the block early."""
    return re.sub(rf"<\s*/?\s*{tag}\s*>", f"[{tag}]", text, flags=re.IGNORECASE)


#: Predictions of one class label per row: the validation split keeps the classes' shares.
STRATIFIED = ("label", "probability", "class_probabilities", "ranked_labels")


def script_rules(task: Task, ctx: Context) -> str:
    split_note = ("the last 20% by date: this is a forecast" if task.kind == "timeseries"
                  else "random_state=42" + (", stratified" if task.prediction in STRATIFIED else ""))
    return SCRIPT_RULES.format(test_file=task.test_file, split_note=split_note, max_rows=ctx.max_train_rows,
                               prediction_columns=", ".join(task.target_columns),
                               prediction_note=PREDICTION_NOTES[task.prediction],
                               metric=task.metric, direction=direction(task), timeout_s=ctx.script_timeout_s)


def emit(**event: Any) -> None:
    """Send a progress event to whoever streams the graph with stream_mode "custom"."""
    try:
        get_stream_writer()(event)
    except RuntimeError:  # called outside a graph run (unit tests of a node function)
        pass
