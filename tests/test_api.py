"""One checkpoint store for every way in: `langgraph dev` (REST API through langgraph_sdk), Python and the CLI.

The server runs on a free 127.0.0.1 port over a copy of the project, with its checkpointer (langgraph.json)
on the same SQLite file as the Python client in the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from graph.checkpoint import thread_id_for
from graph.client import MleStar
from runtime.journal import open_journal
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT, scripted_context

CLI = Path(sys.executable).with_name("langgraph")
FAST = dict(num_lanes=1, num_candidates=1, refine_steps=0, ensemble_rounds=0, debug_rounds=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`langgraph dev` with the project's custom checkpointer on home/cp.db; yields (sdk client, home)."""
    home = tmp_path_factory.mktemp("api")
    project = home / "project"  # a copy: the server's own files never land in the repository
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv*", ".git", "workspace", "checkpoints",
                                                                 "bench", "__pycache__", ".langgraph_api"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(project), "MLESTAR_CHECKPOINTS": str(home / "cp.db"),
           "SCRIPTED_CRASH_DIR": str(home / "crash")}
    (home / "crash").mkdir()
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(CLI), "dev", "--no-browser", "--no-reload", "--port", str(port),
                             "--host", "127.0.0.1"], cwd=project, env=env, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (home / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield get_sync_client(url=base), home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def api_context(home: Path, **overrides) -> dict:
    """The run settings as the API takes them (the `context` of a run)."""
    return asdict(scripted_context(home, **{**FAST, **overrides}))


def agent(home: Path) -> MleStar:
    return MleStar(checkpoints=home / "cp.db", journal=home / "journal.db")


def test_the_server_draws_and_describes_both_graphs_and_every_setting(server):
    sdk, _ = server
    assistants = {a["graph_id"]: a for a in sdk.assistants.search()}
    assert set(assistants) == {"mle_star", "pipeline"}
    assert "Enhancer" in assistants["mle_star"]["description"] and assistants["pipeline"]["description"]
    drawn = sdk.assistants.get_graph(assistants["pipeline"]["assistant_id"], xray=1)
    names = {node["id"] for node in drawn["nodes"]}
    assert {"prepare", "search", "ensemble", "submit"} <= names
    assert any("evaluate" in n for n in names) and any("refine" in n for n in names)
    schemas = sdk.assistants.get_schemas(assistants["mle_star"]["assistant_id"])
    form = schemas["context_schema"]["properties"]
    assert all(field.get("description") for field in form.values())  # Studio's form explains every field
    assert (form["num_lanes"]["minimum"], form["num_lanes"]["maximum"]) == (1, 8)


def test_a_run_started_from_python_is_readable_through_the_api(server):
    sdk, home = server
    result = agent(home).run(EXAMPLES / "titanic", run_id="py-run", model="scripted:tests.scripted_model:respond",
                             **FAST, workspace_root=str(home / "workspace"))
    assert result.status == "done" and result.thread_id == thread_id_for("py-run")
    sdk.threads.create(thread_id=result.thread_id, graph_id="mle_star", if_exists="do_nothing")
    state = sdk.threads.get_state(result.thread_id)
    assert state["values"]["report"]["best_submission"] == result.submission
    assert state["next"] == []
    assert len(sdk.threads.get_history(result.thread_id, limit=100)) >= 5


def test_pipeline_through_the_api_then_a_crashed_run_resumed_through_the_api(server):
    sdk, home = server
    thread = sdk.threads.create()
    ctx = api_context(home)
    final = sdk.runs.wait(thread["thread_id"], "pipeline", input={"task_dir": str(EXAMPLES / "penguins"),
                                                                 "run_id": "api-pipeline"}, context=ctx)
    assert final["status"] == "done" and Path(final["submission"]["path"]).exists()
    assert [h["next"] for h in sdk.threads.get_history(thread["thread_id"], limit=100)][0] == []

    (home / "crash" / "write_a_solution_script").touch()  # the scripted model raises once on that prompt
    thread = sdk.threads.create(graph_id="mle_star")
    crashed = sdk.runs.create(thread["thread_id"], "mle_star", input={"task_dir": str(EXAMPLES / "titanic")},
                              context=ctx)
    sdk.runs.join(thread["thread_id"], crashed["run_id"])
    assert sdk.runs.get(thread["thread_id"], crashed["run_id"])["status"] == "error"
    journal = open_journal(ctx["journal_path"])
    run0 = thread["thread_id"] + "-run0"
    searches = journal.db["model_calls"].count_where("run_id = ? and node = 'search'", [run0])
    assert searches >= 1  # what finished before the crash is in the journal
    sdk.runs.wait(thread["thread_id"], "mle_star", input=None, context=ctx)  # resume: same thread, no input
    state = sdk.threads.get_state(thread["thread_id"])["values"]
    assert state["meta_id"] == thread["thread_id"]  # unnamed: the run is named after its thread
    assert grade_submission(load_task(EXAMPLES / "titanic"), state["report"]["best_submission"]).valid
    # the search finished before the crash and was not asked again
    assert journal.db["model_calls"].count_where("run_id = ? and node = 'search'", [run0]) == searches
    # the same run is known to the CLI and Python side: registered in the journal by its first node
    assert agent(home).status(thread["thread_id"]).status == "done"


def test_review_before_submission_through_the_api_and_from_python(server):
    sdk, home = server
    ctx = api_context(home, human_review="submission")
    thread = sdk.threads.create(graph_id="mle_star")
    sdk.runs.wait(thread["thread_id"], "mle_star", input={"task_dir": str(EXAMPLES / "titanic"),
                                                         "meta_id": "reviewed-api"}, context=ctx)
    state = sdk.threads.get_state(thread["thread_id"])
    proposal = state["interrupts"][0]["value"]
    assert proposal["review"] == "submission" and proposal["proposal"]["preview"][0] == "id,Survived"
    sdk.runs.wait(thread["thread_id"], "mle_star", command={"resume": "approve"}, context=ctx)
    values = sdk.threads.get_state(thread["thread_id"])["values"]
    assert Path(values["report"]["best_submission"]).exists()

    python = agent(home)
    paused = python.run(EXAMPLES / "titanic", run_id="reviewed-py", model="scripted:tests.scripted_model:respond",
                        **FAST, human_review="submission", workspace_root=str(home / "workspace"))
    assert paused.status == "review" and paused.review.point == "submission" and paused.submission is None
    mine = home / "mine.csv"
    shutil.copy(paused.review.proposal["submission_csv"], mine)
    again = python.review("reviewed-py", {"action": "edit", "edit": {"submission_path": str(home / "nope.csv")}})
    assert again.status == "review" and "existing CSV" in again.review.problem  # a bad edit asks again
    done = python.review("reviewed-py", {"action": "edit", "edit": {"submission_path": str(mine)}})
    assert done.status == "done"
    assert Path(done.submission).read_text() == mine.read_text()
    assert "reviewer" in done.values["history"][0]["stop_reason"]
