"""Benchmark: a time-boxed hyperparameter search against the catalog's LightGBM, graded on the hidden answers.

The question: could the floor turn a longer run budget into a better model without a model call, by tuning
LightGBM? For every bundled task this runs the catalog's LightGBM script (default hyperparameters,
early-stopped on the validation rows) and `bench/tuning_template.py` (the same features, an Optuna TPE search
over seven hyperparameters starting from the defaults, each trial scored by k-fold cross-validation on the
training split, never on the validation rows) with two time boxes, and grades each submission with the
task's hidden answers. The result (docs/benchmarks.md): it did not pay, so the floor does not tune.

    .venv/bin/python bench/tuning.py        # writes bench/results/tuning.json (about 27 minutes)
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.catalog import Approach, get_approach, render_example  # noqa: E402
from runtime.sandbox import run_script  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402

TASKS = ("titanic", "concrete", "penguins", "tweets", "births")
TIME_BOXES = (60, 240)
TRIALS = re.compile(r"Tuning: (\d+) trials")
LIGHTGBM = get_approach("lightgbm")
#: The catalog renders the template's task config (an absolute template path wins over the catalog's folder).
TUNING = Approach(key="tuned_lightgbm", title="LightGBM tuned by Optuna", kinds=LIGHTGBM.kinds, description="",
                  template_file=str(Path(__file__).resolve().parent / "tuning_template.py"))


def tuning_script(task, seconds: int) -> str:
    code = render_example(TUNING, task, submit=True)
    for name, value in (("LOWER_IS_BETTER", task.lower_is_better), ("TUNE_SECONDS", seconds)):
        code, n = re.subn(rf"^{name} = .*?(  # .*)?$", rf"{name} = {value!r}\1", code, count=1, flags=re.M)
        assert n == 1, f"bench/tuning_template.py lost its {name} setting"
    return code


def run(task, code: str, folder: Path, label: str) -> dict:
    started = time.monotonic()
    result = run_script(code, folder, task.data_dir, timeout_s=900, memory_mb=4096)
    grade = grade_submission(task, Path(result.attempt_dir) / "submission.csv")
    trials = TRIALS.search(result.stdout_tail)
    return {"task": task.name, "metric": task.metric, "lower_is_better": task.lower_is_better, "variant": label,
            "validation_score": result.score, "test_score": grade.score, "trials": trials and int(trials[1]),
            "wall_s": round(time.monotonic() - started, 1), "status": result.status}


def main() -> None:
    results, work = [], Path("/tmp/mlestar-tuning")
    for name in TASKS:
        task = load_task(ROOT / "examples" / name)
        runs = [("lightgbm", render_example(LIGHTGBM, task, submit=True))]
        runs += [(f"tuned_{s}s", tuning_script(task, s)) for s in TIME_BOXES]
        for label, code in runs:
            results.append(run(task, code, work / f"{name}-{label}", label))
            print(json.dumps(results[-1]), flush=True)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, 2 cores", "results": results,
           "note": "one split (seed 42), one run each; nothing else ran on the machine but an editor"}
    (ROOT / "bench" / "results" / "tuning.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
