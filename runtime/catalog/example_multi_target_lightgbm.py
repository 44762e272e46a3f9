"""LightGBM for several targets at once: one gradient-boosted model per target column."""
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn import metrics  # noqa: F401  (the score functions of other metrics use it)
from sklearn.model_selection import train_test_split

warnings.simplefilter("ignore", FutureWarning)  # LightGBM >= 4.7 prefers eval_X/eval_y over eval_set

# --- task config ---
ID = "id"  # row id: not a feature
PREDICTION = "values"  # values | probabilities (each target is 0/1; predict P(target = 1))
TARGET_COLUMNS = ["strength", "slump"]  # the targets: columns of train.csv, and the submission columns after ID
DATE_COLUMNS = []  # date/time columns -> calendar features
LOG_TARGET = False  # True for log-error metrics: learn log1p(value), predict expm1 clipped at 0
BALANCE_CLASSES = False  # True: weight the two classes of each target equally
SUBMIT = False  # True: refit on all rows and write ./submission.csv

def score(y_true, pred):
    """Mean column-wise root mean squared error (lower is better)."""
    return np.mean(np.sqrt(np.mean((y_true - pred) ** 2, axis=0)))
# --- end task config ---

def learned(y):  # what the model fits: log1p(value) for log-error metrics, undone in predict()
    return np.log1p(y) if LOG_TARGET else y

def category_levels(df):
    """Levels of the string columns with at most 50 distinct values (the rest is free text)."""
    cols = [c for c in df.columns
            if c not in (ID, *TARGET_COLUMNS, *DATE_COLUMNS) and not pd.api.types.is_numeric_dtype(df[c])]
    return {c: sorted(df[c].dropna().unique()) for c in cols if df[c].nunique() <= 50}

def make_features(df, levels):
    """Numbers as they are, dates -> calendar parts, strings -> category, free text -> length."""
    X = df.drop(columns=[c for c in (ID, *TARGET_COLUMNS) if c in df.columns])
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

def new_model(n_estimators):
    # n_jobs=1: as fast on data of this size, and no stalls when other processes share the cores
    params = dict(n_estimators=n_estimators, learning_rate=0.03, num_leaves=15, min_child_samples=10,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=42, n_jobs=1, verbose=-1)
    if PREDICTION == "values":
        return lgb.LGBMRegressor(**params)
    return lgb.LGBMClassifier(class_weight="balanced" if BALANCE_CLASSES else None, **params)

def predict(model, X):
    """One target's predictions: the value, or the probability that it is 1."""
    if PREDICTION == "probabilities":
        return model.predict_proba(X)[:, 1]
    return np.clip(np.expm1(model.predict(X)), 0, None) if LOG_TARGET else model.predict(X)

train = pd.read_csv("./input/train.csv").dropna(subset=TARGET_COLUMNS)
tr, va = train_test_split(train, test_size=0.2, random_state=42)
levels = category_levels(tr)
X_tr, X_va = make_features(tr, levels), make_features(va, levels)
rounds, val_pred = {}, []
for column in TARGET_COLUMNS:  # one model per target, early-stopped on the validation rows
    model = new_model(2000)
    model.fit(X_tr, learned(tr[column].to_numpy(dtype=float)),
              eval_set=[(X_va, learned(va[column].to_numpy(dtype=float)))],
              callbacks=[lgb.early_stopping(100, verbose=False)])
    rounds[column] = model.best_iteration_ or 2000
    val_pred.append(predict(model, X_va))
val_pred = np.column_stack(val_pred)
val_score = score(va[TARGET_COLUMNS].to_numpy(dtype=float), val_pred)
print(f"Final Validation Performance: {val_score:.6f}")
val_predictions = pd.DataFrame({"row": va.index})  # row = position in ./input/train.csv
val_predictions[TARGET_COLUMNS] = val_pred
val_predictions.to_csv("val_predictions.csv", index=False)

if SUBMIT:  # refit each target's model on all training rows, then predict the test set
    levels = category_levels(train)
    X, test = make_features(train, levels), pd.read_csv("./input/test.csv")
    X_test = make_features(test, levels)
    submission = pd.DataFrame({ID: test[ID]})
    for column in TARGET_COLUMNS:
        model = new_model(rounds[column]).fit(X, learned(train[column].to_numpy(dtype=float)))
        submission[column] = predict(model, X_test)
    submission.to_csv("submission.csv", index=False)
