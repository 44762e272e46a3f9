"""Search: retrieve model approaches for the task (catalog, ranked by the planner) and fan out lanes.

When `web_search` names a search tool, the planner also proposes approaches from the web results (each with
example code that follows the catalog examples' contract); they are ranked together with the catalog's.
Anything going wrong on the web side (no network, a failing tool, an unusable answer) leaves the catalog.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import PipelineState, RetrievedApproach
from nodes.common import emit, fmt_score, task_header, task_of
from nodes.llm import NO_ANSWER, ask
from prompts.search import (
    APPROACHES_SCHEMA,
    FLOOR_NOTE,
    PICK_APPROACHES,
    PROPOSE_APPROACHES,
    WEB_APPROACHES_SCHEMA,
    WEB_QUERY,
    WEB_RESULT,
)
from runtime.catalog import Approach, applicable, inspect_columns, is_specialist, render_example
from runtime.parsing import AnswerError, extract_json
from runtime.sandbox import SCORE_MARKER
from runtime.static_check import check_script
from runtime.task import Task
from runtime.web_search import cached_search

log = logging.getLogger(__name__)

WEB_CACHE = "web_search.json"  # in the run's workspace: a resumed run re-uses its search results
WEB_PREFIX = "web_"            # web approaches' keys never collide with the catalog's
TITLE_CHARS, DESCRIPTION_CHARS, CODE_CHARS = 80, 600, 30_000
PROBLEMS = {"binary": "binary classification", "multiclass": "multiclass classification",
            "regression": "regression", "timeseries": "time series forecasting", "text": "text classification"}
SMALL_DATA_ROWS = 10_000


def parse_keys(known: list[str]) -> Callable[[str], list[str]]:
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


def web_query(task: Task, data_summary: str) -> str:
    """The search query: the kind of problem, what the data holds and how big it is, the metric."""
    columns = inspect_columns(task)
    features = [name for name, found in (("text", columns["text"]), ("date", columns["date"])) if found]
    shape = re.search(r"(\d+)x\d+", data_summary)
    size = "small " if shape and int(shape.group(1)) < SMALL_DATA_ROWS else ""
    data = f"{size}tabular data" + (f" with {' and '.join(features)} columns" if features else "")
    return WEB_QUERY.format(problem=PROBLEMS.get(task.kind, task.kind), data=data, metric=task.metric)


def results_listing(results: list[dict]) -> str:
    return "\n".join(WEB_RESULT.format(number=i, title=r["title"] or "(untitled)", url=r["url"],
                                       snippet=r["snippet"]).rstrip() for i, r in enumerate(results, 1))


def unfenced(code: str) -> str:
    """The code without a Markdown fence around it (models sometimes put one inside the JSON string)."""
    match = re.fullmatch(r"\s*```[\w-]*\n(.*?)\n?```\s*", code, re.S)
    return (match.group(1) if match else code).strip() + "\n"


def code_problem(code: str, static: bool) -> str | None:
    """Why example code breaks the contract of every script (parses, reads ./input/, prints its score)."""
    if not code.strip():
        return "example_code is empty"
    if len(code) > CODE_CHARS:
        return f"example_code is longer than {CODE_CHARS} characters"
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"example_code does not parse (line {exc.lineno}: {exc.msg})"
    if SCORE_MARKER.removesuffix(":") not in code:  # the colon may come from a separate string
        return f"example_code never prints '{SCORE_MARKER} <score>'"
    if "input/" not in code:
        return "example_code does not read its data from ./input/"
    problems = check_script(code) if static else []
    return f"example_code would be refused: {problems[0]}" if problems else None


def proposal_problem(item: object, static: bool) -> str | None:
    """Why one proposed approach cannot be used (None when it can)."""
    if not isinstance(item, dict):
        return "is not an object"
    for name in ("title", "description"):
        if not isinstance(item.get(name), str) or not item[name].strip():
            return f"has no {name}"
    code = item.get("example_code")
    return "has no example_code string" if not isinstance(code, str) else code_problem(unfenced(code), static)


def source_urls(sources: object, results: list[dict]) -> list[str]:
    """The URLs of the results an approach cites by number (unknown numbers ignored)."""
    numbers = sources if isinstance(sources, list) else []
    urls = [results[n - 1]["url"] for n in numbers if isinstance(n, int) and 1 <= n <= len(results)]
    return list(dict.fromkeys(url for url in urls if url))


def unique_key(title: str, taken: set[str]) -> str:
    base = WEB_PREFIX + (re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40] or "approach")
    return next(k for k in (base, *(f"{base}_{i}" for i in range(2, 1000))) if k not in taken)


def parse_web_approaches(taken: set[str], results: list[dict], n: int, static: bool) -> Callable[[str], list[dict]]:
    """Parser of the planner's proposals: up to `n` usable approaches with unique `web_` keys; re-ask if none."""
    def parse(text: str) -> list[dict]:
        items = extract_json(text).get("approaches")
        if not isinstance(items, list) or not items:
            raise AnswerError('expected {"approaches": [...]} with at least one approach')
        keys, found, problems = set(taken), [], []
        for number, item in enumerate(items, 1):
            problem = proposal_problem(item, static)
            if problem:
                problems.append(f"approach {number} {problem}")
                continue
            title = " ".join(item["title"].split())[:TITLE_CHARS]
            key = unique_key(title, keys)
            keys.add(key)
            found.append({"key": key, "title": title,
                          "description": " ".join(item["description"].split())[:DESCRIPTION_CHARS],
                          "example_code": unfenced(item["example_code"]),
                          "sources": source_urls(item.get("sources"), results)})
            if len(found) == n:
                break
        if not found:
            raise AnswerError("no usable approach: " + "; ".join(problems))
        if problems:
            log.warning("web approaches dropped: %s", "; ".join(problems))
        return found
    return parse


def web_approaches(ctx: Context, state: Mapping[str, Any], task: Task,
                   catalog: list[Approach]) -> list[RetrievedApproach]:
    """Approaches the planner proposes from web search results; [] when search or the answer fails."""
    if not catalog:
        return []
    query = web_query(task, state["data_summary"])
    results, reused = cached_search(Path(state["workspace"]) / WEB_CACHE, run_id=state["run_id"],
                                    spec=ctx.web_search, query=query, max_results=ctx.web_search_results)
    emit(node="search", event="web_results", query=query, reused=reused,
         urls=[r["url"] for r in results or [] if r["url"]])
    if not results:
        return []
    prompt = PROPOSE_APPROACHES.format(
        task_header=task_header(task, state["data_summary"]), query=query, results=results_listing(results),
        known=", ".join(a.title for a in catalog), example_code=render_example(catalog[0], task).rstrip(),
        n=ctx.web_search_approaches)
    parse = parse_web_approaches({a.key for a in catalog}, results, ctx.web_search_approaches, ctx.static_checks)
    try:
        return ask(ctx, run_id=state["run_id"], node="search", role="planner", call_key="search/web",
                   prompt=prompt, parse=parse, schema=WEB_APPROACHES_SCHEMA)
    except NO_ANSWER as exc:
        log.warning("no approaches from the web results; going on with the catalog only: %s", exc)
        return []


def interleaved(first: list, second: list) -> list:
    """first[0], second[0], first[1], ...: the catalog's best prior leads, web approaches get a place early."""
    return [item for pair in zip(first, second) for item in pair] + first[len(second):] + second[len(first):]


def keep_specialists(order: list[str], specialists: list[str], wanted: int) -> list[str]:
    """``order`` with every specialist among its first ``wanted`` keys, the planner's first pick kept first.

    The planner ranks, but a small model drops the catalog's approach made for this kind of task (calendar
    features for a forecast, TF-IDF for text) in favour of a general one: on births the 1.5B planner picked
    LightGBM, whose year feature cannot extrapolate (test rmse 544 against 400 for the specialist). A missing
    specialist takes the place of the planner's lowest general pick.
    """
    chosen = order[:wanted]
    for key in specialists:
        general = [k for k in chosen if k not in specialists]
        if key not in chosen and general and general[-1] != chosen[0]:
            chosen[chosen.index(general[-1])] = key
    return chosen + [k for k in order if k not in chosen]


def search(state: PipelineState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    options = applicable(task)
    web = web_approaches(ctx, state, task, options) if ctx.web_search.strip() else []
    pool = interleaved([{"key": a.key, "title": a.title, "description": a.description} for a in options], web)
    keys = [p["key"] for p in pool]
    wanted = min(len(pool), ctx.num_candidates + ctx.num_lanes - 1)
    order = keys
    if len(pool) > ctx.num_candidates:
        measured = {f["key"]: f["score"] for f in state.get("floor", [])}
        listing = "\n".join(f"- {p['key']}: {p['title']}. {p['description']}" + (
            FLOOR_NOTE.format(metric=task.metric, score=fmt_score(measured[p["key"]])) if p["key"] in measured else "")
            for p in pool)
        prompt = PICK_APPROACHES.format(task_header=task_header(task, state["data_summary"]), options=listing,
                                        m=ctx.num_candidates)
        try:
            picked = ask(ctx, run_id=state["run_id"], node="search", role="planner", call_key="search",
                         prompt=prompt, parse=parse_keys(keys), schema=APPROACHES_SCHEMA)
            specialists = [a.key for a in options if is_specialist(a)]
            order = keep_specialists(picked + [k for k in keys if k not in picked], specialists, wanted)
        except NO_ANSWER:
            order = keys  # the catalog's own prior order (web approaches interleaved) is a sound ranking
    by_key = {a.key: a for a in options}
    from_web = {a["key"]: a for a in web}
    approaches = [from_web.get(k) or {"key": k, "title": by_key[k].title, "description": by_key[k].description,
                                      "example_code": render_example(by_key[k], task)} for k in order[:wanted]]
    emit(node="search", event="approaches", keys=[a["key"] for a in approaches])
    return {"approaches": approaches}


def lane_approaches(approaches: list[RetrievedApproach], lane: int, m: int) -> list[RetrievedApproach]:
    """Lane i starts its candidate list i places further on, so lanes explore different approaches."""
    if not approaches:
        return []
    rotated = approaches[lane % len(approaches):] + approaches[:lane % len(approaches)]
    return rotated[:m]


def lane_input(state: Mapping[str, Any], lane: int, ctx: Context) -> dict:
    """What lane `lane` starts from: its approaches, the floor's results for them (candidates that need no
    model call) and, for lane 0 only, the champion's solution (warm start): the other lanes explore from
    scratch, so the ensemble still has different solutions to combine."""
    approaches = lane_approaches(state["approaches"], lane, ctx.num_candidates)
    keys = {a["key"] for a in approaches}
    return {
        "lane": lane, "run_id": state["run_id"], "task": state["task"], "workspace": state["workspace"],
        "input_dir": state["input_dir"], "data_summary": state["data_summary"], "approaches": approaches,
        "floor": [f for f in state.get("floor", []) if f["key"] in keys],
        **{key: state[key] for key in ("overrides", "goals") if state.get(key)},
        **({"warm_start": state["warm_start"]} if lane == 0 and state.get("warm_start") else {}),
    }
