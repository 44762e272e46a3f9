"""The report's timeline ("Where the time went"): intervals from a small synthetic journal, the time per phase,
the first valid submission, and the figure in report.md and report.html."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from graph.context import Context
from nodes import report_data
from nodes.report import report as report_node
from nodes.report_figures import timeline_figure
from nodes.report_tables import time_summary
from runtime import keys
from runtime.journal import MODEL_CALLS, open_journal, sha256_text

FIXTURE = Path(__file__).parent / "fixtures" / "report_run.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
META = "fixture"  # the recorded state's meta id, so that the report node can draw this journal beside it
T0 = 1000.0
# (run, node, call key, latency s, answer recorded at): the model calls
CALLS = [
    ("run0", "search", "search#0", 2.0, 3.0),
    ("run0", "evaluate", "lane0/eval/lgbm#0", 3.0, 7.0),
    ("run0", "check", "lane1_eval_rf_d0/leakage#0", 1.0, 6.0),  # a leakage check names its call after the folder
    ("meta", "enhance", "enhance/after-run0#0", 3.0, 25.0),  # the Enhancer's call belongs to the meta loop
    ("run1", "refine", "lane0/t0/plan0#0", 2.0, 32.0),  # re-read twice on resume below: drawn once
]
# (run, lane, exec key, status, duration s, recorded at): the scripts
SCRIPTS = [
    ("run0", 0, "lane0/eval/lgbm/d0", "error", 1.0, 9.0),
    ("run0", 0, "lane0/eval/lgbm/d1", "ok", 4.0, 14.0),
    ("run0", 1, "lane1/t0/ablation/d0", "ok", 5.0, 15.0),
    ("run0", -1, "submit/s0/d0", "ok", 1.0, 17.0),  # ran, but a debug round follows: its CSV was not valid
    ("run0", -1, "submit/s0/d1", "ok", 1.0, 19.0),  # the first valid submission, at 19 s
    ("run0", -1, "floor/lightgbm", "ok", 2.0, 20.0),
    ("run1", 0, "lane0/merge0/d0", "ok", 6.0, 40.0),
]


def run_id(run: str) -> str:
    return META if run == "meta" else f"{META}-{run}"


def at(journal, table: str, when: float) -> None:
    """Move the newest row of `table` to a fixed time (the journal stamps rows with the clock)."""
    last = journal.db.execute(f"select max(id) from {table}").fetchone()[0]
    journal.db[table].update(last, {"created_at": T0 + when})


@pytest.fixture
def journal(tmp_path):
    journal = open_journal(str(tmp_path / "journal.db"))
    for run in ("run0", "run1"):  # the pipeline runs of the meta run, as their first node registers them
        journal.upsert_run(run_id(run), meta_id=META)
    for run, node, key, latency, when in CALLS:
        journal.record_answer(run_id=run_id(run), node=node, role="coder", model="scripted", call_key=key,
                              prompt=key, answer="a", tokens_in=1, tokens_out=1, latency_s=latency)
        at(journal, MODEL_CALLS, when)
    for run, lane, key, status, duration, when in SCRIPTS:
        journal.record_execution(run_id=run_id(run), lane=lane, exec_key=key, code=key, code_path="x",
                                 result={"status": status, "score": 0.8 if status == "ok" else None,
                                         "duration_s": duration})
        at(journal, "executions", when)
    journal.record_answer(run_id="other", node="search", role="planner", model="scripted", call_key="search#0",
                          prompt="p", answer="a", tokens_in=1, tokens_out=1, latency_s=50.0)  # another thread
    for _ in range(2):  # a resumed node asks again and is answered from the journal
        assert journal.find_answer(run_id("run1"), "lane0/t0/plan0#0", sha256_text("lane0/t0/plan0#0"))
    return journal


def built(journal) -> dict:
    rows = journal.db.execute("select run_id, lane, exec_key, status, duration_s, created_at, reused "
                              "from executions order by id").fetchall()
    executions = [dict(zip(("run_id", "lane", "exec_key", "status", "duration_s", "created_at", "reused"), r))
                  for r in rows]
    return report_data.timeline(journal.model_calls(META), executions, started_at=T0,
                                runs={f"{META}-run0": 0, f"{META}-run1": 1})


def test_model_calls_reads_the_thread_and_its_pipeline_runs_only(journal):
    calls = journal.model_calls(META)
    assert [c["call_key"] for c in calls] == [key for _, _, key, _, _ in CALLS]
    assert calls[-1]["reused"] == 2 and {c["run_id"] for c in calls} == {META, f"{META}-run0", f"{META}-run1"}


def test_intervals_start_at_the_thread_start_with_lanes_and_phases(journal):
    timeline = built(journal)
    got = [(s["kind"], s["key"], s["lane"], s["phase"], round(s["start"], 3), s["duration"], s["failed"])
           for s in timeline["intervals"]]
    assert got == [
        ("model", "search#0", -1, "search", 1.0, 2.0, False),
        ("model", "lane0/eval/lgbm#0", 0, "evaluate", 4.0, 3.0, False),
        ("model", "lane1_eval_rf_d0/leakage#0", 1, "check", 5.0, 1.0, False),
        ("script", "lane0/eval/lgbm/d0", 0, "evaluate", 8.0, 1.0, True),
        ("script", "lane0/eval/lgbm/d1", 0, "evaluate", 10.0, 4.0, False),
        ("script", "lane1/t0/ablation/d0", 1, "ablate", 10.0, 5.0, False),
        ("script", "submit/s0/d0", -1, "submit", 16.0, 1.0, False),
        ("script", "submit/s0/d1", -1, "submit", 18.0, 1.0, False),
        ("script", "floor/lightgbm", -1, "floor", 18.0, 2.0, False),
        ("model", "enhance/after-run0#0", -1, "enhance", 22.0, 3.0, False),
        ("model", "lane0/t0/plan0#0", 0, "refine", 30.0, 2.0, False),
        ("script", "lane0/merge0/d0", 0, "merge", 34.0, 6.0, False),
    ]
    # the re-read answer is one interval, the work done once; its re-reads are counted, not drawn
    assert [s["reused"] for s in timeline["intervals"] if s["reused"]] == [2]
    assert timeline["end"] == pytest.approx(40.0)
    assert [(r["run"], round(r["start"], 3), round(r["end"], 3)) for r in timeline["runs"]] == [(0, 1.0, 20.0),
                                                                                                 (1, 30.0, 40.0)]
    assert timeline["first_submission"] == pytest.approx(19.0)  # submit/s0/d1, not the superseded d0


def test_totals_and_time_per_phase(journal):
    timeline = built(journal)
    totals = {k: round(v, 3) for k, v in timeline["totals"].items()}
    # busy: 1-3, 4-7, 8-9, 10-15, 16-17, 18-20, 22-25, 30-32, 34-40 = 25 s of 40
    assert totals == {"wall_s": 40.0, "model_s": 11.0, "calls": 5, "script_s": 20.0, "scripts": 7, "failed": 1,
                      "busy_s": 25.0, "idle_s": 15.0, "reused": 2}
    phases = {p["phase"]: (p["calls"], round(p["model_s"], 3), p["scripts"], p["failed"], round(p["script_s"], 3))
              for p in timeline["phases"]}
    assert list(phases) == ["search", "evaluate", "check", "ablate", "submit", "floor", "enhance", "refine", "merge"]
    assert phases["evaluate"] == (1, 3.0, 2, 1, 5.0) and phases["submit"] == (0, 0.0, 2, 0, 2.0)
    assert phases["refine"] == (1, 2.0, 0, 0, 0.0) and phases["merge"] == (0, 0.0, 1, 0, 6.0)
    line = time_summary(timeline)
    assert "Wall time 40.0 s" in line and "model calls 11.0 s (5 calls)" in line and "15.0 s (38 %)" in line
    assert "first valid submission after 19.0 s" in line


@pytest.mark.parametrize("key, phase", [
    ("lane0/eval/lightgbm/d1", "evaluate"), ("lane2/catalog/ridge/d0", "evaluate"), ("lane1/merge3/d0", "merge"),
    ("lane0/t1/ablation/d0", "ablate"), ("lane0/t12/k3/d1", "refine"), ("ensemble/r0/d0", "ensemble"),
    ("submit/s0/flag/d0", "submit"), ("submit/catalog/ridge/d0", "submit"), ("floor/lightgbm", "floor"),
    ("blend/test0", "blend")])
def test_the_phase_of_a_script(key, phase):
    assert keys.exec_phase(key) == phase


def test_lanes_of_keys():
    assert [keys.key_lane(k) for k in ("lane3/t0/plan1#0", "lane12_eval_x_d0/usage#1", "search#0",
                                              "laneless/x", "", None)] == [3, 12, -1, -1, -1, -1]


def test_without_model_calls_the_scripts_still_show(journal):
    executions = journal.executions(META)
    timeline = report_data.timeline(None, executions)
    assert timeline["totals"]["model_s"] is None and timeline["totals"]["idle_s"] is None
    assert timeline["intervals"][0]["start"] == 0.0  # the first script's start, without a thread start
    assert [r["run"] for r in timeline["runs"]] == [0, 1]  # run indices from the ids' "-run<k>"
    assert "model calls: unknown" in time_summary(timeline)
    assert report_data.timeline([], []) is None and timeline_figure(None) is None
    assert timeline_figure(timeline).startswith(PNG_MAGIC)


def test_the_report_node_draws_the_timeline_in_both_reports(journal, tmp_path):
    state = copy.deepcopy(json.loads(FIXTURE.read_text())["state"])
    ctx = Context(workspace_root=str(tmp_path / "workspace"), journal_path=str(journal.path))
    result = report_node(state, SimpleNamespace(context=ctx))["report"]
    folder = Path(result["markdown"]).parent
    image = (folder / "timeline.png").read_bytes()
    assert image.startswith(PNG_MAGIC) and str(folder / "timeline.png") in result["figures"]
    text, page = Path(result["markdown"]).read_text(), Path(result["html"]).read_text()
    assert "## Where the time went" in text and "![Timeline of model calls and scripts](timeline.png)" in text
    assert "| merge | 0 | 0.0 | 1 | 0 | 6.0 |" in text and "model calls 11.0 s (5 calls)" in text
    section = re.search(r'<section id="timeline">(.*?)</section>', page, re.S).group(1)
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', section)
    assert [base64.b64decode(data) for data in embedded] == [image]
    assert '<tr class="total"><td>total</td><td class="num">5</td>' in section
