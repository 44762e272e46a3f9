"""Benchmark: k-fold bagging of the final model against one refit on all rows, graded on the hidden answers.

The catalog's LightGBM script validates one model on an 80/20 split and, for the submission, refits it on all
training rows with the validated number of trees. The usual alternative on small data is to average K models,
one per fold of all rows. This script writes the LightGBM submission of every bundled task three ways and
grades each with the hidden answers:

- ``refit``: as the catalog does it (one model, all rows, the validated number of trees);
- ``bag5``: 5 models, each on 4/5 of the rows with the validated number of trees, predictions averaged;
- ``bag5_early``: 5 models, each early-stopped on its own held-out fold, predictions averaged.

    .venv/bin/python bench/kfold_bag.py        # writes bench/results/kfold_bag.json
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.catalog import get_approach, render_example  # noqa: E402
from runtime.sandbox import run_script  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402

TASKS = ("titanic", "concrete", "penguins", "tweets", "births")
REFIT = '''    model = new_model(model.best_iteration_ or 2000).fit(make_features(train, levels), learned(target(train)))
'''
BAG = '''    X, y, trees = make_features(train, levels), learned(target(train)), model.best_iteration_ or 2000
    model = Bag([new_model(trees).fit(X.iloc[fit], y[fit]) for fit, _ in KFold(5, shuffle=True, random_state=42).split(X)])
'''
BAG_EARLY = '''    X, y = make_features(train, levels), learned(target(train))
    model = Bag([new_model(2000).fit(X.iloc[fit], y[fit], eval_set=[(X.iloc[held], y[held])],
                                     callbacks=[lgb.early_stopping(100, verbose=False)])
                 for fit, held in KFold(5, shuffle=True, random_state=42).split(X)])
'''
BAG_CLASS = '''class Bag:
    """Models fit on different folds; they predict the average of their predictions."""
    def __init__(self, models):
        self.models = models
    def predict(self, X):
        return np.mean([m.predict(X) for m in self.models], axis=0)
    def predict_proba(self, X):
        return np.mean([m.predict_proba(X) for m in self.models], axis=0)

if SUBMIT:'''


def variant(code: str, final_model: str) -> str:
    """The rendered script with its final model built by `final_model` instead of the refit."""
    if final_model == REFIT:
        return code
    assert REFIT in code and "\nif SUBMIT:" in code, "the LightGBM template changed: update bench/kfold_bag.py"
    code = code.replace(REFIT, final_model).replace("\nif SUBMIT:", "\n" + BAG_CLASS, 1)
    return code.replace("from sklearn.model_selection import train_test_split",
                        "from sklearn.model_selection import KFold, train_test_split")


def main() -> None:
    results, work = [], Path("/tmp/mlestar-kfold-bag")
    for name in TASKS:
        task = load_task(ROOT / "examples" / name)
        code = render_example(get_approach("lightgbm"), task, submit=True)
        for label, final_model in (("refit", REFIT), ("bag5", BAG), ("bag5_early", BAG_EARLY)):
            started = time.monotonic()
            run = run_script(variant(code, final_model), work / f"{name}-{label}", task.data_dir, timeout_s=300,
                             memory_mb=4096)
            grade = grade_submission(task, Path(run.attempt_dir) / "submission.csv")
            results.append({"task": name, "metric": task.metric, "lower_is_better": task.lower_is_better,
                            "variant": label, "test_score": grade.score, "validation_score": run.score,
                            "wall_s": round(time.monotonic() - started, 1), "status": run.status})
            print(json.dumps(results[-1]), flush=True)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, 2 cores", "results": results,
           "note": "one split (seed 42), one run each; the machine also ran a suite benchmark (nice 0) while "
                   "this ran at nice 19"}
    (ROOT / "bench" / "results" / "kfold_bag.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
