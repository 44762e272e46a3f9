"""Tasks of other shapes: several targets at once (mean column-wise RMSE, log loss, AUC) and ranked labels
(MAP@k). Each metric against a hand computation; each shape from a task folder through the catalog's code to a
graded submission, and through a whole run with the scripted model."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime import metrics
from runtime.catalog import applicable, render_example
from runtime.predictions import recompute_score
from runtime.sandbox import run_script
from runtime.task import TaskError, data_summary, grade_submission, load_task, validate_submission
from tests.conftest import run_pipeline
from tests.shaped_tasks import multi_target_task, ranked_task

# --------------------------------------------------------------------------- metrics by hand


def test_map_at_k_by_hand():
    truth = ["a", "b", "c", "d", "a b"]
    predicted = ["a b c", "c b a", "x y c", "d d d", "b x a"]
    # row 1: 1/1; row 2: 1/2; row 3: 1/3; row 4: 1 (a repeated label counts once);
    # row 5: two true labels: (1/1 + 2/3) / min(2, 3)
    expected = (1 + 1 / 2 + 1 / 3 + 1 + (1 + 2 / 3) / 2) / 5
    assert metrics.score("map@3", truth, predicted) == pytest.approx(expected)
    assert metrics.score("map@1", truth, predicted) == pytest.approx((1 + 0 + 0 + 1 + 1 / 1) / 5)
    assert metrics.score("map@3", [1, 2], ["1 2", "2.0 1"]) == pytest.approx(1.0)  # label keys: 2.0 is 2


def test_column_wise_metrics_by_hand():
    truth = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    pred = np.array([[1.0, 12.0], [2.0, 18.0], [5.0, 30.0]])
    rmse_a, rmse_b = math.sqrt(4 / 3), math.sqrt(8 / 3)
    assert metrics.score("mcrmse", truth, pred) == pytest.approx((rmse_a + rmse_b) / 2)

    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.5]])
    by_hand = np.mean([-np.mean([math.log(p) if y else math.log(1 - p) for y, p in zip(labels[:, j], probs[:, j])])
                       for j in range(2)])
    assert metrics.score("mean_column_logloss", labels, probs) == pytest.approx(by_hand)
    # column a: every positive above every negative (AUC 1); column b: positives 0.7, 0.4 against 0.2, 0.5 (3/4)
    assert metrics.score("mean_column_auc", labels, probs) == pytest.approx((1 + 0.75) / 2)


@pytest.mark.parametrize("text, name", [
    ("Submissions are evaluated according to the Mean Average Precision @ 3 (MAP@3).", "map@3"),
    ("The metric is mean average precision at 5.", "map@5"),
    ("Scored on the mean column-wise root mean squared error (MCRMSE).", "mcrmse"),
    ("The score is the mean column-wise log loss of the six labels.", "mean_column_logloss"),
    ("Submissions are evaluated on the mean column-wise ROC AUC.", "mean_column_auc"),
])
def test_the_metrics_are_found_in_descriptions(text, name):
    assert metrics.detect_metric(text) == (name, metrics.METRICS[name].lower_is_better)


@pytest.mark.parametrize("written, name", [("MAP@3", "map@3"), ("map_at_7", "map@7"), ("MCRMSE", "mcrmse")])
def test_the_metrics_are_found_by_name(written, name):
    assert metrics.resolve_metric_name(written) == name


# --------------------------------------------------------------------------- task folders of these shapes


def run_catalog(task, tmp_path: Path):
    [approach, *_] = applicable(task)
    result = run_script(render_example(approach, task, submit=True), tmp_path / "attempt", task.data_dir,
                        timeout_s=120, memory_mb=4096)
    assert result.status == "ok", result.stderr_tail
    return approach, result


@pytest.mark.parametrize("metric", ["mcrmse", "mean_column_logloss", "mean_column_auc"])
def test_a_multi_target_task_runs_from_folder_to_graded_submission(tmp_path, metric):
    task = load_task(multi_target_task(tmp_path / "two_targets", metric))
    assert (task.kind, task.targets) == ("multitarget", ("target_a", "target_b"))
    assert task.prediction == ("values" if metric == "mcrmse" else "probabilities")
    summary = data_summary(task)
    assert "Target target_b" in summary and "target_b (" not in summary.split("Train columns")[0]

    approach, result = run_catalog(task, tmp_path)
    assert approach.key == "multi_target_lightgbm"
    recomputed = recompute_score(task, task.data_dir, result.attempt_dir)
    assert recomputed == pytest.approx(result.score, abs=1e-5)
    grade = grade_submission(task, Path(result.attempt_dir) / "submission.csv")
    assert grade.valid, grade.problems
    train = pd.read_csv(Path(task.data_dir) / "train.csv")
    answers = pd.read_csv(Path(task.root) / "private" / "answers.csv")
    constant = np.tile(train[list(task.targets)].mean().to_numpy(), (len(answers), 1))  # the trivial prediction
    trivial = metrics.score(metric, answers[list(task.targets)].to_numpy(), constant) if metric != "mean_column_auc" else 0.5
    assert (grade.score < trivial * 0.7) if task.lower_is_better else (grade.score > trivial + 0.2), (grade.score, trivial)


def test_the_multi_target_code_validates_without_the_test_set(tmp_path):
    task = load_task(multi_target_task(tmp_path / "two_targets", "mcrmse"))
    without_test = tmp_path / "input"
    shutil.copytree(task.data_dir, without_test, ignore=shutil.ignore_patterns(task.test_file))
    [approach] = applicable(task)
    result = run_script(render_example(approach, task), tmp_path / "attempt", without_test, timeout_s=120,
                        memory_mb=4096)
    assert result.status == "ok", result.stderr_tail
    assert (tmp_path / "attempt" / "val_predictions.csv").is_file()
    assert not (tmp_path / "attempt" / "submission.csv").exists()


def test_a_multi_target_submission_is_checked_column_by_column(tmp_path):
    task = load_task(multi_target_task(tmp_path / "labels", "mean_column_auc"))
    _, result = run_catalog(task, tmp_path)
    bad = pd.read_csv(Path(result.attempt_dir) / "submission.csv")
    bad.loc[0, "target_b"] = 1.7
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert any("target_b has 1 probabilities outside [0, 1]" in p for p in validate_submission(task, tmp_path / "bad.csv"))


def test_several_targets_need_a_metric_over_the_columns(tmp_path):
    folder = multi_target_task(tmp_path / "rmse", "mcrmse")
    (folder / "task.json").write_text(json.dumps({"metric": "rmse"}))
    with pytest.raises(TaskError, match="several targets.*mcrmse"):
        load_task(folder)


def test_a_ranked_labels_task_runs_from_folder_to_graded_submission(tmp_path):
    task = load_task(ranked_task(tmp_path / "ranked"))
    assert (task.kind, task.prediction, task.metric) == ("multiclass", "ranked_labels", "map@3")
    _, result = run_catalog(task, tmp_path)
    saved = pd.read_csv(Path(result.attempt_dir) / "val_predictions.csv")
    assert saved["label"].str.split().str.len().eq(3).all()  # three labels per row, best first
    assert recompute_score(task, task.data_dir, result.attempt_dir) == pytest.approx(result.score, abs=1e-5)
    grade = grade_submission(task, Path(result.attempt_dir) / "submission.csv")
    assert grade.valid, grade.problems
    assert grade.score > 0.85  # the classes ranked by their share in train.csv, for every row, score 0.48 here

    bad = pd.read_csv(Path(result.attempt_dir) / "submission.csv")
    bad.loc[0, "label"] = "alpha beta gamma delta"
    bad.loc[1, "label"] = "alpha omega"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    problems = " ".join(validate_submission(task, tmp_path / "bad.csv"))
    assert "more than 3 labels" in problems and "omega" in problems


# --------------------------------------------------------------------------- whole runs, scripted model


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["several targets", "ranked labels"])
def test_a_whole_run_on_a_task_of_this_shape_submits(ctx, tmp_path, shape):
    folder = multi_target_task(tmp_path / "task", "mcrmse") if shape == "several targets" else ranked_task(tmp_path / "task")
    state = run_pipeline(ctx, tmp_path, task=folder)

    assert state["status"] == "done"
    grade = grade_submission(load_task(folder), state["submission"]["path"])
    assert grade.valid, grade.problems
    scored = [lane["solution"]["score"] for lane in state["lane_results"]]
    assert scored and all(score is not None for score in scored)  # the lanes' scripts were scored by the agent
    if shape == "ranked labels":
        assert state["blend"] == {"accepted": False, "reason": "no blend of ranked_labels predictions", "members": []}


def test_every_prediction_kind_is_explained_to_the_model():
    from prompts.common import PREDICTION_NOTES
    from runtime.task import PREDICTIONS
    assert set(PREDICTION_NOTES) == set(PREDICTIONS)
