"""Floor: before the first model call, run the catalog's tested code for the task and submit the best.

The approaches that apply to the task kind run as they are (no model picks them), each training on the
split, saving its validation predictions, refitting on all rows and writing a submission. Every valid
one is offered to the submission board, so a run has a validated submission within its first minute and
keeps it whatever happens later. Their scores then inform the planner's ranking, they are candidates of
the lanes, and their predictions are members of the model-free ensemble.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import FloorResult, PipelineState
from nodes.common import emit, task_of
from nodes.debug import execute
from nodes.llm import run_started_at, time_left
from runtime import board, keys
from runtime.catalog import applicable, render_example
from runtime.task import validate_submission

#: After the first floor script, another one starts only if its expected time is at most this share of
#: what is left of the run's time budget: the floor is the start of the run, not all of it.
FLOOR_SHARE = 0.4


def fits(durations: list[float], left: float | None) -> bool:
    """Whether one more floor script is expected to fit (always, before the first or without a budget)."""
    return left is None or not durations or statistics.median(durations) <= FLOOR_SHARE * left


def floor(state: PipelineState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    if ctx.floor_approaches == 0:
        return {"floor": []}
    started_at = run_started_at(ctx, state["run_id"])
    results: list[FloorResult] = []
    durations: list[float] = []
    for approach in applicable(task)[:ctx.floor_approaches]:
        if not fits(durations, time_left(ctx, state["run_id"])):
            emit(node="floor", event="skipped", key=approach.key, reason="expected time exceeds the time left")
            continue
        result = execute(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=render_example(approach, task, submit=True),
                         exec_key=keys.pipeline_key(keys.FLOOR, approach.key))
        durations.append(result.duration_s)
        csv = Path(result.attempt_dir) / board.SUBMISSION
        valid = result.succeeded and not validate_submission(task, csv)
        emit(node="floor", event="script", key=approach.key, status=result.status, score=result.score)
        if not valid or result.score is None:  # (a script that succeeded has a score)
            continue
        source = f"floor:{approach.key}"
        if board.offer(state["workspace"], csv, score=result.score, source=source,
                       lower_is_better=task.lower_is_better, started_at=started_at):
            emit(node="floor", event="submitted", source=source, score=result.score)
        results.append({"key": approach.key, "title": approach.title, "score": result.score,
                        "duration_s": result.duration_s, "path": result.attempt_dir,
                        "code": render_example(approach, task)})
    return {"floor": results}
