"""Linear model: LogisticRegression / Ridge on scaled numbers, their splines and one-hot strings (a fast baseline)."""
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

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

def free_text_columns(df):
    """String columns with more than 50 distinct values: too many for one-hot, use their length."""
    strings = df.drop(columns=[ID, TARGET, *DATE_COLUMNS], errors="ignore").select_dtypes(exclude="number")
    return [c for c in strings.columns if strings[c].nunique() > 50]

def make_features(df, text_columns):
    """Numbers as they are, dates -> year + one-hot calendar parts, strings -> one-hot, free text -> length."""
    X = df.drop(columns=[c for c in (ID, TARGET) if c in df.columns])
    for c in DATE_COLUMNS:
        d = pd.to_datetime(X.pop(c), errors="coerce")
        X[c + "_year"], X[c + "_day_of_year"] = d.dt.year, d.dt.day_of_year
        for part in ("month", "day_of_week", "hour"):
            X[f"{c}_{part}"] = getattr(d.dt, part).astype(str)  # one-hot below
    for c in text_columns:
        text = X.pop(c).fillna("").astype(str)
        X[c + "_len"], X[c + "_words"] = text.str.len(), text.str.split().str.len()
    return X

def new_model(X):
    numbers = X.select_dtypes("number").columns.tolist()
    strings = [c for c in X.columns if c not in numbers]
    impute = SimpleImputer(strategy="median")
    curves = SplineTransformer(n_knots=8, knots="quantile", extrapolation="constant")  # a smooth curve per number
    prep = ColumnTransformer([("num", make_pipeline(impute, StandardScaler()), numbers),
                              ("curve", make_pipeline(impute, curves), numbers),
                              ("str", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5), strings)])
    return make_pipeline(prep, Ridge(alpha=1.0) if CLASSES is None else LogisticRegression(C=1.0, max_iter=2000))

def class_weights(y):
    """Fit arguments weighting every class equally (as class_weight="balanced") when BALANCE_CLASSES."""
    if not BALANCE_CLASSES:
        return {}
    counts = np.bincount(y)
    return {"logisticregression__sample_weight": len(y) / (np.count_nonzero(counts) * counts[y])}

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
text_columns = free_text_columns(tr)
X_tr, X_va = make_features(tr, text_columns), make_features(va, text_columns)
model = new_model(X_tr).fit(X_tr, learned(target(tr)), **class_weights(target(tr)))
val_pred = predict(model, X_va)
val_score = score(target(va), val_pred)
print(f"Final Validation Performance: {val_score:.6f}")
val_predictions = pd.DataFrame({"row": va.index})  # row = position in ./input/train.csv
val_predictions[TARGET_COLUMNS] = prediction_columns(val_pred)
val_predictions.to_csv("val_predictions.csv", index=False)

if SUBMIT:  # refit on all training rows, then predict the test set
    text_columns = free_text_columns(train)
    X = make_features(train, text_columns)
    model = new_model(X).fit(X, learned(target(train)), **class_weights(target(train)))
    test = pd.read_csv("./input/test.csv")
    submission = pd.DataFrame({ID: test[ID]})
    submission[TARGET_COLUMNS] = prediction_columns(predict(model, make_features(test, text_columns)))
    submission.to_csv("submission.csv", index=False)
