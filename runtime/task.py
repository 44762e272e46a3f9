"""Load a Kaggle-style task folder, summarise its data, and validate and grade submissions.

A task folder looks like::

    <root>/task.json                 optional metadata (target, id, metric, lower_is_better, kind, classes)
    <root>/public/description.md     what the agent sees (or the files directly in <root>)
    <root>/public/train.csv, test.csv, sample_submission.csv
    <root>/private/answers.csv       hidden answers, used only for grading

Whatever task.json does not say is inferred from the files and the description; every failure is
a ``TaskError`` whose message names the problem and how to fix it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np
import pandas as pd

from prompts.task import METRIC_QUESTION
from runtime import metrics
from runtime.files import SAFE_NAME, atomic_write_text, open_regular
from runtime.parsing import AnswerError, extract_json

DESCRIPTION_FILES = ("description.md", "task_description.txt", "description.txt")
SAMPLE_SUBMISSION_FILES = ("sample_submission.csv", "sampleSubmission.csv", "sample_submission.CSV")
KINDS = ("binary", "multiclass", "regression", "timeseries", "text", "multitarget")
#: What a submission holds. One target: a class label, P(positive class), one probability column per class,
#: a value, or space-separated labels, best first (MAP@k). Several targets (kind "multitarget", one train.csv
#: column per submission column): values, or probabilities of 0/1 targets.
PREDICTIONS = ("label", "probability", "class_probabilities", "value", "ranked_labels", "values", "probabilities")
MULTI_TARGET = ("values", "probabilities")
PROBABILITY_KINDS = ("probability", "class_probabilities", "probabilities")
METADATA_FILE = "task.json"
#: Never listed as data even when the agent sees the task root itself (no public/ folder).
HIDDEN_FILES = (METADATA_FILE, "answers.csv")

_TASK_JSON_FIX = 'add task.json to the task folder with "metric" set to one of: {known}'


class TaskError(ValueError):
    """A task folder cannot be used as is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Task:
    name: str
    root: str
    data_dir: str
    description: str
    data_files: tuple[str, ...]
    train_file: str
    test_file: str
    sample_submission_file: str
    id_column: str
    target: str
    target_columns: tuple[str, ...]
    classes: tuple[str, ...] | None
    metric: str
    lower_is_better: bool
    kind: str
    prediction: str
    answers_path: str | None

    @property
    def targets(self) -> tuple[str, ...]:
        """The train.csv columns to predict: the submission's columns for a multi-target task, else the target."""
        return self.target_columns if self.prediction in MULTI_TARGET else (self.target,)

    def path(self, file_name: str) -> str:
        """Absolute path of a file the agent sees."""
        return os.path.join(self.data_dir, file_name)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        if missing:
            raise TaskError(f"Task dict lacks {sorted(missing)}: pass a dict produced by Task.to_dict()")
        values = {k: v for k, v in d.items() if k in names}
        for key in ("data_files", "target_columns", "classes"):
            if values[key] is not None:
                values[key] = tuple(values[key])
        metrics.resolve_metric_name(values["metric"])  # registers a metric made on first use (map@k)
        if metrics.TASK_METRIC.match(values["metric"]) and values["metric"] not in metrics.METRICS:
            metrics.register_task_metric(values["root"], values["metric"], values["lower_is_better"],
                                         "classification" if values["classes"] else "regression",
                                         per_column=values["prediction"] in MULTI_TARGET)
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# loading


def load_task(path: str | os.PathLike, ask_model: Callable[[str], str] | None = None) -> Task:
    """Read a task folder; ``ask_model(prompt) -> text`` is consulted only when the metric is unclear."""
    root = _check_root(path)
    data_dir = os.path.join(root, "public") if os.path.isdir(os.path.join(root, "public")) else root
    _check_links(root, data_dir)
    meta = _read_metadata(root)
    description = _read_description(root, data_dir)
    train_file = _require_file(data_dir, "train.csv", "add the training data (features and the target column)")
    test_file = _require_file(data_dir, "test.csv", "add the test data (the rows to predict, without the target)")
    sample_file = _find_sample_submission(data_dir)
    train = read_csv(os.path.join(data_dir, train_file))
    test = read_csv(os.path.join(data_dir, test_file))
    sample = read_csv(os.path.join(data_dir, sample_file))

    id_column = _id_column(meta, sample, test, sample_file, test_file)
    _check_ids(test[id_column], sample[id_column], test_file, sample_file)
    target_columns = tuple(c for c in sample.columns if c != id_column)
    if not target_columns:
        raise TaskError(
            f"{sample_file} has only the id column {id_column!r}: add the prediction column(s) after the id"
        )
    multi = len(target_columns) > 1 and all(c in train.columns for c in target_columns)
    target = target_columns[0] if multi else _target(meta, train, test, id_column, target_columns)
    if metrics.TASK_METRIC.match(str(meta.get("metric"))):
        metric, lower_is_better = _task_metric(meta, root, train[target], per_column=multi)
    else:
        metric, lower_is_better = _metric(meta, description, target_columns, ask_model)
    if multi:
        _check_multi_target(metric, target_columns, sample_file)
        classes, kind = None, "multitarget"
        prediction = "probabilities" if metrics.METRICS[metric].needs == "probability" else "values"
    else:
        if metrics.METRICS[metric].per_column and len(target_columns) > 1:
            raise TaskError(f"{metric} scores several targets, one per submission column, but the columns "
                            f"{list(target_columns)} of {sample_file} are not all columns of train.csv: add them "
                            "to train.csv, or set \"metric\" in task.json to a metric of one target")
        classification = metrics.METRICS[metric].task_type == "classification" or len(target_columns) > 1
        classes = _classes(meta, train[target], target_columns, classification)
        kind = _kind(meta, train, target, id_column, classification, classes)
        prediction = _prediction(target_columns, metric, classification, classes)
    answers = os.path.join(root, "private", "answers.csv")
    return Task(
        name=_task_name(meta, root),
        root=root,
        data_dir=data_dir,
        description=description,
        data_files=_data_files(data_dir),
        train_file=train_file,
        test_file=test_file,
        sample_submission_file=sample_file,
        id_column=id_column,
        target=target,
        target_columns=target_columns,
        classes=classes,
        metric=metric,
        lower_is_better=lower_is_better,
        kind=kind,
        prediction=prediction,
        answers_path=answers if os.path.isfile(answers) else None,
    )


def read_csv(path: str) -> pd.DataFrame:
    """Read a CSV, turning any parser failure or an empty table into a TaskError naming the file."""
    name = os.path.basename(path)
    if _is_binary(path):
        raise TaskError(f"Cannot read {path}: it is not a UTF-8 text file (binary data or another encoding). "
                        f"Fix: save {name} as a UTF-8 comma-separated file with a header row")
    try:
        df = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TaskError(f"Cannot read {path}: {reason}. Fix: make {name} a comma-separated file with a header row")
    if df.empty:
        raise TaskError(f"{path} has a header but no rows: add the data rows to {name}")
    return df


def _is_binary(path: str, sniff_bytes: int = 65536) -> bool:
    """True when the start of the file is not UTF-8 text: NUL bytes, or bytes that do not decode."""
    try:
        with open(path, "rb") as f:
            head = f.read(sniff_bytes)
    except OSError:
        return False  # pandas reports it
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return not (len(head) == sniff_bytes and e.start >= len(head) - 3)  # a character cut by the window
    return False


def _check_root(path: str | os.PathLike) -> str:
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise TaskError(f"Task folder {root} does not exist: check the path (it should be the folder holding train.csv)")
    if not os.path.isdir(root):
        raise TaskError(f"Task path {root} is not a directory: pass the folder that holds train.csv, test.csv, ...")
    if not [n for n in os.listdir(root) if not n.startswith(".")]:
        raise TaskError(
            f"Task folder {root} is empty: put description.md, train.csv, test.csv and sample_submission.csv in it"
        )
    return root


def _task_name(meta: dict, root: str) -> str:
    """The name that becomes a workspace folder: task.json's "name", checked like a run id (so it cannot
    point outside the workspace), else the folder's own name with unusual characters replaced."""
    if "name" not in meta:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(root.rstrip(os.sep))).lstrip(".") or "task"
    name = meta["name"]
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise TaskError(f'task.json "name" {name!r} is not a valid task name: it names a folder of the workspace, '
                        f"so use letters, digits, '_', '-' and '.' (no '/', not starting with '.'), e.g. "
                        f'"titanic"; fix "name" in {os.path.join(root, METADATA_FILE)}')
    return name


def _check_links(root: str, data_dir: str) -> None:
    """A link in the data folder must stay inside it: one to the hidden answers (or anywhere else) would be
    copied into every run, where the scripts read it."""
    private = os.path.join(os.path.realpath(root), "private")
    inside = os.path.realpath(data_dir)
    for name in sorted(os.listdir(data_dir)):
        path = os.path.join(data_dir, name)
        if not os.path.islink(path):
            continue
        target = os.path.realpath(path)
        if os.path.commonpath([target, inside]) != inside or os.path.commonpath([target, private]) == private:
            raise TaskError(f"{path} is a link to {target}, outside the task's public data: the agent's scripts "
                            f"would read it. Copy the file into {data_dir} instead, or remove the link")


def _check_ids(test_ids: pd.Series, sample_ids: pd.Series, test_file: str, sample_file: str) -> None:
    """Every test row has its own id, and the sample submission lists exactly the test ids: otherwise no
    submission can be valid, and the run would find out only at the end."""
    for ids, file in ((test_ids, test_file), (sample_ids, sample_file)):
        repeated = ids[ids.duplicated()]
        if len(repeated):
            raise TaskError(f"{file} has {len(repeated)} repeated id(s) in column {ids.name!r} (e.g. "
                            f"{_examples(repeated.unique())}): every row needs its own id; "
                            f"fix {file} in the task folder")
    test_set, sample_set = set(metrics.label_keys(test_ids)), set(metrics.label_keys(sample_ids))
    if test_set != sample_set:
        only_test, only_sample = sorted(test_set - sample_set), sorted(sample_set - test_set)
        raise TaskError(f"The ids of {sample_file} differ from those of {test_file} (column {test_ids.name!r}): "
                        f"{len(only_test)} only in {test_file} (e.g. {_examples(only_test) or '-'}), "
                        f"{len(only_sample)} only in {sample_file} (e.g. {_examples(only_sample) or '-'}). "
                        f"The sample submission must list exactly the test ids; fix one of the two files")


def _read_metadata(root: str) -> dict:
    path = os.path.join(root, METADATA_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TaskError(f"Cannot read {path}: {e}. Fix: make it a JSON object or delete it to infer everything")
    if not isinstance(meta, dict):
        raise TaskError(f"{path} holds a {type(meta).__name__}, not an object: write it as {{\"target\": ..., ...}}")
    return meta


def _read_description(root: str, data_dir: str) -> str:
    for folder in dict.fromkeys((data_dir, root)):
        for name in DESCRIPTION_FILES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read().strip()
                if not text:
                    raise TaskError(f"{path} is empty: describe the task, its target and its evaluation metric")
                return text
    raise TaskError(
        f"Task folder {root} has no description: add description.md (or task_description.txt) to {data_dir} "
        "saying what to predict and how submissions are scored"
    )


def _require_file(data_dir: str, name: str, what: str) -> str:
    if not os.path.isfile(os.path.join(data_dir, name)):
        raise TaskError(f"Task folder {data_dir} has no {name}: {what}, as {name}")
    return name


def _find_sample_submission(data_dir: str) -> str:
    for name in SAMPLE_SUBMISSION_FILES:
        if os.path.isfile(os.path.join(data_dir, name)):
            return name
    candidates = sorted(n for n in os.listdir(data_dir) if re.search(r"sample.?submission.*\.csv$", n, re.I))
    if candidates:
        return candidates[0]
    raise TaskError(
        f"Task folder {data_dir} has no sample_submission.csv: add a sample submission (a header with the id "
        "column then the prediction columns, and one row per test id)"
    )


def _id_column(meta: dict, sample: pd.DataFrame, test: pd.DataFrame, sample_file: str, test_file: str) -> str:
    id_column = str(meta.get("id") or sample.columns[0])
    if id_column not in sample.columns:
        raise TaskError(
            f"The id column {id_column!r} from task.json is not in {sample_file} (columns {list(sample.columns)}): "
            'fix "id" in task.json'
        )
    if id_column not in test.columns:
        raise TaskError(
            f"The sample submission's id column {id_column!r} is not in {test_file} (columns "
            f"{list(test.columns)[:20]}): add it to {test_file} or make it the first column of {sample_file}"
        )
    return id_column


def _target(meta: dict, train: pd.DataFrame, test: pd.DataFrame, id_column: str, target_columns: tuple) -> str:
    if meta.get("target"):
        target = str(meta["target"])
        if target not in train.columns:
            raise TaskError(
                f"The target {target!r} from task.json is not a column of train.csv ({list(train.columns)[:20]}): "
                'fix "target" in task.json'
            )
        return target
    if len(target_columns) == 1 and target_columns[0] in train.columns:
        return target_columns[0]
    absent = [c for c in train.columns if c not in test.columns and c != id_column]
    if len(absent) == 1:
        return absent[0]
    raise TaskError(
        f"Target not found: the submission columns {list(target_columns)} are not in train.csv and the train "
        f"columns absent from test.csv are {absent}. Fix: add task.json with \"target\" naming the train column "
        "to predict"
    )


def _known_metrics() -> str:
    return ", ".join(metrics.METRICS)


def _metric(
    meta: dict, description: str, target_columns: tuple, ask_model: Callable[[str], str] | None
) -> tuple[str, bool]:
    if meta.get("metric"):
        metric = metrics.resolve_metric_name(meta["metric"]) or _metric_from_text(
            meta, description, target_columns, ask_model)
        lower = metrics.METRICS[metric].lower_is_better
        stated = meta.get("lower_is_better")
        if stated is not None and bool(stated) != lower:
            raise TaskError(
                f"task.json says lower_is_better={stated} but {metric} is {'lower' if lower else 'higher'}-is-better: "
                f'fix "lower_is_better" (or remove it) in task.json'
            )
        return metric, lower
    detected = metrics.detect_metric(description)
    if detected:
        return detected
    if ask_model is None:
        raise TaskError(
            "The description names no recognisable evaluation metric and no model was given to ask: "
            + _TASK_JSON_FIX.format(known=_known_metrics())
        )
    return _ask_metric(description, target_columns, ask_model)


def _check_multi_target(metric: str, target_columns: tuple, sample_file: str) -> None:
    """Several targets, each a train.csv column: the metric must score them column by column."""
    if metrics.METRICS[metric].per_column:
        return
    column_wise = [m.name for m in metrics.METRICS.values() if m.per_column]
    raise TaskError(
        f"{sample_file} asks for several targets, {list(target_columns)}, each a column of train.csv, but {metric} "
        f"scores one: set \"metric\" in task.json to one that averages over the columns ({', '.join(column_wise)}) "
        "or bring the metric as code (\"metric\": \"metric.py:score\")")


def _task_metric(meta: dict, root: str, target: pd.Series, per_column: bool = False) -> tuple[str, bool]:
    """task.json "metric": "metric.py:score": the task's own code, with the direction stated beside it."""
    spec, lower = str(meta["metric"]), meta.get("lower_is_better")
    if not isinstance(lower, bool):
        raise TaskError(f'task.json "metric": "{spec}" names the task\'s own metric code; say which way is '
                        f'better with "lower_is_better": true or false beside it')
    if meta.get("kind"):
        classification = meta["kind"] in ("binary", "multiclass")
    else:
        numeric = pd.to_numeric(target.dropna(), errors="coerce")
        classification = bool(numeric.isna().any() or (numeric.nunique() <= 20 and (numeric % 1 == 0).all()))
    try:
        metrics.register_task_metric(root, spec, lower, "classification" if classification else "regression",
                                     per_column=per_column)
    except ValueError as exc:
        raise TaskError(f'task.json "metric": {exc}') from None
    return spec, lower


def _metric_from_text(meta: dict, description: str, target_columns: tuple,
                      ask_model: Callable[[str], str] | None) -> str:
    """A metric name the table does not know (a Kaggle task has whatever metric it has): the description
    says which known metric it is, else the planner model is asked, given the name and the description."""
    named = f"The metric is called {meta['metric']!r}.\n\n{description}"
    detected = metrics.detect_metric(description)
    if detected:
        return detected[0]
    if ask_model is not None:
        try:
            return _ask_metric(named, target_columns, ask_model)[0]
        except TaskError:
            pass
    raise TaskError(
        f"Unknown metric {meta['metric']!r} in task.json, and neither the description nor the model "
        f"{'(none was given) ' if ask_model is None else ''}could tell which known metric it is: set \"metric\" "
        f"to one of: {_known_metrics()}; or bring the metric as code: \"metric\": \"metric.py:score\" with "
        f"\"lower_is_better\", where metric.py in the task folder defines score(y_true, y_pred)")


def _ask_metric(description: str, target_columns: tuple, ask_model: Callable[[str], str]) -> tuple[str, bool]:
    prompt = METRIC_QUESTION.format(
        description=description[:6000],
        known_metrics="\n".join(f"{m.name}: {m.description}" for m in metrics.METRICS.values()),
        target_columns=", ".join(target_columns),
    )
    try:
        answer = ask_model(prompt)
    except Exception as e:  # the model backend's own errors: report them with the way out
        raise TaskError(f"Asking the model for the metric failed ({e}): " + _TASK_JSON_FIX.format(known=_known_metrics())) from e
    try:
        parsed = extract_json(str(answer))
    except AnswerError:
        parsed = None
    name = metrics.resolve_metric_name(parsed.get("metric", "")) if parsed else None
    if name is None:
        raise TaskError(
            f"The model could not name a known metric (answer: {str(answer)[:200]!r}): "
            + _TASK_JSON_FIX.format(known=_known_metrics())
        )
    # The direction is a property of the metric; the model's lower_is_better is not trusted over it.
    return name, metrics.METRICS[name].lower_is_better


def _classes(meta: dict, target: pd.Series, target_columns: tuple, classification: bool) -> tuple[str, ...] | None:
    """Class labels as strings: task.json's, else the probability columns, else the train labels."""
    if meta.get("classes"):
        classes = tuple(str(c) for c in meta["classes"])
        if len(target_columns) > 1 and set(classes) != set(target_columns):
            raise TaskError(
                f"task.json classes {list(classes)} differ from the sample submission columns "
                f"{list(target_columns)}: make \"classes\" list exactly the probability columns"
            )
        return classes
    if len(target_columns) > 1:
        return tuple(target_columns)
    if not classification:
        return None
    return tuple(metrics.sort_labels(metrics.label_keys(target.dropna())))


def _kind(
    meta: dict, train: pd.DataFrame, target: str, id_column: str, classification: bool, classes: tuple | None
) -> str:
    if meta.get("kind"):
        kind, one_target = str(meta["kind"]), [k for k in KINDS if k != "multitarget"]
        if kind not in one_target:  # multitarget follows from the columns, never from task.json
            raise TaskError(f"Unknown kind {kind!r} in task.json for a task with one target: use one of "
                            f"{', '.join(one_target)} or remove it")
        return kind
    features = train.drop(columns=[c for c in (target, id_column) if c in train.columns])
    if not classification and date_columns(features):
        return "timeseries"
    if text_columns(features):
        return "text"
    if not classification:
        return "regression"
    return "binary" if classes is not None and len(classes) <= 2 else "multiclass"


def _prediction(target_columns: tuple, metric: str, classification: bool, classes: tuple | None) -> str:
    if len(target_columns) > 1:
        return "class_probabilities"
    if metrics.METRICS[metric].needs == "ranked_labels":
        return "ranked_labels"
    if not classification:
        return "value"
    binary = classes is not None and len(classes) <= 2
    if metric in ("auc", "logloss") and binary:
        return "probability"
    return "label"


def _data_files(data_dir: str) -> tuple[str, ...]:
    """Top-level files the agent may read; metadata and answers are left out."""
    return tuple(
        sorted(
            name
            for name in os.listdir(data_dir)
            if os.path.isfile(os.path.join(data_dir, name)) and not name.startswith(".") and name not in HIDDEN_FILES
        )
    )


_DATE_RE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?\s*$"
)


def _is_text_dtype(column: pd.Series) -> bool:
    """Object or string dtype (pandas 3 reads text as ``str``, older versions as ``object``)."""
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def date_columns(df: pd.DataFrame, sample: int = 200) -> list[str]:
    """Columns whose values (in a sample) are nearly all date or datetime strings."""
    found = []
    for column in df.columns:
        if not _is_text_dtype(df[column]):
            continue
        values = df[column].dropna().astype(str).head(sample)
        if len(values) and values.map(lambda v: bool(_DATE_RE.match(v))).mean() >= 0.95:
            found.append(column)
    return found


def text_columns(df: pd.DataFrame, sample: int = 500) -> list[str]:
    """Free-text columns: long (median >= 40 characters), multi-word (median >= 6 words), mostly unique."""
    found = []
    for column in df.columns:
        if not _is_text_dtype(df[column]):
            continue
        values = df[column].dropna().astype(str).head(sample)
        if len(values) < 2:
            continue
        if (
            values.str.len().median() >= 40
            and values.str.split().str.len().median() >= 6
            and values.nunique() >= 0.5 * len(values)
        ):
            found.append(column)
    return found


# ---------------------------------------------------------------------------------------------
# summary for prompts


def data_summary(task: Task, max_chars: int = 1500) -> str:
    """Compact description of the data for prompts: shapes, the target, then one line per column."""
    train = read_csv(task.path(task.train_file))
    shapes = [f"{task.train_file} {train.shape[0]}x{train.shape[1]}"]
    for name in (task.test_file, task.sample_submission_file):
        df = read_csv(task.path(name))
        shapes.append(f"{name} {df.shape[0]}x{df.shape[1]}")
    direction = "lower" if task.lower_is_better else "higher"
    lines = [
        "Files: " + ", ".join(shapes),
        f"Task: {task.kind}; target {task.target!r}; metric {task.metric} ({direction} is better); "
        f"submit {task.id_column} + {_short_list(task.target_columns)} as {task.prediction}",
        *(f"Target {target}: {_target_distribution(train[target], task.classes is not None)}"
          for target in task.targets[:3]),
        *([f"... and {len(task.targets) - 3} more targets"] if len(task.targets) > 3 else []),
        "Train columns (dtype, % missing, examples):",
    ]
    features = train.drop(columns=list(task.targets))
    dates, texts = set(date_columns(features)), set(text_columns(features))
    column_lines = [_column_line(train[c], c in dates, c in texts, c in task.targets) for c in train.columns]
    return _fit_lines(lines, column_lines, max_chars)


def _short_list(items: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} columns)" if len(items) > limit else "")


def _target_distribution(target: pd.Series, categorical: bool) -> str:
    missing = target.isna().mean()
    note = f"; {missing:.0%} missing" if missing else ""
    if categorical:
        shares = pd.Series(metrics.label_keys(target.dropna())).value_counts(normalize=True)
        parts = [f"{label} {share:.1%}" for label, share in shares.head(8).items()]
        more = f", ... ({len(shares)} classes)" if len(shares) > 8 else ""
        return ", ".join(parts) + more + note
    values = pd.to_numeric(target, errors="coerce").dropna()
    q = values.quantile([0, 0.5, 1])
    return (
        f"mean {_fmt(values.mean())}, std {_fmt(values.std())}, min {_fmt(q[0])}, "
        f"median {_fmt(q[0.5])}, max {_fmt(q[1])}{note}"
    )


def _column_line(column: pd.Series, is_date: bool, is_text: bool, is_target: bool) -> str:
    tags = [t for t, on in (("target", is_target), ("date", is_date), ("free text", is_text)) if on]
    tag = f" ({', '.join(tags)})" if tags else ""
    examples = [_fmt(v) for v in column.dropna().unique()[:3]]
    return (
        f"- {column.name}{tag}: {column.dtype}, {column.isna().mean():.0%} missing, "
        f"{column.nunique()} unique; e.g. {' | '.join(examples)}"
    )


def _fmt(value: Any, width: int = 24) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _fit_lines(head: list[str], columns: list[str], max_chars: int) -> str:
    """Join the header and as many column lines as fit in ``max_chars``, noting how many were cut."""
    out = list(head)
    for i, line in enumerate(columns):
        remaining = len(columns) - i
        note = f"... and {remaining} more columns"
        if len("\n".join(out + [line])) + (len(note) + 1 if remaining > 1 else 0) > max_chars:
            out.append(note)
            break
        out.append(line)
    text = "\n".join(out)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


# ---------------------------------------------------------------------------------------------
# validation and grading


def validate_submission(task: Task, submission_path: str | os.PathLike) -> list[str]:
    """Problems that would make the submission unscorable or wrongly scored; [] means valid."""
    path = os.fspath(submission_path)
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        return [f"Submission file {path} is a link or special file: write the CSV itself, as a regular file"]
    if not os.path.isfile(path):
        return [f"Submission file {path} does not exist: write the predictions to it"]
    sample = read_csv(task.path(task.sample_submission_file))
    test = read_csv(task.path(task.test_file))
    limit = largest_submission_bytes(task, len(test), len(sample.columns))
    size = os.path.getsize(path)
    if size > limit:
        return [f"Submission file {path} is {size / 1e6:.1f} MB, far more than {len(test)} rows of "
                f"{len(sample.columns)} columns need (at most {limit / 1e6:.1f} MB): write one row per test id "
                f"with the columns of {task.sample_submission_file}, nothing else"]
    try:
        with open_regular(path) as f:
            submission = pd.read_csv(f, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        return [f"Submission file {path} cannot be read as CSV: {str(e).strip() or type(e).__name__}"]

    problems = []
    expected = list(sample.columns)
    if list(submission.columns) != expected:
        problems.append(f"Columns are {list(submission.columns)[:20]} but must be exactly {expected} (in this order)")
    if len(submission) != len(test):
        problems.append(f"Has {len(submission)} rows but must have {len(test)} (one per {task.test_file} row)")
    if task.id_column in submission.columns:
        problems += _id_problems(submission[task.id_column], test[task.id_column], task.id_column)
    for column in (c for c in task.target_columns if c in submission.columns):
        problems += _value_problems(task, submission[column])
    return problems


def bring_probabilities_into_range(task: Task, submission_path: str | os.PathLike) -> bool:
    """Rewrite a submission's probabilities outside [0, 1] the way the metric reads them; True if rewritten.

    The metric scores a script's validation predictions after the same mapping (clipped and row-normalised
    class probabilities, clipped binary ones, ranks for AUC), so the rewritten file is scored as its
    validation predictions were, where refusing it would throw away a solution the board should have.
    Only finite numbers are mapped; every other problem is left to `validate_submission`.
    """
    path = os.fspath(submission_path)
    if task.prediction not in PROBABILITY_KINDS or not os.path.isfile(path):
        return False
    sample = read_csv(task.path(task.sample_submission_file))
    if os.path.getsize(path) > largest_submission_bytes(task, len(sample), len(sample.columns)):
        return False  # never parsed by the agent: validate_submission names the problem
    try:
        with open_regular(path) as f:
            frame = pd.read_csv(f, dtype=str, keep_default_na=False)  # ids written back exactly as read
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError):
        return False
    columns = list(task.target_columns)
    if not set(columns) <= set(frame.columns) or frame.empty:
        return False
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or ((values >= 0) & (values <= 1)).all():
        return False
    frame[columns] = _as_the_metric_reads(values, task)
    atomic_write_text(submission_path, frame.to_csv(index=False))
    return True


def _as_the_metric_reads(values: np.ndarray, task: Task) -> np.ndarray:
    if task.prediction == "class_probabilities":  # every metric clips and row-normalises them (AUC too)
        clipped = np.clip(values, metrics.EPS, 1.0)
        return clipped / clipped.sum(axis=1, keepdims=True)
    if metrics.METRICS[task.metric].rank_based:  # order only: rescale each column to [0, 1]
        low, high = values.min(axis=0), values.max(axis=0)
        return np.where(high > low, (values - low) / np.where(high > low, high - low, 1.0), 0.5)
    return np.clip(values, 0.0, 1.0)


def largest_submission_bytes(task: Task, rows: int, columns: int) -> int:
    """The size a valid submission can reach: the sample submission (the ids) plus 32 bytes for every
    prediction cell (a float printed in full is 20-25), plus 1 MB of slack. Checked before reading, so that
    a script's 2 GB file is never parsed by the agent, whose memory is not bounded like a script's."""
    return os.path.getsize(task.path(task.sample_submission_file)) + rows * columns * 32 + 1_000_000


def _id_problems(got: pd.Series, expected: pd.Series, id_column: str) -> list[str]:
    got_keys, expected_keys = metrics.label_keys(got), metrics.label_keys(expected)
    problems = []
    duplicated = pd.Series(got_keys)[pd.Series(got_keys).duplicated()].unique()
    if len(duplicated):
        problems.append(f"{len(duplicated)} duplicated {id_column} values, e.g. {_examples(duplicated)}")
    missing = sorted(set(expected_keys) - set(got_keys))
    if missing:
        problems.append(f"{len(missing)} test {id_column} values are missing, e.g. {_examples(missing)}")
    extra = sorted(set(got_keys) - set(expected_keys))
    if extra:
        problems.append(f"{len(extra)} {id_column} values are not in the test set, e.g. {_examples(extra)}")
    return problems


def _value_problems(task: Task, column: pd.Series) -> list[str]:
    name = column.name
    if task.prediction == "ranked_labels":
        return _ranked_problems(task, column)
    if task.prediction == "label":
        if column.isna().any():
            return [f"{name} has {int(column.isna().sum())} empty (NaN) cells"]
        if task.classes:
            unknown = sorted(set(metrics.label_keys(column)) - set(task.classes))
            if unknown:
                return [f"{name} has labels outside the classes {list(task.classes)}: e.g. {_examples(unknown)}"]
        return []
    values = pd.to_numeric(column, errors="coerce")
    problems = []
    non_numeric = int((values.isna() & column.notna()).sum())
    if non_numeric:
        problems.append(f"{name} has {non_numeric} non-numeric cells, e.g. {_examples(column[values.isna() & column.notna()].unique())}")
    if column.isna().any():
        problems.append(f"{name} has {int(column.isna().sum())} empty (NaN) cells")
    finite = values.dropna()
    if np.isinf(finite).any():
        problems.append(f"{name} has {int(np.isinf(finite).sum())} infinite cells")
    finite = finite[np.isfinite(finite)]
    if task.prediction in PROBABILITY_KINDS and ((finite < 0) | (finite > 1)).any():
        bad = finite[(finite < 0) | (finite > 1)]
        problems.append(f"{name} has {len(bad)} probabilities outside [0, 1], e.g. {_examples(bad.unique())}")
    if metrics.METRICS[task.metric].nonnegative and (finite < 0).any():
        problems.append(f"{name} has {int((finite < 0).sum())} negative values, which {task.metric} cannot score")
    return problems


def _ranked_problems(task: Task, column: pd.Series) -> list[str]:
    """Cells of space-separated labels, best first: none empty, every label a class, at most k of them."""
    at_k = metrics.MAP_AT_K.match(task.metric)
    name, k = column.name, int(at_k["k"]) if at_k else None
    cells = [metrics.ranked(cell) for cell in column]
    problems = []
    empty = sum(1 for labels in cells if not labels)
    if empty:
        problems.append(f"{name} has {empty} empty cells: give each row its labels, best first, separated by spaces")
    if task.classes:
        unknown = sorted({label for labels in cells for label in labels} - set(task.classes))
        if unknown:
            problems.append(f"{name} has labels outside the classes: e.g. {_examples(unknown)}")
    if k is not None and any(len(labels) > k for labels in cells):
        problems.append(f"{name} has cells with more than {k} labels: {task.metric} reads the first {k}, give at most {k}")
    return problems


def _examples(values, limit: int = 3) -> str:
    return ", ".join(_fmt(v) for v in list(values)[:limit])


@dataclass
class Grade:
    valid: bool
    problems: list[str]
    score: float | None
    metric: str
    lower_is_better: bool


def grade_submission(task: Task, submission_path: str | os.PathLike, answers_path: str | None = None) -> Grade:
    """Validate, then score against the hidden answers when they exist (score None otherwise)."""
    problems = validate_submission(task, submission_path)

    def grade(score: float | None = None) -> Grade:
        return Grade(not problems, problems, score, task.metric, task.lower_is_better)

    answers_path = answers_path or task.answers_path
    if problems or not answers_path or not os.path.isfile(answers_path):
        return grade()
    answers = read_csv(answers_path)
    submission = pd.read_csv(os.fspath(submission_path), low_memory=False)
    try:
        value = metrics.score_submission(
            task.metric, answers, submission, task.id_column, task.target, task.target_columns
        )
    except (ValueError, KeyError) as e:
        problems.append(f"Cannot score with {task.metric}: {e}")
        return grade()
    if not math.isfinite(value):
        problems.append(f"{task.metric} is not finite ({value})")
        return grade()
    return grade(value)
