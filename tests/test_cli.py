"""The CLI as a user drives it: run, SIGKILL mid-run, resume, status, grade; errors for bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT, SCRIPTED, cli, count, paths

FAST = ["--set", "num_lanes=1", "--set", "num_candidates=2", "--set", "refine_steps=1", "--set", "inner_steps=2",
        "--set", "ensemble_rounds=0", "--set", "debug_rounds=1"]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_finishes_without_rerunning_finished_scripts(tmp_path):
    journal = tmp_path / "journal.db"
    proc = subprocess.Popen([sys.executable, "-m", "graph.cli", "run", str(EXAMPLES / "concrete"), "--run-id", "k1",
                             "--model", SCRIPTED, *FAST, *paths(tmp_path)], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while count(journal, "select count(*) from executions") < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    executed = count(journal, "select count(*) from executions")
    assert executed >= 3

    resumed = cli("resume", "k1", "--journal", str(journal), "--checkpoints", str(tmp_path / "cp.db"),
                  tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Best submission:" in resumed.stdout

    submission = tmp_path / "ws" / "concrete" / "k1" / "run0" / "submission.csv"
    grade = grade_submission(load_task(EXAMPLES / "concrete"), submission)
    assert grade.valid and grade.score < 16.05  # beats predicting the mean
    assert count(journal, "select count(*) from (select 1 from executions group by run_id, exec_key, code_sha "
                          "having count(*) > 1)") == 0
    assert count(journal, "select count(*) from (select 1 from model_calls group by run_id, call_key, prompt_sha "
                          "having count(*) > 1)") == 0

    status = cli("status", "k1", "--journal", str(journal), tmp_path=tmp_path)
    assert "done" in status.stdout and "model_calls=" in status.stdout


def test_run_rejects_a_broken_task_folder_without_writing_anything(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("run", str(tmp_path / "empty"), *paths(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Error" in result.stdout
    assert not (tmp_path / "journal.db").exists() and not (tmp_path / "ws").exists()


def test_run_rejects_bad_settings(tmp_path):
    result = cli("run", str(EXAMPLES / "titanic"), "--set", "num_lanes=99", *paths(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 2 and "out of bounds" in result.stdout
    result = cli("run", str(EXAMPLES / "titanic"), "--model", "coder=nope:x", *paths(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 2 and "provider" in result.stdout.lower()


def test_grade_command(tmp_path):
    good = cli("grade", str(EXAMPLES / "titanic"), str(EXAMPLES / "titanic" / "public" / "sample_submission.csv"),
               tmp_path=tmp_path)
    assert good.returncode == 0 and "accuracy = 0.618" in good.stdout
    broken = tmp_path / "sub.csv"
    broken.write_text("id,Survived\n1,0\n")
    bad = cli("grade", str(EXAMPLES / "titanic"), str(broken), tmp_path=tmp_path)
    assert bad.returncode == 1 and "Invalid submission" in bad.stdout


@pytest.mark.slow
def test_a_damaged_checkpoint_database_is_named_and_the_run_is_rebuilt_from_the_journal(tmp_path):
    journal, checkpoints = tmp_path / "journal.db", tmp_path / "cp.db"
    first = cli("run", str(EXAMPLES / "penguins"), "--run-id", "d1", "--model", SCRIPTED, *FAST,
                "--set", "floor_approaches=1", *paths(tmp_path), tmp_path=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    executed = count(journal, "select count(*) from executions")
    asked = count(journal, "select count(*) from model_calls")
    with open(checkpoints, "r+b") as f:  # garbage over the b-tree pages after the header page
        f.seek(4096)
        f.write(b"\xde\xad\xbe\xef" * 4096)

    refused = cli("resume", "d1", "--journal", str(journal), "--checkpoints", str(checkpoints), tmp_path=tmp_path)
    assert refused.returncode == 2
    said = " ".join(refused.stdout.split())
    assert f"The checkpoint database {checkpoints} is damaged" in said and "mv " in said and "Traceback" not in said
    with sqlite3.connect(journal) as conn:
        assert conn.execute("select status from runs where run_id = 'd1'").fetchone()[0] == "error"

    checkpoints.rename(tmp_path / "cp.db.damaged")
    rebuilt = cli("resume", "d1", "--journal", str(journal), "--checkpoints", str(checkpoints), tmp_path=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "Best submission:" in rebuilt.stdout
    # every finished script and answer came from the journal
    assert count(journal, "select count(*) from executions") == executed
    assert count(journal, "select count(*) from model_calls") == asked


@pytest.mark.slow
def test_a_scripted_model_module_in_the_current_folder_is_found(tmp_path):
    (tmp_path / "my_answers.py").write_text("from tests.scripted_model import respond\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the project itself, as an installed package would be
    mlestar = Path(sys.executable).with_name("mlestar")  # unlike `python -m`, it does not put the cwd on the path
    ran = subprocess.run([str(mlestar), "run", str(EXAMPLES / "penguins"), "--run-id", "m1",
                          "--model", "scripted:my_answers:respond", *FAST, "--set", "floor_approaches=1",
                          *paths(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.slow
def test_batch_runs_each_task_in_turn_and_the_same_command_again_redoes_nothing(tmp_path):
    small = ["--set", "num_lanes=1", "--set", "num_candidates=1", "--set", "refine_steps=0",
             "--set", "ensemble_rounds=0", "--set", "floor_approaches=1"]
    command = ["batch", str(EXAMPLES / "concrete"), str(EXAMPLES / "penguins"), "--batch-id", "nightly",
               "--model", SCRIPTED, *small, *paths(tmp_path)]
    first = cli(*command, tmp_path=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "this process, one after another" in first.stdout
    journal = tmp_path / "journal.db"
    assert count(journal, "select count(*) from runs where run_id in ('nightly-concrete', 'nightly-penguins') "
                          "and status = 'done'") == 2
    executed = count(journal, "select count(*) from executions")

    again = cli(*command, tmp_path=tmp_path)
    assert again.returncode == 0 and again.stdout.count("done") >= 2
    assert count(journal, "select count(*) from executions") == executed  # finished runs are not run again
