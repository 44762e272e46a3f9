"""The lane subgraph: evaluate candidates -> merge -> T x (ablate -> extract -> K x refine) -> finish."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graph import routing
from graph.context import Context
from graph.state import LaneInput, LaneOutput, LaneState
from nodes.evaluate import evaluate
from nodes.merge import merge
from nodes.refine import ablate, conclude_step, extract, finish_lane, plan_refinement, refine


def build_lane_graph():
    builder = StateGraph(LaneState, context_schema=Context, input_schema=LaneInput, output_schema=LaneOutput)
    builder.add_node("evaluate", evaluate)
    builder.add_node("merge", merge)
    builder.add_node("ablate", ablate)
    builder.add_node("extract", extract)
    builder.add_node("refine", refine)
    builder.add_node("plan_refinement", plan_refinement)
    builder.add_node("conclude_step", conclude_step)
    builder.add_node("finish_lane", finish_lane)
    builder.add_edge(START, "evaluate")
    builder.add_conditional_edges("evaluate", routing.after_evaluate)
    builder.add_conditional_edges("merge", routing.after_merge)
    builder.add_edge("ablate", "extract")
    builder.add_conditional_edges("extract", routing.after_extract)
    builder.add_conditional_edges("refine", routing.after_refine)
    builder.add_edge("plan_refinement", "refine")
    builder.add_conditional_edges("conclude_step", routing.after_conclude)
    builder.add_edge("finish_lane", END)
    return builder.compile(name="lane")
