from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from graph.checkpoint import open_checkpointer
from graph.context import Context
from graph.pipeline import build_graph
from nodes.common import task_of
from nodes.prepare import prepare
from runtime.catalog import applicable, render_example
from runtime.journal import open_journal
from runtime.sandbox import bwrap_problem
from tests import malformed_model as M

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTED = "scripted:tests.scripted_model:respond"
MALFORMED = "scripted:tests.malformed_model:respond"


def scripted_context(tmp_path: Path, **overrides) -> Context:
    """A small, fast configuration that still exercises every phase (floor of 2 catalog approaches, 2 lanes,
    merge, T=1, K=2, R=1, blend)."""
    settings = dict(
        coder_model=SCRIPTED, planner_model=SCRIPTED, reviewer_model=SCRIPTED, enhancer_model=SCRIPTED,
        num_lanes=2, num_candidates=2, refine_steps=1, inner_steps=2, ensemble_rounds=1, debug_rounds=1,
        floor_approaches=2, script_timeout_s=120, workspace_root=str(tmp_path / "workspace"),
        journal_path=str(tmp_path / "journal.db"))
    settings.update(overrides)
    return Context(**settings)


@pytest.fixture
def ctx(tmp_path):
    return scripted_context(tmp_path)


def run_pipeline(ctx, tmp_path, task="titanic", run_id="r1", graph_input="start"):
    """Run the pipeline graph to its end; `task` names an example task or is a task folder's path."""
    graph = build_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 500}
    payload = {"task_dir": str(EXAMPLES / task), "run_id": run_id} if graph_input == "start" else None
    graph.invoke(payload, config, context=ctx, durability="sync")
    return graph.get_state(config).values


# --------------------------------------------------------------------------- the command line and the sandbox

#: The isolation backends that work here (bubblewrap only where it can make namespaces).
BACKENDS = ["subprocess"] + (["bwrap"] if bwrap_problem() is None else [])


def cli(*args: str, tmp_path: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graph.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kwargs)


def paths(tmp_path: Path) -> list[str]:
    return ["--set", f"workspace_root={tmp_path / 'ws'}", "--set", f"journal_path={tmp_path / 'journal.db'}",
            "--checkpoints", str(tmp_path / "cp.db")]


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes working in `folder` (PIDs written by a script are namespace-local under bwrap)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == folder.resolve():
                found.append(proc)
        except psutil.Error:
            pass
    return found


# --------------------------------------------------------------------------- the malformed model's tests


@pytest.fixture
def answers(monkeypatch) -> dict:
    table: dict = {}
    monkeypatch.setattr(M, "ANSWERS", table)
    return table


def malformed_context(tmp_path, **overrides):
    roles = {f"{role}_model": MALFORMED for role in ("coder", "planner", "reviewer", "enhancer")}
    return scripted_context(tmp_path, **{**roles, **overrides})


def prepared(ctx, task_dir=EXAMPLES / "titanic", run_id="u1"):
    runtime = SimpleNamespace(context=ctx)
    state = {"task_dir": str(task_dir), "run_id": run_id}
    return {**state, **prepare(state, runtime)}, runtime


def with_lane(state: dict, key: str = "linear") -> dict:
    task = task_of(state)
    approach = next(a for a in applicable(task) if a.key == key)
    return {**state, "lane": 0, "approaches": [{"key": key, "title": approach.title, "description":
                                                approach.description, "example_code": render_example(approach, task)}]}


def example(state: dict, key: str = "linear") -> str:
    task = task_of(state)
    return render_example(next(a for a in applicable(task) if a.key == key), task)


def calls(ctx, key_pattern: str) -> list[dict]:
    """Model calls whose call_key matches the SQL LIKE pattern, in order."""
    return list(open_journal(ctx.journal_path).db["model_calls"].rows_where(
        "call_key like ?", [key_pattern], order_by="id"))


def execution(ctx, exec_key: str) -> dict:
    [row] = open_journal(ctx.journal_path).db["executions"].rows_where("exec_key = ?", [exec_key])
    return {**row, "result": json.loads(row["result"])}


# --------------------------------------------------------------------------- a real PostgreSQL server


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (bench/postgres_server.py). Skipped, with the reason, only where
    its programs cannot run; in CI (CI=true) that is a failure, since .ci/run installs them."""
    from bench.postgres_server import PostgresServer

    try:
        server = PostgresServer().start()
    except (RuntimeError, KeyError, OSError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server could start here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh database on the session's server."""
    return postgres_server.new_database()
