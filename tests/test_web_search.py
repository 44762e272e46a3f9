"""Web search for approaches, offline: a fake LangChain tool (tests.fake_search_tool) and a scripted planner.

What matters: proposals grounded in the results reach the lanes next to the catalog's approaches; a failing
tool or an unusable answer leaves exactly the catalog-only result; a resumed search node neither searches
nor asks again; a bad spec is a clear configuration error; with web search off no tool is touched.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest

import nodes.search as search_node
from graph.context import ConfigError, build_context, preflight
from graph.routing import fan_out_lanes
from nodes.common import task_of
from nodes.prepare import prepare
from nodes.search import search, web_approaches
from runtime.catalog import applicable, load_catalog
from runtime.journal import open_journal
from runtime.web_search import cached_search, normalise_results, parse_search_spec
from tests import fake_search_tool as fake, malformed_model as M
from tests.conftest import EXAMPLES, scripted_context

PLANNER = "scripted:tests.malformed_model:respond"
TOOL = "tests.fake_search_tool:kaggle_search"
WEB_JOB = "propose approaches from web results"


@pytest.fixture(autouse=True)
def fresh(monkeypatch) -> dict:
    """A clean query record and answer table per test; progress events collected instead of streamed."""
    monkeypatch.setattr(fake, "CALLS", [])
    monkeypatch.setattr(M, "ANSWERS", {})
    events: list[dict] = []
    monkeypatch.setattr(search_node, "emit", lambda **event: events.append(event))
    return {"events": events}


def web_context(tmp_path, **overrides):
    return scripted_context(tmp_path, **{"planner_model": PLANNER, "web_search": TOOL, **overrides})


def prepared(ctx, run_id="w1"):
    runtime = SimpleNamespace(context=ctx)
    state = {"task_dir": str(EXAMPLES / "titanic"), "run_id": run_id}
    return {**state, **prepare(state, runtime)}, runtime


def calls(ctx, pattern: str) -> list[dict]:
    return list(open_journal(ctx.journal_path).db["model_calls"].rows_where("call_key like ?", [pattern],
                                                                           order_by="id"))


def proposal(prompt: str, *, title="Extra trees", sources=(1, 4, 99), code_edit=lambda code: code) -> dict:
    """A well-formed proposal: the reference script of the prompt with its model swapped (a real variant)."""
    code = M.shown_code(prompt).replace("import lightgbm as lgb", "import lightgbm as lgb  # extra trees variant")
    return {"title": title, "description": "Extremely randomized trees, 500 of them, min_samples_leaf=2.",
            "sources": list(sources), "example_code": code_edit(code)}


def answer(*proposals) -> callable:
    return lambda prompt: json.dumps({"approaches": [p(prompt) for p in proposals]})


def catalog_only(tmp_path, state, runtime):
    """What search gives with web search off, in its own journal (the reference for every fallback)."""
    off = replace(runtime.context, web_search="", journal_path=str(tmp_path / "off.db"))
    return search(state, SimpleNamespace(context=off))["approaches"]


# --------------------------------------------------------------------------- the happy path


def test_web_approaches_grounded_in_the_results_reach_the_lanes(tmp_path, fresh):
    ctx = web_context(tmp_path, web_search_results=4)
    state, runtime = prepared(ctx)
    M.ANSWERS[WEB_JOB] = [answer(proposal)]
    M.ANSWERS["pick model approaches"] = [json.dumps({"approaches": ["web_extra_trees", "random_forest"]})]

    result = search(state, runtime)

    assert [a["key"] for a in result["approaches"]] == ["web_extra_trees", "random_forest", "lightgbm"]
    assert len(fake.CALLS) == 1 and "binary classification" in fake.CALLS[0] and "accuracy" in fake.CALLS[0]
    [web] = [a for a in result["approaches"] if a["key"].startswith("web_")]
    assert web["key"] == "web_extra_trees" and web["title"] == "Extra trees"
    assert "extra trees variant" in web["example_code"] and "Final Validation Performance" in web["example_code"]
    assert web["sources"] == ["https://example.org/extra-trees", "https://example.org/logistic"]
    [ask_web] = calls(ctx, "search/web#%")
    assert "https://example.org/logistic" in ask_web["prompt"] and "example.org/stacking" not in ask_web["prompt"]
    assert "same page again" not in ask_web["prompt"]  # duplicate URL dropped
    [pick] = calls(ctx, "search#%")
    assert "- web_extra_trees: Extra trees." in pick["prompt"] and "- lightgbm:" in pick["prompt"]
    [searched] = [e for e in fresh["events"] if e["event"] == "web_results"]
    assert searched["urls"][:2] == ["https://example.org/extra-trees", "https://example.org/boosting"]
    assert not searched["reused"]

    sends = fan_out_lanes({**state, **result}, runtime)
    assert [[a["key"] for a in send.arg["approaches"]] for send in sends] == [
        ["web_extra_trees", "random_forest"], ["random_forest", "lightgbm"]]
    assert sends[0].arg["approaches"][0] == web  # with its example code, which the lane's coder is shown


def test_proposals_get_unique_keys_that_never_collide_with_the_catalog_and_bad_ones_are_dropped(tmp_path, caplog):
    ctx = web_context(tmp_path, web_search_approaches=3)
    state, runtime = prepared(ctx)
    no_score = lambda code: code.replace("Final Validation Performance", "validation")  # noqa: E731
    M.ANSWERS[WEB_JOB] = [answer(lambda p: proposal(p, title="LightGBM"), lambda p: proposal(p, title="LightGBM"),
                                 lambda p: proposal(p, title="Broken", code_edit=no_score),
                                 lambda p: proposal(p, title="Fenced", code_edit=lambda c: f"```python\n{c}```"))]

    with caplog.at_level(logging.WARNING):
        found = web_approaches(ctx, state, task_of(state), applicable(task_of(state)))

    assert [a["key"] for a in found] == ["web_lightgbm", "web_lightgbm_2", "web_fenced"]
    assert not {a["key"] for a in found} & {a.key for a in load_catalog()}
    assert not found[2]["example_code"].startswith("```")
    assert "approach 3 example_code never prints 'Final Validation Performance" in caplog.text


# --------------------------------------------------------------------------- fallbacks


def test_a_failing_tool_leaves_the_catalog_only_and_no_model_call(tmp_path, caplog, fresh):
    ctx = web_context(tmp_path, web_search="tests.fake_search_tool:offline_search")
    state, runtime = prepared(ctx)

    with caplog.at_level(logging.WARNING):
        approaches = search(state, runtime)["approaches"]

    assert len(fake.CALLS) == 1
    assert "network is unreachable" in caplog.text and "catalog only" in caplog.text
    assert approaches == catalog_only(tmp_path, state, runtime)
    assert calls(ctx, "search/web#%") == []
    assert [e["urls"] for e in fresh["events"] if e["event"] == "web_results"] == [[]]
    search(state, runtime)  # a failed search is not cached: running the node again tries again
    assert len(fake.CALLS) == 2


def test_a_malformed_answer_is_reasked_then_leaves_the_catalog_only(tmp_path, caplog):
    ctx = web_context(tmp_path)
    state, runtime = prepared(ctx)
    no_score = lambda code: code.replace("Final Validation Performance", "validation")  # noqa: E731
    M.ANSWERS[WEB_JOB] = [M.TRUNCATED_JSON, M.PROSE, answer(lambda p: proposal(p, code_edit=no_score))]

    with caplog.at_level(logging.WARNING):
        approaches = search(state, runtime)["approaches"]

    tries = calls(ctx, "search/web#%")
    assert len(tries) == ctx.max_reasks + 1
    assert "the JSON object is truncated" in tries[1]["prompt"] and "no JSON object found" in tries[2]["prompt"]
    assert "no approaches from the web results" in caplog.text
    assert approaches == catalog_only(tmp_path, state, runtime)


# --------------------------------------------------------------------------- resume


def test_a_resumed_search_reuses_the_results_and_the_answer(tmp_path, fresh):
    ctx = web_context(tmp_path)
    state, runtime = prepared(ctx)
    M.ANSWERS[WEB_JOB] = [answer(proposal)]

    first = search(state, runtime)
    again = search(state, runtime)  # the node re-run after a crash: same run, same workspace

    assert again == first and len(fake.CALLS) == 1
    [row] = calls(ctx, "search/web#%")
    assert row["reused"] == 1
    assert [e["reused"] for e in fresh["events"] if e["event"] == "web_results"] == [False, True]


def test_the_cache_belongs_to_one_run_and_one_query(tmp_path):
    cache = tmp_path / "web_search.json"
    same = dict(spec=TOOL, query="q", max_results=3)
    assert cached_search(cache, run_id="a", **same) == (normalise_results(fake.RESULTS, 3), False)
    assert cached_search(cache, run_id="a", **same)[1] is True
    assert cached_search(cache, run_id="b", **same)[1] is False
    assert cached_search(cache, run_id="b", **{**same, "query": "other"})[1] is False
    assert len(fake.CALLS) == 3


# --------------------------------------------------------------------------- configuration


def test_web_search_off_touches_no_tool(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("web search used while off")

    monkeypatch.setattr(search_node, "cached_search", forbidden)
    monkeypatch.setattr("runtime.web_search.build_search_tool", forbidden)
    ctx = scripted_context(tmp_path)
    state, runtime = prepared(ctx)

    approaches = search(state, runtime)["approaches"]

    assert approaches and not any(a["key"].startswith("web_") for a in approaches)
    assert fake.CALLS == [] and calls(ctx, "search/web#%") == []


@pytest.mark.parametrize("spec", ["bing", "tavily search", "module.only", ":attr"])
def test_an_unknown_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError, match=r"Setting web_search: unknown web search .*'tavily', 'duckduckgo'"):
        build_context(overrides={"web_search": spec})


@pytest.mark.parametrize("spec, message", [
    ("tests.fake_search_tool:nowhere", "module 'tests.fake_search_tool' has no 'nowhere'"),
    ("tests.fake_search_tool:NOT_A_TOOL", "is a int, not a LangChain tool"),
    ("tests.no_such_module:search", "cannot import module 'tests.no_such_module'"),
])
def test_preflight_names_a_tool_that_cannot_be_built(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message):
        preflight(scripted_context(tmp_path, web_search=spec))


def test_preflight_names_the_missing_package_or_key(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_tavily", None)  # not importable, installed or not
    monkeypatch.setitem(sys.modules, "langchain_community", None)
    monkeypatch.setitem(sys.modules, "langchain_community.tools", None)
    monkeypatch.setenv("TAVILY_API_KEY", "test-key")
    with pytest.raises(ConfigError, match=r"needs langchain-tavily .*pip install langchain-tavily"):
        preflight(scripted_context(tmp_path, web_search="tavily"))
    with pytest.raises(ConfigError, match=r"pip install langchain-community ddgs"):
        preflight(scripted_context(tmp_path, web_search="duckduckgo"))
    monkeypatch.delenv("TAVILY_API_KEY")
    with pytest.raises(ConfigError, match="set the TAVILY_API_KEY environment variable"):
        preflight(scripted_context(tmp_path, web_search="tavily"))


def test_preflight_accepts_a_tool_or_a_factory_without_searching(tmp_path):
    for spec in (TOOL, "tests.fake_search_tool:make_tool", ""):
        assert preflight(scripted_context(tmp_path, web_search=spec)).web_search == spec
    assert fake.CALLS == []
    assert parse_search_spec(" TAVILY ") == ("tavily", "")


# --------------------------------------------------------------------------- result shapes


def test_results_are_normalised_from_the_common_shapes():
    tavily = {"query": "q", "results": [{"title": "T", "url": "https://a.org/x", "content": "c " * 400}]}
    [one] = normalise_results(tavily, 5)
    assert one["title"] == "T" and one["url"] == "https://a.org/x" and len(one["snippet"]) <= 500
    ddg_list = [{"snippet": "s1", "title": "t1", "link": "https://b.org/1"}, {"body": "s2", "href": "https://b.org/2"}]
    assert [r["url"] for r in normalise_results(ddg_list, 5)] == ["https://b.org/1", "https://b.org/2"]
    ddg_text = ("[snippet: Trees win, often., title: Trees, link: https://c.org/t, date: 2024-01-01], "
                "[snippet: Boost, title: GBM, link: https://c.org/g]")
    assert normalise_results(ddg_text, 5) == [{"title": "Trees", "url": "https://c.org/t", "snippet": "Trees win, often."},
                                              {"title": "GBM", "url": "https://c.org/g", "snippet": "Boost"}]
    assert normalise_results(json.dumps(ddg_list), 1) == normalise_results(ddg_list, 1)
    assert normalise_results("Use gradient boosting, see https://d.org/p for details", 5) == [
        {"title": "", "url": "https://d.org/p", "snippet": "Use gradient boosting, see https://d.org/p for details"}]
    assert normalise_results({"results": [{"url": "javascript:alert(1)", "title": "x"}]}, 5)[0]["url"] == ""
    for junk in (None, "", 42, {"results": "none"}, [None, 3, {}]):
        assert normalise_results(junk, 5) == []
