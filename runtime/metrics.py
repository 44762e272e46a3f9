"""Evaluation metrics: a registry, detection from a task description, and scoring.

Every metric scores plain arrays (``Metric.fn(y_true, y_pred)``); ``score_submission`` first
aligns a submission with the hidden answers by id and converts both to those arrays.

Labels are compared through ``label_keys`` so that ``1``, ``1.0`` and ``"1"`` are the same
class: CSV round trips turn integer labels into floats or strings all the time, and a grader that
calls such a submission wrong would mislead the agent.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score, r2_score, roc_auc_score

#: Probabilities are clipped to [EPS, 1 - EPS] before taking logs (the usual Kaggle convention).
EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    name: str
    lower_is_better: bool
    task_type: str  # "classification" | "regression"
    needs: str  # what a submission cell holds: "label" | "probability" | "value" | "ranked_labels"
    fn: Callable[..., float]  # fn(y_true, y_pred) or, for class probabilities, fn(y_true, y_pred, labels)
    description: str
    nonnegative: bool = False  # predictions must be >= 0 (e.g. rmsle takes log1p)
    #: One target per submission column, scored column by column and averaged (mean column-wise RMSE...):
    #: fn gets 2-D y_true and y_pred, one column per target.
    per_column: bool = False
    #: Scored by the order of the predictions only (AUC): any increasing rescaling scores the same.
    rank_based: bool = False


# ---------------------------------------------------------------------------------------------
# label helpers


def label_keys(values: Sequence | pd.Series | np.ndarray) -> np.ndarray:
    """Canonical string form of labels or ids: integral numbers lose their ``.0``, text is stripped."""
    series = pd.Series(values, dtype=object).reset_index(drop=True)
    numeric = pd.to_numeric(series, errors="coerce")
    out = []
    for raw, num in zip(series, numeric):
        if isinstance(raw, (bool, np.bool_)):
            out.append(str(bool(raw)).lower())
        elif pd.notna(num) and math.isfinite(num) and float(num).is_integer():
            out.append(str(int(num)))
        elif pd.notna(num):
            out.append(repr(float(num)))
        elif raw is None or (isinstance(raw, float) and math.isnan(raw)):
            out.append("")
        else:
            out.append(str(raw).strip())
    return np.array(out, dtype=object)


def sort_labels(keys: Iterable[str]) -> list[str]:
    """Numeric labels in numeric order, otherwise alphabetical."""
    unique = sorted(set(keys))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def positive_label(keys: Iterable[str]) -> str:
    """The class a binary probability refers to: 1 / true / yes, else the last in sorted order."""
    labels = sort_labels(keys)
    for candidate in ("1", "true", "yes", "True", "Yes"):
        if candidate in labels:
            return candidate
    return labels[-1]


def _binary_targets(y_true: np.ndarray) -> np.ndarray:
    keys = label_keys(y_true)
    if len(set(keys)) > 2:
        raise ValueError(f"expected a binary target, got {len(set(keys))} classes")
    return np.asarray(keys == positive_label(keys)).astype(float)


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_numeric(pd.Series(np.ravel(values)), errors="raise"), dtype=float)


# ---------------------------------------------------------------------------------------------
# metric functions: fn(y_true, y_pred) -> float. y_pred is 2-D only for class probabilities (auc,
# logloss), whose column labels are passed as ``labels`` (default: sorted truth labels).


def _accuracy(y_true, y_pred) -> float:
    return float(np.mean(label_keys(y_true) == label_keys(y_pred)))


def _f1(y_true, y_pred) -> float:
    true, pred = label_keys(y_true), label_keys(y_pred)
    if len(set(true)) > 2:
        raise ValueError("f1 is the binary F1; use f1_macro for more than two classes")
    return float(f1_score(true, pred, pos_label=positive_label(true), average="binary", zero_division=0))


def _f1_macro(y_true, y_pred) -> float:
    return float(f1_score(label_keys(y_true), label_keys(y_pred), average="macro", zero_division=0))


def _f1_weighted(y_true, y_pred) -> float:
    return float(f1_score(label_keys(y_true), label_keys(y_pred), average="weighted", zero_division=0))


def _balanced_accuracy(y_true, y_pred) -> float:
    return float(balanced_accuracy_score(label_keys(y_true), label_keys(y_pred)))


def _qwk(y_true, y_pred) -> float:
    return float(cohen_kappa_score(label_keys(y_true), label_keys(y_pred), weights="quadratic"))


def _class_matrix(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Truth keys, row-normalised clipped probabilities and their column labels (2-D predictions)."""
    keys = label_keys(y_true)
    labels = list(label_keys(labels)) if labels is not None else sort_labels(keys)
    unknown = sorted(set(keys) - set(labels))
    if unknown:
        raise ValueError(f"true classes without a probability column: {unknown}")
    probs = np.clip(np.asarray(y_pred, dtype=float), EPS, 1.0)
    return keys, probs / probs.sum(axis=1, keepdims=True), labels


def _auc(y_true, y_pred, labels=None) -> float:
    pred = np.asarray(y_pred)
    if pred.ndim == 2:  # one-vs-rest over the classes present in the truth
        keys, probs, labels = _class_matrix(y_true, pred, labels)
        present = [i for i, label in enumerate(labels) if label in set(keys)]
        probs = probs[:, present] / probs[:, present].sum(axis=1, keepdims=True)
        names = [labels[i] for i in present]
        if len(names) == 2:
            return float(roc_auc_score(keys == names[1], probs[:, 1]))
        return float(roc_auc_score(keys, probs, multi_class="ovr", labels=names))
    return float(roc_auc_score(_binary_targets(y_true), _as_float(pred)))


def _logloss(y_true, y_pred, labels=None) -> float:
    pred = np.asarray(y_pred)
    if pred.ndim == 2:
        keys, probs, labels = _class_matrix(y_true, pred, labels)
        index = np.array([labels.index(k) for k in keys])
        return float(-np.mean(np.log(probs[np.arange(len(keys)), index])))
    truth = _binary_targets(y_true)
    p = np.clip(_as_float(pred), EPS, 1 - EPS)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))


def _mse(y_true, y_pred) -> float:
    return float(np.mean((_as_float(y_true) - _as_float(y_pred)) ** 2))


def _rmse(y_true, y_pred) -> float:
    return math.sqrt(_mse(y_true, y_pred))


def _mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(_as_float(y_true) - _as_float(y_pred))))


def _r2(y_true, y_pred) -> float:
    return float(r2_score(_as_float(y_true), _as_float(y_pred)))


def _rmsle(y_true, y_pred) -> float:
    true, pred = _as_float(y_true), _as_float(y_pred)
    if (true < 0).any() or (pred < 0).any():
        raise ValueError("rmsle is undefined for negative values")
    return math.sqrt(float(np.mean((np.log1p(pred) - np.log1p(true)) ** 2)))


def _msle(y_true, y_pred) -> float:
    return _rmsle(y_true, y_pred) ** 2


def _spearman(y_true, y_pred) -> float:
    value = spearmanr(_as_float(y_true), _as_float(y_pred)).statistic
    if not math.isfinite(value):
        raise ValueError("spearman is undefined when the true or the predicted values are all equal")
    return float(value)


def ranked(cell) -> list[str]:
    """The labels of a ranked-labels cell ("3 1 7": best first) as label keys."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    return list(label_keys(str(cell).split()))


def mean_average_precision(y_true, y_pred, k: int) -> float:
    """MAP@k: per row, the precision at each rank 1..k where a true label first appears, summed and divided
    by min(number of true labels, k); averaged over rows. A row's truth may list several labels (space
    separated); a label predicted twice counts once."""
    total = 0.0
    for truth, predicted in zip(y_true, y_pred):
        actual = set(ranked(truth))
        if not actual:
            raise ValueError("a row has no true label")
        hits, precision_sum, seen = 0, 0.0, set()
        for rank, label in enumerate(ranked(predicted)[:k], start=1):
            if label in actual and label not in seen:
                hits += 1
                precision_sum += hits / rank
            seen.add(label)
        total += precision_sum / min(len(actual), k)
    return total / len(y_true) if len(y_true) else float("nan")


def _columns(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """2-D float truth and predictions of a column-wise metric, one column per target."""
    true = np.asarray(pd.DataFrame(np.asarray(y_true, dtype=object)).apply(pd.to_numeric), dtype=float)
    pred = np.asarray(pd.DataFrame(np.asarray(y_pred, dtype=object)).apply(pd.to_numeric), dtype=float)
    if true.ndim != 2 or true.shape != pred.shape:
        raise ValueError(f"expected one prediction column per target: truth {true.shape}, predictions {pred.shape}")
    return true, pred


def _mcrmse(y_true, y_pred) -> float:
    true, pred = _columns(y_true, y_pred)
    return float(np.mean(np.sqrt(np.mean((true - pred) ** 2, axis=0))))


def _column_logloss(y_true, y_pred) -> float:
    true, pred = _columns(y_true, y_pred)
    if not np.isin(true, (0.0, 1.0)).all():
        raise ValueError("column-wise log loss needs 0/1 targets")
    p = np.clip(pred, EPS, 1 - EPS)
    return float(np.mean(-np.mean(true * np.log(p) + (1 - true) * np.log(1 - p), axis=0)))


def _column_auc(y_true, y_pred) -> float:
    true, pred = _columns(y_true, y_pred)
    return float(np.mean([roc_auc_score(true[:, j], pred[:, j]) for j in range(true.shape[1])]))


def _mape(y_true, y_pred) -> float:
    true, pred = _as_float(y_true), _as_float(y_pred)
    if (true == 0).any():
        raise ValueError("mape is undefined when a true value is 0")
    return float(np.mean(np.abs((true - pred) / true)))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", False, "classification", "label", _accuracy, "fraction of correct labels"),
        Metric("f1", False, "classification", "label", _f1, "binary F1 of the positive class"),
        Metric("f1_macro", False, "classification", "label", _f1_macro, "unweighted mean of per-class F1"),
        Metric("f1_weighted", False, "classification", "label", _f1_weighted,
               "mean of per-class F1 weighted by class frequency"),
        Metric("balanced_accuracy", False, "classification", "label", _balanced_accuracy,
               "balanced accuracy: mean of per-class recall"),
        Metric("qwk", False, "classification", "label", _qwk, "quadratic weighted Cohen's kappa"),
        Metric("auc", False, "classification", "probability", _auc, "area under the ROC curve",
               rank_based=True),
        Metric("logloss", True, "classification", "probability", _logloss, "binary or multi-class log loss"),
        Metric("mse", True, "regression", "value", _mse, "mean squared error"),
        Metric("rmse", True, "regression", "value", _rmse, "root mean squared error"),
        Metric("mae", True, "regression", "value", _mae, "mean absolute error"),
        Metric("r2", False, "regression", "value", _r2, "coefficient of determination"),
        Metric("rmsle", True, "regression", "value", _rmsle, "root mean squared log error", nonnegative=True),
        Metric("msle", True, "regression", "value", _msle, "mean squared log error", nonnegative=True),
        Metric("spearman", False, "regression", "value", _spearman, "Spearman rank correlation"),
        Metric("mape", True, "regression", "value", _mape, "mean absolute percentage error (fraction)"),
        Metric("mcrmse", True, "regression", "value", _mcrmse,
               "mean column-wise root mean squared error over several target columns", per_column=True),
        Metric("mean_column_logloss", True, "classification", "probability", _column_logloss,
               "mean column-wise binary log loss over several 0/1 target columns", per_column=True),
        Metric("mean_column_auc", False, "classification", "probability", _column_auc,
               "mean column-wise ROC AUC over several 0/1 target columns", per_column=True, rank_based=True),
    )
}

#: MAP@k, one metric per cut-off: "map@3" scores cells of space-separated labels, best first.
MAP_AT_K = re.compile(r"^map@(?P<k>[1-9]\d?)$")


def map_at_k(k: int) -> str:
    """The registered name of MAP@k (registered on first use)."""
    name = f"map@{k}"
    if name not in METRICS:
        METRICS[name] = Metric(name, False, "classification", "ranked_labels",
                               lambda y_true, y_pred, k=k: mean_average_precision(y_true, y_pred, k),
                               f"mean average precision at {k} of space-separated labels, best first")
    return name


for _k in (1, 3, 5, 10):
    map_at_k(_k)

#: A task's own metric, task.json "metric": "FILE.py:FUNCTION": score(y_true, y_pred) -> float in that file of
#: the task folder (the user's code, trusted like the folder). y_true holds labels or values, y_pred what the
#: submission holds (labels, probabilities or values).
TASK_METRIC = re.compile(r"^(?P<file>[A-Za-z0-9_][\w.-]*\.py):(?P<function>[A-Za-z_]\w*)$")
TASK_METRIC_MODULE = "task_metric"  # the file's name in a run's input folder, where scripts import it from


def register_task_metric(root: str, spec: str, lower_is_better: bool, task_type: str, per_column: bool = False) -> str:
    """Load a task's own metric from its folder and register it under `spec`; ValueError says what is wrong.
    `per_column`: the task has several targets; the function then gets 2-D y_true and y_pred."""
    match = TASK_METRIC.match(spec)
    if match is None:
        raise ValueError(f"{spec!r} is not of the form FILE.py:FUNCTION, e.g. metric.py:score")
    path = os.path.join(root, match["file"])
    if not os.path.isfile(path):
        raise ValueError(f"the metric file {path} does not exist: add it to the task folder, defining "
                         f"{match['function']}(y_true, y_pred) -> float")
    module_spec = importlib.util.spec_from_file_location(f"{TASK_METRIC_MODULE}_{abs(hash(path))}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"the metric file {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ValueError(f"the metric file {path} fails to load: {type(exc).__name__}: {exc}") from None
    function = getattr(module, match["function"], None)
    if not callable(function):
        raise ValueError(f"{path} defines no function {match['function']}(y_true, y_pred)")

    def task_score(y_true, y_pred, labels=None) -> float:
        return float(function(np.asarray(y_true), np.asarray(y_pred)))

    METRICS[spec] = Metric(spec, lower_is_better, task_type, "label" if task_type == "classification" else "value",
                           task_score, f"the task's own metric ({spec} in the task folder)", per_column=per_column)
    return spec


# ---------------------------------------------------------------------------------------------
# detection from text

#: Phrases (regular expressions, matched case-insensitively on word boundaries) naming each metric.
#: Overlaps are resolved by keeping the longest match, so "root mean squared error" is rmse even
#: though it contains "mean squared error".
ALIASES: dict[str, tuple[str, ...]] = {
    "accuracy": (r"accuracy", r"classification accuracy", r"fraction of correct(?:ly classified)?\w*"),
    "f1": (r"f1", r"f1[- ]score", r"f[- ]score", r"f[- ]measure", r"binary f1"),
    "f1_macro": (r"macro[- ]?(?:averaged )?f1(?:[- ]score)?", r"f1[- ]macro", r"mean f1(?:[- ]score)?"),
    "f1_weighted": (r"weighted[- ]?(?:averaged )?f1(?:[- ]score)?", r"f1[- ]weighted"),
    "balanced_accuracy": (r"balanced[- ]accuracy", r"mean (?:per[- ]class )?recall"),
    "qwk": (r"quadratic(?:ally)? weighted (?:cohen'?s )?kappa", r"qwk"),
    "auc": (
        r"auc", r"roc[- _]auc", r"auc[- ]roc", r"roc curve", r"area under (?:the )?(?:roc )?curve",
        r"area under (?:the )?roc curve", r"area under (?:the )?receiver operating characteristic(?: curve)?",
    ),
    "logloss": (
        r"log[- _]?loss", r"logarithmic loss", r"(?:binary |categorical |multi-?class )?cross[- ]entropy",
        r"multi-?class (?:log[- ]?loss|logarithmic loss)", r"negative log[- ]likelihood",
    ),
    "mse": (r"mse", r"mean squared error", r"mean square error"),
    "rmse": (r"rmse", r"root[- ]mean[- ]squared?[- ]error", r"root of (?:the )?mean squared error"),
    "mae": (r"mae", r"mean absolute error"),
    "r2": (r"r2", r"r\^2", r"r²", r"r-squared", r"coefficient of determination"),
    "rmsle": (r"rmsle", r"root[- ]mean[- ]squared?[- ]log(?:arithmic)?[- ]error",
              r"root[- ]mean[- ]squared?[- ]error (?:between|of) the log(?:arithm)?s?\b(?: of)?"),
    "msle": (r"msle", r"mean[- ]squared?[- ]log(?:arithmic)?[- ]error"),
    "spearman": (r"spearman(?:'s)?(?: rank)?(?: correlation)?(?: coefficient)?", r"spearman'?s? rho"),
    "mape": (r"mape", r"mean absolute percentage error"),
    "mcrmse": (r"mcrmse", r"mean column[- ]?wise root[- ]mean[- ]squared?[- ]error", r"column[- ]?wise (?:mean )?rmse"),
    "mean_column_logloss": (r"mean column[- ]?wise (?:binary )?(?:log[- ]?loss|logarithmic loss|cross[- ]entropy)",),
    "mean_column_auc": (r"mean column[- ]?wise (?:roc[- ]?)?auc(?:[- ]roc)?",
                        r"mean column[- ]?wise area under (?:the )?(?:roc )?curve"),
}
#: MAP@k in a description: "MAP@3", "mean average precision @ 5", "mean average precision at 10".
_MAP_MENTION = re.compile(r"(?<![\w^])(?:map|mean average precision)\s*(?:@|\bat\b)\s*(\d{1,2})\b", re.IGNORECASE)

_ALIAS_RES: list[tuple[str, re.Pattern]] = [
    (name, re.compile(r"(?<![\w^])" + pattern + r"(?![\w^²])", re.IGNORECASE))
    for name, patterns in ALIASES.items()
    for pattern in patterns
]

_LOWER_WORDS = re.compile(
    r"\b(?:lower|smaller|less) (?:(?:score|value)s? )?(?:is|are) better\b|\bminimi[sz]e\b|\bthe lower the better\b",
    re.IGNORECASE,
)
_HIGHER_WORDS = re.compile(
    r"\b(?:higher|larger|greater|bigger) (?:(?:score|value)s? )?(?:is|are) better\b|\bmaximi[sz]e\b|"
    r"\bthe higher the better\b",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^(#{1,6})\s*(.+?)\s*#*\s*$", re.MULTILINE)
_EVAL_HEADING = re.compile(r"evaluat|metric|scor", re.IGNORECASE)


def evaluation_section(text: str) -> str | None:
    """The body of the first markdown section whose heading mentions evaluation/metric/scoring."""
    headings = list(_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        if not _EVAL_HEADING.search(heading.group(2)):
            continue
        level = len(heading.group(1))
        end = len(text)
        for later in headings[i + 1 :]:
            if len(later.group(1)) <= level:
                end = later.start()
                break
        return text[heading.end() : end]
    return None


def find_metric_mentions(text: str) -> list[tuple[int, str]]:
    """(position, metric) of every metric phrase in ``text``, dropping matches inside longer ones."""
    matches = [(m.start(), m.end(), name) for name, rx in _ALIAS_RES for m in rx.finditer(text)]
    matches += [(m.start(), m.end(), map_at_k(int(m.group(1)))) for m in _MAP_MENTION.finditer(text)
                if int(m.group(1)) > 0]
    kept = [
        (start, name)
        for start, end, name in matches
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in matches)
    ]
    return sorted(set(kept))


def detect_direction(text: str) -> bool | None:
    """True for "lower is better", False for "higher is better", None when absent or contradictory."""
    lower, higher = bool(_LOWER_WORDS.search(text)), bool(_HIGHER_WORDS.search(text))
    if lower == higher:
        return None
    return lower


def detect_metric(text: str) -> tuple[str, bool] | None:
    """Metric and lower_is_better named by a task description, or None when it is unclear.

    The evaluation section (if the text has one) is searched first, then the whole text; the
    first metric phrase wins. The direction always comes from the registry, but if the text
    explicitly states the opposite direction the description is treated as ambiguous (None),
    because a wrong direction would make the agent optimise the wrong way.
    """
    section = evaluation_section(text)
    for scope in (section, text):
        if not scope:
            continue
        mentions = find_metric_mentions(scope)
        if not mentions:
            continue
        name = mentions[0][1]
        lower = METRICS[name].lower_is_better
        stated = detect_direction(scope)
        if stated is not None and stated != lower:
            return None
        return name, lower
    return None


def resolve_metric_name(name: str) -> str | None:
    """Registry key for a metric name or alias ("roc_auc", "RMSE", "log loss"...), else None."""
    if str(name).strip() in METRICS:  # a task's own metric keeps its case
        return str(name).strip()
    cleaned = str(name).strip().lower()
    if cleaned in METRICS:
        return cleaned
    at_k = re.fullmatch(r"(?:map|mean[ _]average[ _]precision)\s*(?:@|_at_|[ _]at[ _])\s*([1-9]\d?)", cleaned)
    if at_k:
        return map_at_k(int(at_k.group(1)))
    spaced = re.sub(r"[_\s]+", " ", cleaned)
    for metric, rx in _ALIAS_RES:
        if rx.fullmatch(spaced) or rx.fullmatch(cleaned):
            return metric
    extra = {"roc_auc": "auc", "neg_log_loss": "logloss", "root_mean_squared_error": "rmse",
             "mean_absolute_error": "mae", "mean_squared_error": "mse", "f1_score": "f1"}
    return extra.get(cleaned)


# ---------------------------------------------------------------------------------------------
# scoring a submission against answers


def score(metric: str, y_true, y_pred, labels: Sequence[str] | None = None) -> float:
    """Score aligned arrays with a registry metric; ``labels`` names the columns of a 2-D y_pred."""
    fn = METRICS[metric].fn
    pred = np.asarray(y_pred)
    if METRICS[metric].per_column:
        return fn(np.asarray(y_true), pred)
    if pred.ndim == 2:
        if metric not in ("auc", "logloss") and not TASK_METRIC.match(metric):
            raise ValueError(f"{metric} takes one prediction per row, not class probabilities")
        return fn(np.asarray(y_true), pred, labels)
    return fn(np.asarray(y_true), pred)


def score_submission(
    metric: str,
    answers: pd.DataFrame,
    submission: pd.DataFrame,
    id_column: str,
    target: str,
    target_columns: Sequence[str],
) -> float:
    """Score ``submission`` against ``answers`` after aligning their rows by id.

    ``answers`` holds the id and either the ``target`` column (labels or values) or, for a
    class-probability layout, one-hot ``target_columns``. Raises ValueError if ids differ or
    the values cannot be scored.
    """
    answer_ids = label_keys(answers[id_column])
    sub_ids = label_keys(submission[id_column])
    if set(answer_ids) != set(sub_ids) or len(sub_ids) != len(set(sub_ids)) or len(sub_ids) != len(answer_ids):
        raise ValueError("submission ids do not match the answer ids one to one")
    order = pd.Series(range(len(sub_ids)), index=sub_ids)[answer_ids].to_numpy()
    aligned = submission.iloc[order].reset_index(drop=True)
    columns = list(target_columns)
    if METRICS[metric].per_column:
        missing = [c for c in columns if c not in answers.columns]
        if missing:
            raise ValueError(f"answers lack the target columns {missing}")
        return score(metric, answers[columns].to_numpy(), aligned[columns].to_numpy(dtype=float))
    truth = _answer_labels(answers.reset_index(drop=True), target, target_columns)
    if len(columns) > 1:
        return score(metric, truth, aligned[columns].to_numpy(dtype=float), labels=columns)
    return score(metric, truth, aligned[columns[0]].to_numpy())


def _answer_labels(answers: pd.DataFrame, target: str, target_columns: Sequence[str]) -> np.ndarray:
    if target in answers.columns:
        return answers[target].to_numpy()
    columns = list(target_columns)
    if len(columns) == 1 and columns[0] in answers.columns:
        return answers[columns[0]].to_numpy()
    if len(columns) > 1 and all(c in answers.columns for c in columns):
        onehot = answers[columns].to_numpy(dtype=float)
        return np.array(columns, dtype=object)[onehot.argmax(axis=1)]
    raise ValueError(f"answers have neither the target column {target!r} nor the columns {columns}")
