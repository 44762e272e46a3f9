"""The shared store on a real PostgreSQL server (bench/postgres_server.py, started by the test session):
the journal behaves as on SQLite, its schema is created once and versioned, the pipeline checkpoints to the
database, and CLI runs on one database survive a SIGKILL (resumed by another process) while another runs on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import psycopg
import pytest

from graph.checkpoint import CheckpointError, open_checkpointer, server_checkpointer, thread_id_for
from graph.pipeline import build_graph
from runtime.journal import SCHEMA_VERSION, JournalError, SqliteJournal, open_journal, sha256_text
from runtime.journal_postgres import SCHEMA, PostgresJournal
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT, SCRIPTED, scripted_context

# One lane, two candidates (one needs the debugger), one refinement step: 8 scripts, quick on concrete.
SMALL = ["--set", "num_lanes=1", "--set", "num_candidates=2", "--set", "refine_steps=1", "--set", "inner_steps=2",
         "--set", "ensemble_rounds=0", "--set", "debug_rounds=1", "--set", "floor_approaches=2"]


def scalar(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(sql, params).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0


def exercise(journal) -> dict:
    """The same calls on any store; what they return, without the clock's values."""
    journal.upsert_run("m", status="running", context={"x": 1})
    journal.upsert_run("m-run0", meta_id="m", status="running")
    journal.upsert_run("m", status="done", best_score=0.5)
    journal.record_answer(run_id="m-run0", node="evaluate", role="coder", model="scripted", call_key="k#0",
                          prompt="p", answer="a", tokens_in=30, tokens_out=40, latency_s=1.25, cost_usd=0.01)
    journal.record_execution(run_id="m-run0", lane=0, exec_key="lane0/eval", code="print(1)", code_path="x.py",
                             result={"status": "ok", "score": 0.75, "duration_s": 2.0, "stdout_tail": "Final"})
    found = [journal.find_answer("m-run0", "k#0", sha256_text("p")), journal.find_answer("m-run0", "k#0", "other"),
             journal.find_execution("m-run0", "lane0/eval", sha256_text("print(1)"))]
    journal.record_meta_run("m", {"run_index": 0, "run_id": "m-run0", "status": "running"})
    journal.record_meta_run("m", {"run_index": 0, "run_id": "m-run0", "status": "done", "best_score": 0.75})
    run = journal.get_run("m")
    drop = {"created_at", "started_at", "updated_at"}
    return {
        "found": found, "run": {k: v for k, v in run.items() if k not in drop},
        "meta": [(r["run_index"], r["status"], r["best_score"]) for r in journal.meta_runs("m")],
        "usage": journal.usage("m"), "breakdown": journal.usage_breakdown("m"), "run_usage": journal.run_usage("m-run0"),
        "executions": [{k: v for k, v in r.items() if k not in drop} for r in journal.executions("m")],
        "calls": [{k: v for k, v in r.items() if k not in drop} for r in journal.model_calls("m")],
        "requests": journal.request_count("scr%", 0)[0], "measured": journal.measured_calls("scripted"),
        "durations": journal.script_durations("m-run0"), "repeated": journal.repeated_work("m"),
        "unused": journal.unused_run_id("m"), "runs": [r["run_id"] for r in journal.runs()],
    }


def test_the_journal_answers_the_same_on_postgresql_and_sqlite(postgres_url, tmp_path):
    on_postgres, on_sqlite = exercise(open_journal(postgres_url)), exercise(SqliteJournal(tmp_path / "j.db"))
    assert on_postgres == on_sqlite
    assert on_postgres["found"][0] == "a" and on_postgres["found"][1] is None
    assert on_postgres["usage"]["answers_reused"] == 1 and on_postgres["usage"]["executions_reused"] == 1
    assert on_postgres["meta"] == [(0, "done", 0.75)] and on_postgres["unused"] == "m.b2"
    assert isinstance(on_postgres["usage"]["tokens_in"], int)  # PostgreSQL's numeric sums come back as numbers


def test_a_new_database_gets_one_versioned_schema_even_when_several_processes_open_it_at_once(postgres_url):
    opener = ("import sys; from runtime.journal_postgres import PostgresJournal; "
              "from graph.checkpoint import open_checkpointer; "
              "PostgresJournal(sys.argv[1]).close(); open_checkpointer(sys.argv[1])")
    procs = [subprocess.Popen([sys.executable, "-c", opener, postgres_url], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    assert scalar(postgres_url, f"select count(*) from {SCHEMA}.schema_version") == 1
    assert scalar(postgres_url, f"select max(version) from {SCHEMA}.schema_version") == SCHEMA_VERSION
    assert scalar(postgres_url, "select count(*) from checkpoint_migrations") > 0  # LangGraph's own tables

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as left by a newer mlestar
        conn.execute(f"insert into {SCHEMA}.schema_version values (%s)", [SCHEMA_VERSION + 1])
    with pytest.raises(JournalError, match="newer than this mlestar knows"):
        PostgresJournal(postgres_url)


def test_an_unreachable_server_is_named_without_its_password_and_with_the_fix(postgres_server):
    url = f"postgresql://someone:s3cret@127.0.0.1:{postgres_server.port + 1}/nowhere"  # nothing listens there
    with pytest.raises(JournalError) as journal_error:
        PostgresJournal(url)
    with pytest.raises(CheckpointError) as checkpoint_error:
        open_checkpointer(url)
    for message in (str(journal_error.value), str(checkpoint_error.value)):
        assert "s3cret" not in message and "someone:***@127.0.0.1" in message
        assert "Fix: start the server or correct the URL" in message
    status = subprocess.run([sys.executable, "-m", "graph.cli", "status", "--checkpoints", url], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 2 and "Cannot use the PostgreSQL journal" in status.stdout, status.stdout + status.stderr
    assert "s3cret" not in status.stdout + status.stderr


def test_the_pipeline_checkpoints_to_postgresql_and_journals_there(postgres_url, tmp_path, monkeypatch):
    ctx = scripted_context(tmp_path, num_lanes=1, num_candidates=1, refine_steps=0, ensemble_rounds=0,
                           floor_approaches=1, journal_path=postgres_url)
    graph = build_graph(open_checkpointer(postgres_url))
    config = {"configurable": {"thread_id": "pg1"}, "recursion_limit": 500}
    graph.invoke({"task_dir": str(EXAMPLES / "concrete"), "run_id": "pg1"}, config, context=ctx, durability="sync")

    state = graph.get_state(config)
    assert not state.next
    assert grade_submission(load_task(EXAMPLES / "concrete"), state.values["submission"]["path"]).valid
    assert scalar(postgres_url, "select count(*) from checkpoints where thread_id = 'pg1'") >= 5
    assert scalar(postgres_url, f"select count(*) from {SCHEMA}.executions where run_id = 'pg1'") >= 2
    assert open_journal(postgres_url).get_run("pg1")["status"] == "done"
    assert not (tmp_path / "journal.db").exists()  # nothing went to the SQLite default

    monkeypatch.setenv("MLESTAR_CHECKPOINTS", postgres_url)  # the server's checkpointer reads the same thread

    async def read_as_the_server():
        async with server_checkpointer() as saver:
            return await saver.aget_tuple(config)

    assert asyncio.run(read_as_the_server()).checkpoint["id"] == state.config["configurable"]["checkpoint_id"]


def cli_run(task: str, run_id: str, url: str, tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / f"{run_id}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "graph.cli", "run", str(EXAMPLES / task), "--run-id", run_id,
                             "--model", SCRIPTED, *SMALL, "--set", f"workspace_root={tmp_path / 'ws'}",
                             "--checkpoints", url], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.slow
def test_two_runs_share_one_database_and_a_sigkilled_one_is_finished_by_another_process(postgres_url, tmp_path):
    """--checkpoints URL alone puts the journal in the same database; twin-a is SIGKILLed mid-run (a node
    dies) and resumed by a new process while twin-b runs on."""
    runs = {"twin-a": "concrete", "twin-b": "penguins"}
    procs = {run_id: cli_run(task, run_id, postgres_url, tmp_path) for run_id, task in runs.items()}
    executed = f"select count(*) from {SCHEMA}.executions where run_id like 'twin-a%%'"
    deadline = time.monotonic() + 300
    while scalar(postgres_url, executed) < 3:
        assert procs["twin-a"].poll() is None, (tmp_path / "twin-a.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(procs["twin-a"].pid, signal.SIGKILL)  # the process group: the CLI and its running script
    procs["twin-a"].wait()
    assert procs["twin-b"].poll() is None, "twin-b should still be running while twin-a resumes"

    resumed = subprocess.run([sys.executable, "-m", "graph.cli", "resume", "twin-a", "--checkpoints", postgres_url],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert procs["twin-b"].wait(timeout=600) == 0, (tmp_path / "twin-b.log").read_text()[-3000:]

    journal = open_journal(postgres_url)
    for run_id, task in runs.items():
        row = journal.get_run(run_id)
        assert row["status"] == "done", row
        assert grade_submission(load_task(EXAMPLES / task), row["submission"]).valid
        assert journal.repeated_work(run_id) == {"executions": 0, "answers": 0}  # nothing finished redone
    assert journal.usage("twin-a")["executions_reused"] >= 1  # the resume took the killed run's scripts
    threads = {thread_id_for(run_id) for run_id in runs}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        stored = {row[0] for row in conn.execute("select distinct thread_id from checkpoints")}
    assert stored == threads
    listing = subprocess.run([sys.executable, "-m", "graph.cli", "status", "--checkpoints", postgres_url], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert "twin-a" in listing.stdout and "twin-b" in listing.stdout


def test_threads_of_one_process_share_the_journal_pool(postgres_url):
    journal = open_journal(postgres_url)
    def write(k: int) -> None:
        for i in range(20):
            journal.record_execution(run_id=f"t{k}", lane=k, exec_key=f"e{i}", code=str(i), code_path="x",
                                     result={"status": "ok", "score": i, "duration_s": 0.1})
    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(journal.usage(f"t{k}")["executions"] for k in range(6)) == 120


@pytest.mark.slow
def test_one_server_on_the_database_shows_cli_runs_and_journals_its_own_there(postgres_url, tmp_path):
    """`langgraph dev` with MLESTAR_CHECKPOINTS=URL: a run the CLI made is in its threads, and a run started
    through the API (no journal_path given) journals to the same database."""
    from tests.test_api import FAST, langgraph_server

    made = subprocess.run([sys.executable, "-m", "graph.cli", "run", str(EXAMPLES / "concrete"), "--run-id", "by-cli",
                           "--model", SCRIPTED, *SMALL, "--set", f"workspace_root={tmp_path / 'ws'}",
                           "--checkpoints", postgres_url], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    with langgraph_server(tmp_path, {"MLESTAR_CHECKPOINTS": postgres_url}) as sdk:
        sdk.threads.create(thread_id=thread_id_for("by-cli"), graph_id="mle_star", if_exists="do_nothing")
        state = sdk.threads.get_state(thread_id_for("by-cli"))  # the CLI's checkpoints, read by the server
        assert state["values"]["history"][0]["status"] == "done" and not state["next"]

        context = asdict(scripted_context(tmp_path, **FAST))
        del context["journal_path"]  # the server's default: the database of MLESTAR_CHECKPOINTS
        thread = sdk.threads.create(graph_id="mle_star")
        sdk.runs.wait(thread["thread_id"], "mle_star", context=context,
                      input={"task_dir": str(EXAMPLES / "penguins"), "meta_id": thread["thread_id"]})
    row = open_journal(postgres_url).get_run(thread["thread_id"])
    assert row is not None and row["status"] == "done", row
    assert grade_submission(load_task(EXAMPLES / "penguins"), row["submission"]).valid


def test_a_password_in_the_journal_url_stays_out_of_the_workspace_files():
    from nodes.meta_loop import history_file

    url = "postgresql://team:s3cret@db:5432/mlestar"
    run = {"run_index": 0, "status": "done", "start_time_iso": "2026-12-05T10:00:00", "duration_s": 12.0,
           "best_score": 0.5, "best_solution_path": "x.py", "config": {"journal_path": url, "num_lanes": 2},
           "shaped_by": None, "run_id": "r-run0", "submission_path": "s.csv", "stop_reason": None}
    [saved] = history_file([run], [])
    assert saved["config_used"] == {"journal_path": "postgresql://team:***@db:5432/mlestar", "num_lanes": 2}
    assert run["config"]["journal_path"] == url  # the state keeps what resuming needs
