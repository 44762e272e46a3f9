"""Run ids and record keys: built and read back in one module, and a meta run's rows found by equality."""

from __future__ import annotations

import sqlite3

import pytest

from graph.checkpoint import open_checkpointer
from graph.meta import build_meta_graph
from runtime import keys
from runtime.journal import SqliteJournal
from tests.conftest import EXAMPLES, scripted_context


def record(journal: SqliteJournal, run_id: str, exec_key: str = "lane0/eval/linear/d0") -> None:
    journal.record_execution(run_id=run_id, lane=0, exec_key=exec_key, code=f"# {run_id}", code_path="x",
                             result={"status": "ok", "score": 0.5, "duration_s": 1.0})
    journal.record_answer(run_id=run_id, node="evaluate", role="coder", model="m", call_key="k#0", prompt=run_id,
                          answer="a", tokens_in=10, tokens_out=5, latency_s=1.0)


def test_a_meta_runs_rows_are_its_own_and_its_pipeline_runs_never_a_namesakes(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.upsert_run("a_b", status="running")
    journal.upsert_run("a_b-run0", meta_id="a_b", status="done")
    for namesake in ("axb-run0", "a_b-runner", "a_b-run0-run1"):  # "_" was a LIKE wildcard; prefixes matched
        journal.upsert_run(namesake, status="done")
        record(journal, namesake)
    record(journal, "a_b-run0")

    assert {row["run_id"] for row in journal.executions("a_b")} == {"a_b-run0"}
    assert journal.usage("a_b")["model_calls"] == 1
    assert sum(row["calls"] for row in journal.usage_breakdown("a_b")["role"]) == 1


def test_an_older_journal_links_its_pipeline_runs_when_opened(tmp_path):
    path = tmp_path / "journal.db"
    SqliteJournal(path)
    with sqlite3.connect(path) as conn:  # as written before the meta_id column existed
        conn.execute("drop index idx_runs_meta_id")
        conn.execute("alter table runs drop column meta_id")
        for run_id in ("m", "m-run0", "m-run1.b2", "other-run0"):
            conn.execute("insert into runs (run_id, status) values (?, 'done')", [run_id])
    journal = SqliteJournal(path)
    linked = {row["run_id"]: row["meta_id"] for row in journal.runs()}
    assert linked == {"m": None, "m-run0": "m", "m-run1.b2": "m", "other-run0": None}  # no run "other"


@pytest.mark.slow
def test_a_pipeline_run_started_by_the_meta_loop_names_its_meta_run(tmp_path):
    ctx = scripted_context(tmp_path, num_runs=1, num_lanes=1, num_candidates=1, refine_steps=0,
                           ensemble_rounds=0, floor_approaches=1)
    graph = build_meta_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    graph.invoke({"task_dir": str(EXAMPLES / "penguins"), "meta_id": "p_1"},
                 {"configurable": {"thread_id": "p_1"}, "recursion_limit": 200}, context=ctx)
    journal = SqliteJournal(ctx.journal_path)
    assert journal.get_run("p_1-run0")["meta_id"] == "p_1"
    assert journal.executions("p_1") and all(row["run_id"] == "p_1-run0" for row in journal.executions("p_1"))


@pytest.mark.parametrize("key, lane, phase", [
    (keys.debug_round(keys.lane_key(2, "eval", "lightgbm"), 1), 2, "evaluate"),
    (keys.debug_round(keys.step_key(0, 3, "k1"), 0), 0, "refine"),
    (keys.debug_round(keys.step_key(1, 0, "ablation"), 0), 1, "ablate"),
    (keys.debug_round(keys.pipeline_key(keys.SUBMIT, "s0", "flag"), 0), keys.PIPELINE_LANE, "submit"),
    (keys.pipeline_key(keys.FLOOR, "linear"), keys.PIPELINE_LANE, "floor"),
])
def test_keys_read_back_what_they_were_built_from(key, lane, phase):
    assert (keys.key_lane(key), keys.exec_phase(key)) == (lane, phase)
    assert keys.key_lane(keys.try_key(keys.fix_key(key, 0), 2)) == lane


def test_run_ids_read_back():
    run_id = keys.pipeline_run_id("titanic-1", 3)
    assert (run_id, keys.run_index_of(run_id), keys.meta_id_of(run_id)) == ("titanic-1-run3", 3, "titanic-1")
    assert keys.run_index_of(f"{run_id}.b2") == 3 and keys.run_index_of("titanic-1") is None
    assert keys.ablation_step(keys.step_key(1, 4, "ablation")) == (1, 4)
    assert keys.is_submission("submit/s0/d1") and not keys.is_submission("lane0/submit/x")
