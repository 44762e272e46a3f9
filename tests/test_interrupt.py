"""Ctrl-C as a user presses it: a real SIGINT to a real process, at several moments of the pipeline and of the
meta loop. The run must stop at once (the running script killed, nothing new recorded), be marked
interrupted, and `resume` must finish it without redoing anything finished."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from graph.client import MleStar
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT, SCRIPTED, count

pytestmark = pytest.mark.slow

SMALL = ["--set", "num_lanes=1", "--set", "num_candidates=2", "--set", "refine_steps=1", "--set", "inner_steps=2",
         "--set", "ensemble_rounds=0", "--set", "debug_rounds=1", "--set", "floor_approaches=2"]


def run_status(journal: Path, run_id: str) -> str:
    with sqlite3.connect(journal, timeout=5) as conn:
        return conn.execute("select status from runs where run_id = ?", [run_id]).fetchone()[0]


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes working in `folder` (the run's scripts)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.cwd().startswith(str(folder)) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def wait_for(condition, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 300
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 300 s"
        time.sleep(0.05)


def duplicated(journal: Path) -> int:
    return (count(journal, "select count(*) from (select 1 from executions group by run_id, exec_key, code_sha "
                           "having count(*) > 1)")
            + count(journal, "select count(*) from (select 1 from model_calls group by run_id, call_key, prompt_sha "
                             "having count(*) > 1)"))


def interrupt(proc: subprocess.Popen, journal: Path) -> int:
    """Ctrl-C as a terminal sends it (to the foreground process group); the executions recorded at that moment."""
    before = count(journal, "select count(*) from executions")
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    return before


@pytest.mark.parametrize("moment", ["first script running", "after 3 scripts", "second pipeline run"])
def test_ctrl_c_stops_the_cli_at_once_and_resume_finishes_the_run(tmp_path, moment):
    journal, workspace = tmp_path / "journal.db", tmp_path / "ws"
    runs = "2" if moment == "second pipeline run" else "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "graph.cli", "run", str(EXAMPLES / "concrete"), "--run-id", "c1", "--runs", runs,
         "--model", SCRIPTED, *SMALL, "--set", f"workspace_root={workspace}", "--set", f"journal_path={journal}",
         "--checkpoints", str(tmp_path / "cp.db")],
        cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if moment == "first script running":
        wait_for(lambda: processes_under(workspace), proc, "a script started")
    elif moment == "after 3 scripts":
        wait_for(lambda: count(journal, "select count(*) from executions") >= 3, proc, "3 scripts")
    else:
        wait_for(lambda: count(journal, "select count(*) from meta_runs") >= 1, proc, "the first run finished")
        wait_for(lambda: processes_under(workspace / "concrete" / "c1" / "run1"), proc, "a script of run 2")
    executed = interrupt(proc, journal)

    output = proc.stdout.read()
    assert proc.returncode == 130, output
    assert "Stopped." in output and "mlestar resume c1" in output
    assert processes_under(workspace) == []  # the running script was killed with the run
    assert count(journal, "select count(*) from executions") <= executed + 1  # at most one finished meanwhile
    assert run_status(journal, "c1") == "interrupted"

    resumed = subprocess.run([sys.executable, "-m", "graph.cli", "resume", "c1", "--journal", str(journal),
                              "--checkpoints", str(tmp_path / "cp.db")],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Best submission:" in resumed.stdout
    assert run_status(journal, "c1") == "done"
    assert count(journal, "select count(*) from meta_runs where meta_id = 'c1'") == int(runs)
    assert duplicated(journal) == 0
    submission = workspace / "concrete" / "c1" / f"run{int(runs) - 1}" / "submission.csv"
    assert grade_submission(load_task(EXAMPLES / "concrete"), submission).valid


LIBRARY_RUN = """
import sys
from graph.client import MleStar
agent = MleStar(sys.argv[1], sys.argv[2])
agent.run(sys.argv[3], run_id="lib1", model=sys.argv[4], num_lanes=1, num_candidates=2, refine_steps=1,
          inner_steps=2, ensemble_rounds=0, debug_rounds=1, floor_approaches=2, workspace_root=sys.argv[5])
"""


def test_ctrl_c_in_a_python_caller_raises_keyboard_interrupt_once_the_nodes_stopped(tmp_path):
    journal, workspace, checkpoints = tmp_path / "journal.db", tmp_path / "ws", tmp_path / "cp.db"
    proc = subprocess.Popen([sys.executable, "-c", LIBRARY_RUN, str(checkpoints), str(journal),
                             str(EXAMPLES / "penguins"), SCRIPTED, str(workspace)],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    wait_for(lambda: count(journal, "select count(*) from executions") >= 2, proc, "2 scripts")
    wait_for(lambda: processes_under(workspace), proc, "a script started")
    executed = interrupt(proc, journal)

    output = proc.stdout.read()
    assert "KeyboardInterrupt" in output and proc.returncode != 0
    assert processes_under(workspace) == []
    assert count(journal, "select count(*) from executions") <= executed + 1
    assert run_status(journal, "lib1") == "interrupted"

    result = MleStar(checkpoints, journal).resume("lib1")
    assert result.status == "done", result.stop_reason
    assert grade_submission(load_task(EXAMPLES / "penguins"), result.submission).valid
    assert duplicated(journal) == 0
