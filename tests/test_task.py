"""Task loading, metric detection, submission validation and grading on the example tasks."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prompts.task import METRIC_QUESTION
from runtime import metrics
from runtime.task import (
    Grade,
    Task,
    TaskError,
    bring_probabilities_into_range,
    data_summary,
    grade_submission,
    load_task,
    validate_submission,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASELINES = json.loads((EXAMPLES / "baselines.json").read_text())
NAMES = ("titanic", "concrete", "penguins", "tweets", "births")

EXPECTED = {
    # name: (metric, lower_is_better, target, kind, prediction)
    "titanic": ("accuracy", False, "Survived", "binary", "label"),
    "concrete": ("rmse", True, "compressive_strength", "regression", "value"),
    "penguins": ("logloss", True, "species", "multiclass", "class_probabilities"),
    "tweets": ("auc", False, "is_android", "binary", "probability"),
    "births": ("rmse", True, "births", "timeseries", "value"),
}
# Without task.json the kind is inferred: tweets has a free-text column, so it is "text".
INFERRED_KIND = {**{n: EXPECTED[n][3] for n in NAMES}, "tweets": "text"}


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return {name: load_task(EXAMPLES / name) for name in NAMES}


def make_folder(tmp_path: Path, name: str = "titanic", drop: tuple[str, ...] = ()) -> Path:
    """A copy of an example's public files without task.json (so everything is inferred)."""
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name / "public", folder)
    for file_name in drop:
        (folder / file_name).unlink()
    return folder


def perfect_submission(task: Task, path: Path) -> Path:
    """The hidden answers rewritten in the submission layout."""
    answers = pd.read_csv(task.answers_path)
    if task.prediction == "class_probabilities":
        sub = pd.DataFrame({task.id_column: answers[task.id_column]})
        for column in task.target_columns:
            sub[column] = (answers[task.target].astype(str) == column).astype(float)
    else:
        sub = answers[[task.id_column, task.target]].rename(columns={task.target: task.target_columns[0]})
    sub.to_csv(path, index=False)
    return path


def sample_copy(task: Task) -> pd.DataFrame:
    return pd.read_csv(task.path(task.sample_submission_file))


def write(df: pd.DataFrame, tmp_path: Path, name: str = "submission.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------- loading examples


@pytest.mark.parametrize("name", NAMES)
def test_examples_load_with_expected_fields(tasks, name):
    task = tasks[name]
    metric, lower, target, kind, prediction = EXPECTED[name]
    assert (task.metric, task.lower_is_better, task.target, task.kind, task.prediction) == (
        metric, lower, target, kind, prediction,
    )
    assert task.name == name
    assert task.id_column == "id"
    assert task.root == str(EXAMPLES / name)
    assert task.data_dir == str(EXAMPLES / name / "public")
    assert (task.train_file, task.test_file, task.sample_submission_file) == (
        "train.csv", "test.csv", "sample_submission.csv",
    )
    assert task.answers_path == str(EXAMPLES / name / "private" / "answers.csv")
    assert task.description.startswith("#")
    assert BASELINES[name]["metric"] == task.metric
    assert BASELINES[name]["lower_is_better"] == task.lower_is_better


def test_example_classes_and_target_columns(tasks):
    assert tasks["penguins"].target_columns == ("Adelie", "Chinstrap", "Gentoo")
    assert tasks["penguins"].classes == ("Adelie", "Chinstrap", "Gentoo")
    assert tasks["titanic"].target_columns == ("Survived",)
    assert tasks["titanic"].classes == ("0", "1")
    assert tasks["concrete"].classes is None


@pytest.mark.parametrize("name", NAMES)
def test_data_files_are_public_only(tasks, name):
    task = tasks[name]
    assert set(task.data_files) == {"description.md", "train.csv", "test.csv", "sample_submission.csv"}
    for file_name in task.data_files:
        assert os.path.isfile(os.path.join(task.data_dir, file_name))
        assert "private" not in os.path.join(task.data_dir, file_name)
        assert file_name not in ("answers.csv", "task.json")


def test_flat_folder_lists_no_private_or_metadata_files(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "private").mkdir()
    shutil.copy(EXAMPLES / "titanic" / "private" / "answers.csv", folder / "private" / "answers.csv")
    shutil.copy(EXAMPLES / "titanic" / "task.json", folder / "task.json")
    task = load_task(folder)
    assert task.data_dir == str(folder)
    assert "task.json" not in task.data_files and "answers.csv" not in task.data_files
    assert not any("private" in f for f in task.data_files)
    assert task.answers_path == str(folder / "private" / "answers.csv")


@pytest.mark.parametrize("name", NAMES)
def test_inference_without_task_json_matches_metadata(tasks, tmp_path, name):
    inferred = load_task(make_folder(tmp_path, name))
    task = tasks[name]
    assert (inferred.metric, inferred.lower_is_better, inferred.target) == (task.metric, task.lower_is_better, task.target)
    assert inferred.prediction == task.prediction
    assert inferred.target_columns == task.target_columns
    assert inferred.kind == INFERRED_KIND[name]
    assert inferred.answers_path is None
    assert inferred.name == name


def test_alternative_description_file_name(tmp_path):
    folder = make_folder(tmp_path, "concrete")
    (folder / "description.md").rename(folder / "task_description.txt")
    task = load_task(folder)
    assert task.metric == "rmse" and "Concrete" in task.description
    assert "task_description.txt" in task.data_files


def test_to_dict_from_dict_round_trip(tasks):
    for task in tasks.values():
        d = task.to_dict()
        restored = Task.from_dict(json.loads(json.dumps(d)))
        assert restored == task
    with pytest.raises(TaskError, match="Task.to_dict"):
        Task.from_dict({"name": "x"})


# ------------------------------------------------------------------------------- TaskError cases


def assert_task_error(path, *fragments, **kwargs):
    with pytest.raises(TaskError) as info:
        load_task(path, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


def test_missing_path(tmp_path):
    assert_task_error(tmp_path / "nope", "does not exist", "check the path")


def test_not_a_directory(tmp_path):
    file_path = tmp_path / "file.csv"
    file_path.write_text("a\n1\n")
    assert_task_error(file_path, "not a directory", "pass the folder")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_task_error(tmp_path / "empty", "is empty", "put description.md")


def test_no_description(tmp_path):
    assert_task_error(make_folder(tmp_path, drop=("description.md",)), "no description", "add description.md")


def test_empty_description(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "description.md").write_text("  \n")
    assert_task_error(folder, "is empty", "describe the task")


@pytest.mark.parametrize("file_name", ["train.csv", "test.csv"])
def test_no_train_or_test(tmp_path, file_name):
    assert_task_error(make_folder(tmp_path, drop=(file_name,)), f"no {file_name}", "add the")


def test_no_sample_submission(tmp_path):
    assert_task_error(
        make_folder(tmp_path, drop=("sample_submission.csv",)), "no sample_submission.csv", "add a sample submission"
    )


def test_empty_csv(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "train.csv").write_text("")
    assert_task_error(folder, "train.csv", "no columns to parse", "fix")


def test_header_only_csv(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "test.csv").write_text("id,Name,Pclass\n")
    assert_task_error(folder, "test.csv", "no rows", "add the data rows")


def test_unparseable_csv(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "sample_submission.csv").write_text('id,Survived\n1,0\n2,"unterminated\n')
    assert_task_error(folder, "sample_submission.csv", "cannot read", "comma-separated")


def test_sample_submission_id_absent_from_test(tmp_path):
    folder = make_folder(tmp_path)
    sample = pd.read_csv(folder / "sample_submission.csv").rename(columns={"id": "PassengerId"})
    sample.to_csv(folder / "sample_submission.csv", index=False)
    assert_task_error(folder, "'PassengerId'", "not in test.csv", "add it to test.csv")


def test_target_not_found(tmp_path):
    folder = make_folder(tmp_path)
    train = pd.read_csv(folder / "train.csv").drop(columns=["Survived"])
    train.to_csv(folder / "train.csv", index=False)
    assert_task_error(folder, "target not found", '"target"')


def test_task_json_target_not_in_train(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "task.json").write_text(json.dumps({"target": "Alive"}))
    assert_task_error(folder, "'Alive'", "not a column of train.csv", 'fix "target"')


def test_an_unknown_metric_name_is_read_from_the_description(tmp_path):
    folder = make_folder(tmp_path, "concrete")
    (folder / "task.json").write_text(json.dumps({"metric": "rmse_log"}))
    (folder / "description.md").write_text("# Concrete\nSubmissions are scored on the root mean squared error "
                                           "between the logarithm of the predicted and the true value.\n")
    task = load_task(folder)
    assert (task.metric, task.lower_is_better) == ("rmsle", True)


def test_an_unknown_metric_name_is_asked_of_the_model_when_the_description_is_silent(tmp_path):
    folder = make_folder(tmp_path, "concrete")
    (folder / "task.json").write_text(json.dumps({"metric": "kaggle_error_7"}))
    (folder / "description.md").write_text("# Concrete\nPredict compressive_strength.\n")
    asked = []
    task = load_task(folder, ask_model=lambda prompt: asked.append(prompt) or '{"metric": "mae"}')
    assert task.metric == "mae" and "'kaggle_error_7'" in asked[0]
    message = assert_task_error(folder, "unknown metric", "'kaggle_error_7'", '"metric"', "metric.py:score")
    assert "rmse" in message and "accuracy" in message  # no model given: the known names and the way out


def test_a_task_brings_its_own_metric_as_code(tmp_path):
    folder = full_copy(tmp_path, "concrete")
    meta = json.loads((folder / "task.json").read_text())
    (folder / "task.json").write_text(json.dumps({**meta, "metric": "metric.py:score", "lower_is_better": True}))
    (folder / "metric.py").write_text("import numpy as np\n\ndef score(y_true, y_pred):\n"
                                      "    return float(np.max(np.abs(y_true - y_pred)))  # the worst error\n")
    task = load_task(folder)
    assert (task.metric, task.lower_is_better, task.prediction) == ("metric.py:score", True, "value")
    answers = pd.read_csv(folder / "private" / "answers.csv")
    submission = perfect_submission(task, tmp_path / "perfect.csv")
    off = pd.read_csv(submission)
    off.iloc[0, 1] += 7.5
    off.to_csv(tmp_path / "off.csv", index=False)
    assert grade_submission(task, submission).score == 0.0
    assert grade_submission(task, tmp_path / "off.csv").score == pytest.approx(7.5)
    assert Task.from_dict(task.to_dict()).metric == "metric.py:score" and len(answers)


@pytest.mark.parametrize("meta, fragments", [
    ({"metric": "metric.py:score"}, ['"lower_is_better": true or false']),
    ({"metric": "nope.py:score", "lower_is_better": True}, ["nope.py does not exist"]),
    ({"metric": "metric.py:missing", "lower_is_better": True}, ["defines no function missing"]),
])
def test_a_task_metric_that_cannot_be_used_is_named(tmp_path, meta, fragments):
    folder = make_folder(tmp_path, "concrete")
    (folder / "metric.py").write_text("def score(y_true, y_pred):\n    return 0.0\n")
    (folder / "task.json").write_text(json.dumps(meta))
    assert_task_error(folder, *fragments)


@pytest.mark.parametrize("metric, y_true, y_pred, expected", [
    # per-class F1: a 2/3 (precision 1/2... ): class a: tp1 fp1 fn0 -> 2/3; b: tp1 fp0 fn1 -> 2/3; c: tp2 -> 1
    ("f1_weighted", ["a", "b", "b", "c", "c"], ["a", "a", "b", "c", "c"], (2 / 3 * 1 + 2 / 3 * 2 + 1 * 2) / 5),
    # recall a 1/1, b 1/2, c 2/2 -> mean 5/6
    ("balanced_accuracy", ["a", "b", "b", "c", "c"], ["a", "a", "b", "c", "c"], 5 / 6),
    # ranks 1,2,3,4 against 1,3,2,4: d^2 = 0,1,1,0 -> 1 - 6*2/(4*15) = 0.8
    ("spearman", [1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0], 0.8),
    # log1p: (log 2 - log 1)^2 and 0 -> mean = log(2)^2 / 2
    ("msle", [0.0, 1.0], [1.0, 1.0], math.log(2) ** 2 / 2),
])
def test_more_metrics_against_a_hand_computation(metric, y_true, y_pred, expected):
    assert metrics.score(metric, np.array(y_true, dtype=object), np.array(y_pred, dtype=object)) == pytest.approx(expected)


def test_task_json_direction_contradicting_metric(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "task.json").write_text(json.dumps({"metric": "accuracy", "lower_is_better": True}))
    assert_task_error(folder, "lower_is_better", "fix")


def test_task_json_metric_alias_is_resolved(tmp_path):
    folder = make_folder(tmp_path, "tweets")
    (folder / "task.json").write_text(json.dumps({"metric": "roc_auc"}))
    assert load_task(folder).metric == "auc"


@pytest.mark.parametrize(
    "metric, prediction", [("logloss", "probability"), ("auc", "probability"), ("f1", "label"), ("accuracy", "label")]
)
def test_prediction_follows_metric_for_binary_target(tmp_path, metric, prediction):
    folder = make_folder(tmp_path)
    (folder / "task.json").write_text(json.dumps({"metric": metric}))
    task = load_task(folder)
    assert (task.metric, task.kind, task.prediction) == (metric, "binary", prediction)


def test_invalid_task_json(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "task.json").write_text("{not json")
    assert_task_error(folder, "task.json", "json object")


def test_no_metric_in_description_and_no_model(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "description.md").write_text("# Titanic\nPredict Survived for each passenger.\n")
    message = assert_task_error(folder, "no recognisable evaluation metric", "task.json", '"metric"')
    assert "logloss" in message


# ------------------------------------------------------------------------------- model fallback


def no_metric_folder(tmp_path: Path) -> Path:
    folder = make_folder(tmp_path, "concrete")
    (folder / "description.md").write_text("# Concrete\nPredict compressive_strength. Scored by the usual error.\n")
    return folder


def test_ask_model_fallback_parses_fenced_json(tmp_path):
    prompts = []

    def fake_model(prompt: str) -> str:
        prompts.append(prompt)
        return 'Sure.\n```json\n{"metric": "mae", "lower_is_better": true}\n```\n'

    task = load_task(no_metric_folder(tmp_path), ask_model=fake_model)
    assert (task.metric, task.lower_is_better, task.prediction) == ("mae", True, "value")
    assert len(prompts) == 1
    assert "compressive_strength" in prompts[0] and "rmse" in prompts[0] and "Scored by the usual error" in prompts[0]


def test_ask_model_alias_and_registry_direction(tmp_path):
    task = load_task(no_metric_folder(tmp_path), ask_model=lambda p: '{"metric": "R2", "lower_is_better": true}')
    assert (task.metric, task.lower_is_better) == ("r2", False)


def test_ask_model_not_called_when_description_names_metric(tmp_path):
    def exploding_model(prompt: str) -> str:
        raise AssertionError("should not be asked")

    assert load_task(make_folder(tmp_path), ask_model=exploding_model).metric == "accuracy"


@pytest.mark.parametrize("answer", ["I think it is RMSE", '{"metric": "weighted pinball"}', "```json\n{broken\n```"])
def test_ask_model_malformed_or_unknown_answer(tmp_path, answer):
    assert_task_error(no_metric_folder(tmp_path), "model", "task.json", '"metric"', ask_model=lambda p: answer)


def test_ask_model_failure_becomes_task_error(tmp_path):
    def failing_model(prompt: str) -> str:
        raise RuntimeError("connection refused")

    assert_task_error(no_metric_folder(tmp_path), "connection refused", "task.json", ask_model=failing_model)


def test_metric_question_template_formats():
    text = METRIC_QUESTION.format(description="D", known_metrics="rmse: x", target_columns="y")
    assert '{"metric": "rmse", "lower_is_better": true}' in text


# ------------------------------------------------------------------------------- metric detection


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Submissions are scored on the root mean squared error.", ("rmse", True)),
        ("Root-Mean-Square Error (RMSE)", ("rmse", True)),
        ("We use the mean squared error.", ("mse", True)),
        ("Root Mean Squared Logarithmic Error", ("rmsle", True)),
        ("area under the ROC curve; higher is better", ("auc", False)),
        ("Metric: AUC", ("auc", False)),
        ("logarithmic loss", ("logloss", True)),
        ("Multi-class log loss", ("logloss", True)),
        ("Accuracy of the predicted labels", ("accuracy", False)),
        ("Mean Absolute Error", ("mae", True)),
        ("mean absolute percentage error", ("mape", True)),
        ("the F1 score of the positive class", ("f1", False)),
        ("macro-averaged F1", ("f1_macro", False)),
        ("F1 macro over the classes", ("f1_macro", False)),  # longest match beats "F1" at the same start
        ("RMSLE, the root mean squared log error", ("rmsle", True)),
        ("coefficient of determination (R^2)", ("r2", False)),
        ("quadratic weighted kappa", ("qwk", False)),
    ],
)
def test_detect_metric(text, expected):
    assert metrics.detect_metric(text) == expected


def test_detect_metric_prefers_evaluation_section_and_handles_ambiguity():
    text = "# T\nEarlier work reported accuracy.\n## Evaluation\nLog loss. Lower is better.\n## Files\nx\n"
    assert metrics.detect_metric(text) == ("logloss", True)
    assert metrics.detect_metric("Accuracy. Lower is better.") is None  # contradictory direction
    assert metrics.detect_metric("Predict the price of a house.") is None
    assert metrics.detect_direction("the higher the better") is False
    assert metrics.detect_direction("lower is better") is True


def test_metric_functions():
    assert metrics.score("rmse", [1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.score("mae", [1, 2, 3], [2, 2, 2]) == pytest.approx(2 / 3)
    assert metrics.score("accuracy", [1, 0, 1, 1], ["1", "0.0", 0, 1]) == pytest.approx(0.75)
    assert metrics.score("auc", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.score("logloss", [1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    uniform = np.full((3, 3), 1 / 3)
    assert metrics.score("logloss", ["a", "b", "c"], uniform, labels=["a", "b", "c"]) == pytest.approx(math.log(3))
    assert metrics.score("r2", [1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert metrics.score("f1", ["yes", "no", "yes"], ["yes", "yes", "yes"]) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        metrics.score("rmsle", [1, 2], [-1, 2])
    for metric in metrics.METRICS.values():
        assert isinstance(metric.lower_is_better, bool) and metric.task_type in ("classification", "regression")


# ------------------------------------------------------------------------------- data summary


@pytest.mark.parametrize("name", NAMES)
def test_data_summary_is_short_and_informative(tasks, name):
    task = tasks[name]
    text = data_summary(task)
    assert len(text) <= 1500
    assert task.target in text and task.metric in text
    train_columns = pd.read_csv(task.path(task.train_file), nrows=1).columns
    for column in train_columns:
        assert column in text
    assert "train.csv" in text and "test.csv" in text


def test_data_summary_distribution_and_truncation(tasks):
    titanic = data_summary(tasks["titanic"])
    assert "61.8%" in titanic and "20% missing" in titanic  # class shares and Age's missing rate
    assert "mean 35.8" in data_summary(tasks["concrete"])
    short = data_summary(tasks["titanic"], max_chars=400)
    assert len(short) <= 400 and "more columns" in short


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", NAMES)
def test_sample_submission_is_valid(tasks, name):
    task = tasks[name]
    assert validate_submission(task, task.path(task.sample_submission_file)) == []


def test_missing_and_unreadable_submission(tasks, tmp_path):
    task = tasks["titanic"]
    assert "does not exist" in validate_submission(task, tmp_path / "none.csv")[0]
    (tmp_path / "empty.csv").write_text("")
    assert "cannot be read" in validate_submission(task, tmp_path / "empty.csv")[0]


def test_wrong_ids(tasks, tmp_path):
    task = tasks["titanic"]
    sub = sample_copy(task)
    sub.loc[0, "id"] = 999999
    problems = validate_submission(task, write(sub, tmp_path))
    assert any("missing" in p for p in problems) and any("not in the test set" in p for p in problems)
    sub = sample_copy(task)
    sub.loc[1, "id"] = sub.loc[0, "id"]
    problems = validate_submission(task, write(sub, tmp_path))
    assert any("duplicated" in p for p in problems)


def test_reordered_rows_and_float_ids_are_valid(tasks, tmp_path):
    task = tasks["titanic"]
    sub = sample_copy(task).sample(frac=1.0, random_state=0)
    sub["id"] = sub["id"].astype(float)
    assert validate_submission(task, write(sub, tmp_path)) == []


def test_wrong_columns_and_row_count(tasks, tmp_path):
    task = tasks["penguins"]
    sub = sample_copy(task)
    problems = validate_submission(task, write(sub[["id", "Gentoo", "Adelie", "Chinstrap"]], tmp_path))
    assert any("must be exactly" in p for p in problems)
    problems = validate_submission(task, write(sub.rename(columns={"Gentoo": "gentoo"}), tmp_path))
    assert any("must be exactly" in p for p in problems)
    problems = validate_submission(task, write(sub.iloc[:-3], tmp_path))
    assert any("rows but must have" in p for p in problems)


def test_nan_and_inf_cells(tasks, tmp_path):
    task = tasks["concrete"]
    sub = sample_copy(task)
    sub.loc[0, "compressive_strength"] = np.nan
    sub.loc[1, "compressive_strength"] = np.inf
    problems = validate_submission(task, write(sub, tmp_path))
    assert any("NaN" in p for p in problems) and any("infinite" in p for p in problems)
    titanic = tasks["titanic"]
    labels = sample_copy(titanic)
    labels["Survived"] = labels["Survived"].astype(float)
    labels.loc[0, "Survived"] = np.nan
    assert any("NaN" in p for p in validate_submission(titanic, write(labels, tmp_path)))


def test_probabilities_out_of_range(tasks, tmp_path):
    tweets = tasks["tweets"]
    sub = sample_copy(tweets)
    sub.loc[0, "is_android"] = 1.5
    assert any("outside [0, 1]" in p for p in validate_submission(tweets, write(sub, tmp_path)))
    penguins = tasks["penguins"]
    sub = sample_copy(penguins)
    sub.loc[0, "Adelie"] = -0.1
    assert any("outside [0, 1]" in p for p in validate_submission(penguins, write(sub, tmp_path)))


def test_probabilities_out_of_range_are_mapped_as_the_metric_reads_them(tasks, tmp_path):
    """A script's probabilities above 1 score on validation after the metric's own mapping; its
    submission, mapped the same way, scores the same and is valid instead of refused."""
    rng = np.random.default_rng(0)
    penguins = tasks["penguins"]
    sub = sample_copy(penguins)
    columns = list(penguins.target_columns)
    raw = rng.uniform(0.01, 1.5, size=(len(sub), len(columns)))
    sub[columns] = raw
    path = write(sub, tmp_path)
    truth = rng.choice(columns, size=len(sub))
    logloss = metrics.METRICS["logloss"].fn
    assert bring_probabilities_into_range(penguins, path)
    mapped = pd.read_csv(path)
    assert validate_submission(penguins, path) == []
    assert mapped[penguins.id_column].tolist() == sub[penguins.id_column].tolist()
    assert np.allclose(mapped[columns].sum(axis=1), 1.0)
    assert logloss(truth, mapped[columns].to_numpy(), columns) == pytest.approx(logloss(truth, raw, columns))

    tweets = tasks["tweets"]  # AUC: only the order counts, so the scores are rescaled, not clipped
    sub = sample_copy(tweets)
    raw = rng.normal(0.5, 1.0, size=len(sub))
    sub["is_android"] = raw
    path = write(sub, tmp_path)
    assert bring_probabilities_into_range(tweets, path)
    mapped = pd.read_csv(path)["is_android"].to_numpy()
    assert validate_submission(tweets, path) == [] and mapped.min() == 0.0 and mapped.max() == 1.0
    assert (np.argsort(mapped, kind="stable") == np.argsort(raw, kind="stable")).all()


def test_the_submit_check_maps_probabilities_instead_of_asking_the_debugger(tasks, tmp_path):
    from types import SimpleNamespace

    from nodes.submit import submission_check
    task = tasks["penguins"]
    sub = sample_copy(task)
    sub[list(task.target_columns)] = 1.5  # out of range: the debugger would be asked to fix it
    write(sub, tmp_path)
    assert submission_check(task)(SimpleNamespace(attempt_dir=str(tmp_path))) is None
    assert np.allclose(pd.read_csv(tmp_path / "submission.csv")[list(task.target_columns)], 1 / 3)
    sub[task.id_column] = sub[task.id_column].iloc[::-1].to_numpy()[0]  # one id everywhere: not ours to fix
    write(sub, tmp_path)
    assert "duplicated" in submission_check(task)(SimpleNamespace(attempt_dir=str(tmp_path)))


def test_only_finite_probabilities_are_mapped(tasks, tmp_path):
    penguins = tasks["penguins"]
    sub = sample_copy(penguins)
    sub.loc[0, penguins.target_columns[0]] = np.nan
    sub.loc[1, penguins.target_columns[0]] = 1.5
    path = write(sub, tmp_path)
    before = path.read_bytes()
    assert not bring_probabilities_into_range(penguins, path)
    assert path.read_bytes() == before and validate_submission(penguins, path)
    huge = sample_copy(penguins).iloc[[0] * 200_000]  # far more rows than a submission has: never parsed
    huge[list(penguins.target_columns)] = 1.5
    path = write(huge, tmp_path)
    assert not bring_probabilities_into_range(penguins, path) and validate_submission(penguins, path)
    concrete = tasks["concrete"]  # not probabilities: left alone
    values = sample_copy(concrete)
    values["compressive_strength"] = 30.0
    path = write(values, tmp_path)
    assert not bring_probabilities_into_range(concrete, path) and validate_submission(concrete, path) == []


def test_labels_outside_classes(tasks, tmp_path):
    task = tasks["titanic"]
    sub = sample_copy(task)
    sub["Survived"] = 0.3  # probabilities where labels are expected
    assert any("outside the classes" in p for p in validate_submission(task, write(sub, tmp_path)))


def test_non_numeric_values(tasks, tmp_path):
    task = tasks["concrete"]
    sub = sample_copy(task)
    sub["compressive_strength"] = sub["compressive_strength"].astype(object)
    sub.loc[0, "compressive_strength"] = "high"
    assert any("non-numeric" in p for p in validate_submission(task, write(sub, tmp_path)))


# ------------------------------------------------------------------------------- grading


@pytest.mark.parametrize("name", NAMES)
def test_sample_submission_grade(tasks, name):
    task = tasks[name]
    grade = grade_submission(task, task.path(task.sample_submission_file))
    assert isinstance(grade, Grade) and grade.valid and grade.problems == []
    assert (grade.metric, grade.lower_is_better) == (task.metric, task.lower_is_better)
    assert grade.score is not None
    baseline = BASELINES[name]
    if name == "penguins":  # the sample is uniform, the trivial baseline uses class priors
        assert grade.score == pytest.approx(math.log(3), abs=1e-9)
        assert grade.score >= baseline["trivial"]
    else:  # samples are constant predictions: majority class, train mean, base rate
        assert grade.score == pytest.approx(baseline["trivial"], rel=1e-4)


def test_known_trivial_scores(tasks):
    titanic = grade_submission(tasks["titanic"], tasks["titanic"].path("sample_submission.csv"))
    concrete = grade_submission(tasks["concrete"], tasks["concrete"].path("sample_submission.csv"))
    assert titanic.score == pytest.approx(0.618, abs=1e-3)
    assert concrete.score == pytest.approx(16.05, abs=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_perfect_submission_scores_perfectly(tasks, tmp_path, name):
    task = tasks[name]
    grade = grade_submission(task, perfect_submission(task, tmp_path / "perfect.csv"))
    assert grade.valid, grade.problems
    perfect = {"accuracy": 1.0, "auc": 1.0, "rmse": 0.0, "logloss": 0.0}[task.metric]
    assert grade.score == pytest.approx(perfect, abs=1e-9)


def test_grade_reordered_submission_matches(tasks, tmp_path):
    task = tasks["concrete"]
    perfect = pd.read_csv(perfect_submission(task, tmp_path / "p.csv"))
    perfect["compressive_strength"] += 1.0
    shuffled = write(perfect.sample(frac=1.0, random_state=1), tmp_path, "shuffled.csv")
    assert grade_submission(task, shuffled).score == pytest.approx(1.0)


def test_invalid_submission_gets_no_score(tasks, tmp_path):
    task = tasks["titanic"]
    sub = sample_copy(task).iloc[:-1]
    grade = grade_submission(task, write(sub, tmp_path))
    assert not grade.valid and grade.score is None and grade.problems


def test_grade_without_answers_is_valid_but_unscored(tmp_path):
    task = load_task(make_folder(tmp_path))
    grade = grade_submission(task, task.path(task.sample_submission_file))
    assert grade.valid and grade.score is None
    answers = EXAMPLES / "titanic" / "private" / "answers.csv"
    scored = grade_submission(task, task.path(task.sample_submission_file), answers_path=str(answers))
    assert scored.score == pytest.approx(BASELINES["titanic"]["trivial"], rel=1e-4)


# --- hostile task folders: the name, links out of the public data, ids that no submission can match ---

def full_copy(tmp_path: Path, name: str = "titanic") -> Path:
    """A copy of an example with its task.json, public/ and private/ folders."""
    return Path(shutil.copytree(EXAMPLES / name, tmp_path / name))


@pytest.mark.parametrize("bad", ["../../../../tmp/x", "/tmp/elsewhere", ".hidden", "a/b", 7])
def test_a_task_name_that_would_leave_the_workspace_is_refused(tmp_path, bad):
    folder = full_copy(tmp_path)
    meta = json.loads((folder / "task.json").read_text())
    (folder / "task.json").write_text(json.dumps({**meta, "name": bad}))
    assert_task_error(folder, 'task.json "name"', "not a valid task name", "fix \"name\"")


def test_a_folder_name_with_odd_characters_becomes_a_safe_task_name(tmp_path):
    folder = make_folder(tmp_path)
    odd = folder.rename(tmp_path / "my task (v2)")
    assert load_task(odd).name == "my-task-v2-"


def test_a_link_from_the_public_data_to_the_hidden_answers_is_refused(tmp_path):
    folder = full_copy(tmp_path)
    os.symlink(folder / "private" / "answers.csv", folder / "public" / "extra.csv")
    assert_task_error(folder, "extra.csv is a link to", "answers.csv", "copy the file")


def test_a_link_out_of_the_task_folder_is_refused_and_one_inside_the_public_data_is_not(tmp_path):
    folder = full_copy(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a,b\n1,2\n")
    os.symlink(outside, folder / "public" / "extra.csv")
    assert_task_error(folder, "extra.csv is a link to", "outside the task's public data")
    (folder / "public" / "extra.csv").unlink()
    os.symlink(folder / "public" / "train.csv", folder / "public" / "train_copy.csv")
    assert "train_copy.csv" in load_task(folder).data_files


def test_repeated_test_ids_are_refused_when_the_task_is_loaded(tmp_path):
    folder = make_folder(tmp_path)
    test = pd.read_csv(folder / "test.csv")
    test.iloc[[1]] = test.iloc[[0]].to_numpy()
    test.to_csv(folder / "test.csv", index=False)
    assert_task_error(folder, "test.csv has 1 repeated id(s)", "fix test.csv")


def test_sample_submission_ids_that_differ_from_the_test_ids_are_refused(tmp_path):
    folder = make_folder(tmp_path)
    sample = pd.read_csv(folder / "sample_submission.csv")
    sample.loc[0, "id"] = -5
    sample.to_csv(folder / "sample_submission.csv", index=False)
    message = assert_task_error(folder, "differ from those of test.csv", "1 only in sample_submission.csv (e.g. -5)")
    assert "1 only in test.csv" in message


def test_a_submission_far_larger_than_the_test_set_needs_is_refused_before_it_is_read(tmp_path, tasks):
    task = tasks["titanic"]
    good = perfect_submission(task, tmp_path / "good.csv")
    huge = tmp_path / "huge.csv"
    with open(huge, "w") as f:
        f.write(good.read_text())
        f.write(("9" * 1000 + "\n") * 2000)  # 2 MB of junk rows, beyond what the test rows can take
    rows = len(pd.read_csv(task.path(task.test_file)))
    problems = validate_submission(task, huge)
    assert len(problems) == 1 and f"far more than {rows} rows of 2 columns need" in problems[0]
    assert validate_submission(task, good) == []
