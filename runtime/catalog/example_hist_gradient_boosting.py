"""scikit-learn HistGradientBoosting: fast boosting with native categorical and missing-value support."""
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

threadpool_limits(1, "openmp")  # one thread: as fast on small data, and no stalls when other processes share the cores

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

def new_model():
    params = dict(max_iter=300, learning_rate=0.03, max_leaf_nodes=15, min_samples_leaf=10, l2_regularization=0.1,
                  categorical_features="from_dtype", random_state=42)
    if CLASSES is None:
        return HistGradientBoostingRegressor(**params)
    return HistGradientBoostingClassifier(class_weight="balanced" if BALANCE_CLASSES else None, **params)

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
model = new_model().fit(make_features(tr, levels), learned(target(tr)))
val_pred = predict(model, make_features(va, levels))
val_score = score(target(va), val_pred)
print(f"Final Validation Performance: {val_score:.6f}")
val_predictions = pd.DataFrame({"row": va.index})  # row = position in ./input/train.csv
val_predictions[TARGET_COLUMNS] = prediction_columns(val_pred)
val_predictions.to_csv("val_predictions.csv", index=False)

if SUBMIT:  # refit on all training rows, then predict the test set
    levels = category_levels(train)
    model = new_model().fit(make_features(train, levels), learned(target(train)))
    test = pd.read_csv("./input/test.csv")
    submission = pd.DataFrame({ID: test[ID]})
    submission[TARGET_COLUMNS] = prediction_columns(predict(model, make_features(test, levels)))
    submission.to_csv("submission.csv", index=False)
