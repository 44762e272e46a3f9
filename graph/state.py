"""Typed state of the meta loop, of the pipeline graph and of one solution lane, and the records they hold.

State holds small things only: scores, plans, code text and paths. Data and models live in the run's
workspace folder. Lanes hand their result back through `lane_results`, the only reducer key, which the
lane subgraph emits once (its output schema holds nothing else, so nothing is counted twice).

The records are what the nodes build (named in each docstring); the journal (meta_runs) and the report
read the meta loop's run summaries. Records of older checkpoints may lack keys added since: readers of
stored runs (nodes/report_data.py) use `.get` for those.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import NotRequired, Required, TypedDict  # the server's pydantic needs these on Python < 3.12


class Solution(TypedDict, total=False):
    """A working script and its validation score (nodes/debug.run_with_debugging; the node that ran it sets origin)."""

    code: str
    score: float | None
    origin: str          # e.g. "candidate:lightgbm", "catalog:lightgbm", "champion", "merge", "refine:t0k1",
                         # "ablation:t0v1", "ensemble:r0"
    path: str            # the attempt folder that produced the score
    findings: str        # advisory findings (data leakage, unused data) that no fix cleared
    submission_score: float | None  # PipelineState.best only: the validation score of the submission script


class Goal(TypedDict):
    """One strategic goal of the Enhancer (nodes/enhance.validate_goals)."""

    target_agent_phase: str  # "refinement" | "ensemble" | "submission"
    focus: str
    priority: int            # 1 is the most important
    rationale: NotRequired[str]


class RunSteering(TypedDict, total=False):
    """What the meta-learning loop hands a run (all optional; a plain run has none of it)."""

    overrides: Annotated[dict[str, Any], Field(description="Settings (Context fields) changed for this run only.")]
    goals: Annotated[list[Goal], Field(description="Enhancer goals: target_agent_phase, focus, priority, "
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


class RetrievedApproach(TypedDict, total=False):
    """An approach the search retrieved (nodes/search.py): the catalog's, or one proposed from web results."""

    key: Required[str]
    title: Required[str]
    description: Required[str]
    example_code: Required[str]
    sources: list[str]               # web approaches only: the URLs of the results it came from


class Candidate(TypedDict):
    """An evaluated approach of a lane (nodes/evaluate.py)."""

    key: str                         # the approach's key, or "champion" for the warm start
    title: str
    solution: Solution | None        # None: no script of it worked


class CandidateScore(TypedDict):
    """A candidate as a lane's result lists it (nodes/refine.finish_lane)."""

    key: str
    score: float | None


class LaneStart(TypedDict, total=False):
    """What a lane started from (nodes/evaluate.py); empty when no candidate worked."""

    origin: str | None
    score: float | None


class Merge(TypedDict):
    """One merge of a candidate into the lane's solution (nodes/merge.py)."""

    candidate: str                   # the merged candidate's origin
    score: float | None              # the merged script's (None: no working merge)
    kept: bool


class AblationVariant(TypedDict):
    """One variant of an ablation study: what it changed, and its score (None: it failed)."""

    name: str
    score: float | None


class AblationStudy(TypedDict, total=False):
    """A refinement step's ablation study (nodes/refine.ablate); the summary is added when the study ends."""

    step: int
    original: float | None           # the solution's score
    variants: list[AblationVariant]
    summary: str                     # the findings in words


class Target(TypedDict, total=False):
    """The code block a refinement step rewrites, and the plan (nodes/refine.extract); empty: none found."""

    block: str
    plan: str


class AttemptScore(TypedDict):
    """An inner attempt of a refinement step as its step record keeps it."""

    plan: str
    score: float | None


class Attempt(AttemptScore):
    """An inner attempt of a refinement step (nodes/refine.refine)."""

    solution: Solution | None        # None: no working rewrite


class StepRecord(TypedDict):
    """A finished refinement step (nodes/refine.conclude_step)."""

    step: int
    block: str | None                # the rewritten block (None: extract found none)
    before: float | None             # the solution's score before the step
    after: float | None              # and after it
    kept: str | None                 # the origin of the attempt or ablation variant kept (None: none improved)
    attempts: list[AttemptScore]


class LaneResult(TypedDict):
    """What a lane hands back (nodes/refine.finish_lane)."""

    lane: int
    solution: Solution | None        # the lane's final solution (None: no candidate worked)
    start: LaneStart
    candidates: list[CandidateScore]
    merges: list[Merge]
    ablations: list[AblationStudy]
    history: list[StepRecord]


class EnsembleRoundScore(TypedDict):
    """A round of the model's ensemble as a run summary keeps it."""

    round: int
    plan: str
    score: float | None


class EnsembleRound(EnsembleRoundScore):
    """One round of the model's ensemble (nodes/ensemble.py)."""

    solution: Solution | None        # None: no working ensemble script


class BlendResult(TypedDict, total=False):
    """The model-free ensemble selection (nodes/blend.py). Skipped: accepted (False), reason, members."""

    accepted: bool
    reason: str
    members: list[str]               # skipped only: the origins of the members that had saved predictions
    weights: dict[str, int]          # origin -> count of the chosen members
    score: float                     # the blend's validation score (all rows)
    check_score: float               # the blend on the check half
    best_single_check_score: float   # the best single member on the check half
    path: str                        # the blend's folder: its submission and validation predictions


class BoardEntry(TypedDict):
    """One replacement of the run's submission on the board (runtime/board.py)."""

    at_s: float | None               # seconds since the run started
    time: float                      # epoch seconds
    score: float                     # validation score
    source: str                      # e.g. "floor:lightgbm", "blend", a solution's origin


class Submission(TypedDict, total=False):
    """The run's submission (nodes/submit.py): what the board holds at the end; empty when the run failed."""

    path: str                        # <workspace>/submission.csv
    source: str                      # where it came from (BoardEntry.source)
    script: str                      # the attempt folder that wrote it
    validation_score: float
    history: list[BoardEntry]


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
    approaches: list[RetrievedApproach]
    blend: BlendResult
    lane_results: Annotated[list[LaneResult], operator.add]
    ensemble_rounds: list[EnsembleRound]
    best: Solution                   # the solution behind the submission (or the board's entry for it)
    submission: Submission
    status: str                      # "running" | "done" | "failed"
    stop_reason: str


class PipelineOutput(TypedDict, total=False):
    """What a pipeline run hands back (to the caller, or to the meta loop that ran it)."""

    run_id: str
    task: dict
    workspace: str
    floor: list[FloorResult]
    blend: BlendResult
    lane_results: list[LaneResult]
    ensemble_rounds: list[EnsembleRound]
    best: Solution
    submission: Submission
    status: str
    stop_reason: str


class LaneInput(RunSteering, FloorInput, total=True):
    lane: int
    run_id: str
    task: dict
    workspace: str
    input_dir: str
    data_summary: str
    approaches: list[RetrievedApproach]


class LaneState(LaneInput, total=False):
    candidates: list[Candidate]      # evaluated approaches: key, title, solution
    solution: Solution               # the lane's current best (empty when no candidate worked)
    start: LaneStart                 # what the lane started from: origin, score (a candidate, the floor's, ...)
    merge_queue: list[Solution]      # candidates' solutions not yet merged, best first
    merges: list[Merge]              # each: candidate, score, kept
    step: int                        # outer refinement step t
    ablations: list[AblationStudy]   # each: step, original, variants, summary
    refined_blocks: list[str]
    target: Target                   # current step: block, plan
    attempts: list[Attempt]          # current step's inner attempts: plan, score, solution
    variant: Solution                # current step's best ablation variant, when it beat the solution
    history: list[StepRecord]        # finished steps: step, block, before, after, kept (origin or None), attempts
    lane_results: list[LaneResult]


class LaneOutput(TypedDict):
    lane_results: list[LaneResult]


# -- the meta loop ---------------------------------------------------------------------------------


class Enhancement(TypedDict):
    """The Enhancer's advice after a run (nodes/enhance.py), as the next run applies it."""

    strategic_summary: str
    config_overrides: dict[str, Any]  # settings that differ from the user's
    strategic_goals: list[Goal]
    after_run: int                    # the run_index it studied
    problems: list[str]               # what validation dropped from the answer
    reviewed: NotRequired[str]        # with human review: "approved" | "edited" | "rejected"


class LaneSummary(TypedDict):
    """A lane's result as a run summary keeps it (nodes/meta_loop.compact_lanes)."""

    lane: int
    score: float | None               # its final solution's
    start: LaneStart
    candidates: list[CandidateScore]
    merges: list[Merge]
    history: list[StepRecord]
    ablations: list[AblationStudy]    # summaries cut to 400 characters


class BestSolution(TypedDict):
    """A run's best solution as its summary keeps it: the next run's warm start."""

    code: str
    score: float | None
    origin: str | None


class RunSummary(TypedDict):
    """One finished pipeline run of the meta loop (nodes/meta_loop.record); the journal's meta_runs rows."""

    run_index: int
    run_id: str
    status: str                       # "done" | "failed"
    stop_reason: str | None
    start_time_iso: str
    duration_s: float
    best_score: float | None          # the submission's validation score (else the best solution's)
    best_origin: str | None
    best_solution: BestSolution | None  # the script behind the submission
    best_solution_path: str | None
    submission_path: str | None
    submissions: list[BoardEntry]     # the board's history
    config: dict[str, Any]            # every setting the run used (Context fields)
    overrides: dict[str, Any]
    goals: list[Goal]
    shaped_by: Enhancement | None     # the advice the run followed (None: the first run)
    scripts: int                      # scripts run
    scripts_ok: int                   # scripts that produced a score
    lanes: list[LaneSummary]
    ensemble_rounds: list[EnsembleRoundScore]


class StopRules(TypedDict):
    """When the meta loop stops early (graph.routing.should_continue); 0 turns a rule off."""

    budget_s: int
    patience: int


class MetaInput(TypedDict, total=False):
    """What starts a run of the meta loop (Studio's input form); settings go in the context."""

    task_dir: Required[Annotated[str, Field(description="Task folder: description.md or task.json, train.csv, "
                                                        "test.csv and a sample submission.")]]
    meta_id: Annotated[str, Field(description="Name of the run (optional; default: the thread id). A name "
                                              "must match the thread: thread_id_for(name), see docs/api.md.")]
    from_journal: Annotated[bool, Field(description="Rebuild a run whose checkpoints were lost: its pipeline "
                                                    "runs keep their names, so every finished model answer and "
                                                    "script comes from the journal (set by `mlestar resume`).")]


class MetaOutput(TypedDict, total=False):
    """What a finished run hands back: the report, the best run and every run's summary."""

    meta_id: str
    task: dict                  # name, metric, lower_is_better (plan_run); each pipeline run's Task.to_dict() then
    report: dict                # nodes/report.write_report: best_submission, markdown, html, improvement_pct...
    champion: RunSummary | None  # the best run (None while no run has a score)
    history: list[RunSummary]   # one summary per finished run
    enhancements: list[Enhancement]


class MetaState(MetaInput, MetaOutput, RunSteering, total=False):
    started_at: float
    runs_planned: int
    stop_rules: StopRules       # copied from the context by the first plan_run
    # the current run (pipeline subgraph input and output)
    run_id: str
    workspace_dir: str
    run_started_at: float
    status: str
    stop_reason: str
    submission: Submission
    best: Solution
    floor: list[FloorResult]
    lane_results: list[LaneResult]
    ensemble_rounds: list[EnsembleRound]
