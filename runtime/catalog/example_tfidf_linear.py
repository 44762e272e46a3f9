"""Text model: word + character TF-IDF of the text columns, plus scaled numbers and one-hot strings -> linear model."""
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

# --- task config ---
TARGET = "is_android"  # column of train.csv to predict
ID = "id"  # row id: not a feature
PREDICTION = "probability"  # label | probability | class_probabilities | value | ranked_labels
TOP_K = 1  # ranked_labels: how many labels each row lists, best first (MAP@k)
CLASSES = [0, 1]  # class labels (None for regression); a probability is P(CLASSES[1])
TARGET_COLUMNS = ["is_android"]  # submission columns after ID
TEXT_COLUMNS = ["text"]  # free-text columns -> TF-IDF
DATE_COLUMNS = ["created_at"]  # date/time columns -> calendar features
LOG_TARGET = False  # True for log-error metrics (rmsle): learn log1p(value), predict expm1 clipped at 0
BALANCE_CLASSES = False  # True for f1 / macro metrics: weight the classes equally (class_weight="balanced")
SUBMIT = False  # True: refit on all rows and write ./submission.csv

def score(y_true, pred):
    """ROC AUC of P(CLASSES[1]) (higher is better)."""
    return metrics.roc_auc_score(y_true, pred)
# --- end task config ---

def target(df):  # class index (position in CLASSES) or float value
    if CLASSES is None:
        return df[TARGET].to_numpy(dtype=float)
    return df[TARGET].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()

def learned(y):  # what the model fits: log1p(value) for log-error metrics, undone in predict()
    return np.log1p(y) if LOG_TARGET else y

def make_features(df):
    """Text as it is (vectorised in the pipeline), dates -> one-hot calendar parts, other columns as they are."""
    X = df.drop(columns=[c for c in (ID, TARGET) if c in df.columns])
    for c in TEXT_COLUMNS:
        X[c] = X[c].fillna("").astype(str)
    for c in DATE_COLUMNS:
        d = pd.to_datetime(X.pop(c), errors="coerce")
        X[c + "_year"] = d.dt.year
        for part in ("month", "day_of_week", "hour"):
            X[f"{c}_{part}"] = getattr(d.dt, part).astype(str)  # one-hot below
    return X

def new_model(X):
    numbers = X.select_dtypes("number").columns.tolist()
    strings = [c for c in X.columns if c not in numbers and c not in TEXT_COLUMNS and X[c].nunique() <= 50]
    parts = [("num", make_pipeline(SimpleImputer(strategy="median"), QuantileTransformer(n_quantiles=100)), numbers),
             ("str", OneHotEncoder(handle_unknown="ignore", min_frequency=5), strings)]
    for c in TEXT_COLUMNS:
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=100_000)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True, max_features=100_000)
        parts += [(c + "_words", words, c), (c + "_chars", chars, c)]
    balance = "balanced" if BALANCE_CLASSES else None
    linear = Ridge(alpha=1.0) if CLASSES is None else LogisticRegression(C=4.0, max_iter=3000, class_weight=balance)
    return make_pipeline(ColumnTransformer(parts), linear)

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
stratify = train[TARGET] if CLASSES and train[TARGET].value_counts().min() >= 2 else None
tr, va = train_test_split(train, test_size=0.2, random_state=42, stratify=stratify)
X_tr, X_va = make_features(tr), make_features(va)
model = new_model(X_tr).fit(X_tr, learned(target(tr)))
val_pred = predict(model, X_va)
val_score = score(target(va), val_pred)
print(f"Final Validation Performance: {val_score:.6f}")
val_predictions = pd.DataFrame({"row": va.index})  # row = position in ./input/train.csv
val_predictions[TARGET_COLUMNS] = prediction_columns(val_pred)
val_predictions.to_csv("val_predictions.csv", index=False)

if SUBMIT:  # refit on all training rows, then predict the test set
    X = make_features(train)
    model = new_model(X).fit(X, learned(target(train)))
    test = pd.read_csv("./input/test.csv")
    submission = pd.DataFrame({ID: test[ID]})
    submission[TARGET_COLUMNS] = prediction_columns(predict(model, make_features(test)))
    submission.to_csv("submission.csv", index=False)
