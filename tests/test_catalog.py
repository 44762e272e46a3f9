"""The local approach catalog: metadata, ordering, rendering, and every example run for real.

Each applicable (task, approach) pair of the bundled example tasks is rendered and run in the
sandbox: with submit=True it must print a validation score that beats the trivial baseline and
write a valid submission; with submit=False it must work with no test.csv in ./input at all. Every
run must save val_predictions.csv from which the printed score can be recomputed exactly, and every
approach must do about as well on validation as a default LightGBM (slow tests: they run every pair).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from runtime import metrics
from runtime.catalog import (
    CATALOG_DIR,
    Approach,
    applicable,
    balanced_metric,
    get_approach,
    load_catalog,
    log_error_metric,
    render_example,
    task_config,
    template_text,
)
from runtime.sandbox import run_script
from runtime.task import grade_submission, load_task

REPO = Path(__file__).resolve().parents[1]
TASK_NAMES = ("titanic", "concrete", "penguins", "tweets", "births")


def _tasks_dir() -> Path | None:
    for candidate in (REPO / "examples", Path("/work/shared/tasks")):
        if all((candidate / name / "public" / "train.csv").is_file() for name in TASK_NAMES):
            return candidate
    return None


TASKS_DIR = _tasks_dir()
needs_tasks = pytest.mark.skipif(TASKS_DIR is None, reason="bundled example tasks not found")


@pytest.fixture(scope="module")
def tasks():
    return {name: load_task(TASKS_DIR / name) for name in TASK_NAMES}


@pytest.fixture(scope="module")
def baselines():
    return json.loads((TASKS_DIR / "baselines.json").read_text())


# ---------------------------------------------------------------------------------------------
# metadata


def test_catalog_metadata():
    catalog = load_catalog()
    keys = [a.key for a in catalog]
    assert len(keys) == len(set(keys))
    assert {"lightgbm", "random_forest", "hist_gradient_boosting", "linear", "tfidf_linear",
            "timeseries_calendar_gbm"} <= set(keys)
    for approach in catalog:
        assert isinstance(approach, Approach)
        assert approach.title and approach.kinds
        assert set(approach.kinds) <= {"binary", "multiclass", "regression", "timeseries", "text", "multitarget"}
        assert 2 <= approach.description.count(". ") + 1 <= 6, approach.key
        path = CATALOG_DIR / approach.template_file
        assert path.is_file()
        code = template_text(approach)
        compile(code, str(path), "exec")
        assert 40 <= len(code.splitlines()) <= 125, (approach.key, len(code.splitlines()))
        assert "# --- task config ---" in code and "# --- end task config ---" in code
        assert "early_stopping_rounds" not in code  # removed from LightGBM 4's fit()
        assert "Final Validation Performance:" in code
        assert 'val_predictions.to_csv("val_predictions.csv", index=False)' in code
        assert "LOG_TARGET = " in code and "BALANCE_CLASSES = " in code
    assert get_approach("linear").key == "linear"
    with pytest.raises(KeyError):
        get_approach("nope")


@needs_tasks
def test_applicable_order(tasks):
    def keys(task):
        return [a.key for a in applicable(task)]

    tabular = ["lightgbm", "random_forest", "hist_gradient_boosting", "linear"]
    assert keys(tasks["titanic"]) == tabular
    assert keys(tasks["concrete"]) == tabular
    assert keys(tasks["penguins"]) == tabular
    # tweets is "binary" in task.json but has a free-text column
    assert keys(tasks["tweets"]) == ["tfidf_linear"] + tabular
    assert keys(tasks["births"]) == ["timeseries_calendar_gbm", "lightgbm", "hist_gradient_boosting", "linear"]
    assert keys(dataclasses.replace(tasks["tweets"], kind="text"))[0] == "tfidf_linear"


# ---------------------------------------------------------------------------------------------
# rendering


def _config_block(code: str) -> str:
    return re.search(r"# --- task config ---\n.*?# --- end task config ---\n", code, re.S).group(0)


@needs_tasks
def test_render_fills_the_config(tasks):
    code = render_example(get_approach("lightgbm"), tasks["penguins"])
    compile(code, "solution.py", "exec")
    assert 'TARGET = "species"' in code
    assert 'CLASSES = ["Adelie", "Chinstrap", "Gentoo"]' in code
    assert 'TARGET_COLUMNS = ["Adelie", "Chinstrap", "Gentoo"]' in code
    assert "SUBMIT = False" in code and "metrics.log_loss" in code
    assert "SUBMIT = True" in render_example(get_approach("lightgbm"), tasks["penguins"], submit=True)

    titanic = task_config(tasks["titanic"])
    assert titanic["CLASSES"] == [0, 1] and titanic["PREDICTION"] == "label"  # ints, as in train.csv
    tweets = task_config(tasks["tweets"])
    assert tweets["TEXT_COLUMNS"] == ["text"] and tweets["DATE_COLUMNS"] == ["created_at"]
    births = task_config(tasks["births"])
    assert births["DATE_COLUMN"] == "date" and births["TIME_SPLIT"] is True and births["CLASSES"] is None
    for config in (titanic, tweets, births, task_config(tasks["penguins"])):
        assert config["LOG_TARGET"] is False and config["BALANCE_CLASSES"] is False

    for name, task in tasks.items():
        for approach in applicable(task):
            code = render_example(approach, task)
            compile(code, f"{name}-{approach.key}", "exec")
            # the test set is read only inside the submission block
            before, _, after = code.partition("\nif SUBMIT:")
            assert "test.csv" not in before and "test.csv" in after


_METRIC_CASES = [  # (task, metric, prediction)
    ("titanic", "accuracy", "label"), ("titanic", "f1", "label"), ("titanic", "f1_macro", "label"),
    ("titanic", "auc", "probability"), ("titanic", "logloss", "probability"), ("titanic", "accuracy", "probability"),
    ("penguins", "logloss", "class_probabilities"), ("penguins", "auc", "class_probabilities"),
    ("penguins", "accuracy", "label"), ("penguins", "f1_macro", "label"), ("penguins", "qwk", "label"),
    ("concrete", "rmse", "value"), ("concrete", "mse", "value"), ("concrete", "mae", "value"),
    ("concrete", "r2", "value"), ("concrete", "rmsle", "value"), ("concrete", "mape", "value"),
]


@needs_tasks
@pytest.mark.parametrize("name,metric,prediction", _METRIC_CASES)
def test_rendered_score_matches_the_grader(tasks, name, metric, prediction):
    task = dataclasses.replace(
        tasks[name], metric=metric, prediction=prediction, lower_is_better=metrics.METRICS[metric].lower_is_better
    )
    if prediction != "class_probabilities":
        task = dataclasses.replace(task, target_columns=(task.target,))
    namespace: dict = {}
    exec("import numpy as np\nfrom sklearn import metrics\n" + _config_block(render_example(get_approach("linear"), task)),
         namespace)
    score, classes = namespace["score"], namespace["CLASSES"]
    rng = np.random.default_rng(0)
    n = 200
    if prediction == "value":
        y = rng.uniform(5, 80, n)
        pred = y + rng.normal(0, 5, n)
        expected = metrics.score(metric, y, pred)
    else:
        y = rng.integers(0, len(classes), n)
        labels = np.array(classes, dtype=object)
        if prediction == "label":
            pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, len(classes), n))
            expected = metrics.score(metric, labels[y], labels[pred])
        elif prediction == "probability":
            pred = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.3, n), 0.01, 0.99)
            if metric == "accuracy":  # a label metric on probabilities: the label is P > 0.5
                expected = metrics.score(metric, labels[y], labels[(pred > 0.5).astype(int)])
            else:
                expected = metrics.score(metric, labels[y], pred)
        else:
            pred = rng.dirichlet(np.ones(len(classes)), n) + 2 * np.eye(len(classes))[y]
            pred /= pred.sum(axis=1, keepdims=True)
            expected = metrics.score(metric, labels[y], pred, labels=list(task.target_columns))
    assert score(y, pred) == pytest.approx(expected, rel=1e-6, abs=1e-9)


@needs_tasks
@pytest.mark.parametrize("name,metric,log_target,balance", [
    ("concrete", "rmsle", True, False), ("concrete", "rmse", False, False), ("concrete", "mae", False, False),
    ("concrete", "mape", False, False), ("titanic", "f1", False, True), ("titanic", "f1_macro", False, True),
    ("titanic", "accuracy", False, False), ("penguins", "f1_macro", False, True), ("penguins", "qwk", False, False),
])
def test_training_follows_the_metric(tasks, name, metric, log_target, balance):
    task = dataclasses.replace(tasks[name], metric=metric, prediction=None, target_columns=(tasks[name].target,))
    config = task_config(task)
    assert (config["LOG_TARGET"], config["BALANCE_CLASSES"]) == (log_target, balance)
    for approach in applicable(task):
        code = render_example(approach, task)
        assert f"LOG_TARGET = {log_target}" in code and f"BALANCE_CLASSES = {balance}" in code


def test_metric_families_are_recognised_by_name_and_description(monkeypatch):
    """Metrics added to the registry later (msle, balanced accuracy) get the same training choices."""
    def new(name, task_type, needs, description):
        return metrics.Metric(name, True, task_type, needs, lambda y, p: 0.0, description)

    monkeypatch.setitem(metrics.METRICS, "msle", new("msle", "regression", "value", "mean squared log error"))
    monkeypatch.setitem(metrics.METRICS, "balanced_accuracy",
                        new("balanced_accuracy", "classification", "label", "mean recall of the classes"))
    monkeypatch.setitem(metrics.METRICS, "recall_macro",
                        new("recall_macro", "classification", "label", "unweighted mean of per-class recall"))
    assert log_error_metric("msle") and log_error_metric("rmsle")
    assert not any(log_error_metric(m) for m in ("rmse", "mse", "mae", "logloss", "r2", "mape", "nope"))
    assert all(balanced_metric(m) for m in ("f1", "f1_macro", "balanced_accuracy", "recall_macro"))
    assert not any(balanced_metric(m) for m in ("accuracy", "qwk", "auc", "logloss", "rmse", "nope"))


# ---------------------------------------------------------------------------------------------
# every example runs for real

#: Metric variants of the bundled tasks that exercise LOG_TARGET, BALANCE_CLASSES and class labels other
#: than 0/1 in the saved predictions: variant -> (task, overrides, approaches or None for all applicable).
VARIANTS = {
    "concrete-rmsle": ("concrete", dict(metric="rmsle"), None),
    "titanic-f1": ("titanic", dict(metric="f1"), None),
    "penguins-f1_macro": ("penguins", dict(metric="f1_macro", prediction="label", target_columns=("species",)), None),
    "tweets-f1": ("tweets", dict(metric="f1", prediction="label"), ("tfidf_linear",)),
    "births-rmsle": ("births", dict(metric="rmsle"), ("timeseries_calendar_gbm",)),
    "penguins-map2": ("penguins", dict(metric="map@2", prediction="ranked_labels", target_columns=("species",)), None),
}


def _pairs():
    if TASKS_DIR is None:
        return []
    return [(name, a.key) for name in TASK_NAMES for a in applicable(load_task(TASKS_DIR / name))]


def _fast_pairs():
    """Every pair, the first task of each approach in the fast tier, the rest marked slow (they run in CI)."""
    seen: set[str] = set()
    params = []
    for name, key in _pairs():
        params.append(pytest.param(name, key, marks=() if key not in seen else pytest.mark.slow))
        seen.add(key)
    return params


def _variant_pairs():
    if TASKS_DIR is None:
        return []
    return [(variant, a.key) for variant, (name, overrides, keys) in VARIANTS.items()
            for a in applicable(_variant(load_task(TASKS_DIR / name), overrides))
            if keys is None or a.key in keys]


def _beats_trivial(score: float, baseline: dict) -> bool:
    return score < baseline["trivial"] if baseline["lower_is_better"] else score > baseline["trivial"]


def _check_run(result, baseline):
    assert result.status == "ok", result.stderr_tail
    assert result.stdout_tail.count("Final Validation Performance:") == 1
    assert result.score is not None and math.isfinite(result.score)
    assert _beats_trivial(result.score, baseline), (result.score, baseline["trivial"])


def _variant(task, overrides: dict):
    lower = metrics.METRICS[metrics.resolve_metric_name(overrides["metric"])].lower_is_better
    return dataclasses.replace(task, lower_is_better=lower, **overrides)


@pytest.fixture(scope="module")
def variant_tasks(tasks):
    return {variant: _variant(tasks[name], overrides) for variant, (name, overrides, _) in VARIANTS.items()}


@pytest.fixture(scope="module")
def run_example(tasks, variant_tasks, tmp_path_factory):
    """Run each rendered (task or variant, approach, submit) once per module; later tests reuse the result."""
    done: dict = {}

    def run(name: str, key: str, submit: bool):
        if (name, key, submit) not in done:
            task = tasks.get(name) or variant_tasks[name]
            code = render_example(get_approach(key), task, submit=submit)
            folder = tmp_path_factory.mktemp(f"{name}-{key}") / "attempt"
            done[name, key, submit] = run_script(code, folder, task.data_dir, timeout_s=120, memory_mb=4096)
        return done[name, key, submit]

    return run


@needs_tasks
@pytest.mark.parametrize("name,key", _fast_pairs())
def test_example_submits(tasks, baselines, run_example, name, key):
    task = tasks[name]
    result = run_example(name, key, submit=True)
    _check_run(result, baselines[name])

    attempt = Path(result.attempt_dir)
    submission = pd.read_csv(attempt / "submission.csv")
    sample = pd.read_csv(Path(task.data_dir) / task.sample_submission_file)
    test = pd.read_csv(Path(task.data_dir) / task.test_file)
    assert list(submission.columns) == list(sample.columns)
    assert len(submission) == len(test)
    assert sorted(submission[task.id_column]) == sorted(test[task.id_column])
    assert not submission.isna().any().any()
    grade = grade_submission(task, attempt / "submission.csv")
    assert grade.valid, grade.problems
    if grade.score is not None:  # the hidden answers are there: the test score beats trivial too
        assert _beats_trivial(grade.score, baselines[name]), grade.score


@needs_tasks
@pytest.mark.slow
@pytest.mark.parametrize("key", sorted({key for _, key in _pairs()}))
def test_example_validates_without_the_test_set(tasks, baselines, tmp_path, key):
    """submit=False never touches test.csv: ./input holds everything else but not that file."""
    name = next(n for n, k in _pairs() if k == key)
    task = tasks[name]
    input_dir = tmp_path / "input_without_test"
    input_dir.mkdir()
    for file_name in os.listdir(task.data_dir):
        if file_name != task.test_file:
            shutil.copy(Path(task.data_dir) / file_name, input_dir / file_name)  # a link would point outside bwrap
    code = render_example(get_approach(key), task, submit=False)
    result = run_script(code, tmp_path / "attempt", input_dir, timeout_s=120, memory_mb=4096)
    _check_run(result, baselines[name])
    assert not (tmp_path / "attempt" / "submission.csv").exists()
    assert (tmp_path / "attempt" / "val_predictions.csv").is_file()


# ---------------------------------------------------------------------------------------------
# the saved validation predictions, and how good they are


def _validation_split(task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The templates' split of train.csv: the latest 20% by date for time series, else 80/20 stratified, seed 42."""
    config = task_config(task)
    train = pd.read_csv(Path(task.data_dir) / task.train_file).dropna(subset=[task.target])
    if config["TIME_SPLIT"]:
        train = train.sort_values(config["DATE_COLUMNS"][0], key=lambda s: pd.to_datetime(s, errors="coerce"),
                                  kind="stable")
        cut = int(len(train) * 0.8)
        return train.iloc[:cut], train.iloc[cut:]
    stratify = train[task.target] if config["CLASSES"] and train[task.target].value_counts().min() >= 2 else None
    return train_test_split(train, test_size=0.2, random_state=42, stratify=stratify)


def _score(task, truth: pd.Series, pred: np.ndarray) -> float:
    """The registry metric, as the agent computes it from saved predictions."""
    labels = list(task.target_columns) if np.ndim(pred) == 2 else None
    return metrics.score(metrics.resolve_metric_name(task.metric), truth.to_numpy(), pred, labels=labels)


def _saved_score(task, result) -> tuple[float, pd.DataFrame]:
    """The metric recomputed from a run's val_predictions.csv against train.csv's target, and the file."""
    saved = pd.read_csv(Path(result.attempt_dir) / "val_predictions.csv")
    truth = pd.read_csv(Path(task.data_dir) / task.train_file)[task.target]
    columns = list(task.target_columns)
    pred = saved[columns].to_numpy(dtype=float) if len(columns) > 1 else saved[columns[0]].to_numpy()
    return _score(task, truth.iloc[saved["row"].to_numpy()], pred), saved


def _check_saved_predictions(task, result):
    assert result.status == "ok", result.stderr_tail
    recomputed, saved = _saved_score(task, result)
    assert list(saved.columns) == ["row", *task.target_columns]
    assert not saved.isna().any().any()
    assert set(saved["row"]) == set(_validation_split(task)[1].index)  # every approach: the same rows
    assert abs(recomputed - result.score) <= 1e-6, (recomputed, result.score)  # printed with 6 decimals
    config = task_config(task)
    if config["PREDICTION"] == "label":  # the original labels, not class indices
        assert set(saved[task.target_columns[0]]) <= set(config["CLASSES"])


@needs_tasks
@pytest.mark.slow
@pytest.mark.parametrize("name,key", _pairs())
def test_saved_predictions_reproduce_the_printed_score(tasks, run_example, name, key):
    _check_saved_predictions(tasks[name], run_example(name, key, submit=True))


@needs_tasks
@pytest.mark.slow
@pytest.mark.parametrize("variant,key", _variant_pairs())
def test_metric_variants_save_exact_predictions_and_learn(variant_tasks, run_example, variant, key):
    """LOG_TARGET, BALANCE_CLASSES and string labels: the file holds the submission's form, the model learns."""
    task = variant_tasks[variant]
    result = run_example(variant, key, submit=False)
    _check_saved_predictions(task, result)
    tr, va = _validation_split(task)
    assert _better(task, result.score, _score(task, va[task.target], _trivial(task, tr, va))), result.score


def _better(task, score: float, than: float) -> bool:
    return score <= than if task.lower_is_better else score >= than


def _trivial(task, tr: pd.DataFrame, va: pd.DataFrame) -> np.ndarray:
    """A constant prediction from the training rows: majority class, class shares, or the mean value."""
    config = task_config(task)
    y = tr[task.target]
    if config["PREDICTION"] == "value":
        mean = np.expm1(np.log1p(y).mean()) if config["LOG_TARGET"] else y.mean()
        return np.full(len(va), mean)
    shares = y.value_counts(normalize=True).reindex(config["CLASSES"], fill_value=0).to_numpy()
    if config["PREDICTION"] == "label":
        return np.full(len(va), config["CLASSES"][int(shares.argmax())], dtype=object)
    if config["PREDICTION"] == "ranked_labels":  # the classes by share, the same for every row
        top = " ".join(str(config["CLASSES"][i]) for i in np.argsort(-shares)[:config["TOP_K"]])
        return np.full(len(va), top, dtype=object)
    if config["PREDICTION"] == "probability":
        return np.full(len(va), shares[1])
    return np.tile(shares, (len(va), 1))


def _default_lightgbm(task, tr: pd.DataFrame, va: pd.DataFrame) -> np.ndarray:
    """LGBMClassifier() / LGBMRegressor() with default parameters, predictions in the submission's form.

    One thread (same model): OpenMP threads stall when other processes share the cores.

    Numbers as they are and strings as pandas categories. Date columns become numeric calendar parts
    instead: as a category a date never recurs in the later validation rows of a time series, so the
    reference would predict a constant on births (RMSE 1218 against 291 with the parts): a weaker bar.
    """
    config = task_config(task)

    def features(df: pd.DataFrame) -> pd.DataFrame:
        X = df.drop(columns=[task.target, task.id_column])
        for c in list(X.columns):
            if c in config["DATE_COLUMNS"]:
                d = pd.to_datetime(X.pop(c), errors="coerce")
                for part in ("year", "month", "day", "day_of_week", "day_of_year", "hour"):
                    X[f"{c}_{part}"] = getattr(d.dt, part)
            elif not pd.api.types.is_numeric_dtype(X[c]):
                levels = sorted(tr[c].dropna().unique())
                X[c] = pd.Categorical(X[c].where(X[c].isin(levels)), categories=levels)  # unseen -> missing
        return X

    if config["PREDICTION"] == "value":
        pred = lightgbm.LGBMRegressor(n_jobs=1, verbose=-1).fit(features(tr), tr[task.target]).predict(features(va))
        return np.clip(pred, 0, None) if config["LOG_TARGET"] else pred
    y = tr[task.target].map({c: i for i, c in enumerate(config["CLASSES"])})
    proba = lightgbm.LGBMClassifier(n_jobs=1, verbose=-1).fit(features(tr), y).predict_proba(features(va))
    if config["PREDICTION"] == "label":
        return np.asarray(config["CLASSES"], dtype=object)[proba.argmax(axis=1)]
    return proba[:, 1] if config["PREDICTION"] == "probability" else proba


#: An approach may trail the default LightGBM by this share of the distance from the trivial constant
#: prediction to that reference. It is scale-free across metrics and small: on these validation sets it is
#: 0.008 accuracy on titanic (under 2 of 210 rows), 0.61 RMSE on concrete, 0.053 log loss on penguins,
#: 0.019 AUC on tweets and 46 births a day, each at most about one split-to-split standard deviation of
#: the reference's own score (measured over 8 split seeds: 0.014, 0.53, 0.089, 0.009; births has one split),
#: so a pair that fails it is worse than noise, not unlucky.
TOLERANCE_SHARE = 0.05

#: Pairs that trail the reference by more than the tolerance on this split, with the measured numbers. They
#: must still reach the bound given here (their score when measured, with a little slack), so that a
#: regression shows. reference = default LightGBM on the same split.
SHORTFALLS = {
    # Noise, not inability: on split 42 HistGradientBoosting gets 0.7714 (162/210) against the reference's
    # 0.7857 (165/210), two rows short of the bar (164/210); over 8 split seeds it averages 0.791 against
    # the reference's 0.773. No setting tried (max_leaf_nodes 7-31, min_samples_leaf 5-20, l2 0.1-1,
    # max_features 0.5-1, early stopping) reaches 164/210 on this split.
    ("titanic", "hist_gradient_boosting"): 0.7666,
    # A lucky reference: the default LightGBM's 0.00096 log loss on split 42 is far below its mean of 0.096
    # over 8 split seeds. Random forest votes are never quite unanimous, so its probabilities stay soft:
    # 0.092 on this split, 0.094 over 8 seeds, as good as the reference on average (leaves of 1 row,
    # bootstrap off or the log-loss criterion reach 0.075-0.087 but lose more on titanic).
    ("penguins", "random_forest"): 0.10,
    # A linear model cannot: concrete strength depends on ratios such as water/cement (an interaction).
    # Splines of each number took it from 10.48 to 6.28 RMSE; the reference gets 4.66.
    ("concrete", "linear"): 6.5,
    # Births have weekday-by-season and holiday effects that an additive model of calendar parts cannot
    # fit: 449 RMSE (878 before the splines) against 291 for the reference and 243 for the time-series
    # specialist.
    ("births", "linear"): 470.0,
}


@needs_tasks
@pytest.mark.slow
@pytest.mark.parametrize("name,key", _pairs())
def test_every_approach_matches_a_default_lightgbm(tasks, run_example, name, key):
    task = tasks[name]
    result = run_example(name, key, submit=True)
    assert result.status == "ok", result.stderr_tail
    tr, va = _validation_split(task)
    reference = _score(task, va[task.target], _default_lightgbm(task, tr, va))
    trivial = _score(task, va[task.target], _trivial(task, tr, va))
    margin = TOLERANCE_SHARE * abs(reference - trivial)
    bar = reference + margin if task.lower_is_better else reference - margin
    if (name, key) in SHORTFALLS:
        bound = SHORTFALLS[name, key]
        assert _better(task, result.score, bound), f"{key} on {name}: {result.score} is worse than {bound}"
    else:
        assert _better(task, result.score, bar), (
            f"{key} on {name}: {result.score} against the default LightGBM's {reference} (bar {bar})")
