"""Greedy ensemble selection (Caruana et al., 2004) over the validation predictions of solutions.

Starting from the best single member, members are added with replacement, each time the one whose
addition most improves the validation metric of the blend; a member's weight is its count. Weights
fitted on the validation rows flatter themselves there, so ``select_ensemble`` fits them on one half
of the rows and accepts the blend only if, on the other half, it does at least as well as the best
single member. ``blend`` applies the chosen weights to the members' test predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from runtime import metrics

#: Prediction kinds a blend is defined for (ranked labels are not: an average of rankings is another problem).
KINDS = ("value", "probability", "class_probabilities", "label", "values", "probabilities")
#: Kinds held as one column per class or target (2-D arrays).
COLUMNS = ("class_probabilities", "values", "probabilities")
MIN_ROWS = 20  # fewer validation rows cannot be split into two halves that say anything


@dataclass(frozen=True)
class Selection:
    """Outcome of ``select_ensemble``; when not ``accepted``, use member ``best_single`` alone.

    Scores that could not be computed are NaN.
    """

    weights: dict[int, int]  # member index -> count, in the order the members joined (best first)
    score: float  # the blend on all validation rows
    select_score: float  # the blend on half A, where the weights were chosen
    check_score: float  # the blend on half B
    best_single: int  # the best member on half A (-1 if none could be scored)
    best_single_check_score: float  # that member on half B
    accepted: bool
    reason: str


def blend(preds: Sequence, weights: dict[int, int] | Sequence[float], prediction: str) -> np.ndarray:
    """Blend the members' predictions with ``weights`` ({member: count} or one weight per member).

    Numeric kinds give the weighted mean; "label" gives, per row, the label key (``metrics.label_keys``)
    with the largest summed weight, ties going to the member listed first in ``weights``.
    """
    arrays = _as_arrays(preds, prediction)
    if not arrays:
        raise ValueError("no members to blend")
    return _combine(*_stack(arrays, prediction), _weight_map(weights, len(arrays)), prediction)


def select_ensemble(preds: Sequence, y_true, metric: str, prediction: str, labels: Sequence | None = None,
                    max_size: int = 20, seed: int = 0, tol: float = 1e-9) -> Selection:
    """Choose blend weights (total count <= ``max_size``) for validation predictions of ``y_true``.

    ``labels`` names the columns of class probabilities; ``seed`` fixes the split into halves.
    """
    if metric not in metrics.METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    y = np.asarray(y_true)
    arrays = _as_arrays(preds, prediction, rows=len(y), cols=None if labels is None else len(labels))
    if len(arrays) < 2 or len(y) < MIN_ROWS:
        why = f"need at least 2 members and {MIN_ROWS} rows, got {len(arrays)} members and {len(y)} rows"
        return Selection({}, math.nan, math.nan, math.nan, -1, math.nan, False, why)
    stack, classes = _stack(arrays, prediction)

    def evaluate(weights: dict[int, int], rows) -> float | None:
        try:
            pred = _combine(stack[:, rows], classes, weights, prediction)
            value = metrics.score(metric, y[rows], pred, labels)
        except (ValueError, TypeError, ArithmeticError):
            return None  # e.g. rmsle of a negative blend: this candidate simply does not count
        return value if math.isfinite(value) else None

    half_a, half_b = _halves(y, prediction, seed)
    found = _greedy(len(arrays), lambda w: evaluate(w, half_a), metric, prediction, max_size, tol)
    if found is None:
        return Selection({}, math.nan, math.nan, math.nan, -1, math.nan, False, "no member could be scored")
    weights, select_score, best = found
    check, single = evaluate(weights, half_b), evaluate({best: 1}, half_b)
    accepted = len(weights) > 1 and check is not None and single is not None and _gain(metric, check, single) >= 0
    if len(weights) < 2:
        why = "no addition improved on the best single member"
    elif check is None or single is None:
        why = "the blend or the best single member could not be scored on the check half"
    else:
        verdict = "at least as good as" if accepted else "worse than"
        why = f"on the check half the blend scores {check:.6g}, {verdict} the best single {single:.6g}"
    total, check, single = (math.nan if v is None else v for v in (evaluate(weights, slice(None)), check, single))
    return Selection(weights, total, select_score, check, best, single, accepted, why)


def _greedy(m: int, evaluate, metric: str, prediction: str, max_size: int, tol: float):
    """(weights, score, best single) of the greedy search, or None when no member can be scored.

    For labels, when no single addition helps, pairs are tried too: a vote between two members only
    ever reproduces the one that wins ties, so adding one at a time never reaches a majority of three.
    """
    singles = [evaluate({i: 1}) for i in range(m)]
    scored = [i for i in range(m) if singles[i] is not None]
    if not scored:
        return None
    best = max(scored, key=lambda i: _gain(metric, singles[i], 0.0))  # the first of equals wins
    weights, current = {best: 1}, singles[best]
    pairs = [(j, k) for j in range(m) for k in range(j, m)] if prediction == "label" else []

    def best_step(steps):  # the (weights, score) after the best of these additions, if it improves
        chosen = None
        for step in steps:
            if sum(weights.values()) + len(step) > max_size:
                continue
            trial = dict(weights)  # a new member goes last: the order breaks ties in label votes
            for j in step:
                trial[j] = trial.get(j, 0) + 1
            value = evaluate(trial)
            if value is not None and (chosen is None or _gain(metric, value, chosen[1]) > 0):
                chosen = (trial, value)
        return chosen if chosen and _gain(metric, chosen[1], current) > tol else None

    while chosen := best_step([(j,) for j in range(m)]) or best_step(pairs):
        weights, current = chosen
    return weights, current, best


def _gain(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` in the metric's direction."""
    return old - new if metrics.METRICS[metric].lower_is_better else new - old


def _halves(y: np.ndarray, prediction: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the rows, dealt alternately within each class so that both see every class."""
    rng = np.random.default_rng(seed)
    groups = metrics.label_keys(y) if prediction in ("label", "probability", "class_probabilities") else np.zeros(len(y))
    a: list[int] = []
    b: list[int] = []
    for group in sorted(set(groups)):
        rows = rng.permutation(np.flatnonzero(groups == group))
        a.extend(rows[::2])
        b.extend(rows[1::2])
    return np.sort(a), np.sort(b)


def _as_arrays(preds: Sequence, prediction: str, rows: int | None = None, cols: int | None = None) -> list:
    """The members as arrays of one common shape; a ValueError names the first member that differs."""
    if prediction not in KINDS:
        raise ValueError(f"no blend of {prediction!r} predictions; blends are made of {', '.join(KINDS)}")
    ndim = 2 if prediction in COLUMNS else 1
    arrays: list[np.ndarray] = []
    for i, pred in enumerate(preds):
        try:
            array = np.asarray(pred, dtype=object if prediction == "label" else float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"member {i}: predictions are not numeric ({exc})") from None
        if array.ndim != ndim:
            raise ValueError(f"member {i}: expected a {ndim}-D array for {prediction!r}, got {array.shape}")
        first = arrays[0].shape if arrays else array.shape
        expected = (first[0] if rows is None else rows,) + (() if ndim == 1 else (cols or first[1],))
        if array.shape != expected:
            raise ValueError(f"member {i}: prediction shape {array.shape}, expected {expected}")
        arrays.append(array)
    return arrays


def _stack(arrays: list, prediction: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Members stacked on axis 0 and, for labels, the class keys that the stacked codes index."""
    if prediction != "label":
        return np.stack(arrays), None
    classes, codes = np.unique(np.concatenate([metrics.label_keys(a) for a in arrays]), return_inverse=True)
    return codes.reshape(len(arrays), -1), classes


def _weight_map(weights, m: int) -> dict[int, float]:
    if not isinstance(weights, dict):
        if len(weights) != m:
            raise ValueError(f"{len(weights)} weights for {m} members")
        weights = dict(enumerate(weights))
    if any(not 0 <= int(i) < m for i in weights):
        raise ValueError(f"weights refer to members outside 0..{m - 1}: {weights}")
    if any(not math.isfinite(w) or w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum: {weights}")
    return {int(i): float(w) for i, w in weights.items()}


def _combine(stack: np.ndarray, classes: np.ndarray | None, weights: dict, prediction: str) -> np.ndarray:
    w = np.zeros(len(stack))
    for i, count in weights.items():
        w[i] = count
    if prediction != "label":
        return np.tensordot(w, stack, axes=1) / w.sum()
    if classes is None:
        raise ValueError("label members need their class keys (see _stack)")
    rows = np.arange(stack.shape[1])
    votes = np.zeros((len(rows), len(classes)))
    for i in np.flatnonzero(w):
        votes[rows, stack[i]] += w[i]
    top, out = votes.max(axis=1), np.full(len(rows), -1)
    for i in [i for i in weights if w[i] > 0]:  # ties: the first member listed in weights wins
        pick = (out < 0) & (votes[rows, stack[i]] >= top - 1e-9)
        out[pick] = stack[i][pick]
    return classes[out]
