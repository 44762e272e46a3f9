"""Typed state of the pipeline graph and of one solution lane.

State holds small things only: scores, plans, code text and paths. Data and models live in the run's
workspace folder. Lanes hand their result back through `lane_results`, the only reducer key, which the
lane subgraph emits once (its output schema holds nothing else, so nothing is counted twice).
"""

from __future__ import annotations

import operator
from typing import Annotated

from pydantic import Field
from typing_extensions import Required, TypedDict  # pydantic (the server's schemas) needs it on Python < 3.12


class Solution(TypedDict, total=False):
    """A working script and its validation score."""

    code: str
    score: float | None
    origin: str          # e.g. "candidate:lightgbm", "merge", "refine:t0k1", "ensemble:r0", "catalog"
    path: str            # the attempt folder that produced the score


class RunSteering(TypedDict, total=False):
    """What the meta-learning loop hands a run (all optional; a plain run has none of it)."""

    overrides: Annotated[dict, Field(description="Settings (Context fields) changed for this run only.")]
    goals: Annotated[list[dict], Field(description="Enhancer goals: target_agent_phase, focus, priority, "
                                                   "rationale.")]
    warm_start: Annotated[Solution, Field(description="A solution evaluated as an extra candidate (the meta "
                                                      "loop passes its best run's).")]


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
    """What starts one pipeline run (Studio's input form)."""

    task_dir: Required[Annotated[str, Field(description="Task folder: description.md or task.json, train.csv, "
                                                        "test.csv and a sample submission.")]]
    run_id: Required[Annotated[str, Field(description="Name of the run: its journal rows and workspace folder.")]]
    workspace_dir: Annotated[str, Field(description="Where the run's artifacts go (default "
                                                    "<workspace_root>/<task>/<run_id>).")]
    meta_id: Annotated[str, Field(description="The meta run this run is one of (set by the meta loop; leave it "
                                              "empty for a run of its own).")]


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


class PipelineOutput(TypedDict, total=False):
    """What a pipeline run hands back (to the caller, or to the meta loop that ran it)."""

    run_id: str
    task: dict
    workspace: str
    floor: list[FloorResult]
    blend: dict
    lane_results: list[dict]
    ensemble_rounds: list[dict]
    best: Solution
    submission: dict
    status: str
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
    start: dict                      # what the lane started from: origin, score (a candidate, the floor's, ...)
    merge_queue: list[dict]          # candidates not yet merged, best first
    merges: list[dict]               # each: candidate, score, kept
    step: int                        # outer refinement step t
    ablations: list[dict]            # each: step, summary
    refined_blocks: list[str]
    target: dict                     # current step: block, plan
    attempts: list[dict]             # current step's inner attempts: plan, score, status
    variant: Solution                # current step's best ablation variant, when it beat the solution
    history: list[dict]              # finished steps: step, block, attempts, before, after, kept (origin or None)
    lane_results: list[dict]


class LaneOutput(TypedDict):
    lane_results: list[dict]
