"""Typed state of the pipeline graph and of one solution lane.

State holds small things only: scores, plans, code text and paths. Data and models live in the run's
workspace folder. Lanes hand their result back through `lane_results`, the only reducer key, which the
lane subgraph emits once (its output schema holds nothing else, so nothing is counted twice).
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict


class Solution(TypedDict, total=False):
    """A working script and its validation score."""

    code: str
    score: float | None
    origin: str          # e.g. "candidate:lightgbm", "merge", "refine:t0k1", "ensemble:r0", "catalog"
    path: str            # the attempt folder that produced the score


class RunSteering(TypedDict, total=False):
    """What the meta-learning loop hands a run (all optional; a plain run has none of it)."""

    overrides: dict                  # Context fields changed for this run
    goals: list[dict]                # Enhancer goals: target_agent_phase, focus, priority, rationale
    warm_start: Solution             # the champion run's best solution, evaluated as an extra candidate


class FloorResult(TypedDict, total=False):
    """One catalog approach run as is before any model call (nodes/floor.py)."""

    key: str
    title: str
    score: float
    duration_s: float
    path: str                        # its attempt folder: validation predictions and a valid submission
    code: str                        # the validation script (SUBMIT flag off), a lane candidate as it is


class FloorInput(TypedDict, total=False):
    floor: list[FloorResult]         # the floor's scored approaches, in the order they ran


class PipelineInput(RunSteering, total=False):
    task_dir: str
    run_id: str
    workspace_dir: str               # where the run's artifacts go (default <workspace_root>/<task>/<run_id>)


class PipelineState(PipelineInput, FloorInput, total=False):
    task: dict                       # runtime.task.Task.to_dict()
    workspace: str
    input_dir: str
    data_summary: str
    approaches: list[dict]           # retrieved: key, title, description, example_code
    blend: dict                      # the model-free ensemble selection (nodes/blend.py)
    lane_results: Annotated[list[dict], operator.add]
    ensemble_rounds: list[dict]      # each: round, plan, solution
    best: Solution
    submission: dict                 # path, source, problems, score
    status: str                      # "running" | "done" | "failed"
    stop_reason: str


class LaneInput(RunSteering, FloorInput, total=True):
    lane: int
    run_id: str
    task: dict
    workspace: str
    input_dir: str
    data_summary: str
    approaches: list[dict]


class LaneState(LaneInput, total=False):
    candidates: list[dict]           # evaluated approaches: key, title, solution
    solution: Solution               # the lane's current best
    merge_queue: list[dict]          # candidates not yet merged, best first
    merges: list[dict]               # each: candidate, score, kept
    step: int                        # outer refinement step t
    ablations: list[dict]            # each: step, summary
    refined_blocks: list[str]
    target: dict                     # current step: block, plan
    attempts: list[dict]             # current step's inner attempts: plan, score, status
    history: list[dict]              # finished steps: step, block, attempts, before, after
    lane_results: list[dict]


class LaneOutput(TypedDict):
    lane_results: list[dict]
