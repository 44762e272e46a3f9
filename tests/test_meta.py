"""The meta-learning loop with the scripted model: the Enhancer's changes and goals reach the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.checkpoint import open_checkpointer
from graph.meta import build_meta_graph
from nodes.meta_loop import submitted_solution
from runtime.journal import open_journal
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, scripted_context


def meta_context(tmp_path, **overrides):
    settings = dict(num_runs=3, num_lanes=2, num_candidates=1, refine_steps=1, inner_steps=1, ensemble_rounds=1)
    settings.update(overrides)
    return scripted_context(tmp_path, **settings)


def invoke(ctx, tmp_path, meta_id, graph_input="start", task="titanic"):
    graph = build_meta_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    config = {"configurable": {"thread_id": meta_id}, "recursion_limit": 1000}
    payload = {"task_dir": str(EXAMPLES / task), "meta_id": meta_id} if graph_input == "start" else None
    graph.invoke(payload, config, context=ctx, durability="sync")
    return graph, config, graph.get_state(config).values


def prompts(journal, run_id, node):
    return [r["prompt"] for r in journal.db["model_calls"].rows_where("run_id = ? and node = ?", [run_id, node])]


@pytest.mark.slow
def test_three_runs_steered_by_the_enhancer(tmp_path):
    # No floor: its catalog code would hold the board, and submit asks the coder only for a solution that
    # beats the board, so the submission goal's prompt would not be written.
    ctx = meta_context(tmp_path, floor_approaches=0)
    _, _, state = invoke(ctx, tmp_path, "m1")

    history = state["history"]
    assert [h["run_index"] for h in history] == [0, 1, 2]
    assert history[0]["config"]["refine_steps"] == 1 and history[0]["overrides"] == {}
    assert history[1]["config"]["refine_steps"] == 2 and history[1]["overrides"] == {"refine_steps": 2}
    for run, steps in ((history[0], 1), (history[1], 2)):
        assert all(len(lane["history"]) == steps for lane in run["lanes"])  # refinement steps actually run

    journal = open_journal(ctx.journal_path)
    assert not any("GOAL-R" in p for p in prompts(journal, "m1-run0", "extract"))  # run 0: plain prompts
    assert all("GOAL-R" in p for p in prompts(journal, "m1-run1", "extract"))
    assert any("GOAL-E" in p for p in prompts(journal, "m1-run1", "ensemble"))
    submit_prompts = prompts(journal, "m1-run1", "submit")
    assert submit_prompts and all("GOAL-S" in p for p in submit_prompts)

    report = state["report"]
    best = max(history, key=lambda h: h["best_score"])  # accuracy: higher is better; ties: earliest
    assert report["best_run"] == best["run_index"]
    text = Path(report["markdown"]).read_text()
    assert f"(run {best['run_index']})" in text and "Refinement helped" in text
    assert Path(report["plot"]).stat().st_size > 1000

    saved = json.loads((Path(report["markdown"]).parent / "run_history.json").read_text())
    assert [r["run_id"] for r in saved] == [0, 1, 2]
    assert saved[0]["enhancer_rationale"] == "Baseline run."
    assert saved[0]["enhancer_output"]["config_overrides"] == {"refine_steps": 2}
    assert saved[1]["config_used"]["refine_steps"] == 2
    assert len(journal.meta_runs("m1")) == 3
    assert grade_submission(load_task(EXAMPLES / "titanic"), report["best_submission"]).valid
    assert len({Path(h["submission_path"]).parent for h in history}) == 3  # each run has its own workspace


@pytest.mark.slow
def test_crash_in_run_1_resumes_and_a_finished_thread_extends(tmp_path, monkeypatch):
    # No floor: run 1 must ask for a submission script (see test_three_runs_steered_by_the_enhancer)
    ctx = meta_context(tmp_path, num_runs=2, num_lanes=1, ensemble_rounds=0, floor_approaches=0)
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    monkeypatch.setenv("SCRIPTED_CRASH_DIR", str(crash_dir))
    journal = open_journal(ctx.journal_path)

    # crash at the first submission-script request of run 1: run 0 passes it, then the marker appears
    original = journal.record_meta_run

    def arm_after_run0(meta_id, summary):
        original(meta_id, summary)
        (crash_dir / "write_the_submission_script").touch()

    monkeypatch.setattr(journal, "record_meta_run", arm_after_run0)
    with pytest.raises(RuntimeError, match="scripted crash"):
        invoke(ctx, tmp_path, "m2")
    monkeypatch.setattr(journal, "record_meta_run", original)
    run0_executions = journal.db["executions"].count_where("run_id = 'm2-run0'")
    run1_before = journal.db["executions"].count_where("run_id = 'm2-run1'")
    assert run1_before > 0

    graph, config, state = invoke(ctx, tmp_path, "m2", graph_input=None)
    assert [h["status"] for h in state["history"]] == ["done", "done"]
    assert journal.db["executions"].count_where("run_id = 'm2-run0'") == run0_executions  # run 0 not redone
    duplicates = journal.db.execute("select count(*) from (select 1 from executions group by run_id, exec_key, "
                                    "code_sha having count(*) > 1)").fetchone()[0]
    assert duplicates == 0

    graph.update_state(config, {"runs_planned": 3}, as_node="record")
    graph.invoke(None, config, context=ctx, durability="sync")
    extended = graph.get_state(config).values
    assert [h["run_index"] for h in extended["history"]] == [0, 1, 2]
    assert len(extended["enhancements"]) == 2 and extended["report"]["runs"] == 3


def _finished_run(source: str | None) -> dict:
    """A meta state after one pipeline run: two floor results, two lanes, the board's source."""
    return {"task": load_task(EXAMPLES / "titanic").to_dict(),
            "floor": [{"key": "lightgbm", "score": 0.80, "path": "f0", "code": "floor lightgbm"},
                      {"key": "linear", "score": 0.78, "path": "f1", "code": "floor linear"}],
            "lane_results": [{"lane": 0, "solution": {"code": "lane 0", "score": 0.79, "origin": "refine:t0k1"}},
                             {"lane": 1, "solution": {"code": "lane 1", "score": 0.77, "origin": "merge"}}],
            "submission": {"source": source} if source else {}}


@pytest.mark.parametrize("source,code", [
    ("floor:linear", "floor linear"),   # the floor's catalog code, even where a lane scored higher
    ("refine:t0k1", "lane 0"),          # a lane's solution
    ("blend", "floor lightgbm"),        # no script of its own: the best single one
    (None, "floor lightgbm"),
])
def test_a_run_records_the_script_behind_its_submission(source, code):
    assert submitted_solution(_finished_run(source))["code"] == code


def test_a_run_with_nothing_scored_has_no_solution():
    empty = {**_finished_run(None), "floor": [], "lane_results": []}
    assert submitted_solution(empty) is None
