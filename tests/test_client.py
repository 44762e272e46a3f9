"""The Python client (`graph.client.MleStar`) and the CLI's review command, on scripted runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graph.cli import app
from graph.client import ClientError, MleStar
from tests.conftest import EXAMPLES, SCRIPTED

FAST = dict(num_lanes=1, num_candidates=1, refine_steps=0, ensemble_rounds=0, debug_rounds=1)


@pytest.mark.slow
def test_client_round_trip_run_review_status_history_fork_report(tmp_path):
    agent = MleStar(checkpoints=tmp_path / "cp.db", journal=tmp_path / "journal.db")
    first = agent.run(EXAMPLES / "penguins", run_id="c1", runs=2, model=SCRIPTED, human_review="enhancer",
                      workspace_root=str(tmp_path / "ws"), **FAST)
    assert (first.status, first.runs_done, first.review.point) == ("review", 1, "enhancer")
    assert first.review.proposal["config_overrides"] == {"refine_steps": 2}  # what the Enhancer proposed
    assert first.next == ("enhance",) and first.submission is not None  # run 0's submission is there already

    with pytest.raises(ClientError, match="waits for a review"):
        agent.resume("c1")
    bad = agent.review("c1", {"action": "edit", "edit": {"config_overrides": {"num_lanes": 50}}})
    assert bad.status == "review" and "num_lanes" in bad.review.problem  # refused like the Enhancer's own answer
    done = agent.review("c1", {"action": "edit", "edit": {"config_overrides": {"debug_rounds": 0}}})
    assert (done.status, done.runs_done, done.next) == ("done", 2, ())
    assert done.values["history"][1]["config"]["debug_rounds"] == 0
    assert done.values["history"][1]["config"]["refine_steps"] == 0  # the proposed override was replaced
    assert done.values["enhancements"][0]["reviewed"] == "edited"
    assert done.values["history"][1]["goals"]  # the goals the person did not edit still apply

    again = agent.status("c1")
    assert (again.best_score, again.submission, again.report) == (done.best_score, done.submission, done.report)
    assert Path(done.report).exists()
    points = [c for c in agent.history("c1") if c.can_fork]
    assert [c.runs_done for c in points] == [1]
    forked = agent.fork("c1", points[0].step, "c1-more", human_review="off", num_runs=3)
    assert forked.status == "done" and forked.runs_done == 3
    assert forked.values["history"][0] == done.values["history"][0]  # inherited, not redone
    assert {r["run_id"] for r in agent.runs()} == {"c1", "c1-more"}
    written = agent.report("c1-more")
    assert Path(written["markdown"]).exists() and "c1-more" in written["markdown"]
    with pytest.raises(ClientError, match="already exists"):
        agent.run(EXAMPLES / "penguins", run_id="c1", model=SCRIPTED)
    with pytest.raises(ClientError, match="No run nope"):
        agent.status("nope")


@pytest.mark.slow
def test_cli_review_shows_the_proposal_and_a_rejection_drops_the_enhancers_changes(tmp_path):
    where = ["--checkpoints", str(tmp_path / "cp.db")]
    journal = ["--journal", str(tmp_path / "journal.db")]
    settings = [f"{k}={v}" for k, v in FAST.items()] + [
        f"journal_path={tmp_path / 'journal.db'}", f"workspace_root={tmp_path / 'ws'}", "human_review=enhancer"]
    runner = CliRunner()
    started = runner.invoke(app, ["run", str(EXAMPLES / "penguins"), "--run-id", "r1", "--runs", "2", "--model",
                                  SCRIPTED, *[x for s in settings for x in ("--set", s)], *where],
                            env={"COLUMNS": "200"})
    assert started.exit_code == 4, started.output  # waiting for a review
    assert "mlestar review r1 --approve" in started.output and "refine_steps" in started.output
    shown = runner.invoke(app, ["review", "r1", *where, *journal], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "config_overrides" in shown.output
    bad_json = runner.invoke(app, ["review", "r1", "--edit", "{not json", *where, *journal])
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.output
    rejected = runner.invoke(app, ["review", "r1", "--reject", *where, *journal], env={"COLUMNS": "200"})
    assert rejected.exit_code == 0, rejected.output
    state = MleStar(tmp_path / "cp.db", tmp_path / "journal.db").status("r1").values
    assert state["enhancements"][0]["reviewed"] == "rejected"
    assert state["history"][1]["overrides"] == {} and state["history"][1]["goals"] == []
    status = runner.invoke(app, ["status", "r1", *where, *journal], env={"COLUMNS": "200"})
    assert "done" in status.output
    assert json.loads((tmp_path / "ws" / "penguins" / "r1" / "run_history.json").read_text())[1]["config_used"]
