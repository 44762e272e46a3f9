"""Crash safety: 20 SIGKILLs at random moments of one CLI run, each followed by resume; two runs sharing one
checkpoint database and one journal at once; atomic workspace writes; scripts orphaned by a killed agent.

The chaos procedure itself lives in bench/chaos.py (the benchmark runs it standalone).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.chaos import (
    SETTINGS,
    Paths,
    chaos_benchmark,
    execution_rows,
    kill_group,
    launch,
    outcome,
    resume_command,
    run_command,
    status_command,
    stray_processes,
    summary_line,
    tail,
    wait_finished,
)
from graph.checkpoint import thread_id_for
from runtime.files import atomic_copy, atomic_write_text
from runtime.orphans import orphaned_scripts, reap_orphans
from runtime.sandbox import RUN_TAG_VAR
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow  # kills and resumes real runs many times

KILLS = 20
SEED = 20261122


def rounded(runs: list[list]) -> list[list]:
    """Script runs with scores to 9 significant digits: a random forest's threads add their trees' votes in
    any order, which moves the last bits of a score between two identical runs."""
    return [[*run[:-1], None if run[-1] is None else float(f"{run[-1]:.9g}")] for run in runs]


def test_twenty_sigkills_then_resume_give_the_result_of_an_uninterrupted_run(tmp_path):
    started = time.monotonic()
    figures = chaos_benchmark(tmp_path, kills=KILLS, seed=SEED)
    reference, chaos = figures["reference"], figures["chaos"]
    figures["test_wall_s"] = round(time.monotonic() - started, 1)
    print("\n" + summary_line(figures))
    if os.environ.get("MLESTAR_CHAOS_REPORT"):
        Path(os.environ["MLESTAR_CHAOS_REPORT"]).write_text(json.dumps(figures, indent=2, default=str) + "\n")

    # Every planned kill landed on a live process; the last resume finished the run.
    assert figures["kills"] == KILLS, chaos["log"]
    assert figures["resumes"] >= 1 and chaos["processes"] == KILLS + 1
    assert reference["status"] == chaos["status"] == "done"
    # The scripted model and the scripts (fixed seeds) are deterministic: the same work gives the same result.
    assert reference["best_score"] is not None and chaos["best_score"] == reference["best_score"]
    assert chaos["history_scores"] == reference["history_scores"] == [reference["best_score"]]
    assert chaos["submission_sha256"] == reference["submission_sha256"] is not None
    assert chaos["submission_valid"], chaos["submission_problems"]
    grade = grade_submission(load_task(EXAMPLES / "concrete"), chaos["submission"])
    assert grade.valid and grade.score == pytest.approx(reference["graded_score"])
    # The same scripts ran with the same code and results, each exactly once: a kill never made a finished
    # script or model call happen twice; resumes took them from the journal instead.
    assert rounded(chaos["script_runs"]) == rounded(reference["script_runs"])
    assert chaos["answer_keys"] == reference["answer_keys"]
    assert chaos["duplicate_executions"] == [] and chaos["duplicate_answers"] == []
    assert chaos["executions"] == reference["executions"] and chaos["model_calls"] == reference["model_calls"]
    assert chaos["executions_reused"] > 0 and chaos["answers_reused"] > 0
    assert reference["executions_reused"] == reference["answers_reused"] == 0
    # Nothing left running, and the CLI reports the run as done.
    assert chaos["strays"] == [] and reference["strays"] == []
    assert chaos["status_exit_code"] == 0 and "done" in chaos["status_output"]
    # The kills really spread over the phases.
    assert all(count > 0 for count in figures["triggers"].values()), figures["triggers"]
    assert len(figures["phases"]) >= 3 and figures["phases"].get("starting", 0) >= 1, figures["phases"]
    assert any(row.get("killed") and row["checkpoints_before"] > 0 for row in chaos["log"])


# floor (1 script), evaluate (with one debug round): 3 scripts; the lane's solution, the floor's code again, does
# not beat the board, so submit converts nothing
SMALL = {**SETTINGS, "num_candidates": 1, "refine_steps": 0, "floor_approaches": 1}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graph.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_two_runs_on_one_checkpoint_database_and_journal_at_once(tmp_path):
    """Both start together on fresh databases; one is killed mid-run and resumed while the other runs on."""
    paths = Paths(tmp_path)
    runs = {"twin-a": "concrete", "twin-b": "penguins"}
    procs = {rid: launch(run_command(paths, task, rid, SMALL), paths.logs / f"{rid}.log") for rid, task in runs.items()}
    deadline = time.monotonic() + 300
    while execution_rows(paths, "twin-a") < 2:  # the floor's script, then the lane's first: mid-node
        assert procs["twin-a"].poll() is None, tail(paths.logs / "twin-a.log")
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kill_group(procs["twin-a"])
    assert procs["twin-b"].poll() is None, "twin-b should still be running while twin-a resumes"
    procs["twin-a"] = launch(resume_command(paths, "twin-a"), paths.logs / "twin-a-resume.log")
    for rid, proc in procs.items():
        wait_finished(proc, paths.logs / (f"{rid}-resume.log" if rid == "twin-a" else f"{rid}.log"), rid)

    for rid, task in runs.items():
        result = outcome(paths, task, rid)
        assert result["status"] == "done", result
        assert result["submission_valid"], result["submission_problems"]
        assert Path(result["submission"]).parent == paths.workspace / task / rid / "run0"
        assert result["executions"] == 3 and result["duplicate_executions"] == [] and result["duplicate_answers"] == []
        # As if the process that finished the graph had been killed before it updated the journal: a resume of
        # the finished thread records the outcome (it used to leave the run "running" for ever).
        with sqlite3.connect(paths.journal, timeout=30) as conn:
            conn.execute("update runs set status = 'running', best_score = null where run_id = ?", (rid,))
        resumed = cli(*resume_command(paths, rid)[3:])
        assert resumed.returncode == 0 and "has already finished" in resumed.stdout, resumed.stdout + resumed.stderr
        assert "Best submission:" in resumed.stdout
        assert outcome(paths, task, rid)["status"] == "done" and outcome(paths, task, rid)["best_score"] is not None
        status = cli(*status_command(paths, rid)[3:])
        assert status.returncode == 0 and "done" in status.stdout and rid in status.stdout, status.stdout
    assert outcome(paths, "concrete", "twin-a")["executions_reused"] >= 1  # the killed run re-used its script
    listing = cli("status", "--journal", str(paths.journal), "--checkpoints", str(paths.checkpoints))
    assert "twin-a" in listing.stdout and "twin-b" in listing.stdout
    for db in (paths.checkpoints, paths.journal):
        with sqlite3.connect(db) as conn:
            assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
            assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    with sqlite3.connect(paths.checkpoints) as conn:
        threads = {row[0] for row in conn.execute("select distinct thread_id from checkpoints")}
    assert threads == {thread_id_for(run_id) for run_id in runs}
    assert stray_processes(tmp_path) == []


def test_journal_and_checkpointer_open_on_a_fresh_database_from_several_processes_at_once(tmp_path):
    """Regression: opening a new journal or checkpoint database from several processes at once failed at once
    with "database is locked": the switch to WAL, and the journal's table creation (it read, then wrote, in one
    deferred transaction), do not wait for the busy timeout."""
    opener = (f"import pathlib, sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
              "from runtime.journal import SqliteJournal\nfrom graph.checkpoint import open_checkpointer\n"
              "folder = pathlib.Path(sys.argv[1])\n"
              "(folder / ('ready' + sys.argv[2])).touch()\n"
              "while not (folder / 'go').exists(): time.sleep(0.001)\n"
              "SqliteJournal(folder / 'journal.db').upsert_run('r' + sys.argv[2], status='x')\n"
              "open_checkpointer(folder / 'cp.db').setup()\nprint('ok')\n")
    processes = 4
    for round_ in range(4):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", opener, str(folder), str(k)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(processes)]
        deadline = time.monotonic() + 120
        while len(list(folder.glob("ready*"))) < processes and time.monotonic() < deadline:
            time.sleep(0.01)
        (folder / "go").touch()  # every process has imported everything: they open the databases together
        results = [proc.communicate(timeout=120) for proc in procs]
        assert all(out.strip() == "ok" for out, _ in results), [err[-3000:] for _, err in results]
        with sqlite3.connect(folder / "journal.db") as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == processes
            assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


# -- atomic writes -----------------------------------------------------------------------------------


def test_atomic_write_replaces_the_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "report.md"
    atomic_write_text(target, "old\n")
    assert target.read_text() == "old\n" and oct(target.stat().st_mode & 0o777) == "0o644"

    class Boom(Exception):
        pass

    class HalfWritten(str):
        def encode(self, *args, **kwargs):
            raise Boom()

    with pytest.raises(Boom):
        atomic_write_text(target, HalfWritten("new\n"))
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.md"]  # no temporary file left

    source = tmp_path / "attempt.csv"
    source.write_text("id,y\n1,2\n")
    atomic_copy(source, tmp_path / "out" / "submission.csv")
    assert (tmp_path / "out" / "submission.csv").read_text() == "id,y\n1,2\n"


def test_workspace_writers_use_the_atomic_helper():
    """The files a user or a resumed run reads are written through runtime.files (temp file, then rename)."""
    for module, needle in (("nodes/report.py", "atomic_write_text(folder / \"report.md\""),
                           ("nodes/report.py", "atomic_write_bytes(folder / name, image)"),
                           ("nodes/report.py", "atomic_write_text(folder / \"report.html\""),
                           ("nodes/meta_loop.py", "atomic_write_text(path, json.dumps"),
                           ("runtime/board.py", "atomic_copy(Path(csv), workspace / SUBMISSION)"),
                           ("runtime/local_model.py", "atomic_write_text(_marker_path(target)")):
        assert needle in (ROOT / module).read_text(), (module, needle)
    for module in ("nodes/report.py", "nodes/report_figures.py", "nodes/meta_loop.py", "nodes/submit.py",
                   "runtime/board.py", "nodes/blend.py"):
        text = (ROOT / module).read_text()
        assert ".write_text(" not in text and ".savefig(path" not in text and "shutil.copyfile" not in text


# -- scripts orphaned by a killed agent -------------------------------------------------------------------


def start_fake_script(workspace_root: Path, run_id: str, orphan: bool) -> int:
    """A sleeping process that looks like a sandboxed script of `run_id`; orphaned (its parent shell exits at
    once, so it is re-parented away from us) or our own child. Returns its pid."""
    home = workspace_root / "concrete" / run_id / "run0" / "attempts" / "lane0_eval_x_d0"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, RUN_TAG_VAR: "fake", "HOME": str(home)}
    sleeper = f"{sys.executable} -c 'import time; time.sleep(120)'"
    if orphan:
        out = subprocess.run(["sh", "-c", f"setsid {sleeper} > /dev/null 2>&1 & echo $!"], env=env, cwd=home,
                             capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip())
    return subprocess.Popen(["sh", "-c", f"exec {sleeper}"], env=env, cwd=home, start_new_session=True).pid


def test_resume_stops_scripts_orphaned_by_a_killed_process_of_the_same_run_only(tmp_path):
    root = tmp_path / "ws"
    orphan = start_fake_script(root, "r1", orphan=True)
    other_run = start_fake_script(root, "r2", orphan=True)
    supervised = start_fake_script(root, "r1", orphan=False)  # its agent (this test) is alive
    try:
        time.sleep(0.5)
        assert [p.pid for p in orphaned_scripts(root, "r1")] == [orphan]
        assert reap_orphans(root, "r1") == 1
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
        assert psutil.Process(other_run).is_running() and psutil.Process(supervised).is_running()
        assert reap_orphans(root, "r1") == 0
    finally:
        for pid in (orphan, other_run, supervised):
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
