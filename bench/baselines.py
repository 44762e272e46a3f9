"""Non-LLM reference systems for the benchmark: ``trivial``, ``lgbm_default`` and ``flaml``.

Run one on a task folder (or its ``public/`` folder) and write a submission::

    python -m bench.baselines SYSTEM TASK_OR_PUBLIC_DIR OUT.csv --budget SECONDS --seed N

Only the public files are read (train, test, sample submission, description and task.json's metadata
through ``runtime.task.load_task``). The last line on stdout is one JSON object:
``{"system", "wall_s", "validation_score", "notes"}`` (plus ``"error"`` when the run failed; exit code 2).

- ``trivial``: class priors (or the majority class; all-positive for binary F1), or the constant that
  is optimal for the regression metric (mean; median for MAE; ...).
- ``lgbm_default``: LightGBM, 600 trees, learning rate 0.05, 31 leaves, row/column subsample 0.8 with
  bagging every iteration, on the features of :class:`Features` (the recipe of examples/baselines.json).
- ``flaml``: FLAML AutoML on the same features with ``time_budget`` from ``--budget`` (optional
  dependency, see :data:`FLAML_INSTALL`).

``validation_score`` is measured on train only: an 80/20 holdout (the latest 20 % for time series) for
``trivial`` and ``lgbm_default``, FLAML's own best validation loss converted to the metric for ``flaml``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import traceback
import warnings
from typing import Callable

import numpy as np
import pandas as pd

from runtime import metrics
from runtime.files import atomic_write_text
from runtime.task import Task, TaskError, date_columns, load_task, read_csv, text_columns, validate_submission

SYSTEMS = ("trivial", "lgbm_default", "flaml")
#: The smallest install that makes FLAML's AutoML importable here: flaml itself needs only numpy, its
#: AutoML imports xgboost unconditionally, and lightgbm, scikit-learn, scipy and pandas are project
#: dependencies already. ``flaml[automl]`` would pull the CUDA build of xgboost (plus NCCL) instead.
FLAML_INSTALL = "pip install 'flaml>=2.3' 'xgboost-cpu>=2.1'"
LGBM_PARAMS = dict(n_estimators=600, learning_rate=0.05, num_leaves=31, subsample=0.8, subsample_freq=1,
                   colsample_bytree=0.8, verbose=-1)
DATE_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour")
SVD_COMPONENTS = 100
HOLDOUT = 0.2
#: FLAML metric names of the registry's metrics; None: scored by a custom function over runtime.metrics.
FLAML_METRICS: dict[str, str | None] = {
    "accuracy": "accuracy", "f1": "f1", "f1_macro": "macro_f1", "qwk": None, "auc": "roc_auc",
    "logloss": "log_loss", "mse": "mse", "rmse": "rmse", "mae": "mae", "r2": "r2", "rmsle": None,
    "mape": "mape",
}


class BaselineError(RuntimeError):
    """A reference system cannot run; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# task, data and the conversion between model outputs and submissions


def load(path: str | os.PathLike) -> Task:
    """The task of a task folder, or of a ``public/`` folder (its parent's task.json is used if present)."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path.rstrip(os.sep))
    if os.path.basename(path.rstrip(os.sep)) == "public" and os.path.isfile(os.path.join(parent, "task.json")):
        return load_task(parent)
    return load_task(path)


def read_public(task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train rows with a target, and the test rows."""
    train = read_csv(task.path(task.train_file))
    return train.dropna(subset=[task.target]).reset_index(drop=True), read_csv(task.path(task.test_file))


def is_classification(task: Task) -> bool:
    """True when the task predicts classes (labels or probabilities)."""
    return task.classes is not None


def encode_target(task: Task, values: pd.Series) -> np.ndarray:
    """Class index in ``task.classes`` (classification) or float value (regression)."""
    if not is_classification(task):
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=float)
    index = {label: i for i, label in enumerate(task.classes)}
    keys = metrics.label_keys(values)
    unknown = sorted(set(keys) - set(index))
    if unknown:
        raise BaselineError(f"train labels {unknown[:5]} are not among the task's classes {list(task.classes)}")
    return np.array([index[k] for k in keys], dtype=int)


def positive_index(task: Task) -> int:
    """Index in ``task.classes`` of the class a binary probability refers to."""
    return task.classes.index(metrics.positive_label(task.classes))


def submission_values(task: Task, output: np.ndarray) -> np.ndarray:
    """The prediction columns (rows x target columns) from class probabilities (rows x classes) or values."""
    if task.prediction == "value":
        values = np.asarray(output, dtype=float)
        return (np.clip(values, 0, None) if metrics.METRICS[task.metric].nonnegative else values).reshape(-1, 1)
    if task.prediction == "label":
        return np.asarray(task.classes, dtype=object)[np.asarray(output).argmax(axis=1)].reshape(-1, 1)
    if task.prediction == "probability":
        return np.asarray(output)[:, [positive_index(task)]]
    if task.prediction == "ranked_labels":  # the k most probable classes, best first
        k = int(metrics.MAP_AT_K.match(task.metric)["k"])
        top = np.argsort(-np.asarray(output), axis=1, kind="stable")[:, :k]
        return np.array([" ".join(task.classes[i] for i in row) for row in top], dtype=object).reshape(-1, 1)
    keys = metrics.label_keys(list(task.target_columns))
    return np.asarray(output)[:, [task.classes.index(k) for k in keys]]


def score_output(task: Task, y_true: pd.Series, output: np.ndarray) -> float:
    """The task's metric of a model output against true targets (the way the submission is graded)."""
    values = submission_values(task, output)
    if values.shape[1] > 1:
        return metrics.score(task.metric, y_true.to_numpy(), values.astype(float), labels=list(task.target_columns))
    return metrics.score(task.metric, y_true.to_numpy(), values[:, 0])


def write_submission(task: Task, test: pd.DataFrame, output: np.ndarray, path: str) -> list[str]:
    """Write the submission in the sample submission's column order; returns validation problems."""
    submission = pd.DataFrame({task.id_column: test[task.id_column].to_numpy()})
    values = submission_values(task, output)
    for i, column in enumerate(task.target_columns):
        submission[column] = values[:, i]
    sample_columns = list(read_csv(task.path(task.sample_submission_file)).columns)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, submission[sample_columns].to_csv(index=False))
    return validate_submission(task, path)


def holdout_split(task: Task, train: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80/20 split: the latest 20 % by the first date column for time series, else random (stratified)."""
    ordered = time_ordered(task, train)
    if ordered is not None:
        cut = int(len(ordered) * (1 - HOLDOUT))
        return ordered.iloc[:cut], ordered.iloc[cut:]
    from sklearn.model_selection import train_test_split

    y = encode_target(task, train[task.target]) if is_classification(task) else None
    stratify = y if y is not None and np.bincount(y).min(initial=2) >= 2 and len(set(y)) > 1 else None
    return train_test_split(train, test_size=HOLDOUT, random_state=seed, stratify=stratify)


def time_ordered(task: Task, train: pd.DataFrame) -> pd.DataFrame | None:
    """A time series' rows sorted by its first date column; None for other tasks."""
    dates = date_columns(train.drop(columns=[task.target]))
    if task.kind != "timeseries" or not dates:
        return None
    order = np.argsort(pd.to_datetime(train[dates[0]], errors="coerce", utc=True).to_numpy(), kind="stable")
    return train.iloc[order].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# features shared by lgbm_default and flaml


class Features:
    """Numbers as they are; date columns -> calendar parts; free text -> TF-IDF(1-2) -> SVD + length;
    other strings -> pandas category, or dropped when nearly unique (names, ids, tickets)."""

    def __init__(self, task: Task, seed: int = 0):
        self.task, self.seed = task, seed

    def fit(self, df: pd.DataFrame) -> "Features":
        """Learn the column roles, category levels and text projections from training rows."""
        X = self._inputs(df)
        self.dates = date_columns(X)
        self.texts = [c for c in text_columns(X) if c not in self.dates]
        strings = [c for c in X.columns if c not in self.dates + self.texts and not _is_numeric(X[c])]
        self.levels = {c: sorted(X[c].dropna().astype(str).unique()) for c in strings if not _nearly_unique(X[c])}
        self.dropped = [c for c in strings if c not in self.levels]
        self.text_models = {c: _fit_text(X[c], self.seed) for c in self.texts}
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """The model matrix of any rows (train or test) with the fitted roles."""
        X = self._inputs(df).drop(columns=self.dropped)
        parts = [X.drop(columns=self.dates + self.texts)]
        parts += [date_parts(X[c]) for c in self.dates]
        parts += [_text_features(X[c], self.text_models[c]) for c in self.texts]
        out = pd.concat(parts, axis=1)
        for c, levels in self.levels.items():
            out[c] = pd.Categorical(X[c].astype(str).where(X[c].notna()), categories=levels)
        return out

    def describe(self) -> str:
        """One line on what was done to the columns, for the run's notes."""
        bits = [f"dropped {self.dropped}" if self.dropped else "",
                f"date parts of {self.dates}" if self.dates else "",
                f"TF-IDF(1-2)->SVD{SVD_COMPONENTS}+length of {self.texts}" if self.texts else "",
                f"categories {list(self.levels)}" if self.levels else ""]
        return "; ".join(b for b in bits if b) or "numeric columns as they are"

    def _inputs(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[c for c in (self.task.id_column, self.task.target) if c in df.columns])


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _nearly_unique(column: pd.Series, min_levels: int = 50, max_share: float = 0.5) -> bool:
    """Too many distinct values to be a category: names, ids, tickets."""
    values = column.dropna()
    return values.nunique() > max(min_levels, max_share * len(values))


def date_parts(column: pd.Series) -> pd.DataFrame:
    """Calendar parts of a date column as numbers (NaN where the date does not parse)."""
    d = pd.to_datetime(column, errors="coerce", utc=True)
    parts = {f"{column.name}_{p}": getattr(d.dt, p).astype(float) for p in DATE_PARTS}
    parts[f"{column.name}_week"] = d.dt.isocalendar().week.astype(float)
    parts[f"{column.name}_days"] = (d - pd.Timestamp("1970-01-01", tz="UTC")).dt.days.astype(float)  # trend
    return pd.DataFrame(parts, index=column.index)


def _fit_text(column: pd.Series, seed: int):
    """TF-IDF of word 1-2 grams projected to at most SVD_COMPONENTS dimensions."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    text = column.fillna("").astype(str)
    tfidf = TfidfVectorizer(ngram_range=(1, 2)).fit(text)
    components = max(1, min(SVD_COMPONENTS, len(tfidf.vocabulary_) - 1, len(text) - 1))
    return make_pipeline(tfidf, TruncatedSVD(components, random_state=seed)).fit(text)


def _text_features(column: pd.Series, model) -> pd.DataFrame:
    text = column.fillna("").astype(str)
    svd = model.transform(text)
    out = pd.DataFrame(svd, index=column.index, columns=[f"{column.name}_svd{i}" for i in range(svd.shape[1])])
    out[f"{column.name}_len"] = text.str.len().astype(float)
    return out


# ---------------------------------------------------------------------------------------------
# the systems: fit(task, train, seed, ...) -> predict(test_rows) -> output


def constant_output(task: Task, y: np.ndarray) -> np.ndarray:
    """Trivial prediction: class priors (all-positive for binary F1) or the metric's best constant."""
    if is_classification(task):
        if task.metric == "f1" and len(task.classes) == 2:
            return np.eye(len(task.classes))[positive_index(task)]
        return np.bincount(y, minlength=len(task.classes)) / len(y)
    if task.metric == "mae":
        return np.asarray(np.median(y))
    if task.metric == "mape":
        return np.asarray(_weighted_median(y, 1 / np.maximum(np.abs(y), 1e-12)))
    if task.metric == "rmsle":
        return np.asarray(np.expm1(np.mean(np.log1p(np.clip(y, 0, None)))))
    return np.asarray(np.mean(y))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def fit_trivial(task: Task, train: pd.DataFrame, seed: int, info: dict | None = None,
                **_) -> Callable[[pd.DataFrame], np.ndarray]:
    """A predictor that outputs the constant of :func:`constant_output` for every row."""
    constant = constant_output(task, encode_target(task, train[task.target]))
    if info is not None:
        info["notes"] = f"constant: {_trivial_how(task)}"
    return lambda rows: np.tile(constant, (len(rows), 1)) if constant.ndim else np.full(len(rows), float(constant))


def fit_lgbm(task: Task, train: pd.DataFrame, seed: int, n_jobs: int = 1, info: dict | None = None,
             **_) -> Callable[[pd.DataFrame], np.ndarray]:
    """Default LightGBM on :class:`Features`; outputs class probabilities or values."""
    import lightgbm as lgb

    features = Features(task, seed).fit(train)
    if info is not None:
        info["notes"] = f"LightGBM 600 trees lr .05 31 leaves ss/cs .8; {features.describe()}"
    X, y = features.transform(train), encode_target(task, train[task.target])
    params = dict(LGBM_PARAMS, random_state=seed, n_jobs=n_jobs)
    model = (lgb.LGBMClassifier if is_classification(task) else lgb.LGBMRegressor)(**params).fit(X, y)
    if not is_classification(task):
        return lambda rows: model.predict(features.transform(rows))
    return lambda rows: _class_matrix(model.predict_proba(features.transform(rows)), model.classes_, len(task.classes))


def _class_matrix(proba: np.ndarray, model_classes, n_classes: int) -> np.ndarray:
    """Probabilities over all task classes (classes absent from the training rows get 0)."""
    out = np.zeros((len(proba), n_classes))
    out[:, np.asarray(model_classes, dtype=int)] = proba
    return out


def require_flaml():
    """FLAML's AutoML class, or a BaselineError naming the install that provides it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import flaml  # noqa: F401  (the package itself, to tell "missing" from "broken")
            from flaml.automl.automl import AutoML
    except ImportError as e:
        raise BaselineError(f"the flaml baseline needs FLAML's AutoML, which cannot be imported ({e}): "
                            f"{FLAML_INSTALL}") from e
    return AutoML


def flaml_metric(task: Task):
    """FLAML's name for the task's metric, or a custom metric function for those FLAML lacks."""
    if metrics.MAP_AT_K.match(task.metric):
        return _custom_metric(task)
    if task.metric not in FLAML_METRICS:
        raise BaselineError(f"the flaml baseline has no FLAML metric for {task.metric!r}; "
                            f"supported: {', '.join(FLAML_METRICS)}")
    name = FLAML_METRICS[task.metric]
    if name == "roc_auc" and len(task.classes) > 2:
        return "roc_auc_ovr"
    if name == "f1" and positive_index(task) != 1:  # FLAML's f1 scores class index 1
        name = None
    return name or _custom_metric(task)


def _custom_metric(task: Task):
    """A FLAML metric function (loss to minimise) computed by runtime.metrics on the validation rows."""
    def metric(X_val, y_val, estimator, *args, **kwargs):
        output = estimator.predict_proba(X_val) if is_classification(task) else estimator.predict(X_val)
        if is_classification(task):
            output = _class_matrix(output, estimator.classes_, len(task.classes))
            truth = pd.Series(np.asarray(task.classes, dtype=object)[np.asarray(y_val, dtype=int)])
        else:
            truth = pd.Series(np.asarray(y_val, dtype=float))
        value = score_output(task, truth, output)
        return (value if task.lower_is_better else 1 - value), {task.metric: value}

    return metric


def fit_flaml(task: Task, train: pd.DataFrame, seed: int, n_jobs: int = 1, deadline: float | None = None,
              info: dict | None = None, **_) -> Callable[[pd.DataFrame], np.ndarray]:
    """FLAML AutoML on :class:`Features` until shortly before ``deadline`` (time.time()); outputs like fit_lgbm."""
    AutoML = require_flaml()
    ordered = time_ordered(task, train)  # FLAML's time split validates on the last rows
    train = train if ordered is None else ordered
    features = Features(task, seed).fit(train)
    X, y = features.transform(train), encode_target(task, train[task.target])
    left = (deadline or time.time() + 60.0) - time.time()
    time_budget = max(1.0, left * 0.85 - 1.0)  # room for the final refit and the submission
    automl = AutoML()
    settings = dict(task="classification" if is_classification(task) else "regression", metric=flaml_metric(task),
                    time_budget=time_budget, seed=seed, n_jobs=n_jobs, verbose=0, log_file_name="")
    if task.kind == "timeseries":
        settings["split_type"] = "time"
    automl.fit(X_train=X, y_train=y, **settings)
    if info is not None:
        loss = automl.best_loss
        info.update(validation_score=loss if task.lower_is_better else 1 - loss,
                    notes=f"FLAML time_budget={time_budget:.0f}s metric={_metric_label(settings['metric'])} "
                          f"trials={len(automl.config_history)} best={automl.best_estimator}; {features.describe()}")
    if not is_classification(task):
        return lambda rows: automl.predict(features.transform(rows))
    return lambda rows: _class_matrix(automl.predict_proba(features.transform(rows)), automl.classes_,
                                      len(task.classes))


def _metric_label(metric) -> str:
    return metric if isinstance(metric, str) else "custom(runtime.metrics)"


FITTERS = {"trivial": fit_trivial, "lgbm_default": fit_lgbm, "flaml": fit_flaml}


# ---------------------------------------------------------------------------------------------
# running a system


def process_start() -> float:
    """When this process started (time.time()), so that start-up and imports count against the budget."""
    import psutil

    return psutil.Process().create_time()


def holdout_score(task: Task, train: pd.DataFrame, system: str, seed: int, n_jobs: int) -> float | None:
    """The system's metric on an 80/20 holdout of train (None when a split cannot be scored)."""
    fit_part, valid = holdout_split(task, train, seed)
    predict = FITTERS[system](task, fit_part, seed, n_jobs=n_jobs)
    try:
        value = score_output(task, valid[task.target], predict(valid))
    except ValueError:  # e.g. a single class in the holdout for AUC
        return None
    return value if math.isfinite(value) else None


def _trivial_how(task: Task) -> str:
    if is_classification(task):
        return "all positive" if task.metric == "f1" and len(task.classes) == 2 else (
            "majority class" if task.prediction == "label" else "class priors")
    return {"mae": "train median", "mape": "1/|y|-weighted median", "rmsle": "geometric mean of 1+y, minus 1"}.get(
        task.metric, "train mean")


def run(system: str, path: str, out: str, budget: float = 60.0, seed: int = 0, n_jobs: int = 1,
        started: float | None = None) -> dict:
    """Fit ``system`` on the task's public data, write the submission to ``out``; the result record.

    ``budget`` is wall-clock seconds from ``started`` (time.time(); default: now); only flaml uses it.
    """
    started = time.time() if started is None else started
    if system not in FITTERS:
        raise BaselineError(f"unknown system {system!r}: use one of {', '.join(SYSTEMS)}")
    if system == "flaml":
        require_flaml()  # fail before any work
    task = load(path)
    if len(task.targets) > 1:
        raise BaselineError(f"the {system} baseline predicts one target; {task.name} has {len(task.targets)} "
                            f"({', '.join(task.targets)})")
    train, test = read_public(task)
    info: dict = {"validation_score": None, "notes": ""}
    if system != "flaml":  # FLAML reports its own validation loss
        info["validation_score"] = holdout_score(task, train, system, seed, n_jobs)
    predict = FITTERS[system](task, train, seed, n_jobs=n_jobs, deadline=started + budget, info=info)
    problems = write_submission(task, test, predict(test), out)
    if problems:
        raise BaselineError(f"the {system} submission is invalid: {'; '.join(problems)}")
    return {"system": system, "task": task.name, "metric": task.metric, "wall_s": round(time.time() - started, 2),
            "validation_score": info["validation_score"], "notes": info["notes"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("task_dir", help="task folder, or its public/ folder")
    parser.add_argument("out", help="where to write the submission CSV")
    parser.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds (used by flaml)")
    parser.add_argument("--seed", type=int, default=0, help="0 reproduces examples/baselines.json")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="threads per model (default 1: on small tables more threads gain little, and "
                             "LightGBM's spinning OpenMP threads slow it several-fold on shared cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: progress and library output go to stderr, the result record is stdout's last line."""
    args = parse_args(argv)
    started = process_start()
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = run(args.system, args.task_dir, args.out, args.budget, args.seed, args.n_jobs, started)
    except (BaselineError, TaskError) as e:
        return _fail(args.system, started, str(e), 2)
    except Exception as e:  # a library failure: the traceback for the log, the record for the harness
        traceback.print_exc()
        return _fail(args.system, started, f"{type(e).__name__}: {e}", 1)
    print(json.dumps(record), flush=True)
    return 0


def _fail(system: str, started: float, error: str, code: int) -> int:
    """Report a failed run on stderr and as the stdout record; returns the exit code."""
    print(f"{system}: {error}", file=sys.stderr)
    print(json.dumps({"system": system, "wall_s": round(time.time() - started, 2), "validation_score": None,
                      "notes": "", "error": error}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
