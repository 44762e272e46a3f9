"""The meta-learning graph: N pipeline runs, each steered by an Enhancer that studied the runs before it.

START -> plan_run -> pipeline (subgraph) -> record -> [enhance -> plan_run | report -> END]

The whole loop is one checkpointed thread. A finished thread is extended by raising `runs_planned` with
`update_state(..., as_node="record")` and invoking again.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graph.context import Context
from graph.pipeline import build_graph as build_pipeline
from graph.routing import should_continue
from graph.state import MetaInput, MetaOutput, MetaState
from nodes.enhance import enhance
from nodes.meta_loop import plan_run, record
from nodes.report import report


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
