"""Isolation overhead: wall time of one script execution through each sandbox backend, against a bare subprocess.

For every backend available here (`subprocess`, and `bwrap` when bubblewrap works) a script is run through
`runtime.sandbox.run_script` (the full path the agent takes: write the script, link the input, set limits,
supervise, clean up, write result.json), next to a baseline `subprocess.run([python, "-c", code])`. Two
scripts: a trivial one (one print) and a realistic one (import pandas + sklearn, fit a small
LogisticRegression). After a few warm-up runs, the methods are interleaved round by round (the order rotates
each round), so that load from other jobs on the machine hits all of them alike.

    .venv/bin/python bench/isolation_overhead.py [--repeats 40] [--realistic-repeats 10] [--warmup 3]
                                                 [--out bench/results/isolation_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.sandbox import bwrap_problem, run_script  # noqa: E402

SCRIPTS = {
    "trivial": 'print("Final Validation Performance: 1.0")\n',
    "realistic": """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(2000, 10)), columns=[f"f{i}" for i in range(10)])
y = (X["f0"] + 0.5 * X["f1"] + rng.normal(scale=0.5, size=len(X)) > 0).astype(int)
Xtr, Xva, ytr, yva = train_test_split(X, y, random_state=0)
model = LogisticRegression(max_iter=200).fit(Xtr, ytr)
print(f"Final Validation Performance: {model.score(Xva, yva)}")
""".lstrip(),
}
LIMITS = {"timeout_s": 120, "memory_mb": 4096}
NOTE = ("Measured while another CPU-heavy benchmark ran on the same machine; absolute times are inflated and "
        "noisy. The methods were interleaved round by round, so the ratios from this one run are what we quote.")


def bare(code: str, workdir: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return done.returncode == 0


def sandboxed(code: str, attempt: Path, input_dir: Path, backend: str) -> bool:
    result = run_script(code, attempt, input_dir, isolation=backend, **LIMITS)
    return result.succeeded


def timed(method: str, code: str, base: Path, input_dir: Path, tag: str) -> tuple[float, bool]:
    attempt = base / "attempts" / f"{tag}-{method}"
    attempt.mkdir(parents=True)
    start = time.perf_counter()
    ok = bare(code, attempt) if method == "bare" else sandboxed(code, attempt, input_dir, method)
    return time.perf_counter() - start, ok


def summary(times: list[float], failures: int, bare_median: float, subprocess_median: float) -> dict:
    deciles = statistics.quantiles(times, n=10, method="inclusive")
    median = statistics.median(times)
    return {"runs": len(times), "failures": failures, "median_s": round(median, 4), "p10_s": round(deciles[0], 4),
            "p90_s": round(deciles[8], 4), "vs_bare": round(median / bare_median, 2),
            "vs_subprocess": round(median / subprocess_median, 2), "samples_s": [round(t, 4) for t in times]}


def measure(name: str, methods: list[str], repeats: int, warmup: int, base: Path, input_dir: Path) -> dict:
    code = SCRIPTS[name]
    times = {m: [] for m in methods}
    failures = dict.fromkeys(methods, 0)
    for i in range(warmup):
        for m in methods:
            timed(m, code, base, input_dir, f"{name}-warm{i}")
    for i in range(repeats):
        for m in methods[i % len(methods):] + methods[:i % len(methods)]:  # rotate who goes first
            elapsed, ok = timed(m, code, base, input_dir, f"{name}-{i}")
            times[m].append(elapsed)
            failures[m] += not ok
    medians = {m: statistics.median(t) for m, t in times.items()}
    return {m: summary(times[m], failures[m], medians["bare"], medians["subprocess"]) for m in methods}


def machine() -> dict:
    try:
        bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        bwrap = None
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "bwrap": bwrap, "uid": os.getuid()}


def table(cases: dict) -> str:
    lines = [f"{'script':<10} {'method':<11} {'median s':>9} {'p10 s':>8} {'p90 s':>8} {'x bare':>7} "
             f"{'x subproc':>9} {'fail':>4}"]
    for name, rows in cases.items():
        for m, r in rows.items():
            lines.append(f"{name:<10} {m:<11} {r['median_s']:>9.3f} {r['p10_s']:>8.3f} {r['p90_s']:>8.3f} "
                         f"{r['vs_bare']:>7.2f} {r['vs_subprocess']:>9.2f} {r['failures']:>4}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="measured runs per method, trivial script")
    parser.add_argument("--realistic-repeats", type=int, default=10, help="measured runs per method, realistic script")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per method before each script")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "isolation_overhead.json"))
    args = parser.parse_args()

    problem = bwrap_problem()
    methods = ["bare", "subprocess"] + (["bwrap"] if problem is None else [])
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlestar-isolation-") as tmp:
        base = Path(tmp)
        input_dir = base / "input"
        input_dir.mkdir()
        (input_dir / "train.csv").write_text("a,b\n1,2\n")
        cases = {name: measure(name, methods, repeats, args.warmup, base, input_dir)
                 for name, repeats in (("trivial", args.repeats), ("realistic", args.realistic_repeats))}
    figures = {
        "note": NOTE, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "bwrap_problem": problem, "warmup": args.warmup, "limits": LIMITS,
        "methods": {"bare": "subprocess.run([python, '-c', code])",
                    "subprocess": "run_script(isolation='subprocess')", "bwrap": "run_script(isolation='bwrap')"},
        "scripts": SCRIPTS, "total_wall_s": round(time.monotonic() - started, 1), "cases": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(table(cases))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
