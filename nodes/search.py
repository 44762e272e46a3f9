"""Search: retrieve model approaches for the task (catalog, ranked by the planner) and fan out lanes."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Send

from graph.context import Context, run_context
from nodes.common import emit, task_header, task_of
from nodes.llm import ask
from prompts.search import APPROACHES_SCHEMA, PICK_APPROACHES
from runtime.catalog import applicable, render_example
from runtime.parsing import AnswerError, extract_json


def parse_keys(known: list[str]) -> callable:
    def parse(text: str) -> list[str]:
        data = extract_json(text)
        keys = data.get("approaches")
        if not isinstance(keys, list) or not keys:
            raise AnswerError('expected {"approaches": [...]} with at least one key')
        picked = [k for k in keys if isinstance(k, str) and k in known]
        if not picked:
            raise AnswerError(f"none of {keys} is a known key; choose from {known}")
        return list(dict.fromkeys(picked))
    return parse


def search(state: dict, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    options = applicable(task)
    keys = [a.key for a in options]
    wanted = min(len(options), ctx.num_candidates + ctx.num_lanes - 1)
    order = keys
    if len(options) > ctx.num_candidates:
        listing = "\n".join(f"- {a.key}: {a.title}. {a.description}" for a in options)
        prompt = PICK_APPROACHES.format(task_header=task_header(task, state["data_summary"]), options=listing,
                                        m=ctx.num_candidates)
        try:
            picked = ask(ctx, run_id=state["run_id"], node="search", role="planner", call_key="search",
                         prompt=prompt, parse=parse_keys(keys), schema=APPROACHES_SCHEMA)
            order = picked + [k for k in keys if k not in picked]
        except AnswerError:
            order = keys  # the catalog's own prior order is a sound ranking
    by_key = {a.key: a for a in options}
    approaches = [{"key": k, "title": by_key[k].title, "description": by_key[k].description,
                   "example_code": render_example(by_key[k], task)} for k in order[:wanted]]
    emit(node="search", event="approaches", keys=[a["key"] for a in approaches])
    return {"approaches": approaches}


def lane_approaches(approaches: list[dict], lane: int, m: int) -> list[dict]:
    """Lane i starts its candidate list i places further on, so lanes explore different approaches."""
    if not approaches:
        return []
    rotated = approaches[lane % len(approaches):] + approaches[:lane % len(approaches)]
    return rotated[:m]


def fan_out_lanes(state: dict, runtime: Runtime[Context]) -> list[Send]:
    """One Send per lane. Only lane 0 gets the champion's solution (warm start): the other lanes explore
    from scratch, so the ensemble still has different solutions to combine."""
    ctx = run_context(state, runtime)
    return [Send("lane", {
        "lane": lane, "run_id": state["run_id"], "task": state["task"], "workspace": state["workspace"],
        "input_dir": state["input_dir"], "data_summary": state["data_summary"],
        "approaches": lane_approaches(state["approaches"], lane, ctx.num_candidates),
        **{key: state[key] for key in ("overrides", "goals") if state.get(key)},
        **({"warm_start": state["warm_start"]} if lane == 0 and state.get("warm_start") else {}),
    }) for lane in range(ctx.num_lanes)]
