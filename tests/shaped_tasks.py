"""Task folders of other shapes, built from generated data: several targets, and ranked labels (MAP@k)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

ID = "id"


def write_task(root: Path, train: pd.DataFrame, test: pd.DataFrame, answers: pd.DataFrame, sample_columns: list[str],
               metric: str, description: str) -> Path:
    public = root / "public"
    public.mkdir(parents=True)
    (root / "private").mkdir()
    train.to_csv(public / "train.csv", index=False)
    test.to_csv(public / "test.csv", index=False)
    sample = pd.DataFrame({ID: test[ID]})
    for column in sample_columns:
        sample[column] = answers[column].iloc[0]
    sample.to_csv(public / "sample_submission.csv", index=False)
    answers.to_csv(root / "private" / "answers.csv", index=False)
    (public / "description.md").write_text(description)
    (root / "task.json").write_text(json.dumps({"name": root.name, "metric": metric}))
    return root


def features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({ID: np.arange(n) + seed * 10_000, "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "x3": rng.uniform(size=n), "colour": rng.choice(["red", "green", "blue"], size=n)})


def multi_target_task(root: Path, metric: str) -> Path:
    """Two targets that depend on the features: numbers (mcrmse) or 0/1 labels (column-wise log loss/AUC)."""
    def targets(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        noise = np.random.default_rng(seed).normal(scale=0.3, size=(len(frame), 2))
        a = 2 * frame["x1"] + frame["x3"] + noise[:, 0] + (frame["colour"] == "red")
        b = frame["x2"] * frame["x3"] * 3 - frame["x1"] + noise[:, 1]
        if metric != "mcrmse":
            a, b = (a > a.median()).astype(int), (b > b.median()).astype(int)
        return pd.DataFrame({"target_a": a, "target_b": b})

    train, test = features(800, 1), features(200, 2)
    train = pd.concat([train, targets(train, 3)], axis=1)
    answers = pd.concat([test[[ID]], targets(test, 4)], axis=1)
    return write_task(root, train, test, answers, ["target_a", "target_b"], metric,
                      f"# Two targets\nPredict target_a and target_b for each row. Metric: {metric}.")


def ranked_task(root: Path) -> Path:
    """Four classes decided by the features, scored by MAP@3 of space-separated labels."""
    def labels(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(np.select([frame["x1"] > 0.6, frame["x2"] > 0.3, frame["x3"] > 0.5],
                                   ["alpha", "beta", "gamma"], "delta"), name="label")

    train, test = features(800, 5), features(200, 6)
    train["label"] = labels(train)
    answers = pd.DataFrame({ID: test[ID], "label": labels(test)})
    return write_task(root, train, test, answers, ["label"], "map@3",
                      "# Classes\nFor each row list the three most likely labels, best first, separated by spaces.")
