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
from collections.abc import Iterator
from contextlib import contextmanager
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

pytestmark = pytest.mark.slow  # starts a real `langgraph dev` server and drives runs through it

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
    (home / "crash").mkdir()
    with langgraph_server(home, {"MLESTAR_CHECKPOINTS": str(home / "cp.db"),
                                 "SCRIPTED_CRASH_DIR": str(home / "crash")}) as sdk:
        yield sdk, home


@contextmanager
def langgraph_server(home: Path, env_vars: dict[str, str]) -> Iterator:
    """`langgraph dev` on a copy of the project in home/project, with these environment variables; yields an
    SDK client."""
    project = home / "project"  # a copy: the server's own files never land in the repository
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv*", ".git", "workspace", "checkpoints",
                                                                 "bench", "__pycache__", ".langgraph_api"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(project), **env_vars}
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
        yield get_sync_client(url=base)
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
    assert form["human_review"]["enum"] == ["off", "submission", "enhancer", "all"]  # choices: a drop-down
    for graph_id, name in (("mle_star", "meta_id"), ("pipeline", "run_id")):
        schemas = sdk.assistants.get_schemas(assistants[graph_id]["assistant_id"])
        given = schemas["input_schema"]
        assert "task_dir" in given["required"] and given["properties"]["task_dir"]["description"]
        assert given["properties"][name]["description"]
        assert {"report", "history"} <= set(schemas["output_schema"]["properties"]) if graph_id == "mle_star" \
            else {"submission", "status"} <= set(schemas["output_schema"]["properties"])


def run_error(sdk, graph_id: str, graph_input: dict, context: dict, thread_id: str | None = None) -> str:
    """Start a run; return how it failed (the error message the server recorded)."""
    thread = sdk.threads.create(thread_id=thread_id, graph_id=graph_id)
    run = sdk.runs.create(thread["thread_id"], graph_id, input=graph_input, context=context)
    sdk.runs.join(thread["thread_id"], run["run_id"])
    assert sdk.runs.get(thread["thread_id"], run["run_id"])["status"] == "error"
    return str(sdk.threads.get(thread["thread_id"]).get("error") or
               sdk.threads.get_state(thread["thread_id"])["tasks"][0]["error"])


def test_the_api_checks_settings_and_input_like_the_cli(server):
    sdk, home = server
    ctx, titanic = api_context(home), {"task_dir": str(EXAMPLES / "titanic")}
    for bad, message in (({"num_lanez": 1}, "Unknown setting 'num_lanez'"),
                         ({"num_lanes": 99}, "num_lanes=99 is out of bounds [1, 8]"),
                         ({"human_review": "sometimes"}, "human_review='sometimes' is unknown"),
                         ({"temperature": "hot"}, "temperature='hot' is not a valid float")):
        thread = sdk.threads.create()
        with pytest.raises(httpx.HTTPStatusError) as refused:
            sdk.runs.create(thread["thread_id"], "mle_star", input=titanic, context={**ctx, **bad})
        assert refused.value.response.status_code == 422 and message in refused.value.response.text
    assert "input needs task_dir" in run_error(sdk, "mle_star", {}, ctx)
    assert "got 42" in run_error(sdk, "pipeline", {"task_dir": 42, "run_id": "p42"}, ctx)
    assert "input needs run_id" in run_error(sdk, "pipeline", titanic, ctx)


def test_a_named_run_lives_in_its_own_thread_whichever_door_it_came_in_by(server):
    sdk, home = server
    ctx = api_context(home)
    problem = run_error(sdk, "mle_star", {"task_dir": str(EXAMPLES / "penguins"), "meta_id": "api-meta-1"}, ctx)
    assert "thread_id_for('api-meta-1')" in problem
    assert open_journal(ctx["journal_path"]).get_run("api-meta-1") is None  # nothing registered under the name

    thread = sdk.threads.create(thread_id=thread_id_for("api-meta-2"), graph_id="mle_star")
    sdk.runs.wait(thread["thread_id"], "mle_star", input={"task_dir": str(EXAMPLES / "penguins"),
                                                         "meta_id": "api-meta-2"}, context=ctx)
    found = agent(home)
    assert found.status("api-meta-2").status == "done"
    assert found.history("api-meta-2")  # the CLI's `history` and `report` find the API's run by its name
    assert found.resume("api-meta-2").runs_done == 1  # finished: resume reports it, it does not start over


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
    thread = sdk.threads.create(thread_id=thread_id_for("reviewed-api"), graph_id="mle_star")  # a named run's thread
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
    assert "human review" in done.values["history"][0]["stop_reason"]


def test_a_replay_from_an_earlier_checkpoint_is_a_branch_with_its_own_run_ids(server):
    """Studio's "re-run from here": the same thread, an earlier checkpoint."""
    sdk, home = server
    ctx = api_context(home, num_runs=2)
    tid = thread_id_for("branchy")
    sdk.threads.create(thread_id=tid, graph_id="mle_star")
    sdk.runs.wait(tid, "mle_star", input={"task_dir": str(EXAMPLES / "penguins"), "meta_id": "branchy"}, context=ctx)
    point = [c for c in agent(home).history("branchy") if c.can_fork][-1]  # between run 0 and run 1
    first = home / "workspace" / "penguins" / "branchy" / "run1" / "submission.csv"
    written = first.stat().st_mtime_ns

    sdk.runs.wait(tid, "mle_star", input=None, checkpoint_id=point.checkpoint_id, context=ctx)
    assert first.stat().st_mtime_ns == written  # the first line's run is left as it was
    replayed = home / "workspace" / "penguins" / "branchy" / "run1.b2" / "submission.csv"
    assert grade_submission(load_task(EXAMPLES / "penguins"), replayed).valid
    assert open_journal(ctx["journal_path"]).get_run("branchy-run1.b2")["status"] == "done"
    assert sdk.threads.get_state(tid)["values"]["history"][1]["run_id"] == "branchy-run1.b2"
    rows = agent(home).history("branchy")
    assert {r.branch for r in rows} == {0, 1}
    current = [r.step for r in rows if r.current]
    assert len(current) == len(set(current))  # the current line has each step once
    assert all(r.current for r in rows if r.branch == 1)
