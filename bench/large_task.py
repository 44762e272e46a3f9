"""Larger data: peak memory of the agent and of its scripts on a generated task of 150,000 training rows with
wide numeric, categorical and free-text columns.

The task is synthetic (a known signal plus noise, so that a model can learn it) and written to a temporary
folder with hidden answers. One pipeline run of `mlestar run` solves it with the scripted model (which
answers with the catalog's tested code, so the scripts are real training code) and the default limits. The
agent process's RSS is sampled every 0.2 s from outside (its own memory only, not the scripts'); each
script's peak RSS comes from the journal (the sandbox's supervisor samples it every 0.1 s).

    .venv/bin/python bench/large_task.py [--rows 150000] [--out bench/results/large_task.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.task import grade_submission, load_task  # noqa: E402

WORDS = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
                 "tau upsilon phi chi psi omega red green blue small large quick slow early late".split())


def make_task(folder: Path, rows: int, test_rows: int, seed: int = 0) -> Path:
    """A binary task: 40 numeric columns, 4 categorical ones and a 30-word text column per row."""
    rng = np.random.default_rng(seed)
    n = rows + test_rows
    frame = pd.DataFrame(rng.normal(size=(n, 40)).astype(np.float32), columns=[f"num{i}" for i in range(40)])
    for i in range(4):
        frame[f"cat{i}"] = rng.choice([f"c{i}_{k}" for k in range(12)], size=n)
    frame["text"] = [" ".join(rng.choice(WORDS, size=30)) for _ in range(n)]
    signal = frame["num0"] + 0.5 * frame["num1"] - 0.7 * (frame["cat0"] == "c0_3") + 0.3 * frame["text"].str.count("red")
    frame["label"] = (signal + rng.normal(scale=1.0, size=n) > 0.2).astype(int)
    frame.insert(0, "id", np.arange(n))
    public, private = folder / "public", folder / "private"
    public.mkdir(parents=True)
    private.mkdir()
    train, test = frame.iloc[:rows], frame.iloc[rows:]
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=["label"]).to_csv(public / "test.csv", index=False)
    test[["id", "label"]].assign(label=0).to_csv(public / "sample_submission.csv", index=False)
    test[["id", "label"]].to_csv(private / "answers.csv", index=False)
    (public / "description.md").write_text("# Large synthetic task\nPredict `label` (0 or 1) for each row of "
                                          "test.csv. Submissions are evaluated on accuracy.\n")
    return folder


def run_and_watch(task: Path, work: Path, settings: list[str]) -> dict:
    """One pipeline run; the agent's RSS sampled every 0.2 s while it runs."""
    command = [sys.executable, "-m", "graph.cli", "run", str(task), "--run-id", "large",
               "--model", "scripted:tests.scripted_model:respond",
               "--set", f"workspace_root={work / 'ws'}", "--set", f"journal_path={work / 'journal.db'}",
               "--checkpoints", str(work / "cp.db"), *settings]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    agent, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, agent.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.2)
    output = proc.communicate()[0]
    return {"returncode": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "agent_peak_rss_mb": round(peak / 2**20), "output_tail": output[-1500:]}


def script_peaks(journal: Path) -> list[dict]:
    import sqlite3
    with sqlite3.connect(journal) as conn:
        rows = conn.execute("select exec_key, status, duration_s, result from executions order by id").fetchall()
    return [{"exec_key": key, "status": status, "duration_s": round(duration or 0, 1),
             "peak_memory_mb": json.loads(result).get("peak_memory_mb")} for key, status, duration, result in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--test-rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "large_task.json")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlestar-large-") as tmp:
        work = Path(tmp)
        task_dir = make_task(work / "large", args.rows, args.test_rows)
        sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in (task_dir / "public").iterdir()}
        settings = ["--set", "num_lanes=1", "--set", "num_candidates=1", "--set", "refine_steps=1",
                    "--set", "ensemble_rounds=0", "--set", "run_time_budget_s=900"]
        run = run_and_watch(task_dir, work, settings)
        scripts = script_peaks(work / "journal.db")
        submission = work / "ws" / "large" / "large" / "run0" / "submission.csv"
        grade = grade_submission(load_task(task_dir), submission) if submission.exists() else None
    result = {
        "what": "peak memory of the agent and of each script on a generated 150k-row task (wide, text)",
        "rows": args.rows, "test_rows": args.test_rows, "file_mb": sizes, "settings": settings,
        "limits": "defaults: script_memory_mb 4096, max_train_rows 30000",
        **{k: v for k, v in run.items() if k != "output_tail"},
        "scripts_peak_memory_mb_max": max((s["peak_memory_mb"] or 0) for s in scripts) if scripts else None,
        "scripts": scripts,
        "submission_valid": bool(grade and grade.valid), "accuracy": grade and grade.score,
        "machine": f"{platform.platform()}, {os.cpu_count()} cores, "
                   f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "date": time.strftime("%Y-%m-%d"), "note": args.note,
    }
    if run["returncode"] != 0:
        result["output_tail"] = run["output_tail"]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "scripts"}, indent=2))


if __name__ == "__main__":
    main()
