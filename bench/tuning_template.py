"""Template of bench/tuning.py: LightGBM with a time-boxed Optuna search over its hyperparameters.

The search never sees the validation rows: each trial is scored by k-fold cross-validation on the training
split (5 folds on small data, 3 on large; ordered folds for time series), starting from the catalog's
LightGBM defaults. The best parameters, with the trees the folds chose, are then fit on the training split
and validated once on the held-out 20%, so the printed score is as honest as any other approach's.
"""
import warnings

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn import metrics
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

warnings.simplefilter("ignore", FutureWarning)  # LightGBM >= 4.7 prefers eval_X/eval_y over eval_set
optuna.logging.set_verbosity(optuna.logging.WARNING)

# --- task config ---
TARGET = "Survived"  # column of train.csv to predict
ID = "id"  # row id: not a feature
PREDICTION = "label"  # label | probability | class_probabilities | value | ranked_labels
TOP_K = 1  # ranked_labels: how many labels each row lists, best first (MAP@k)
CLASSES = [0, 1]  # class labels (None for regression); a probability is P(CLASSES[1])
TARGET_COLUMNS = ["Survived"]  # submission columns after ID
DATE_COLUMNS = []  # date/time columns -> calendar features
TIME_SPLIT = False  # True: validate on the most recent 20% of rows by DATE_COLUMNS[0]
LOG_TARGET = False  # True for log-error metrics (rmsle): learn log1p(value), predict expm1 clipped at 0
BALANCE_CLASSES = False  # True for f1 / macro metrics: weight the classes equally (class_weight="balanced")
SUBMIT = False  # True: refit on all rows and write ./submission.csv

def score(y_true, pred):
    """Accuracy of the predicted class (higher is better)."""
    return metrics.accuracy_score(y_true, pred)
# --- end task config ---

# --- search settings (bench/tuning.py fills them in) ---
LOWER_IS_BETTER = False  # direction of score()
TUNE_SECONDS = 60  # wall-clock time for the hyperparameter search

def split(df):
    """80/20 split: stratified at random, or the most recent 20% of rows for time series."""
    if TIME_SPLIT:
        df = df.sort_values(DATE_COLUMNS[0], key=lambda s: pd.to_datetime(s, errors="coerce"), kind="stable")
        return df.iloc[: int(len(df) * 0.8)], df.iloc[int(len(df) * 0.8):]
    stratify = df[TARGET] if CLASSES and df[TARGET].value_counts().min() >= 2 else None
    return train_test_split(df, test_size=0.2, random_state=42, stratify=stratify)

def target(df):  # class index (position in CLASSES) or float value
    if CLASSES is None:
        return df[TARGET].to_numpy(dtype=float)
    return df[TARGET].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()

def learned(y):  # what the model fits: log1p(value) for log-error metrics, undone in predict()
    return np.log1p(y) if LOG_TARGET else y

def category_levels(df):
    """Levels of the string columns with at most 50 distinct values (the rest is free text)."""
    cols = [c for c in df.columns if c not in (ID, TARGET, *DATE_COLUMNS) and not pd.api.types.is_numeric_dtype(df[c])]
    return {c: sorted(df[c].dropna().unique()) for c in cols if df[c].nunique() <= 50}

def make_features(df, levels):
    """Numbers as they are, dates -> calendar parts, strings -> category, free text -> length."""
    X = df.drop(columns=[c for c in (ID, TARGET) if c in df.columns])
    for c in DATE_COLUMNS:
        d = pd.to_datetime(X.pop(c), errors="coerce")
        for part in ("year", "month", "day", "day_of_week", "day_of_year", "hour"):
            X[f"{c}_{part}"] = getattr(d.dt, part)
    for c in list(X.columns):
        if c in levels:
            X[c] = pd.Categorical(X[c].where(X[c].isin(levels[c])), categories=levels[c])  # unseen -> missing
        elif not pd.api.types.is_numeric_dtype(X[c]):
            text = X.pop(c).fillna("").astype(str)
            X[c + "_len"], X[c + "_words"] = text.str.len(), text.str.split().str.len()
    return X

DEFAULTS = dict(learning_rate=0.03, num_leaves=15, min_child_samples=10, subsample=0.8,
                colsample_bytree=0.8, reg_lambda=0.0, reg_alpha=0.0)  # the catalog's LightGBM

def new_model(params, n_estimators):
    # n_jobs=1: two trials run at once, one per core
    fixed = dict(n_estimators=n_estimators, subsample_freq=1, random_state=42, n_jobs=1, verbose=-1)
    if CLASSES is None:
        return lgb.LGBMRegressor(**params, **fixed)
    return lgb.LGBMClassifier(class_weight="balanced" if BALANCE_CLASSES else None, **params, **fixed)

def folds(frame):
    """Cross-validation folds of the training split: ordered for time series, stratified for classes."""
    k = 5 if len(frame) <= 20000 else 3
    if TIME_SPLIT:
        return list(TimeSeriesSplit(k).split(frame))
    if CLASSES is not None and frame[TARGET].value_counts().min() >= k:
        return list(StratifiedKFold(k, shuffle=True, random_state=42).split(frame, frame[TARGET]))
    return list(KFold(k, shuffle=True, random_state=42).split(frame))

def cross_validate(params, X, y, y_raw, splits):
    """Mean fold score and mean early-stopped tree count of one parameter set."""
    scores, trees = [], []
    for fit, held in splits:
        model = new_model(params, 3000)
        model.fit(X.iloc[fit], y[fit], eval_set=[(X.iloc[held], y[held])],
                  callbacks=[lgb.early_stopping(100, verbose=False)])
        scores.append(score(y_raw[held], predict(model, X.iloc[held])))
        trees.append(model.best_iteration_ or 3000)
    return float(np.mean(scores)), int(np.mean(trees))

def search_space(trial):
    return dict(learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                num_leaves=trial.suggest_int("num_leaves", 4, 128, log=True),
                min_child_samples=trial.suggest_int("min_child_samples", 2, 100, log=True),
                subsample=trial.suggest_float("subsample", 0.5, 1.0),
                colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
                reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
                reg_alpha=trial.suggest_float("reg_alpha", 1e-3, 30.0, log=True))

def predict(model, X):
    """Predictions in the form the metric and the submission need."""
    if PREDICTION == "value":
        return np.clip(np.expm1(model.predict(X)), 0, None) if LOG_TARGET else model.predict(X)
    proba = model.predict_proba(X)
    if PREDICTION == "probability":
        return proba[:, 1]
    if PREDICTION == "ranked_labels":  # class indices, most probable first
        return np.argsort(-proba, axis=1, kind="stable")[:, :TOP_K]
    return proba if PREDICTION == "class_probabilities" else proba.argmax(axis=1)

def prediction_columns(pred):
    """One column per TARGET_COLUMNS, as a submission holds them: class labels (not indices) for "label",
    the labels separated by spaces for "ranked_labels"."""
    if PREDICTION == "ranked_labels":
        return np.array([" ".join(str(c) for c in np.asarray(CLASSES)[row]) for row in pred], dtype=object)[:, None]
    pred = np.asarray(CLASSES)[pred] if PREDICTION == "label" else np.asarray(pred)
    return pred.reshape(len(pred), -1)

train = pd.read_csv("./input/train.csv").dropna(subset=[TARGET])
tr, va = split(train)
levels = category_levels(tr)
X_tr, X_va = make_features(tr, levels), make_features(va, levels)
y_tr, y_tr_raw, splits = learned(target(tr)), target(tr), folds(tr)

def objective(trial):
    mean_score, trees = cross_validate(search_space(trial), X_tr, y_tr, y_tr_raw, splits)
    trial.set_user_attr("trees", trees)
    return mean_score

study = optuna.create_study(direction="minimize" if LOWER_IS_BETTER else "maximize",
                            sampler=optuna.samplers.TPESampler(seed=42))
study.enqueue_trial({**DEFAULTS, "reg_lambda": 1e-3, "reg_alpha": 1e-3})  # start from the defaults
study.optimize(objective, timeout=TUNE_SECONDS, n_jobs=2, catch=(ValueError,))
best = study.best_trial
print(f"Tuning: {len(study.trials)} trials in {TUNE_SECONDS} s, best cross-validated score {best.value:.6f} "
      f"with {best.user_attrs['trees']} trees: {best.params}")

model = new_model(best.params, best.user_attrs["trees"]).fit(X_tr, y_tr)  # no early stopping on the validation rows
val_pred = predict(model, X_va)
val_score = score(target(va), val_pred)
print(f"Final Validation Performance: {val_score:.6f}")
val_predictions = pd.DataFrame({"row": va.index})  # row = position in ./input/train.csv
val_predictions[TARGET_COLUMNS] = prediction_columns(val_pred)
val_predictions.to_csv("val_predictions.csv", index=False)

if SUBMIT:  # refit on all training rows, then predict the test set
    levels = category_levels(train)
    model = new_model(best.params, best.user_attrs["trees"]).fit(make_features(train, levels), learned(target(train)))
    test = pd.read_csv("./input/test.csv")
    submission = pd.DataFrame({ID: test[ID]})
    submission[TARGET_COLUMNS] = prediction_columns(predict(model, make_features(test, levels)))
    submission.to_csv("submission.csv", index=False)
