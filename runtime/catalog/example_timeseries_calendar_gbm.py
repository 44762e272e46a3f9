"""Time series: calendar and holiday features of the date column + LightGBM, validated on the most recent 20%."""
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar
from sklearn import metrics

warnings.simplefilter("ignore", FutureWarning)  # LightGBM >= 4.7 prefers eval_X/eval_y over eval_set

# --- task config ---
TARGET = "births"  # column of train.csv to predict
ID = "id"  # row id: not a feature
PREDICTION = "value"  # label | probability | class_probabilities | value
CLASSES = None  # class labels (None for regression); a probability is P(CLASSES[1])
TARGET_COLUMNS = ["births"]  # submission columns after ID
DATE_COLUMN = "date"  # the time axis
SUBMIT = False  # True: refit on all rows and write ./submission.csv

def score(y_true, pred):
    """Root mean squared error (lower is better)."""
    return metrics.root_mean_squared_error(y_true, pred)
# --- end task config ---

def target(df):  # class index (position in CLASSES) or float value
    if CLASSES is None:
        return df[TARGET].to_numpy(dtype=float)
    return df[TARGET].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()

def calendar_features(df, levels):
    """Calendar parts, trend, holiday flags (day before/after too), year-end window; other columns kept."""
    X = df.drop(columns=[c for c in (ID, TARGET) if c in df.columns])
    d = pd.to_datetime(X.pop(DATE_COLUMN), errors="coerce")
    for part in ("year", "month", "day", "day_of_week", "day_of_year", "quarter", "is_month_start", "is_month_end"):
        X[part] = getattr(d.dt, part).astype(float)
    X["week"] = d.dt.isocalendar().week.astype(float)
    X["days"] = (d - pd.Timestamp("2000-01-01", tz=d.dt.tz)).dt.days  # trend
    day = d.dt.tz_localize(None).dt.normalize() if d.dt.tz else d.dt.normalize()
    holidays = USFederalHolidayCalendar().holidays(day.min() - pd.Timedelta(days=7), day.max() + pd.Timedelta(days=7))
    for shift, name in ((0, "holiday"), (1, "day_before_holiday"), (-1, "day_after_holiday")):
        X[name] = (day + pd.Timedelta(days=shift)).isin(holidays).astype(int)
    X["year_end"] = ((d.dt.month == 12) & (d.dt.day >= 20) | (d.dt.month == 1) & (d.dt.day <= 3)).astype(int)
    for c in list(X.columns):
        if c in levels:
            X[c] = pd.Categorical(X[c], categories=levels[c])
        elif not pd.api.types.is_numeric_dtype(X[c]):
            X.pop(c)  # free text: not used here
    return X

def category_levels(df):
    """Levels of the string columns with at most 50 distinct values (e.g. store, item)."""
    cols = [c for c in df.columns if c not in (ID, TARGET, DATE_COLUMN) and not pd.api.types.is_numeric_dtype(df[c])]
    return {c: sorted(df[c].dropna().unique()) for c in cols if df[c].nunique() <= 50}

def new_model(n_estimators):
    params = dict(n_estimators=n_estimators, learning_rate=0.03, num_leaves=31, min_child_samples=10,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=42, n_jobs=2, verbose=-1)
    return lgb.LGBMRegressor(**params) if CLASSES is None else lgb.LGBMClassifier(**params)

def predict(model, X):
    """Predictions in the form the metric and the submission need."""
    if PREDICTION == "value":
        return model.predict(X)
    proba = model.predict_proba(X)
    if PREDICTION == "probability":
        return proba[:, 1]
    return proba if PREDICTION == "class_probabilities" else proba.argmax(axis=1)

train = pd.read_csv("./input/train.csv").dropna(subset=[TARGET])
train = train.sort_values(DATE_COLUMN, key=lambda s: pd.to_datetime(s, errors="coerce"), kind="stable")
cut = int(len(train) * 0.8)  # validate on the most recent 20% of rows
tr, va = train.iloc[:cut], train.iloc[cut:]
levels = category_levels(tr)
X_tr, X_va = calendar_features(tr, levels), calendar_features(va, levels)
model = new_model(3000)
model.fit(X_tr, target(tr), eval_set=[(X_va, target(va))], callbacks=[lgb.early_stopping(200, verbose=False)])
val_score = score(target(va), predict(model, X_va))
print(f"Final Validation Performance: {val_score:.6f}")

if SUBMIT:  # refit on all training rows, then predict the test set
    levels = category_levels(train)
    model = new_model(model.best_iteration_ or 3000).fit(calendar_features(train, levels), target(train))
    test = pd.read_csv("./input/test.csv")
    pred = predict(model, calendar_features(test, levels))
    pred = np.asarray(CLASSES)[pred] if PREDICTION == "label" else pred
    submission = pd.DataFrame({ID: test[ID]})
    submission[TARGET_COLUMNS] = np.asarray(pred).reshape(len(test), -1)
    submission.to_csv("submission.csv", index=False)
