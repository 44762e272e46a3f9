"""The local approach catalog: metadata, ordering, rendering, and every example run for real.

Each applicable (task, approach) pair of the bundled example tasks is rendered and run in the
sandbox: with submit=True it must print a validation score that beats the trivial baseline and
write a valid submission; with submit=False it must work with no test.csv in ./input at all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime import metrics
from runtime.catalog import (
    CATALOG_DIR,
    Approach,
    applicable,
    get_approach,
    load_catalog,
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
        assert set(approach.kinds) <= {"binary", "multiclass", "regression", "timeseries", "text"}
        assert 2 <= approach.description.count(". ") + 1 <= 6, approach.key
        path = CATALOG_DIR / approach.template_file
        assert path.is_file()
        code = template_text(approach)
        compile(code, str(path), "exec")
        assert 40 <= len(code.splitlines()) <= 92, (approach.key, len(code.splitlines()))
        assert "# --- task config ---" in code and "# --- end task config ---" in code
        assert "early_stopping_rounds" not in code  # removed from LightGBM 4's fit()
        assert "Final Validation Performance:" in code
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


# ---------------------------------------------------------------------------------------------
# every example runs for real


def _pairs():
    if TASKS_DIR is None:
        return []
    return [(name, a.key) for name in TASK_NAMES for a in applicable(load_task(TASKS_DIR / name))]


def _beats_trivial(score: float, baseline: dict) -> bool:
    return score < baseline["trivial"] if baseline["lower_is_better"] else score > baseline["trivial"]


def _check_run(result, baseline):
    assert result.status == "ok", result.stderr_tail
    assert result.stdout_tail.count("Final Validation Performance:") == 1
    assert result.score is not None and math.isfinite(result.score)
    assert _beats_trivial(result.score, baseline), (result.score, baseline["trivial"])


@needs_tasks
@pytest.mark.parametrize("name,key", _pairs())
def test_example_submits(tasks, baselines, tmp_path, name, key):
    task = tasks[name]
    code = render_example(get_approach(key), task, submit=True)
    result = run_script(code, tmp_path / "attempt", task.data_dir, timeout_s=120, memory_mb=4096)
    _check_run(result, baselines[name])

    submission = pd.read_csv(tmp_path / "attempt" / "submission.csv")
    sample = pd.read_csv(Path(task.data_dir) / task.sample_submission_file)
    test = pd.read_csv(Path(task.data_dir) / task.test_file)
    assert list(submission.columns) == list(sample.columns)
    assert len(submission) == len(test)
    assert sorted(submission[task.id_column]) == sorted(test[task.id_column])
    assert not submission.isna().any().any()
    grade = grade_submission(task, tmp_path / "attempt" / "submission.csv")
    assert grade.valid, grade.problems
    if grade.score is not None:  # the hidden answers are there: the test score beats trivial too
        assert _beats_trivial(grade.score, baselines[name]), grade.score


@needs_tasks
@pytest.mark.parametrize("key", [a.key for a in load_catalog()])
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
