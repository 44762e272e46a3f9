"""Benchmark: a time-boxed hyperparameter search against the catalog's LightGBM, graded on the hidden answers.

The question: could the floor turn a longer run budget into a better model without a model call, by tuning
LightGBM? For every bundled task this runs the catalog's LightGBM script (default hyperparameters,
early-stopped on the validation rows) and the same script with its training replaced by a search (the same
features, an Optuna TPE search over seven hyperparameters starting from the defaults, each trial scored by
k-fold cross-validation on the training split, never on the validation rows; the best settings then fit once
and validated) with two time boxes, and grades each submission with the task's hidden answers. The result
(docs/benchmarks.md): it did not pay, so the floor does not tune.

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

from runtime.catalog import get_approach, render_example  # noqa: E402
from runtime.sandbox import run_script  # noqa: E402
from runtime.task import grade_submission, load_task  # noqa: E402

TASKS = ("titanic", "concrete", "penguins", "tweets", "births")
TIME_BOXES = (60, 240)
TRIALS = re.compile(r"Tuning: (\d+) trials")
LIGHTGBM = get_approach("lightgbm")

# What changes in the catalog's LightGBM script (each old text must occur exactly once):
IMPORTS = ("from sklearn.model_selection import train_test_split\n",
           "from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split\n"
           "import optuna\n\noptuna.logging.set_verbosity(optuna.logging.WARNING)\n")
#: new_model(n_estimators) becomes the search's settings and helpers
SEARCH_FUNCTIONS = '''LOWER_IS_BETTER = {lower}  # direction of score()
TUNE_SECONDS = {seconds}  # wall-clock time for the hyperparameter search

DEFAULTS = dict(learning_rate=0.03, num_leaves=15, min_child_samples=10, subsample=0.8,
                colsample_bytree=0.8, reg_lambda=0.0, reg_alpha=0.0)  # the catalog's LightGBM

def new_model(params, n_estimators):
    # n_jobs=1: two trials run at once, one per core
    fixed = dict(n_estimators=n_estimators, subsample_freq=1, random_state=42, n_jobs=1, verbose=-1)
    if CLASSES is None:
        return lgb.LGBMRegressor(**params, **fixed)
    return lgb.LGBMClassifier(class_weight="balanced" if BALANCE_CLASSES else None, **params, **fixed)

def folds(frame):
    """Cross-validation folds of the training split: ordered for time series, stratified for classes."""
    k = 5 if len(frame) <= 20000 else 3
    if TIME_SPLIT:
        return list(TimeSeriesSplit(k).split(frame))
    if CLASSES is not None and frame[TARGET].value_counts().min() >= k:
        return list(StratifiedKFold(k, shuffle=True, random_state=42).split(frame, frame[TARGET]))
    return list(KFold(k, shuffle=True, random_state=42).split(frame))

def cross_validate(params, X, y, y_raw, splits):
    """Mean fold score and mean early-stopped tree count of one parameter set."""
    scores, trees = [], []
    for fit, held in splits:
        model = new_model(params, 3000)
        model.fit(X.iloc[fit], y[fit], eval_set=[(X.iloc[held], y[held])],
                  callbacks=[lgb.early_stopping(100, verbose=False)])
        scores.append(score(y_raw[held], predict(model, X.iloc[held])))
        trees.append(model.best_iteration_ or 3000)
    return float(np.mean(scores)), int(np.mean(trees))

def search_space(trial):
    return dict(learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                num_leaves=trial.suggest_int("num_leaves", 4, 128, log=True),
                min_child_samples=trial.suggest_int("min_child_samples", 2, 100, log=True),
                subsample=trial.suggest_float("subsample", 0.5, 1.0),
                colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
                reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
                reg_alpha=trial.suggest_float("reg_alpha", 1e-3, 30.0, log=True))

'''
#: the training, early-stopped on the validation rows, becomes the search and one fit with the best settings
TRAINING = ('''model = new_model(2000)
model.fit(X_tr, learned(target(tr)), eval_set=[(X_va, learned(target(va)))],
          callbacks=[lgb.early_stopping(100, verbose=False)])
''', '''y_tr, y_tr_raw, splits = learned(target(tr)), target(tr), folds(tr)

def objective(trial):
    mean_score, trees = cross_validate(search_space(trial), X_tr, y_tr, y_tr_raw, splits)
    trial.set_user_attr("trees", trees)
    return mean_score

study = optuna.create_study(direction="minimize" if LOWER_IS_BETTER else "maximize",
                            sampler=optuna.samplers.TPESampler(seed=42))
study.enqueue_trial({**DEFAULTS, "reg_lambda": 1e-3, "reg_alpha": 1e-3})  # start from the defaults
study.optimize(objective, timeout=TUNE_SECONDS, n_jobs=2, catch=(ValueError,))
best = study.best_trial
print(f"Tuning: {len(study.trials)} trials in {TUNE_SECONDS} s, best cross-validated score {best.value:.6f} "
      f"with {best.user_attrs['trees']} trees: {best.params}")

model = new_model(best.params, best.user_attrs["trees"]).fit(X_tr, y_tr)  # no early stopping on the validation rows
''')
REFIT = ("new_model(model.best_iteration_ or 2000)", 'new_model(best.params, best.user_attrs["trees"])')


def tuning_script(task, seconds: int) -> str:
    """The catalog's LightGBM script for `task` with its training replaced by a `seconds`-long search."""
    code = render_example(LIGHTGBM, task, submit=True)
    functions = code[code.index("def new_model(n_estimators):"):code.index("def predict(model, X):")]
    search = SEARCH_FUNCTIONS.format(lower=task.lower_is_better, seconds=seconds)
    for old, new in (IMPORTS, (functions, search), TRAINING, REFIT):
        assert code.count(old) == 1, f"the LightGBM template changed: update bench/tuning.py ({old[:40]!r})"
        code = code.replace(old, new)
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
