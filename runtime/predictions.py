"""Saved predictions: the agent scores a script from the predictions it saved, not from what it printed.

Every validation script writes ``val_predictions.csv`` in its working folder: a ``row`` column (the position
of each validation row in ``train.csv``, i.e. its pandas index) followed by the submission's prediction
columns, holding exactly what a submission would hold for those rows. The agent looks the true targets up
in its own copy of ``train.csv`` and computes the metric with ``runtime.metrics``. A script that saved no
predictions has no score, and a printed score that disagrees with the recomputed one is a finding.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from runtime import metrics
from runtime.task import Task

VAL_FILE = "val_predictions.csv"
ROW = "row"
#: Printed and recomputed scores closer than this (relative, or absolute near 0) agree.
AGREEMENT = 1e-4
#: Bytes per training row and column a prediction file may take before it is refused unread.
MAX_BYTES_PER_CELL = 64


class PredictionError(ValueError):
    """A prediction file is missing or cannot be scored; the message says what to fix."""


@dataclass(frozen=True)
class Predictions:
    """Validation predictions aligned with their true targets."""

    rows: np.ndarray        # positions in train.csv, as saved
    values: np.ndarray      # 1-D (one column) or 2-D (columns = task.target_columns: class probabilities, targets)
    truth: np.ndarray       # train.csv's target(s) at those rows: 2-D for several targets

    def subset(self, keep: np.ndarray) -> "Predictions":
        return Predictions(self.rows[keep], self.values[keep], self.truth[keep])


@lru_cache(maxsize=8)
def _targets(path: str, mtime: float, targets: tuple[str, ...]) -> pd.Series | pd.DataFrame:
    frame = pd.read_csv(path, usecols=list(targets), low_memory=False)[list(targets)]
    return frame[targets[0]] if len(targets) == 1 else frame


def train_targets(task: Task, input_dir: str | os.PathLike) -> pd.Series | pd.DataFrame:
    """The target column(s) of the run's copy of train.csv, indexed by row position (cached per file): a
    Series, or a DataFrame with one column per target for a multi-target task."""
    path = Path(input_dir) / task.train_file
    return _targets(str(path), path.stat().st_mtime, task.targets)


def prediction_columns(task: Task) -> list[str]:
    return list(task.target_columns)


def read_predictions(task: Task, input_dir: str | os.PathLike, folder: str | os.PathLike) -> Predictions:
    """The validation predictions a script saved in ``folder``, checked and aligned with the truth."""
    path = Path(folder) / VAL_FILE
    if not path.is_file():
        raise PredictionError(f"the script saved no {VAL_FILE}")
    targets = train_targets(task, input_dir)
    columns = prediction_columns(task)
    limit = MAX_BYTES_PER_CELL * len(targets) * (len(columns) + 1) + 65536
    if path.stat().st_size > limit:
        raise PredictionError(f"{VAL_FILE} is {path.stat().st_size} bytes, more than {len(targets)} validation "
                              "rows can take; save one row per validation row")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise PredictionError(f"{VAL_FILE} cannot be read as CSV: {exc}") from None
    missing = [c for c in (ROW, *columns) if c not in frame.columns]
    if missing:
        raise PredictionError(f"{VAL_FILE} lacks the columns {missing}; it needs {[ROW, *columns]}")
    rows = pd.to_numeric(frame[ROW], errors="coerce")
    if rows.isna().any() or not np.all(np.mod(rows, 1) == 0):
        raise PredictionError(f"{VAL_FILE}: '{ROW}' must hold whole row numbers of train.csv (its pandas index)")
    rows = rows.astype(int).to_numpy()
    if len(rows) == 0:
        raise PredictionError(f"{VAL_FILE} has no rows")
    if rows.min() < 0 or rows.max() >= len(targets):
        raise PredictionError(f"{VAL_FILE}: '{ROW}' values must be between 0 and {len(targets) - 1}")
    if len(np.unique(rows)) != len(rows):
        raise PredictionError(f"{VAL_FILE}: a validation row appears more than once")
    values = frame[columns]
    if values.isna().any().any():
        raise PredictionError(f"{VAL_FILE} has empty predictions")
    truth = targets.to_numpy()[rows]
    known = pd.notna(truth) if truth.ndim == 1 else pd.notna(truth).all(axis=1)
    data = values.to_numpy(dtype=float) if len(columns) > 1 else values[columns[0]].to_numpy()
    return Predictions(rows[known], data[known], truth[known])


def score_predictions(task: Task, predictions: Predictions) -> float:
    """The task's metric over saved predictions (PredictionError when it cannot be computed)."""
    name = metrics.resolve_metric_name(task.metric) or task.metric
    labels = prediction_columns(task) if np.ndim(predictions.values) == 2 else None
    try:
        value = metrics.score(name, predictions.truth, predictions.values, labels=labels)
    except (ValueError, TypeError, KeyError) as exc:
        raise PredictionError(f"{task.metric} cannot be computed from {VAL_FILE}: {exc}") from None
    if not math.isfinite(value):
        raise PredictionError(f"{task.metric} of the saved predictions is not a finite number")
    return value


def recompute_score(task: Task, input_dir: str | os.PathLike, folder: str | os.PathLike) -> float:
    return score_predictions(task, read_predictions(task, input_dir, folder))


def scores_agree(printed: float | None, recomputed: float) -> bool:
    return printed is not None and math.isclose(printed, recomputed, rel_tol=AGREEMENT, abs_tol=AGREEMENT)
