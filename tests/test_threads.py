"""History and forks of a thread: `mlestar history`, `mlestar fork`, `mlestar runs` on a scripted meta loop."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from graph.checkpoint import open_checkpointer, thread_id_for
from graph.cli import app
from graph.meta import build_meta_graph
from graph.threads import ForkError, fork_thread, outer_history, thread_config
from runtime.journal import open_journal
from tests.conftest import EXAMPLES, SCRIPTED


def cli(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result


@pytest.mark.slow
def test_fork_between_runs_with_a_changed_setting_redoes_nothing_before_the_fork(tmp_path):
    db, journal_path = str(tmp_path / "cp.db"), str(tmp_path / "journal.db")
    where = ["--checkpoints", db]
    settings = ["--set", "num_lanes=1", "--set", "num_candidates=1", "--set", "refine_steps=0",
                "--set", "ensemble_rounds=0", "--set", "debug_rounds=1", "--set", f"journal_path={journal_path}",
                "--set", f"workspace_root={tmp_path / 'ws'}", "--set", "allow_config_override=false"]
    first = cli("run", str(EXAMPLES / "titanic"), "--run-id", "orig", "--runs", "2", "--model", SCRIPTED,
                *settings, *where)
    assert first.exit_code == 0, first.output

    graph = build_meta_graph(open_checkpointer(db))
    points = [c for c in outer_history(graph, thread_id_for("orig")) if c.can_fork]
    assert [c.runs_done for c in points] == [1]  # between run 0 and run 1 (after the Enhancer)
    step = points[0].step
    listed = cli("history", "orig", *where)
    assert listed.exit_code == 0 and "yes" in listed.output and "plan_run" in listed.output

    forked = cli("fork", "orig", "--at", str(step), "--set", "refine_steps=1", "--journal", journal_path, *where)
    assert forked.exit_code == 0, forked.output

    journal = open_journal(journal_path)
    original = graph.get_state(thread_config(thread_id_for("orig"))).values
    fork = graph.get_state(thread_config(thread_id_for(f"orig-fork-{step}"))).values
    assert [h["run_id"] for h in fork["history"]] == ["orig-run0", f"orig-fork-{step}-run1"]
    assert fork["history"][0] == original["history"][0]  # inherited, not redone
    assert original["history"][1]["config"]["refine_steps"] == 0
    assert fork["history"][1]["config"]["refine_steps"] == 1  # the changed setting took effect after the fork
    assert all(len(lane["history"]) == 1 for lane in fork["history"][1]["lanes"])  # and really ran a step
    fork_calls = {r["run_id"] for r in journal.db["model_calls"].rows_where("run_id like ?", [f"orig-fork-{step}%"])}
    assert fork_calls == {f"orig-fork-{step}-run1"}  # only its own run 1 asked the model: run 0 was not redone
    assert f"orig-fork-{step}" in fork["report"]["markdown"]  # its own workspace folder

    listing = cli("runs", "--journal", journal_path)
    assert listing.exit_code == 0 and "orig-fork" in listing.output and "orig-run0" not in listing.output

    with pytest.raises(ForkError, match="not between two pipeline runs"):
        fork_thread(graph, graph.checkpointer, thread_id_for("orig"), points[0].step + 1, thread_id_for("other"))
    with pytest.raises(ForkError, match="already exists"):
        fork_thread(graph, graph.checkpointer, thread_id_for("orig"), step, thread_id_for(f"orig-fork-{step}"))
    again = cli("fork", "orig", "--at", "999", "--run-id", "x2", "--journal", journal_path, *where)
    assert again.exit_code == 2 and "no checkpoint at step 999" in again.output
