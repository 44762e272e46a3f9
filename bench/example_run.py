"""Benchmark: the README example end to end with the embedded model.

Runs `mlestar run examples/<task>` in a fresh checkpoint/journal/workspace folder, then prints and saves
(bench/results/example_run_<task>.json) the wall time, model calls, tokens, time in inference versus in
scripts (totals, and per role and phase), scripts that ran on the first try per phase, whether the submission is valid, and its score graded with the hidden answers next to the
reference scores of examples/baselines.json.

    .venv/bin/python bench/example_run.py [--task titanic] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.journal import SqliteJournal  # noqa: E402
from runtime.keys import exec_phase  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="titanic")
    parser.add_argument("--model", default="local")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--summarise", metavar="FOLDER",
                        help="only summarise a finished benchmark folder (e.g. after the summary step failed)")
    args = parser.parse_args()

    if args.summarise:
        home = Path(args.summarise).resolve()
        [run_id] = [r["run_id"] for r in SqliteJournal(home / "journal.db").runs() if r.get("context")]  # the CLI run
        exit_code, wall = None, None  # the journal's timestamps give the run's duration below
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        home = Path(args.out) / f"example_run_{args.task}_{stamp}"
        home.mkdir(parents=True)
        run_id = f"bench-{args.task}-{stamp}"
        command = [sys.executable, "-m", "graph.cli", "run", str(ROOT / "examples" / args.task), "--run-id", run_id,
                   "--model", args.model, "--checkpoints", str(home / "checkpoints.db"),
                   "--set", f"journal_path={home / 'journal.db'}", "--set", f"workspace_root={home / 'workspace'}"]
        for item in args.settings:
            command += ["--set", item]
        started = time.monotonic()
        with open(home / "log.txt", "w") as log:
            exit_code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.monotonic() - started

    journal = SqliteJournal(home / "journal.db")
    usage = journal.usage(run_id)
    run = journal.get_run(run_id) or {}
    if wall is None:
        wall = run["updated_at"] - run["started_at"]
    task = load_task(ROOT / "examples" / args.task)
    submission = run.get("submission")
    grade = grade_submission(task, submission) if submission else None
    baselines = json.loads((ROOT / "examples" / "baselines.json").read_text()).get(args.task, {})
    first_try = journal.db.execute(
        "select count(*), coalesce(sum(status = 'ok' and score is not null), 0) from executions "
        "where run_id in (select run_id from runs where meta_id = ?) and exec_key like '%/d0'", [run_id]).fetchone()
    first_try_by_phase: dict[str, list[int]] = {}
    for key, ok in journal.db.execute(
            "select exec_key, status = 'ok' and score is not null from executions "
            "where run_id in (select run_id from runs where meta_id = ?) and exec_key like '%/d0'", [run_id]).fetchall():
        counts = first_try_by_phase.setdefault(exec_phase(key), [0, 0])
        counts[0] += int(bool(ok))
        counts[1] += 1
    result = {
        "task": args.task, "model": args.model, "settings": args.settings, "exit_code": exit_code,
        "wall_s": round(wall, 1), **usage,
        "scripts_first_try_ok": f"{first_try[1]}/{first_try[0]}",
        "scripts_first_try_ok_by_phase": {phase: f"{ok}/{n}" for phase, (ok, n) in first_try_by_phase.items()},
        "model_usage": journal.usage_breakdown(run_id),
        "status": run.get("status"), "validation_score": run.get("best_score"),
        "valid_submission": bool(grade and grade.valid),
        "graded_score": grade.score if grade else None, "metric": task.metric,
        "baselines": {k: baselines.get(k) for k in ("trivial", "linear", "lgbm_default", "flaml", "best")},
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "artifacts": str(home.relative_to(ROOT) if home.is_relative_to(ROOT) else home),
    }
    (Path(args.out) / f"example_run_{args.task}.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copyfile(home / "log.txt", Path(args.out) / f"example_run_{args.task}.log")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
