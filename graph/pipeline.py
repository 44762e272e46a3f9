"""The pipeline graph: prepare -> floor -> search -> lanes (Send, in parallel) -> ensemble x R -> blend -> submit.

`build_graph(checkpointer)` is the factory for Python and the CLI; `graph` (compiled without a checkpointer)
is what `langgraph dev` serves.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graph import routing
from graph.context import Context
from graph.lane import build_lane_graph
from graph.state import PipelineInput, PipelineOutput, PipelineState
from nodes.blend import blend
from nodes.ensemble import ensemble
from nodes.floor import floor
from nodes.prepare import prepare
from nodes.search import search
from nodes.submit import submit


def build_graph(checkpointer=None):
    builder = StateGraph(PipelineState, context_schema=Context, input_schema=PipelineInput,
                         output_schema=PipelineOutput)
    builder.add_node("prepare", prepare)
    builder.add_node("floor", floor)
    builder.add_node("search", search)
    builder.add_node("lane", build_lane_graph())
    builder.add_node("ensemble", ensemble)
    builder.add_node("blend", blend)
    builder.add_node("submit", submit)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "floor")
    builder.add_edge("floor", "search")
    builder.add_conditional_edges("search", routing.fan_out_lanes, ["lane"])
    builder.add_edge("lane", "ensemble")
    builder.add_conditional_edges("ensemble", routing.after_ensemble)
    builder.add_edge("blend", "submit")
    builder.add_edge("submit", END)
    return builder.compile(checkpointer=checkpointer, name="pipeline")


graph = build_graph()
