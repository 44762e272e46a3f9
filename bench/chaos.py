"""Chaos benchmark: SIGKILL a CLI run at random moments, resume it each time, and compare with a clean run.

The procedure (also used by tests/test_chaos.py):

1. A reference run: `mlestar run examples/<task>` with the scripted model and small settings, uninterrupted.
2. The chaos run: the same command under another run id, SIGKILLed (the whole process group) at a moment
   drawn from a seeded random.Random, then `mlestar resume`, killed again, ... until `kills` kills have
   happened; the last resume may finish. Kill moments are spread over the phases of a run: a fixed very
   early one (0.3 s after start, while Python still imports), a fixed one inside the evaluate node (just
   after its first script finished, so its resume must re-use it), random ones during startup, right after a
   new checkpoint row appears (amid the checkpoint writes of a superstep), right after a script's result
   reaches the journal (before the node's checkpoint), while a generated script runs, and anywhere.
   A kill that lands before the run was registered in the journal is followed by `run` again (there is
   nothing to resume yet; the user never saw the run id). Guards keep a fast machine from finishing the
   run early: once submit is done, a process is killed at once, or just after its start banner (so the
   last kills land in record/report and in the start of a resume).
   The reference run goes on beside the chaos run: results do not depend on timing.
3. Figures: kills, resumes, script executions, reused executions and answers, duplicate journal rows, the
   final results of both runs, whether they match, whether the submission is valid, stray processes.

    .venv/bin/python bench/chaos.py [--kills 20] [--seed 20261122] [--task concrete] [--set key=value ...]
                                    [--out bench/results/chaos.json] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from graph.checkpoint import thread_id_for  # noqa: E402
from runtime.journal import WHERE_RUN  # noqa: E402
from runtime.sandbox import RUN_TAG_VAR  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402

SCRIPTED = "scripted:tests.scripted_model:respond"
# Small but complete: evaluate 2 candidates (one needs the debugger), merge, 1 refinement step of 2 rewrites,
# submit, record, report: 8 script runs and 14 model calls. concrete: its scripts are the quickest to run.
SETTINGS = {"num_lanes": 1, "num_candidates": 2, "refine_steps": 1, "inner_steps": 2, "ensemble_rounds": 0,
            "debug_rounds": 1, "floor_approaches": 2}
TASK = "concrete"
DEFAULT_SEED = 20261122
RUN_TIMEOUT_S = 900
# The first two kills are fixed: 0.3 s after start (Python still importing), and just after the first script's
# result reaches the journal (inside the evaluate node, which then runs more scripts: its resume must re-use
# that result). The others are triggered in these proportions, in an order shuffled by the seed.
FIXED_KILLS = [("startup", 0.3), ("execution", 0.05)]
TRIGGERS = {"startup": 4, "checkpoint": 5, "execution": 3, "script": 3, "anytime": 3}


class ChaosError(AssertionError):
    """A process of the procedure failed in a way a resume should never fail (its log is in the message)."""


@dataclass(frozen=True)
class Paths:
    base: Path

    @property
    def workspace(self) -> Path:
        return self.base / "ws"

    @property
    def journal(self) -> Path:
        return self.base / "journal.db"

    @property
    def checkpoints(self) -> Path:
        return self.base / "cp.db"

    @property
    def logs(self) -> Path:
        return self.base / "logs"


# ----------------------------------------------------------------------------------------- processes


def run_command(paths: Paths, task: str, run_id: str, settings: dict) -> list[str]:
    flags = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "graph.cli", "run", str(ROOT / "examples" / task), "--run-id", run_id,
            "--model", SCRIPTED, *flags, "--set", f"workspace_root={paths.workspace}",
            "--set", f"journal_path={paths.journal}", "--checkpoints", str(paths.checkpoints)]


def resume_command(paths: Paths, run_id: str) -> list[str]:
    return [sys.executable, "-m", "graph.cli", "resume", run_id, "--journal", str(paths.journal),
            "--checkpoints", str(paths.checkpoints)]


def status_command(paths: Paths, run_id: str) -> list[str]:
    return [sys.executable, "-m", "graph.cli", "status", run_id, "--journal", str(paths.journal),
            "--checkpoints", str(paths.checkpoints)]


def launch(command: list[str], log: Path) -> subprocess.Popen:
    """Start a CLI process in its own session (so the whole group can be killed), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group we started (only ever a group created by `launch`)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_finished(proc: subprocess.Popen, log: Path, what: str, timeout_s: float = RUN_TIMEOUT_S) -> None:
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise ChaosError(f"{what} did not finish in {timeout_s} s; log tail:\n{tail(log)}") from None
    if code != 0:
        raise ChaosError(f"{what} exited with code {code}; log tail:\n{tail(log)}")


def stray_processes(base: Path) -> list[dict]:
    """Live processes that belong to this procedure: their command line names `base`, their working folder
    is inside it, or they carry the sandbox's run tag with HOME (the attempt folder) inside it. Scripts of
    other runs on the machine carry the tag too, hence the HOME condition."""
    found, prefix = [], str(base)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
            hit = prefix in cmdline or cwd == prefix or cwd.startswith(prefix + os.sep)
            if not hit:
                env = proc.environ()
                hit = RUN_TAG_VAR in env and env.get("HOME", "").startswith(prefix + os.sep)
        except psutil.Error:
            continue
        if hit:
            found.append({"pid": proc.pid, "cmdline": cmdline[:300], "cwd": cwd})
    return found


def wait_no_strays(base: Path, timeout_s: float = 10.0) -> list[dict]:
    """Strays still alive after `timeout_s` (processes killed a moment ago may take a little while to go)."""
    deadline = time.monotonic() + timeout_s
    while True:
        strays = stray_processes(base)
        if not strays or time.monotonic() >= deadline:
            return strays
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------- databases


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of `sql`, or [] while the database or its tables do not exist yet (never creates the file)."""
    for attempt in range(20):
        if not db.exists():
            return []
        try:
            conn = sqlite3.connect(db, timeout=10)
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            if attempt == 19:
                raise
            time.sleep(0.1)
    return []


def scalar(db: Path, sql: str, args: tuple = ()) -> int:
    rows = query(db, sql, args)
    return rows[0][0] or 0 if rows else 0


def checkpoint_rows(paths: Paths, run_id: str) -> int:
    return scalar(paths.checkpoints, "select count(*) from checkpoints where thread_id = ?", (thread_id_for(run_id),))


def execution_rows(paths: Paths, run_id: str) -> int:
    return scalar(paths.journal, f"select count(*) from executions where {WHERE_RUN}", (run_id, run_id))


def registered(paths: Paths, run_id: str) -> bool:
    return bool(query(paths.journal, "select 1 from runs where run_id = ?", (run_id,)))


def outcome(paths: Paths, task: str, run_id: str) -> dict:
    """What a finished run left behind: journal figures, its result, the submission and its grade."""
    j, args = paths.journal, (run_id, run_id)
    row = query(j, "select status, best_score, submission from runs where run_id = ?", (run_id,))
    status, best_score, submission = row[0] if row else (None, None, None)
    submission_bytes = Path(submission).read_bytes() if submission and Path(submission).is_file() else b""
    grade = grade_submission(load_task(ROOT / "examples" / task), submission) if submission_bytes else None
    run_folder = paths.workspace / task / run_id
    history_file = run_folder / "run_history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    return {
        "status": status, "best_score": best_score, "submission": submission,
        "submission_sha256": hashlib.sha256(submission_bytes).hexdigest() if submission_bytes else None,
        "submission_valid": bool(grade and grade.valid), "submission_problems": list(grade.problems) if grade else [],
        "graded_score": grade.score if grade else None,
        "history_scores": [h.get("best_score") for h in history],
        "executions": scalar(j, f"select count(*) from executions where {WHERE_RUN}", args),
        "executions_reused": scalar(j, f"select sum(reused) from executions where {WHERE_RUN}", args),
        "model_calls": scalar(j, f"select count(*) from model_calls where {WHERE_RUN}", args),
        "answers_reused": scalar(j, f"select sum(reused) from model_calls where {WHERE_RUN}", args),
        # Every executions row is a finished script run; two for the same key and code = a repeated run.
        "duplicate_executions": [list(r) for r in query(
            j, f"select exec_key, code_sha, count(*) from executions where {WHERE_RUN} "
               "group by run_id, exec_key, code_sha having count(*) > 1", args)],
        "duplicate_answers": [list(r) for r in query(
            j, f"select call_key, prompt_sha, count(*) from model_calls where {WHERE_RUN} "
               "group by run_id, call_key, prompt_sha having count(*) > 1", args)],
        "script_runs": [list(r) for r in query(
            j, f"select exec_key, code_sha, status, score from executions where {WHERE_RUN} order by exec_key", args)],
        # A prompt quoting a traceback names the run's folder: compare prompts with that path neutralised.
        "answer_keys": [[key, hashlib.sha256(prompt.replace(str(run_folder), "<RUN>").encode()).hexdigest()]
                        for key, prompt in query(j, f"select call_key, prompt from model_calls where {WHERE_RUN} "
                                                    "order by call_key", args)],
    }


# ----------------------------------------------------------------------------------------- the procedure


def start_reference(base: Path, task: str = TASK, settings: dict | None = None,
                    run_id: str = "reference") -> dict:
    """Start the uninterrupted reference run; a thread notes when it ends (it may run beside the chaos run)."""
    paths = Paths(Path(base))
    handle = {"paths": paths, "task": task, "run_id": run_id, "started": time.monotonic(),
              "proc": launch(run_command(paths, task, run_id, settings or SETTINGS), paths.logs / "reference.log")}

    def note_end() -> None:
        handle["proc"].wait()
        handle["ended"] = time.monotonic()

    handle["waiter"] = threading.Thread(target=note_end, daemon=True)
    handle["waiter"].start()
    return handle


def finish_reference(handle: dict) -> dict:
    """Wait for the reference run; its outcome and wall time."""
    paths = handle["paths"]
    wait_finished(handle["proc"], paths.logs / "reference.log", "the reference run")
    handle["waiter"].join()
    return {**outcome(paths, handle["task"], handle["run_id"]),
            "wall_s": round(handle["ended"] - handle["started"], 1), "strays": wait_no_strays(paths.base)}


def reference_run(base: Path, task: str = TASK, settings: dict | None = None,
                  run_id: str = "reference") -> dict:
    """One uninterrupted run; returns its outcome and wall time."""
    return finish_reference(start_reference(base, task, settings, run_id))


def kill_plan(kills: int, seed: int) -> list[tuple[str, float]]:
    """(trigger, delay in seconds) of every kill: FIXED_KILLS, then the TRIGGERS mix in an order and with delays
    drawn from random.Random(seed); more kills than the mix repeat it."""
    rng = random.Random(seed)
    kinds = [kind for kind, n in TRIGGERS.items() for _ in range(n)]
    order = []
    while len(order) < kills:
        order += rng.sample(kinds, len(kinds))
    delays = {"startup": (0.3, 4.0), "checkpoint": (0.0, 0.15), "execution": (0.0, 0.3), "script": (0.1, 2.5),
              "anytime": (1.0, 10.0)}
    plan = FIXED_KILLS + [(kind, round(rng.uniform(*delays[kind]), 3)) for kind in order]
    return plan[:kills]


BANNERS = ("Resuming ", " on task ", "has already finished")


def submitted(paths: Paths, run_id: str) -> bool:
    """The run's (last) pipeline run got past submit: only record and report, well under a second, remain."""
    return bool(query(paths.journal, "select 1 from runs where meta_id = ? and status in ('done', 'failed')",
                      (run_id,)))


def wait_for_trigger(proc: subprocess.Popen, paths: Paths, run_id: str, log: Path, kind: str, delay: float,
                     patience_s: float = 120.0) -> str:
    """Block until the moment to kill; returns what happened: "fired", "guard", "fallback" or "exited".

    A kill never comes later than the trigger's moment, and never later than these guards, which keep a fast
    machine from finishing the run before every planned kill has landed: once submit is done, kill at once;
    when a process starts after submit, kill it at most `delay` (capped at 0.1 s) after its banner line.
    """
    started = time.monotonic()
    checkpoints, executions = checkpoint_rows(paths, run_id), execution_rows(paths, run_id)
    final = submitted(paths, run_id)
    banner_at = None
    while proc.poll() is None:
        now = time.monotonic()
        if kind in ("startup", "anytime"):
            seen = now - started >= delay
        elif kind == "checkpoint":
            seen = checkpoint_rows(paths, run_id) > checkpoints
        elif kind == "execution":
            seen = execution_rows(paths, run_id) > executions
        else:  # a generated script is running: the CLI has a child process
            try:
                seen = bool(psutil.Process(proc.pid).children(recursive=True))
            except psutil.Error:
                seen = False
        if seen:
            if kind not in ("startup", "anytime"):
                time.sleep(delay)
            return "fired" if proc.poll() is None else "exited"
        if final:
            if banner_at is None and any(b in tail(log, 2000) for b in BANNERS):
                banner_at = now
            if banner_at is not None and now - banner_at >= min(delay, 0.1):
                return "guard" if proc.poll() is None else "exited"
        elif submitted(paths, run_id):
            return "guard" if proc.poll() is None else "exited"
        if now - started > patience_s:
            return "fallback"
        time.sleep(0.03)
    return "exited"


def phase(log: Path) -> str:
    """Where a killed process was: "starting" (before its banner: imports, journal, state), the node of its last
    progress line, or "resuming" (the graph restarted its interrupted node, which had not reported yet)."""
    text = tail(log, 20000)
    nodes = re.findall(r"^\d\d:\d\d +(?:run|lane \d+) +(\w+)", text, re.M)
    if nodes:
        return nodes[-1]
    return "resuming" if any(b in text for b in BANNERS) else "starting"


def chaos_run(base: Path, task: str = TASK, settings: dict | None = None, kills: int = 20,
              seed: int = DEFAULT_SEED, run_id: str = "chaos") -> dict:
    """Kill and resume one run `kills` times, then let it finish; returns figures and the outcome."""
    paths = Paths(Path(base))
    plan = kill_plan(kills, seed)
    settings = settings or SETTINGS
    log_rows, started, number, runs, resumes, strays_after_kill = [], time.monotonic(), 0, 0, 0, 0
    while number < kills:
        if registered(paths, run_id):
            command, resumes = resume_command(paths, run_id), resumes + 1
        else:
            command, runs = run_command(paths, task, run_id, settings), runs + 1
        kind, delay = plan[number]
        log = paths.logs / f"{len(log_rows) + 1:02d}-{command[3]}.log"
        before = {"checkpoints": checkpoint_rows(paths, run_id), "executions": execution_rows(paths, run_id)}
        proc = launch(command, log)
        launched = time.monotonic()
        what = wait_for_trigger(proc, paths, run_id, log, kind, delay)
        alive = round(time.monotonic() - launched, 2)
        row = {"process": len(log_rows) + 1, "command": command[3], "trigger": kind, "delay_s": delay,
               "fired_by": what, "alive_s": alive, "checkpoints_before": before["checkpoints"],
               "executions_before": before["executions"]}
        if what == "exited":
            code = proc.wait()
            log_rows.append({**row, "exit_code": code})
            if code != 0:
                raise ChaosError(f"process {row['process']} ({command[3]}) failed with code {code} before it "
                                 f"was killed; log tail:\n{tail(log)}")
            break  # the run finished before all kills were delivered
        kill_group(proc)
        number += 1
        # Scripts of the killed process die with it (bwrap --die-with-parent) or are stopped by the next
        # resume before it continues (runtime/orphans.py); count the ones still alive a moment later. A kill
        # between the fork and the exec of a script's process escapes --die-with-parent too.
        time.sleep(0.3)
        strays = stray_processes(paths.base)
        strays_after_kill += len(strays)
        log_rows.append({**row, "killed": True, "phase": phase(log), "strays_after_kill": len(strays),
                         "stray_commands": [s["cmdline"][:100] for s in strays],
                         "checkpoints_after": checkpoint_rows(paths, run_id),
                         "executions_after": execution_rows(paths, run_id)})
    final_log = paths.logs / f"{len(log_rows) + 1:02d}-final.log"
    if registered(paths, run_id):
        command, resumes = resume_command(paths, run_id), resumes + 1
    else:
        command, runs = run_command(paths, task, run_id, settings), runs + 1
    proc = launch(command, final_log)
    wait_finished(proc, final_log, f"the final {command[3]}")
    log_rows.append({"process": len(log_rows) + 1, "command": command[3], "trigger": "none", "exit_code": 0})
    status = subprocess.run(status_command(paths, run_id), cwd=ROOT, capture_output=True, text=True, timeout=300)
    return {
        **outcome(paths, task, run_id), "kills": number, "resumes": resumes, "runs_started": runs,
        "processes": len(log_rows), "strays_seen_after_kills": strays_after_kill,
        "strays": wait_no_strays(paths.base), "status_exit_code": status.returncode,
        "status_output": status.stdout[-2000:], "wall_s": round(time.monotonic() - started, 1), "log": log_rows,
        "triggers": {k: sum(1 for r in log_rows if r.get("killed") and r["trigger"] == k) for k in TRIGGERS},
        "phases": dict(Counter(r["phase"] for r in log_rows if r.get("killed"))),
        "orphans_stopped_by_resumes": sum(int(n) for log in sorted(paths.logs.glob("*.log")) for n in re.findall(
            r"^Stopped (\d+) script process", log.read_text(errors="replace"), re.M)),
    }


def chaos_benchmark(base: Path, task: str = TASK, kills: int = 20, seed: int = DEFAULT_SEED,
                    settings: dict | None = None, parallel_reference: bool = True) -> dict:
    """Reference run and chaos run (at the same time unless `parallel_reference` is false: the results do not
    depend on timing), and the comparison; all processes work under `base`."""
    base = Path(base)
    reference = start_reference(base / "reference", task, settings)
    if not parallel_reference:
        reference = finish_reference(reference)
    chaos = chaos_run(base / "chaos", task, settings, kills=kills, seed=seed)
    if parallel_reference:
        reference = finish_reference(reference)
    return {
        "task": task, "settings": settings or SETTINGS, "seed": seed, "kills_requested": kills,
        "kills": chaos["kills"], "resumes": chaos["resumes"], "runs_started": chaos["runs_started"],
        "executions": chaos["executions"], "executions_reused": chaos["executions_reused"],
        "model_calls": chaos["model_calls"], "answers_reused": chaos["answers_reused"],
        "duplicate_executions": len(chaos["duplicate_executions"]),
        "duplicate_answers": len(chaos["duplicate_answers"]),
        "same_best_score": chaos["best_score"] == reference["best_score"],
        "same_submission": chaos["submission_sha256"] == reference["submission_sha256"],
        "same_script_runs": chaos["script_runs"] == reference["script_runs"],
        "submission_valid": chaos["submission_valid"], "strays": len(chaos["strays"]),
        "strays_seen_after_kills": chaos["strays_seen_after_kills"], "triggers": chaos["triggers"],
        "phases": chaos["phases"], "orphans_stopped_by_resumes": chaos["orphans_stopped_by_resumes"],
        "reference_wall_s": reference["wall_s"], "chaos_wall_s": chaos["wall_s"],
        "reference": reference, "chaos": chaos,
    }


def isolation_backend(settings: dict) -> str:
    """How this machine isolates scripts for these settings (bubblewrap or a plain subprocess)."""
    try:
        from runtime.sandbox import resolve_isolation
    except ImportError:  # a sandbox without isolation backends
        return "subprocess"
    return resolve_isolation(str(settings.get("isolation", "auto")))


def summary_line(figures: dict) -> str:
    return (f"chaos: {figures['kills']} kills, {figures['resumes']} resumes, {figures['executions']} executions "
            f"({figures['executions_reused']} reused), {figures['model_calls']} model calls "
            f"({figures['answers_reused']} answers reused), duplicates {figures['duplicate_executions']}/"
            f"{figures['duplicate_answers']}, same score {figures['same_best_score']}, same submission "
            f"{figures['same_submission']}, valid {figures['submission_valid']}, strays {figures['strays']}, "
            f"reference {figures['reference_wall_s']} s, chaos {figures['chaos_wall_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chaos.json"))
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting on top of the small defaults (e.g. isolation=subprocess)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    args = parser.parse_args()
    settings = {**SETTINGS, **dict(item.split("=", 1) for item in args.settings)}
    base = Path(tempfile.mkdtemp(prefix="mlestar-chaos-"))
    started = time.monotonic()
    figures = chaos_benchmark(base, args.task, args.kills, args.seed, settings)
    figures.update(total_wall_s=round(time.monotonic() - started, 1), isolation=isolation_backend(settings),
                   machine=f"{platform.machine()}, {os.cpu_count()} cores",
                   date=time.strftime("%Y-%m-%d %H:%M"), artifacts=str(base) if args.keep else None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(summary_line(figures))
    print(f"written to {args.out}")
    if not args.keep:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
