"""The pipeline graph end to end with the scripted model: real scripts, real scores, real resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import board
from runtime.journal import open_journal
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, run_pipeline

BASELINES = json.loads((EXAMPLES / "baselines.json").read_text())


def duplicated(journal, table, columns):
    rows = journal.db.execute(
        f"select {columns}, count(*) from {table} group by {columns} having count(*) > 1").fetchall()
    return rows


@pytest.mark.slow
def test_end_to_end_titanic_submission_beats_trivial(ctx, tmp_path):
    state = run_pipeline(ctx, tmp_path)

    assert state["status"] == "done"
    task = load_task(EXAMPLES / "titanic")
    grade = grade_submission(task, state["submission"]["path"])
    assert grade.valid, grade.problems
    assert grade.score > BASELINES["titanic"]["trivial"] + 0.1

    lanes = state["lane_results"]
    assert sorted(r["lane"] for r in lanes) == [0, 1]  # one result per lane: nothing doubled
    for lane in lanes:
        assert lane["solution"]["score"] is not None
        assert len(lane["merges"]) == 1
        [step] = lane["history"]
        assert len(step["attempts"]) == 2  # K inner rewrites, each scored
        assert all(a["score"] is not None for a in step["attempts"])
    assert len(state["ensemble_rounds"]) == 1 and state["ensemble_rounds"][0]["score"] is not None
    # the board holds the best validated submission: the floor's, unless a solution beat it on validation
    scored = [f["score"] for f in state["floor"]] + [r["solution"]["score"] for r in lanes]
    scored += [x["score"] for x in state["ensemble_rounds"] if x["score"] is not None]
    assert state["submission"]["validation_score"] == max(scored)
    history = state["submission"]["history"]
    assert history[0]["source"].startswith("floor:") and history[0]["at_s"] < 60

    journal = open_journal(ctx.journal_path)
    statuses = [r["status"] for r in journal.db["executions"].rows]
    assert "error" in statuses  # the scripted bug was run, then debugged
    usage = journal.usage("r1")
    assert usage["model_calls"] > 20 and usage["executions_scored"] >= 10
    # the extract step's first answer was not an exact block: a re-ask happened in each lane
    assert journal.db["model_calls"].count_where("call_key like '%/extract#1'") == 2


@pytest.mark.slow
def test_crash_inside_a_node_resumes_without_redoing_finished_work(ctx, tmp_path, monkeypatch):
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    (crash_dir / "fix_a_failing_script").touch()  # raises once, after the first script ran and failed
    monkeypatch.setenv("SCRIPTED_CRASH_DIR", str(crash_dir))

    with pytest.raises(RuntimeError, match="scripted crash"):
        run_pipeline(ctx, tmp_path, run_id="crash")
    journal = open_journal(ctx.journal_path)
    executed_before = journal.db["executions"].count

    state = run_pipeline(ctx, tmp_path, run_id="crash", graph_input=None)

    assert state["status"] == "done"
    assert grade_submission(load_task(EXAMPLES / "titanic"), state["submission"]["path"]).valid
    assert executed_before > 0
    assert duplicated(journal, "executions", "run_id, exec_key, code_sha") == []
    assert duplicated(journal, "model_calls", "run_id, call_key, prompt_sha") == []
    usage = journal.usage("crash")
    assert usage["executions_reused"] >= 1  # the interrupted node found its finished script runs
    assert usage["answers_reused"] >= 1


@pytest.mark.slow
def test_a_run_killed_right_after_the_floor_leaves_a_valid_submission(ctx, tmp_path, monkeypatch):
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    (crash_dir / "pick_model_approaches").touch()  # the first model call of the run raises once
    monkeypatch.setenv("SCRIPTED_CRASH_DIR", str(crash_dir))

    with pytest.raises(RuntimeError, match="scripted crash"):
        run_pipeline(ctx, tmp_path, run_id="floor")
    journal = open_journal(ctx.journal_path)
    workspace = Path(journal.get_run("floor")["workspace"])
    assert journal.db["model_calls"].count_where("run_id = 'floor'") == 0  # the floor needs no model
    grade = grade_submission(load_task(EXAMPLES / "titanic"), workspace / "submission.csv")
    assert grade.valid, grade.problems
    assert grade.score > BASELINES["titanic"]["trivial"] + 0.1
    held = board.current(workspace)
    assert held["source"].startswith("floor:") and held["history"][0]["at_s"] is not None

    state = run_pipeline(ctx, tmp_path, run_id="floor", graph_input=None)  # resumes: floor scripts re-used
    assert state["status"] == "done"
    assert duplicated(journal, "executions", "run_id, exec_key, code_sha") == []
    assert state["submission"]["validation_score"] >= held["score"]  # the board only ever improves


@pytest.mark.slow
def test_the_blend_runs_over_the_floor_and_the_lanes_without_a_model(ctx, tmp_path):
    state = run_pipeline(ctx, tmp_path, run_id="blend")
    journal = open_journal(ctx.journal_path)
    assert journal.db["model_calls"].count_where("node = 'blend'") == 0
    record = state["blend"]
    # titanic's accuracy: no vote of these solutions beats the best one on the selection half, so none is made
    assert not record["accepted"] and "no addition improved" in record["reason"]
    assert {f"catalog:{f['key']}" for f in state["floor"]} <= set(record["members"])


@pytest.mark.slow
def test_under_a_time_budget_an_approach_the_floor_ran_is_not_written_again_by_the_model(ctx, tmp_path):
    """The lanes start from the floor's tested code and spend the model's time on refinement."""
    from dataclasses import replace

    budgeted = replace(ctx, run_time_budget_s=3600, floor_approaches=6, num_lanes=1)
    state = run_pipeline(budgeted, tmp_path, task="penguins")
    floor_keys = {f["key"] for f in state["floor"]}
    picked = {c["key"] for lane in state["lane_results"] for c in lane.get("candidates", [])}
    assert picked and picked <= floor_keys
    calls = [row["call_key"] for row in open_journal(ctx.journal_path).db["model_calls"].rows]
    assert not any("/eval/" in key for key in calls)  # no first script asked for
    assert any("/t0/" in key for key in calls)  # the refinement still asks the model
    [lane] = state["lane_results"]
    floor_scores = {f["key"]: f["score"] for f in state["floor"]}
    assert lane["history"] and all(c["score"] == floor_scores[c["key"]] for c in lane["candidates"])
