"""The agent scores a script from its saved validation predictions, not from what it printed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nodes.debug import rescored
from runtime import metrics
from runtime.predictions import VAL_FILE, PredictionError, read_predictions, recompute_score
from runtime.sandbox import ExecutionResult
from runtime.task import load_task
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def titanic():
    return load_task(EXAMPLES / "titanic")


@pytest.fixture(scope="module")
def penguins():
    return load_task(EXAMPLES / "penguins")


def input_dir(task):
    return task.data_dir


def save(folder, frame):
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / VAL_FILE, index=False)


def result(folder, printed):
    return ExecutionResult(status="ok", returncode=0, score=printed, duration_s=1.0, attempt_dir=str(folder),
                           stdout_tail="", stderr_tail="")


def test_accuracy_is_recomputed_by_hand(titanic, tmp_path):
    train = pd.read_csv(f"{titanic.data_dir}/{titanic.train_file}")
    rows = np.arange(0, 200, 2)
    pred = train[titanic.target].to_numpy()[rows].copy()
    pred[:25] = 1 - pred[:25]  # 25 of 100 wrong
    save(tmp_path, pd.DataFrame({"row": rows, titanic.target_columns[0]: pred}))
    assert recompute_score(titanic, input_dir(titanic), tmp_path) == pytest.approx(0.75)


def test_class_probabilities_logloss_matches_a_hand_computation(penguins, tmp_path):
    train = pd.read_csv(f"{penguins.data_dir}/{penguins.train_file}")
    columns = list(penguins.target_columns)
    rows = np.arange(30)
    truth = train[penguins.target].to_numpy()[rows]
    probs = np.full((len(rows), len(columns)), 0.1)
    for i, label in enumerate(truth):
        probs[i, columns.index(str(label))] = 0.8
    probs /= probs.sum(axis=1, keepdims=True)
    save(tmp_path, pd.DataFrame({"row": rows, **{c: probs[:, j] for j, c in enumerate(columns)}}))
    expected = -np.mean(np.log(0.8 / (0.8 + 0.1 * (len(columns) - 1))))
    assert recompute_score(penguins, input_dir(penguins), tmp_path) == pytest.approx(expected)


def test_a_printed_score_that_disagrees_is_a_finding_and_the_recomputed_one_counts(titanic, tmp_path):
    train = pd.read_csv(f"{titanic.data_dir}/{titanic.train_file}")
    rows = np.arange(100)
    save(tmp_path, pd.DataFrame({"row": rows, titanic.target_columns[0]: np.zeros(100, dtype=int)}))
    truth = train[titanic.target].to_numpy()[rows]
    state = {"task": titanic.to_dict(), "input_dir": titanic.data_dir}
    out = rescored(result(tmp_path, printed=0.99), state)
    assert out.score == pytest.approx(float(np.mean(truth == 0)))
    assert out.printed_score == 0.99 and "printed 0.99" in out.score_note


def test_no_predictions_means_no_score_whatever_was_printed(titanic, tmp_path):
    out = rescored(result(tmp_path, printed=0.9), {"task": titanic.to_dict(), "input_dir": titanic.data_dir})
    assert out.score is None and not out.succeeded
    assert VAL_FILE in out.score_note


@pytest.mark.parametrize("frame, needle", [
    (pd.DataFrame({"row": [0, 1]}), "lacks the columns"),
    (pd.DataFrame({"row": [0, 0], "Survived": [1, 0]}), "more than once"),
    (pd.DataFrame({"row": [0, 10 ** 6], "Survived": [1, 0]}), "between 0 and"),
    (pd.DataFrame({"row": [0.5, 1], "Survived": [1, 0]}), "whole row numbers"),
    (pd.DataFrame({"row": [0, 1], "Survived": [1, None]}), "empty predictions"),
])
def test_unusable_prediction_files_say_what_is_wrong(titanic, tmp_path, frame, needle):
    save(tmp_path, frame)
    with pytest.raises(PredictionError, match=needle):
        read_predictions(titanic, titanic.data_dir, tmp_path)


def test_an_oversized_prediction_file_is_refused_unread(titanic, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / VAL_FILE, "w") as f:
        f.write("row,Survived\n")
        f.write("0,1\n" * 600_000)
    with pytest.raises(PredictionError, match="bytes"):
        read_predictions(titanic, titanic.data_dir, tmp_path)


def test_rmse_matches_metrics_module(tmp_path):
    task = load_task(EXAMPLES / "concrete")
    train = pd.read_csv(f"{task.data_dir}/{task.train_file}")
    rows = np.arange(50)
    pred = train[task.target].to_numpy()[rows] + 2.0
    save(tmp_path, pd.DataFrame({"row": rows, task.target_columns[0]: pred}))
    score = recompute_score(task, task.data_dir, tmp_path)
    assert math.isclose(score, metrics.score(task.metric, train[task.target].to_numpy()[rows], pred))
