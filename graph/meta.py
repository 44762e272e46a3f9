"""The meta-learning graph: N pipeline runs, each steered by an Enhancer that studied the runs before it.

START -> plan_run -> pipeline (subgraph) -> record -> [enhance -> plan_run | report -> END]

The whole loop is one checkpointed thread. A finished thread is extended by raising `runs_planned` with
`update_state(..., as_node="record")` and invoking again.
"""

from __future__ import annotations

from typing import Annotated

from langgraph.graph import END, START, StateGraph
from pydantic import Field
from typing_extensions import Required, TypedDict

from graph.context import Context
from graph.pipeline import build_graph as build_pipeline
from graph.routing import should_continue
from graph.state import FloorResult, RunSteering, Solution
from nodes.enhance import enhance
from nodes.meta_loop import plan_run, record
from nodes.report import report


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
    task: dict                  # name, metric, lower_is_better
    report: dict                # best_submission, markdown, html, improvement_pct...
    champion: dict              # the best run
    history: list[dict]         # one summary per finished run
    enhancements: list[dict]


class MetaState(MetaInput, MetaOutput, RunSteering, total=False):
    started_at: float
    runs_planned: int
    stop_rules: dict            # budget_s, patience: copied from the context by the first plan_run
    # the current run (pipeline subgraph input and output)
    run_id: str
    workspace_dir: str
    run_started_at: float
    status: str
    stop_reason: str
    submission: dict
    best: Solution
    floor: list[FloorResult]
    lane_results: list[dict]
    ensemble_rounds: list[dict]


def build_meta_graph(checkpointer=None):
    builder = StateGraph(MetaState, context_schema=Context, input_schema=MetaInput,
                         output_schema=MetaOutput)
    builder.add_node("plan_run", plan_run)
    builder.add_node("pipeline", build_pipeline())
    builder.add_node("record", record)
    builder.add_node("enhance", enhance)
    builder.add_node("report", report)
    builder.add_edge(START, "plan_run")
    builder.add_edge("plan_run", "pipeline")
    builder.add_edge("pipeline", "record")
    builder.add_conditional_edges("record", should_continue)
    builder.add_edge("enhance", "plan_run")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer, name="mle_star")


graph = build_meta_graph()
