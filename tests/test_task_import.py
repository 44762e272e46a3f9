"""Task import: an MLE-bench prepared competition (fixture folder) and a Kaggle download (fake downloader)."""

from __future__ import annotations

import importlib.machinery
import io
import shutil
import sys
import types
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime.task import grade_submission, load_task
from runtime.task_import import TaskImportError, import_kaggle, import_mlebench, map_metric_name
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "mlebench" / "seed-germination"
ANSWERS = FIXTURE / "prepared" / "private" / "test.csv"


def write_submission(path: Path, ids, values) -> Path:
    pd.DataFrame({"seed_id": ids, "germinated": values}).to_csv(path, index=False)
    return path


def test_mlebench_import_is_loadable_and_grades_perfect_best_and_wrong_worse(tmp_path):
    dest = import_mlebench(FIXTURE, tmp_path / "seeds")
    task = load_task(dest)
    assert (task.name, task.metric, task.lower_is_better) == ("seeds", "accuracy", False)
    assert (task.id_column, task.target, task.kind) == ("seed_id", "germinated", "binary")

    truth = pd.read_csv(ANSWERS)
    perfect = grade_submission(task, write_submission(tmp_path / "perfect.csv", truth.seed_id, truth.germinated))
    wrong = grade_submission(task, write_submission(tmp_path / "wrong.csv", truth.seed_id, ~truth.germinated))
    assert perfect.valid and perfect.score == 1.0
    assert wrong.valid and wrong.score < perfect.score


def test_answers_stay_out_of_what_the_agent_sees(tmp_path):
    dest = import_mlebench(FIXTURE, tmp_path / "seeds")
    task = load_task(dest)
    assert Path(task.answers_path) == dest / "private" / "answers.csv"
    assert pd.read_csv(task.answers_path).columns.tolist() == ["seed_id", "germinated"]
    assert not (Path(task.data_dir) / "answers.csv").exists()
    assert "germinated" not in pd.read_csv(task.path(task.test_file)).columns
    truth = pd.read_csv(ANSWERS)
    for name in task.data_files:  # no public file pairs the test ids with their labels
        if name.endswith(".csv"):
            public = pd.read_csv(task.path(name))
            if {"seed_id", "germinated"} <= set(public.columns) and set(public.seed_id) == set(truth.seed_id):
                merged = public.merge(truth, on="seed_id", suffixes=("", "_truth"))
                assert not (merged.germinated == merged.germinated_truth).all(), name


def test_refuses_an_existing_non_empty_dest_and_leaves_it_alone(tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(TaskImportError, match="already exists and is not empty"):
        import_mlebench(FIXTURE, dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_task(import_mlebench(FIXTURE, empty)).answers_path


def copy_fixture(tmp_path: Path, grader: str) -> Path:
    src = tmp_path / "src" / "seed-germination"
    shutil.copytree(FIXTURE, src)
    config = src / "config.yaml"
    config.write_text(config.read_text().replace("name: accuracy", f"name: {grader}"))
    return src


def test_unknown_metric_names_it_and_asks_for_metric_option_leaving_nothing(tmp_path):
    src = copy_fixture(tmp_path, "dice-coefficient")
    with pytest.raises(TaskImportError) as err:
        import_mlebench(src, tmp_path / "out")
    assert "dice-coefficient" in str(err.value) and "--metric" in str(err.value)
    with pytest.raises(TaskImportError, match="Unknown --metric 'bleu'"):
        import_mlebench(src, tmp_path / "out", metric="bleu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no folder, no leftover staging folder
    assert load_task(import_mlebench(src, tmp_path / "out", metric="accuracy")).metric == "accuracy"


def test_answers_without_the_target_fail_late_without_a_half_written_folder(tmp_path):
    src = copy_fixture(tmp_path, "accuracy")
    answers = src / "prepared" / "private" / "test.csv"
    pd.read_csv(answers).drop(columns="germinated").to_csv(answers, index=False)
    with pytest.raises(TaskImportError, match=r"lack the column\(s\) \['germinated'\]"):
        import_mlebench(src, tmp_path / "out")  # fails after public/ and task.json were written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_mlebench_metric_names_map_to_ours():
    assert map_metric_name("root-mean-squared-error") == "rmse"
    assert map_metric_name("multi-class-log-loss") == "logloss"
    assert map_metric_name("quadratic-weighted-kappa") == "qwk"
    assert map_metric_name("auc-roc") == "auc"
    assert map_metric_name("Categorization Accuracy") == "accuracy"
    assert map_metric_name("mean-column-wise-rmsle") is None  # an average over targets is not our rmsle
    assert map_metric_name("MAP@3") == "map@3"
    assert map_metric_name("mean-column-wise-roc-auc") == "mean_column_auc"
    assert map_metric_name("dice-coefficient") is None


def test_not_a_prepared_competition_is_a_clear_error(tmp_path):
    with pytest.raises(TaskImportError, match="mlebench prepare"):
        import_mlebench(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# Kaggle


def kaggle_zip() -> bytes:
    """A competition zip as Kaggle serves it: flat CSVs, the sample under its own name, train zipped again."""
    rows = [(i, f"w{i % 3}", 10 + i, 2.5 * i + (i % 4)) for i in range(30)]
    train = "row_id,group,x,y\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("train.csv", train)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("train.csv.zip", inner.getvalue())
        zf.writestr("test.csv", "row_id,group,x\n" + "".join(f"{100 + i},w{i % 3},{i}\n" for i in range(8)))
        zf.writestr("sampleSubmission.csv", "row_id,y\n" + "".join(f"{100 + i},0\n" for i in range(8)))
    return outer.getvalue()


def fake_download(info: dict | None):
    calls = []

    def download(competition: str, folder: Path):
        calls.append(competition)
        (folder / f"{competition}.zip").write_bytes(kaggle_zip())
        return info

    return download, calls


def test_kaggle_import_with_a_fake_downloader_is_runnable_not_gradable(tmp_path):
    download, calls = fake_download({"title": "Widget Yield", "description": "Predict y for each widget.",
                                     "evaluation_metric": "Root Mean Squared Error"})
    dest = import_kaggle("https://www.kaggle.com/competitions/widget-yield", tmp_path / "widgets", download=download)
    assert calls == ["widget-yield"]
    task = load_task(dest)
    assert (task.metric, task.target, task.id_column, task.kind) == ("rmse", "y", "row_id", "regression")
    assert task.answers_path is None
    assert sorted(p.name for p in (dest / "public").iterdir()) == [
        "description.md", "sample_submission.csv", "test.csv", "train.csv"]
    assert "Widget Yield" in task.description and "widget-yield" in task.description
    sample = task.path(task.sample_submission_file)
    assert grade_submission(task, sample).valid and grade_submission(task, sample).score is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["widgets"]  # the download and staging are gone


def test_kaggle_metric_must_be_known_or_given(tmp_path):
    download, _ = fake_download({"evaluation_metric": "Dice Coefficient"})
    with pytest.raises(TaskImportError, match="Dice Coefficient.*--metric"):
        import_kaggle("widget-yield", tmp_path / "a", download=download)
    download, _ = fake_download(None)  # no metadata at all: a stub description, the metric from --metric
    with pytest.raises(TaskImportError, match="--metric"):
        import_kaggle("widget-yield", tmp_path / "a", download=download)
    assert list(tmp_path.iterdir()) == []
    task = load_task(import_kaggle("widget-yield", tmp_path / "a", metric="mae", download=download))
    assert task.metric == "mae" and "https://www.kaggle.com/competitions/widget-yield" in task.description


def test_kaggle_without_the_package_says_pip_install_kaggle(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.setitem(sys.modules, "kaggle", None)  # an import of kaggle now fails, installed or not
    with pytest.raises(TaskImportError, match="pip install kaggle"):
        import_kaggle("titanic", tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_kaggle_without_credentials_says_how_to_set_them(tmp_path, monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    installed = types.ModuleType("kaggle")  # looks installed; it must not be imported without credentials
    installed.__spec__ = importlib.machinery.ModuleSpec("kaggle", None)
    monkeypatch.setitem(sys.modules, "kaggle", installed)
    with pytest.raises(TaskImportError) as err:
        import_kaggle("titanic", tmp_path / "t")
    message = str(err.value)
    assert "kaggle.json" in message and "KAGGLE_USERNAME" in message and "pip install" not in message
    assert not (tmp_path / "t").exists()


# ---------------------------------------------------------------------------------------------
# CLI


def invoke(*args: str):
    from graph.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_import_mlebench_then_grade(tmp_path):
    dest = tmp_path / "seeds"
    result = invoke("import", f"mlebench:{FIXTURE}", str(dest))
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "private/answers.csv" in result.output
    truth = pd.read_csv(ANSWERS)
    graded = invoke("grade", str(dest), str(write_submission(tmp_path / "s.csv", truth.seed_id, truth.germinated)))
    assert graded.exit_code == 0 and "accuracy = 1" in graded.output

    again = invoke("import", f"mlebench:{FIXTURE}", str(dest))
    assert again.exit_code == 2 and "already exists" in again.output
    unknown = invoke("import", "somewhere:else", str(tmp_path / "x"))
    assert unknown.exit_code == 2 and "mlebench:PATH" in unknown.output
