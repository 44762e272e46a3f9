"""The suite harness: grading, medals, normalised scores, resumed suite runs, the jail around competitors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import runner
from bench.runner import Record, parse_budget, read_records, run_suite
from bench.suite import Reference, load_suite, medal, normalised_score, visible_copy
from bench.systems import Baseline, Launch, MleStar, Outcome, make_systems, mlestar_soft_budget
from runtime.sandbox import bwrap_problem
from runtime.task import TaskError
from tests.conftest import EXAMPLES, ROOT, SCRIPTED

pytestmark = pytest.mark.slow  # runs the benchmark harness end to end


@pytest.fixture
def suite(tmp_path) -> Path:
    """Two small bundled tasks and their thresholds, as a suite folder of their own."""
    root = tmp_path / "suite"
    root.mkdir()
    for name in ("penguins", "concrete"):
        shutil.copytree(EXAMPLES / name, root / name)
    shutil.copy(EXAMPLES / "baselines.json", root / "baselines.json")
    return root


@pytest.mark.parametrize("text,seconds", [("20m", 1200), ("90s", 90), ("1h30m", 5400), ("45", 45), ("1.5m", 90)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "-5m", "20 minutes"])
def test_parse_budget_rejects_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="Budget"):
        parse_budget(text)


def test_medals_follow_the_metric_direction_and_ties_earn_the_medal():
    accuracy = Reference(trivial=0.6, bronze=0.8, silver=0.85, gold=0.9)
    assert [medal(s, False, accuracy) for s in (0.95, 0.9, 0.86, 0.8, 0.79, None)] == \
        ["gold", "gold", "silver", "bronze", None, None]
    rmse = Reference(trivial=16.0, bronze=4.2, silver=4.1, gold=4.0)
    assert [medal(s, True, rmse) for s in (3.9, 4.05, 4.2, 4.3)] == ["gold", "silver", "bronze", None]
    assert medal(0.99, False, Reference()) is None  # a task without thresholds earns none


def test_normalised_score_is_zero_at_trivial_and_one_at_gold_in_both_directions():
    accuracy = Reference(trivial=0.6, gold=0.9)
    assert normalised_score(0.6, False, accuracy) == pytest.approx(0.0)
    assert normalised_score(0.75, False, accuracy) == pytest.approx(0.5)
    rmse = Reference(trivial=16.0, gold=4.0)
    assert normalised_score(4.0, True, rmse) == pytest.approx(1.0)
    assert normalised_score(10.0, True, rmse) == pytest.approx(0.5)
    assert normalised_score(20.0, True, rmse) < 0  # worse than trivial
    assert normalised_score(0.7, False, Reference(trivial=0.6)) is None


def test_load_suite_reads_tasks_and_thresholds(suite):
    tasks = load_suite(suite)
    assert [t.name for t in tasks] == ["concrete", "penguins"]
    penguins = tasks[1]
    assert penguins.task.lower_is_better and penguins.reference.gold == pytest.approx(0.0191239)
    assert [t.name for t in load_suite(suite, ["penguins"])] == ["penguins"]


def test_load_suite_names_what_is_wrong(suite, tmp_path):
    with pytest.raises(TaskError, match="no task titanic"):
        load_suite(suite, ["titanic"])
    shutil.rmtree(suite / "concrete" / "private")
    with pytest.raises(TaskError, match="no hidden answers"):
        load_suite(suite)
    with pytest.raises(TaskError, match="does not exist"):
        load_suite(tmp_path / "nowhere")
    (suite / "baselines.json").write_text("{broken")
    with pytest.raises(TaskError, match="not valid JSON"):
        load_suite(suite, ["penguins"])


def test_visible_copy_holds_no_answers(suite, tmp_path):
    task = load_suite(suite, ["penguins"])[0].task
    dest = visible_copy(task, tmp_path / "seen")
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert "task.json" in files and "public/train.csv" in files
    assert not any("answers" in f or "private" in f for f in files)


def test_mlestar_stops_asking_the_model_before_the_hard_kill():
    assert mlestar_soft_budget(1200) == 1080
    assert mlestar_soft_budget(100) == 80  # at least 20 s kept back
    assert mlestar_soft_budget(40) == 20  # never more than half


def test_unknown_system_and_missing_model_endpoint_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown system autogluon"):
        make_systems(["mlestar", "autogluon"], "local", [])


def test_suite_run_grades_mlestar_and_a_baseline_then_resumes_without_redoing(suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the scripted model lives in tests/
    settings = ["num_lanes=1", "num_candidates=1", "refine_steps=0", "ensemble_rounds=0", "debug_rounds=1"]
    systems = {"mlestar": MleStar(SCRIPTED, settings), "trivial": Baseline("trivial")}
    tasks = load_suite(suite)
    out = tmp_path / "out"
    seen = []
    records = run_suite(suite, out, systems, tasks, seeds=1, budget_s=300,
                        on_record=lambda r, reused: seen.append((r.system, r.task, reused)))
    assert [(r.system, r.task) for r in records] == [("mlestar", "concrete"), ("trivial", "concrete"),
                                                     ("mlestar", "penguins"), ("trivial", "penguins")]
    by_key = {(r.system, r.task): r for r in records}
    for record in records:
        assert record.valid and record.status == "finished", record
        assert record.score is not None and record.normalised is not None
    assert by_key[("trivial", "concrete")].normalised == pytest.approx(0.0, abs=0.02)
    assert by_key[("mlestar", "concrete")].normalised > 0.5  # the catalog's LightGBM is far above trivial
    assert by_key[("mlestar", "concrete")].model_calls > 0 and by_key[("mlestar", "concrete")].tokens_in > 0
    assert by_key[("trivial", "penguins")].medal is None
    table = (out / "table.md").read_text()
    assert "| concrete | mlestar |" in table and "valid submissions" in table
    assert (out / "scores.png").stat().st_size > 1000

    # A killed suite run: the last record was torn mid-write. Rerun: only that attempt is redone.
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    seen.clear()
    again = run_suite(suite, out, systems, tasks, seeds=1, budget_s=300,
                      on_record=lambda r, reused: seen.append((r.system, r.task, reused)))
    assert seen == [("mlestar", "concrete", True), ("trivial", "concrete", True),
                    ("mlestar", "penguins", True), ("trivial", "penguins", False)]
    assert [r.score for r in again] == pytest.approx([r.score for r in records])
    assert len(read_records(out / "results.jsonl")) == 4


class LeakProbe:
    """A competitor that tries to read the hidden answers, then submits the sample submission."""

    name = "probe"

    def __init__(self, answers: Path):
        self.answers = answers

    def launch(self, attempt) -> Launch:
        code = (f"import pathlib, shutil\n"
                f"p = pathlib.Path({str(self.answers)!r})\n"
                f"pathlib.Path('leak.txt').write_text('read' if p.exists() else 'hidden')\n"
                f"shutil.copy('task/public/sample_submission.csv', 'submission.csv')\n")
        return Launch([sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"}, jailed=True)

    def outcome(self, attempt) -> Outcome:
        return Outcome(attempt.work / "submission.csv", notes=(attempt.work / "leak.txt").read_text())


@pytest.mark.skipif(bwrap_problem() is not None, reason="bubblewrap cannot sandbox here (CI requires it)")
def test_a_jailed_competitor_cannot_read_the_answers(suite, tmp_path):
    task = load_suite(suite, ["penguins"])[0]
    answers = Path(task.task.answers_path)
    assert answers.exists()
    records = run_suite(suite, tmp_path / "out", {"probe": LeakProbe(answers)}, [task], seeds=1, budget_s=60)
    assert records[0].notes == "hidden" and records[0].jail == "bwrap"
    assert records[0].valid  # the jail still let it work and submit


def test_a_system_past_its_budget_is_killed_and_graded_on_what_it_left(suite, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "KILL_GRACE_S", 0)

    class Sleeper(LeakProbe):
        def launch(self, attempt) -> Launch:
            code = "import shutil, time\nshutil.copy('task/public/sample_submission.csv', 'submission.csv')\ntime.sleep(60)"
            return Launch([sys.executable, "-c", code], {}, jailed=False)

        def outcome(self, attempt) -> Outcome:
            return Outcome(attempt.work / "submission.csv")

    task = load_suite(suite, ["penguins"])[0]
    record = run_suite(suite, tmp_path / "out", {"sleeper": Sleeper(Path("/"))}, [task], seeds=1, budget_s=3)[0]
    assert record.status == "timeout" and record.wall_s < 20
    assert record.valid  # the sample submission it wrote before the kill is graded


def test_records_round_trip_through_jsonl(tmp_path):
    record = Record("mlestar", "t", 0, 60.0, "finished", True, 0.5, "bronze", 0.4, 12.0, 3, 100, 50, "s.csv", [],
                    "", "own sandbox", "2026-12-02T00:00:00")
    runner.append_record(tmp_path / "r.jsonl", record)
    assert read_records(tmp_path / "r.jsonl") == [record]
    assert json.loads((tmp_path / "r.jsonl").read_text())["medal"] == "bronze"
