"""Benchmark: does the Enhancer help? `--runs 3` versus three independent runs of the same configuration.

For each task, with the same model and the same per-run settings:
  * meta arm: one `mlestar run TASK --runs 3` thread (run 0 baseline, runs 1-2 steered by the Enhancer,
    warm-started from the champion);
  * independent arm: three separate `mlestar run TASK` threads, nothing shared between them.
Each arm's final answer is chosen by validation score only (the meta loop's champion; the independent
arm's best run); that submission and every per-run submission are then graded with the hidden answers.
Prints and saves bench/results/meta_vs_independent.json plus one artifacts folder per invocation.

    .venv/bin/python bench/meta_vs_independent.py [--tasks titanic penguins] [--runs 3] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.journal import SqliteJournal  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402

# Small per-run settings so that 2 tasks x 6 runs finish in about two hours on 2 cores with the embedded model.
DEFAULT_SETTINGS = ["num_lanes=1", "num_candidates=1", "refine_steps=1", "inner_steps=1",
                    "ensemble_rounds=0", "debug_rounds=1"]


def run_cli(home: Path, task_dir: Path, run_id: str, runs: int, model: str, settings: list[str]) -> tuple[int, float]:
    command = [sys.executable, "-m", "graph.cli", "run", str(task_dir), "--run-id", run_id, "--runs", str(runs),
               "--model", model, "--checkpoints", str(home / "checkpoints.db"),
               "--set", f"journal_path={home / 'journal.db'}", "--set", f"workspace_root={home / 'workspace'}"]
    for item in settings:
        command += ["--set", item]
    started = time.monotonic()
    with open(home / f"{run_id}.log", "w") as log:
        proc = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return proc.returncode, time.monotonic() - started


def graded(task, submission: str | None) -> float | None:
    if not submission or not Path(submission).exists():
        return None
    grade = grade_submission(task, submission)
    return grade.score if grade.valid else None


def pick_by_validation(rows: list[dict], lower_is_better: bool) -> dict | None:
    scored = [r for r in rows if r["validation_score"] is not None and r["submission"]]
    if not scored:
        return None
    return (min if lower_is_better else max)(scored, key=lambda r: r["validation_score"])


def meta_arm(home: Path, task, task_dir: Path, stamp: str, runs: int, model: str, settings: list[str]) -> dict:
    run_id = f"meta-{task.name}-{stamp}"
    code, wall = run_cli(home, task_dir, run_id, runs, model, settings)
    journal = SqliteJournal(home / "journal.db")
    per_run = [{"run": r["run_id"], "validation_score": r["best_score"], "submission": r["submission_path"],
                "graded_score": graded(task, r["submission_path"]), "duration_s": round(r["duration_s"] or 0, 1),
                "overrides": json.loads(r["overrides"] or "null"), "goals": len(json.loads(r["goals"] or "[]"))}
               for r in journal.meta_runs(run_id)]
    final = (journal.get_run(run_id) or {}).get("submission")
    return {"exit_code": code, "wall_s": round(wall, 1), **journal.usage(run_id), "runs": per_run,
            "final_submission": final, "final_graded_score": graded(task, final)}


def independent_arm(home: Path, task, task_dir: Path, stamp: str, runs: int, model: str,
                    settings: list[str]) -> dict:
    journal = SqliteJournal(home / "journal.db")
    per_run, wall_total, usage_total, codes = [], 0.0, {}, []
    for index in range(runs):
        run_id = f"independent-{task.name}-{stamp}-{index}"
        code, wall = run_cli(home, task_dir, run_id, 1, model, settings)
        codes.append(code)
        wall_total += wall
        record = journal.get_run(run_id) or {}
        for key, value in journal.usage(run_id).items():
            usage_total[key] = round(usage_total.get(key, 0) + value, 1)
        per_run.append({"run": run_id, "validation_score": record.get("best_score"),
                        "submission": record.get("submission"), "graded_score": graded(task, record.get("submission")),
                        "duration_s": round(wall, 1)})
    chosen = pick_by_validation(per_run, task.lower_is_better)
    return {"exit_codes": codes, "wall_s": round(wall_total, 1), **usage_total, "runs": per_run,
            "final_submission": chosen and chosen["submission"],
            "final_graded_score": chosen and chosen["graded_score"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=["titanic", "penguins"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="local")
    parser.add_argument("--set", dest="settings", action="append", default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    settings = DEFAULT_SETTINGS if args.settings is None else args.settings

    stamp = time.strftime("%Y%m%d-%H%M%S")
    baselines = json.loads((ROOT / "examples" / "baselines.json").read_text())
    results = {"model": args.model, "runs_per_arm": args.runs, "settings": settings,
               "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "tasks": {}}
    out_file = Path(args.out) / "meta_vs_independent.json"
    for name in args.tasks:
        task_dir = ROOT / "examples" / name
        task = load_task(task_dir)
        home = Path(args.out) / f"meta_vs_independent_{name}_{stamp}"
        home.mkdir(parents=True)
        entry = {"metric": task.metric, "lower_is_better": task.lower_is_better,
                 "baselines": {k: baselines.get(name, {}).get(k) for k in ("trivial", "linear", "lgbm_default", "best")},
                 "artifacts": str(home.relative_to(ROOT) if home.is_relative_to(ROOT) else home)}
        entry["meta"] = meta_arm(home, task, task_dir, stamp, args.runs, args.model, settings)
        entry["independent"] = independent_arm(home, task, task_dir, stamp, args.runs, args.model, settings)
        results["tasks"][name] = entry
        out_file.write_text(json.dumps(results, indent=2) + "\n")  # partial results survive a later crash
        print(json.dumps({name: entry}, indent=2), flush=True)


if __name__ == "__main__":
    main()
