"""The report from a recorded 3-run meta loop (tests/fixtures/report_run.json, made by
tests/fixtures/make_report_fixture.py): every section, embedded figures, escaping, kept/discarded counts."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import pytest
from typer.testing import CliRunner

from graph.checkpoint import open_checkpointer, thread_id_for
from graph.context import Context
from graph.meta import build_meta_graph
from nodes import report_data
from nodes.report import report as report_node, write_report
from nodes.report_html import SECTIONS
from runtime.journal import open_journal

FIXTURE = Path(__file__).parent / "fixtures" / "report_run.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(FIXTURE.read_text())


def written(recorded: dict, folder: Path, **changes) -> tuple[dict, str, str]:
    data = copy.deepcopy(recorded)
    result = write_report(data["state"], folder, changes.get("usage", data["usage"]),
                          changes.get("executions", data["executions"]))
    return result, Path(result["html"]).read_text(), Path(result["markdown"]).read_text()


def expected_counts(state: dict) -> dict:
    """Kept and discarded attempts counted straight from the recorded state, the way the graph decided them."""
    lower = state["task"]["lower_is_better"]
    better = (lambda a, b: a < b) if lower else (lambda a, b: a > b)
    kept = scored = failed = 0
    for run in state["history"]:
        for lane in run["lanes"]:
            scores = [c["score"] for c in lane["candidates"]] + [m["score"] for m in lane["merges"]]
            scores += [a["score"] for step in lane["history"] for a in step["attempts"]]
            scored += sum(s is not None for s in scores)
            failed += sum(s is None for s in scores)
            kept += any(c["score"] is not None for c in lane["candidates"])  # the lane's first solution
            kept += sum(bool(m["kept"]) for m in lane["merges"])
            kept += sum(better(step["after"], step["before"]) for step in lane["history"])
        rounds = run["ensemble_rounds"]
        scored += sum(r["score"] is not None for r in rounds)
        failed += sum(r["score"] is None for r in rounds)
        kept += (run["best_origin"] or "").startswith("ensemble:")
    return {"kept": kept, "discarded": scored - kept, "failed": failed}


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_fixture_is_a_real_three_run_loop(recorded):
    state = recorded["state"]
    assert [h["run_index"] for h in state["history"]] == [0, 1, 2]
    assert len(state["enhancements"]) == 2
    counts = expected_counts(state)
    assert counts["kept"] > 0 and counts["discarded"] > 0  # both markers have something to show


def test_every_section_and_figure(recorded, tmp_path):
    result, page, text = written(recorded, tmp_path)
    for key, title in SECTIONS:
        assert f'<section id="{key}"><h2>' in page and f'href="#{key}"' in page
        if key != "summary":
            assert f"## {title}" in text
    images = embedded_pngs(page)
    assert len(images) == 5  # runs, attempts, ablations, ensemble, timeline: the fixture has data for all five
    for image in images:
        assert image.startswith(PNG_MAGIC)
        height, width = matplotlib.image.imread(io.BytesIO(image)).shape[:2]
        assert width > 300 and height > 200
    names = ("scores.png", "attempts.png", "ablations.png", "ensemble.png", "timeline.png")
    for name in names:
        assert (tmp_path / name).read_bytes() in images  # the Markdown's files are the page's figures
        assert f"]({name})" in text
    assert result["figures"] == [str(tmp_path / n) for n in names]
    assert "model calls: unknown (no model-call rows given)" in text  # the timeline shows the scripts only
    champion = recorded["state"]["champion"]
    assert f"(run {champion['run_index']})" in page and "Refinement helped" in page
    assert "total" in page and "enhancer" in page  # the cost tables, with the Enhancer's role


def test_the_page_needs_nothing_outside_itself(recorded, tmp_path):
    _, page, _ = written(recorded, tmp_path)
    references = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert references and all(ref.startswith(("data:image/png;base64,", "#")) for ref in references)
    lowered = page.lower()
    for external in ("<script", "<link", "@import", "url(", "@font-face", "<iframe"):
        assert external not in lowered


def test_model_text_is_escaped(recorded, tmp_path):
    data = copy.deepcopy(recorded)
    state = data["state"]
    lane = next(lane for run in state["history"] for lane in run["lanes"] if lane["history"])
    lane["history"][0]["attempts"][0]["plan"] = HOSTILE
    state["enhancements"][0]["strategic_summary"] = HOSTILE
    state["enhancements"][0]["strategic_goals"][0]["focus"] = HOSTILE
    state["champion"]["best_solution"]["code"] += f"\n# {HOSTILE}\n```\n"
    _, page, text = written(data, tmp_path)
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;") >= 4
    assert "<script" not in text.replace(f"# {HOSTILE}", "")  # raw only inside the code fence
    fence = re.search(r"^(`{4,})python$", text, re.M)
    assert fence and f"```\n{fence.group(1)}\n" in text  # the code's own ``` cannot close the fence


def test_kept_and_discarded_counts_match_the_fixture(recorded, tmp_path):
    result, page, text = written(recorded, tmp_path)
    want = expected_counts(recorded["state"])
    assert {k: result[k] for k in want} == want
    line = f"{want['kept']} kept, {want['discarded']} discarded, {want['failed']} failed"
    assert line in page and line in text
    attempts = report_data.all_attempts(recorded["state"], recorded["executions"])
    assert all(a["time"] is not None and a["time"] >= 0 for a in attempts)  # every attempt found in the journal
    assert page.count('<span class="kept">kept</span>') == sum(a["kept"] for a in attempts if a["kind"] == "refine")


def test_ablation_effects_come_from_the_recorded_studies(recorded, tmp_path):
    studies = report_data.ablation_effects(recorded["state"], recorded["executions"])
    steps = sum(len(lane["history"]) for run in recorded["state"]["history"] for lane in run["lanes"])
    assert len(studies) == steps
    for study in studies:
        effects = {v["name"]: round(v["effect"], 4) for v in study["variants"]}
        assert effects == {"without the engineered features": -0.0115, "with half the trees": -0.0038,
                           "without missing-value imputation": 0.0012}
    _, page, _ = written(recorded, tmp_path)
    assert "without the engineered features" in page and '<span class="worse">-0.0115</span>' in page


def test_without_a_journal_the_report_still_renders(recorded, tmp_path):
    result, page, text = written(recorded, tmp_path, usage=None, executions=[])
    assert "No journal was given" in page and "Model usage and cost" in page
    assert "Model cost: unknown (no journal)" in text
    assert len(embedded_pngs(page)) == 3  # no ablation output without the journal: that figure says so
    assert "nothing to draw" in page and not (tmp_path / "ablations.png").exists()
    assert result["kept"] == expected_counts(recorded["state"])["kept"]


def test_parse_ablation_reads_variants_and_skips_log_lines():
    stdout = ("[LightGBM] [Info] Number of positive: 400\nbaseline: 0.81\nno age feature: 0.78\n"
              "Epoch summary: done\nFinal Validation Performance: 0.812\n")
    assert report_data.parse_ablation(stdout) == (0.812, [("no age feature", 0.78)])
    assert report_data.parse_ablation("") == (None, [])


@pytest.mark.parametrize("lower, kept_index", [(False, 1), (True, 0)])
def test_a_refinement_step_keeps_its_first_best_attempt_only_when_it_improved(lower, kept_index):
    run = {"run_index": 0, "run_id": "x-run0", "best_origin": "ensemble:r0",
           "lanes": [{"lane": 0, "score": 0.81, "candidates": [], "merges": [],
                      "history": [{"step": 0, "before": 0.81, "after": 0.82,
                                   "attempts": [{"plan": "a", "score": 0.80}, {"plan": "b", "score": 0.82},
                                                {"plan": "c", "score": 0.82}, {"plan": "d", "score": None}]}]}],
           "ensemble_rounds": [{"round": 0, "plan": "avg", "score": 0.83}]}
    attempts = report_data.run_attempts(run, lower, {}, None)
    refine = [a["kept"] for a in attempts if a["kind"] == "refine"]
    assert refine == [i == kept_index for i in range(4)]
    assert [a["kept"] for a in attempts if a["kind"] == "ensemble"] == [True]
    assert report_data.attempt_counts(attempts)["failed"] == 1


def test_mlestar_report_writes_the_page_and_html_prints_its_path(recorded, tmp_path):
    from graph.cli import app  # here, so that the report's own tests do not depend on the whole CLI importing

    ctx = Context(workspace_root=str(tmp_path / "workspace"), journal_path=str(tmp_path / "journal.db"))
    graph = build_meta_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    config = {"configurable": {"thread_id": thread_id_for("fixture")}}  # the thread `mlestar` reads for that run
    graph.update_state(config, copy.deepcopy(recorded["state"]), as_node="report")
    open_journal(ctx.journal_path).upsert_run("fixture", context=asdict(ctx))
    options = ["report", "fixture", "--checkpoints", str(tmp_path / "checkpoints.db"), "--journal", ctx.journal_path]

    printed = CliRunner().invoke(app, [*options, "--html"])
    assert printed.exit_code == 0, printed.output
    page = Path(printed.output.strip())
    assert page == tmp_path / "workspace" / "titanic" / "fixture" / "report.html"
    assert all(f'<section id="{key}">' in page.read_text() for key, _ in SECTIONS)
    shown = CliRunner().invoke(app, options)
    assert shown.exit_code == 0 and "Final solution" in shown.output
    assert str(page) in "".join(shown.output.split())  # the console wraps long paths


def test_the_graph_report_node_writes_both_reports(recorded, tmp_path):
    ctx = Context(workspace_root=str(tmp_path / "workspace"), journal_path=str(tmp_path / "journal.db"))
    result = report_node(copy.deepcopy(recorded["state"]), SimpleNamespace(context=ctx))["report"]
    assert Path(result["html"]).is_file() and Path(result["markdown"]).is_file()
    assert result["kept"] == expected_counts(recorded["state"])["kept"]


def test_a_lane_that_started_from_the_catalog_code_shows_it_as_kept():
    """evaluate records what the lane started from; the report reads it (a floor start was missing before)."""
    lane = {"lane": 0, "score": 0.80, "start": {"origin": "catalog:lightgbm", "score": 0.80}, "merges": [],
            "history": [], "candidates": [{"key": "linear", "score": 0.78}, {"key": "lightgbm", "score": None}]}
    run = {"run_index": 0, "run_id": "x-run0", "lanes": [lane], "ensemble_rounds": []}
    times = {("x-run0", "floor/lightgbm"): 105.0}
    attempts = report_data.run_attempts(run, False, times, started_at=100.0)
    assert [(a["label"], a["kept"]) for a in attempts] == [
        ("candidate linear", False), ("candidate lightgbm", False), ("catalog lightgbm", True)]
    assert attempts[-1]["time"] == 5.0  # the floor's script, found in the journal
    assert report_data.attempt_counts(attempts) == {"attempts": 3, "kept": 1, "discarded": 1, "failed": 1}
    started_from_candidate = {**lane, "start": {"origin": "candidate:linear", "score": 0.78}}
    attempts = report_data.run_attempts({**run, "lanes": [started_from_candidate]}, False, {}, None)
    assert [a["kept"] for a in attempts] == [True, False]
