"""Blend: the model-free greedy ensemble over saved predictions, its test predictions and the board."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nodes.blend import aligned_predictions, blend
from nodes.prepare import prepare
from runtime import board, metrics
from runtime.predictions import recompute_score
from runtime.task import Task, grade_submission, read_csv
from tests.conftest import EXAMPLES, scripted_context


@pytest.fixture
def concrete(tmp_path):
    ctx = scripted_context(tmp_path)
    runtime = SimpleNamespace(context=ctx)
    state = {"task_dir": str(EXAMPLES / "concrete"), "run_id": "b1"}
    state = {**state, **prepare(state, runtime)}
    return state, runtime


def member(state, name, rows, val, test, with_submission=True):
    """A scored solution folder: validation predictions and (optionally) a submission."""
    task = state["task"]
    folder = Path(state["workspace"]) / "attempts" / name
    folder.mkdir(parents=True)
    pd.DataFrame({"row": rows, task["target_columns"][0]: val}).to_csv(folder / "val_predictions.csv", index=False)
    if with_submission:
        ids = read_csv(f"{task['data_dir']}/{task['test_file']}")[task["id_column"]]
        pd.DataFrame({task["id_column"]: ids, task["target_columns"][0]: test}).to_csv(folder / "submission.csv",
                                                                                        index=False)
    return {"key": name, "title": name, "code": f"# {name}\n", "path": str(folder), "duration_s": 1.0}


def synthetic(state, seed=0):
    """Two members with independent errors (their mean is better than either) and a useless one."""
    task = state["task"]
    truth = pd.read_csv(f"{state['input_dir']}/{task['train_file']}")[task["target"]].to_numpy()
    n_test = len(read_csv(f"{task['data_dir']}/{task['test_file']}"))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(truth), 200, replace=False))
    y = truth[rows]
    vals = {"a": y + rng.normal(0, 5, 200), "b": y + rng.normal(0, 5, 200), "noise": rng.normal(30, 15, 200)}
    tests = {"a": np.full(n_test, 30.0), "b": np.full(n_test, 40.0), "noise": np.full(n_test, 10.0)}
    return rows, y, vals, tests


def test_two_members_with_independent_errors_are_blended_and_submitted(concrete):
    state, runtime = concrete
    rows, y, vals, tests = synthetic(state)
    floor = [member(state, k, rows, vals[k], tests[k]) for k in ("a", "b", "noise")]
    for f in floor:
        f["score"] = metrics.score("rmse", y, vals[f["key"]])
    state = {**state, "floor": floor, "lane_results": [], "ensemble_rounds": []}

    record = blend(state, runtime)["blend"]

    assert record["accepted"], record["reason"]
    assert set(record["weights"]) == {"catalog:a", "catalog:b"}  # the useless member gets no weight
    wa, wb = record["weights"]["catalog:a"], record["weights"]["catalog:b"]
    assert record["score"] < min(f["score"] for f in floor)
    task = state["task"]
    submission = pd.read_csv(f"{record['path']}/submission.csv")
    expected = (wa * 30.0 + wb * 40.0) / (wa + wb)  # the same weights on the members' test predictions
    assert np.allclose(submission[task["target_columns"][0]], expected)
    t = Task.from_dict(task)
    assert grade_submission(t, f"{record['path']}/submission.csv").valid
    assert recompute_score(t, state["input_dir"], record["path"]) == pytest.approx(record["score"])
    held = board.current(state["workspace"])
    assert held["source"] == "blend" and held["score"] == pytest.approx(record["score"])


def test_a_member_without_test_predictions_is_dropped_and_the_selection_redone(concrete):
    state, runtime = concrete
    rows, y, vals, tests = synthetic(state, seed=1)
    vals["c"] = y + np.random.default_rng(7).normal(0, 5, 200)
    floor = [member(state, "a", rows, vals["a"], tests["a"]), member(state, "b", rows, vals["b"], tests["b"]),
             member(state, "c", rows, vals["c"], None, with_submission=False)]  # no submission, no SUBMIT flag
    for f in floor:
        f["score"] = metrics.score("rmse", y, vals[f["key"]])
    state = {**state, "floor": floor, "lane_results": [], "ensemble_rounds": []}

    record = blend(state, runtime)["blend"]

    assert record["accepted"] and set(record["weights"]) == {"catalog:a", "catalog:b"}


def test_members_validated_on_other_rows_join_on_the_rows_they_share(concrete):
    state, _ = concrete
    rows, y, vals, tests = synthetic(state)
    everything = np.arange(len(pd.read_csv(f"{state['input_dir']}/train.csv")))
    truth = pd.read_csv(f"{state['input_dir']}/train.csv")[state["task"]["target"]].to_numpy()
    members = [member(state, "a", rows, vals["a"], tests["a"]),
               member(state, "oof", everything, truth + 1.0, tests["b"]),  # out-of-fold: all rows
               member(state, "other_split", rows[:50] + 1, np.zeros(50), tests["b"])]  # elsewhere: left out
    kept, preds = aligned_predictions(Task.from_dict(state["task"]), state["input_dir"], members)
    assert [m["key"] for m in kept] == ["a", "oof"]
    assert all(np.array_equal(p.rows, rows) for p in preds)
    assert np.allclose(preds[1].values, y + 1.0)
