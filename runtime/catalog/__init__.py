"""A curated, tested, offline catalog of model approaches for the search step.

Each approach has metadata in ``catalog.json`` and an example script ``example_<key>.py`` next to
this file. A template is a complete, runnable script whose only task-specific part is the block
between ``# --- task config ---`` and ``# --- end task config ---`` (constants such as TARGET, ID,
PREDICTION, CLASSES, ... and a ``score(y_true, pred)`` function). ``render_example`` rewrites that
block for a concrete task, so the rest of the code stays plain, readable Python.

Every rendered script follows the contract of all generated scripts: it reads ``./input/train.csv``,
validates on 20% of the training rows (stratified at random with random_state=42, or the most recent 20%
by date for time series), prints ``Final Validation Performance: <float>`` once, and writes
``./val_predictions.csv`` in its working folder: a ``row`` column, the position of each validation row in
``./input/train.csv`` (its pandas index after ``pd.read_csv``, kept through dropna and the split, never
reset), then the columns TARGET_COLUMNS holding exactly what a submission would hold for those rows:
the original class labels (PREDICTION "label"), P(CLASSES[1]) ("probability"), one probability column per
class in TARGET_COLUMNS order ("class_probabilities") or the values ("value"). The agent recomputes the
metric from that file against train.csv's target, so it must agree with the printed score. The script
reads ``./input/test.csv`` only when ``SUBMIT`` is true, and then also writes ``./submission.csv`` (the id
column, then the same prediction columns) in the sample submission's layout.

The config also carries the training choices the metric calls for: LOG_TARGET (log-error metrics such
as rmsle: fit log1p of the target, predict expm1 clipped at 0) and BALANCE_CLASSES (f1, macro and
balanced label metrics: balanced class weights). Label metrics always get the most probable class.

The templates repeat each other's helper functions on purpose: each is shown alone to a small model as
the pattern to adapt, and each must run alone in the sandbox, so none may import a shared module.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from runtime import metrics
from runtime.task import KINDS, date_columns, text_columns

CATALOG_DIR = Path(__file__).resolve().parent
CATALOG_FILE = CATALOG_DIR / "catalog.json"
#: Approaches built for one special kind: they come before the general ones when the task has it.
SPECIAL_KINDS = ("text", "timeseries")

_CONFIG_BLOCK = re.compile(r"^# --- task config ---\n(?P<body>.*?)^# --- end task config ---\n", re.S | re.M)
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*) = (?P<value>.*?)(?P<comment>  # .*)?$")
_INSPECT_ROWS = 5000


@dataclass(frozen=True)
class Approach:
    key: str
    title: str
    kinds: tuple[str, ...]
    description: str
    template_file: str

    @property
    def template_path(self) -> Path:
        return CATALOG_DIR / self.template_file


# ---------------------------------------------------------------------------------------------
# catalog


def load_catalog() -> list[Approach]:
    """All approaches, in catalog order (the general prior: best first)."""
    return list(_load_catalog())


@lru_cache(maxsize=1)
def _load_catalog() -> tuple[Approach, ...]:
    with open(CATALOG_FILE, encoding="utf-8") as f:
        entries = json.load(f)
    approaches = []
    for entry in entries:
        approach = Approach(
            key=str(entry["key"]),
            title=str(entry["title"]),
            kinds=tuple(entry["kinds"]),
            description=str(entry["description"]),
            template_file=str(entry["template_file"]),
        )
        unknown = set(approach.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"catalog entry {approach.key!r} has unknown kinds {sorted(unknown)}")
        if not approach.template_path.is_file():
            raise FileNotFoundError(f"catalog entry {approach.key!r}: template {approach.template_path} is missing")
        approaches.append(approach)
    keys = [a.key for a in approaches]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate approach keys in {CATALOG_FILE}: {keys}")
    return tuple(approaches)


def get_approach(key: str) -> Approach:
    for approach in _load_catalog():
        if approach.key == key:
            return approach
    raise KeyError(f"no approach {key!r} in the catalog; known: {[a.key for a in _load_catalog()]}")


def template_text(approach: Approach) -> str:
    """The raw example script (configured for one of the bundled example tasks)."""
    return approach.template_path.read_text(encoding="utf-8")


def applicable(task: Any) -> list[Approach]:
    """Approaches that suit the task, best prior first.

    A task is also treated as a text task when its training data has free-text columns (the
    tweets task is ``binary`` with a text column). Specialists (text: TF-IDF; time series: calendar
    features) come first, then the general approaches in catalog order. The time-series specialist
    needs a date column.
    """
    if task.kind == "multitarget":  # several targets at once: only approaches written for that
        return [a for a in _load_catalog() if "multitarget" in a.kinds]
    columns = inspect_columns(task)
    kinds = {task.kind}
    if columns["text"] or task.kind == "text":
        kinds.add("text")
    found = [a for a in _load_catalog() if kinds & set(a.kinds)]
    if not columns["date"]:
        found = [a for a in found if a.key != "timeseries_calendar_gbm"]
    special = [a for a in found if is_specialist(a)]
    return special + [a for a in found if a not in special]


def is_specialist(approach: Approach) -> bool:
    """Made for one kind of task only (text or time series), not a general tabular model."""
    return set(approach.kinds) <= set(SPECIAL_KINDS)


# ---------------------------------------------------------------------------------------------
# rendering


def render_example(approach: Approach, task: Any, *, submit: bool = False) -> str:
    """The approach's example script configured for ``task`` (a complete, runnable solution.py)."""
    template = template_text(approach)
    match = _CONFIG_BLOCK.search(template)
    if not match:
        raise ValueError(f"{approach.template_file} has no '# --- task config ---' block")
    values = task_config(task, submit=submit)
    lines = ["# --- task config ---"]
    for line in match.group("body").splitlines():
        assignment = _ASSIGNMENT.match(line)
        if not assignment:
            continue
        name = assignment.group("name")
        if name not in values:
            raise KeyError(f"{approach.template_file} declares {name}, which the catalog cannot fill in")
        lines.append(f"{name} = {_literal(values[name])}{assignment.group('comment') or ''}")
    lines += ["", _score_function(task, values["PREDICTION"]), "# --- end task config ---", ""]
    return template[: match.start()] + "\n".join(lines) + template[match.end():]


def task_config(task: Any, *, submit: bool = False) -> dict[str, Any]:
    """Values for every config constant a template may declare."""
    columns = inspect_columns(task)
    prediction = _prediction(task)
    dates = list(columns["date"])
    texts = list(columns["text"])
    if task.kind == "text" and not texts and columns["longest_string"]:
        texts = [columns["longest_string"]]
    top_k = 1
    if prediction == "ranked_labels":
        at_k = metrics.MAP_AT_K.match(task.metric)
        if at_k is None:
            raise ValueError(f"ranked-label predictions are scored by map@k, not by {task.metric!r}")
        top_k = int(at_k["k"])
    return {
        "TARGET": task.target,
        "ID": task.id_column,
        "PREDICTION": prediction,
        "CLASSES": None if prediction in ("value", "values", "probabilities") else _classes(task, prediction),
        "TOP_K": top_k,
        "TARGET_COLUMNS": list(_target_columns(task)),
        "DATE_COLUMNS": dates,
        "DATE_COLUMN": dates[0] if dates else None,
        "TEXT_COLUMNS": texts,
        "TIME_SPLIT": task.kind == "timeseries" and bool(dates),
        "LOG_TARGET": prediction in ("value", "values") and log_error_metric(task.metric),
        "BALANCE_CLASSES": prediction not in ("value", "values") and balanced_metric(task.metric),
        "SUBMIT": bool(submit),
    }


def log_error_metric(metric: str) -> bool:
    """A regression metric on log1p of the values (rmsle, msle): the model should learn log1p(target)."""
    name = metrics.resolve_metric_name(metric)
    if name is None:
        return False
    spec = metrics.METRICS[name]
    return spec.task_type == "regression" and (name.endswith("sle") or "log" in spec.description.lower())


def balanced_metric(metric: str) -> bool:
    """A label metric that weighs the classes equally or rewards the rare positive class (f1, macro, balanced).

    Training with balanced class weights trades some accuracy on the majority class for recall on the others,
    which is what these metrics pay for.
    """
    name = metrics.resolve_metric_name(metric)
    if name is None:
        return False
    spec = metrics.METRICS[name]
    words = f"{name} {spec.description}".lower()
    return spec.needs == "label" and (name == "f1" or "macro" in words or "balanced" in words)


#: metric -> (docstring, expression over y_true and pred). Classes are indices into CLASSES.
_SCORES = {
    "accuracy": ("Accuracy of the predicted class", "metrics.accuracy_score(y_true, pred)"),
    "f1": ("F1 of the positive class CLASSES[1]", "metrics.f1_score(y_true, pred)"),
    "f1_macro": ("Macro-averaged F1 over the classes", 'metrics.f1_score(y_true, pred, average="macro")'),
    "f1_weighted": ("Support-weighted F1 over the classes", 'metrics.f1_score(y_true, pred, average="weighted")'),
    "balanced_accuracy": ("Balanced accuracy (mean per-class recall)", "metrics.balanced_accuracy_score(y_true, pred)"),
    "qwk": ("Quadratic weighted kappa", 'metrics.cohen_kappa_score(y_true, pred, weights="quadratic")'),
    "auc": ("ROC AUC of P(CLASSES[1])", "metrics.roc_auc_score(y_true, pred)"),
    "logloss": ("Log loss of the class probabilities", "metrics.log_loss(y_true, pred, labels=list(range(len(CLASSES))))"),
    "mse": ("Mean squared error", "metrics.mean_squared_error(y_true, pred)"),
    "rmse": ("Root mean squared error", "metrics.root_mean_squared_error(y_true, pred)"),
    "mae": ("Mean absolute error", "metrics.mean_absolute_error(y_true, pred)"),
    "r2": ("R squared", "metrics.r2_score(y_true, pred)"),
    "rmsle": ("Root mean squared log error", "metrics.root_mean_squared_log_error(y_true, np.clip(pred, 0, None))"),
    "msle": ("Mean squared log error", "metrics.mean_squared_log_error(y_true, np.clip(pred, 0, None))"),
    "spearman": ("Spearman rank correlation", 'pd.Series(y_true).corr(pd.Series(pred), method="spearman")'),
    "mape": ("Mean absolute percentage error", "metrics.mean_absolute_percentage_error(y_true, pred)"),
    # several targets: y_true and pred hold one column per target
    "mcrmse": ("Mean column-wise root mean squared error", "np.mean(np.sqrt(np.mean((y_true - pred) ** 2, axis=0)))"),
    "mean_column_logloss": ("Mean column-wise log loss", "np.mean([metrics.log_loss(y_true[:, j], pred[:, j], "
                            "labels=[0, 1]) for j in range(y_true.shape[1])])"),
    "mean_column_auc": ("Mean column-wise ROC AUC", "np.mean([metrics.roc_auc_score(y_true[:, j], pred[:, j]) "
                        "for j in range(y_true.shape[1])])"),
}
#: MAP@k over class indices: y_true one index per row, pred the TOP_K indices of each row, best first.
_MAP_SCORE = ("Mean average precision at TOP_K",
              "np.mean([1 / (list(row).index(t) + 1) if t in list(row) else 0.0 for t, row in zip(y_true, pred)])")
_LABEL_METRICS = ("accuracy", "f1", "f1_macro", "f1_weighted", "balanced_accuracy", "qwk")


def _task_score_function(task: Any) -> str:
    """The task's own metric, imported from the run's input folder; class indices go back to labels."""
    match = metrics.TASK_METRIC.match(task.metric)
    if match is None:
        raise ValueError(f"{task.metric!r} is not a task's own metric (FILE.py:FUNCTION)")
    function = match["function"]
    return (
        "def score(y_true, pred):\n"
        f'    """The task\'s own metric, {task.metric} ({"lower" if task.lower_is_better else "higher"} is better)."""\n'
        "    import sys\n"
        '    sys.path.insert(0, "./input")\n'
        f"    from {metrics.TASK_METRIC_MODULE} import {function} as task_metric\n"
        + ("    if CLASSES is not None:  # class indices -> the labels the metric scores\n"
           "        y_true = np.asarray(CLASSES, dtype=object)[np.asarray(y_true)]\n"
           '        pred = np.asarray(CLASSES, dtype=object)[np.asarray(pred)] if PREDICTION == "label" else pred\n'
           if getattr(task, "classes", None) else "")
        + "    return task_metric(y_true, pred)"
    )


def _score_function(task: Any, prediction: str) -> str:
    if metrics.TASK_METRIC.match(task.metric):
        return _task_score_function(task)
    name = metrics.resolve_metric_name(task.metric)
    if name is None or (name not in _SCORES and not metrics.MAP_AT_K.match(name)):
        raise ValueError(f"the catalog cannot score metric {task.metric!r}; known: {sorted(_SCORES)} and map@k")
    doc, expression = _SCORES[name] if name in _SCORES else _MAP_SCORE
    if name == "auc" and prediction == "class_probabilities":
        doc = "One-vs-rest ROC AUC of the class probabilities"
        expression = 'metrics.roc_auc_score(y_true, pred, multi_class="ovr", labels=list(range(len(CLASSES))))'
    if name in _LABEL_METRICS and prediction == "probability":
        expression = expression.replace("(y_true, pred", "(y_true, (pred > 0.5).astype(int)")
    elif name in _LABEL_METRICS and prediction == "class_probabilities":
        expression = expression.replace("(y_true, pred", "(y_true, pred.argmax(axis=1)")
    lower = bool(getattr(task, "lower_is_better", metrics.METRICS[name].lower_is_better))
    return (
        "def score(y_true, pred):\n"
        f'    """{doc} ({"lower" if lower else "higher"} is better)."""\n'
        f"    return {expression}"
    )


def _literal(value: Any) -> str:
    """A Python literal with double-quoted strings (the templates' style)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as a literal")
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return _literal(value.item())
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a literal")


# ---------------------------------------------------------------------------------------------
# task facts


def _train_path(task: Any) -> str:
    path = os.path.join(task.data_dir, task.train_file)
    if not os.path.isfile(path) and os.path.isfile(os.path.join(task.data_dir, "public", task.train_file)):
        path = os.path.join(task.data_dir, "public", task.train_file)
    return path


def inspect_columns(task: Any) -> dict[str, Any]:
    """Date and free-text feature columns of the training data (the target and id excluded)."""
    path = _train_path(task)
    return _inspect(path, os.path.getmtime(path), tuple(getattr(task, "targets", (task.target,))), task.id_column)


@lru_cache(maxsize=32)
def _inspect(path: str, mtime: float, targets: tuple[str, ...], id_column: str) -> dict[str, Any]:
    head = pd.read_csv(path, nrows=_INSPECT_ROWS, low_memory=False)
    features = head.drop(columns=[c for c in (*targets, id_column) if c in head.columns])
    dates = date_columns(features)
    texts = [c for c in text_columns(features) if c not in dates]
    strings = [
        c for c in features.columns
        if c not in dates and not pd.api.types.is_numeric_dtype(features[c]) and features[c].notna().any()
    ]
    longest = max(strings, key=lambda c: features[c].dropna().astype(str).str.len().mean(), default=None)
    return {"date": tuple(dates), "text": tuple(texts), "longest_string": longest}


@lru_cache(maxsize=32)
def _target_values(path: str, mtime: float, target: str) -> tuple:
    """Distinct training labels as Python scalars, in the order of their label keys."""
    values = pd.read_csv(path, usecols=[target], low_memory=False)[target].dropna().unique()
    scalars = [v.item() if hasattr(v, "item") else v for v in values]
    return tuple(scalars)


def _target_columns(task: Any) -> tuple[str, ...]:
    columns = tuple(getattr(task, "target_columns", None) or ())
    return columns or (task.target,)


def _prediction(task: Any) -> str:
    prediction = getattr(task, "prediction", None)
    if prediction:
        return prediction
    if len(_target_columns(task)) > 1:
        return "class_probabilities"
    name = metrics.resolve_metric_name(task.metric)
    needs = metrics.METRICS[name].needs if name else "value"
    if needs == "probability":
        return "probability" if task.kind == "binary" else "class_probabilities"
    return needs


def _classes(task: Any, prediction: str) -> list:
    """Class labels with their training-data types, in the order the script needs.

    class_probabilities: the order of the submission's probability columns. Binary: the positive
    class (the one a probability refers to, as the grader decides) last. Otherwise sorted labels.
    """
    path = _train_path(task)
    values = _target_values(path, os.path.getmtime(path), task.target)
    by_key = dict(zip(metrics.label_keys(list(values)), values))
    if prediction == "class_probabilities":
        order = [str(k) for k in metrics.label_keys(list(_target_columns(task)))]
    else:
        order = metrics.sort_labels(list(by_key))
        if len(order) == 2:
            positive = metrics.positive_label(order)
            order = [k for k in order if k != positive] + [positive]
    return [by_key.get(key, key) for key in order]
