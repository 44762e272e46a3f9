"""The ablation study by edits: the coder proposes variants of the solution as SEARCH/REPLACE edits (a short
answer), the agent runs each one, scores it from its saved predictions and writes the findings itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nodes.debug import execute
from nodes.refine import ablate, conclude_step, findings
from nodes.report_data import ablation_effects, run_attempts
from runtime.journal import open_journal
from runtime.parsing import AnswerError, variants_parser
from tests.conftest import calls, example, malformed_context, prepared
from tests.scripted_model import edit

CODE = "import numpy as np\nTREES = 100\nDEPTH = 3\nprint(TREES * DEPTH)\n"


def test_variants_are_parsed_as_edits_of_the_script():
    answer = ("### Variant: fewer trees\n" + edit("TREES = 100", "TREES = 10")
              + "### Variant: unchanged\n" + edit("DEPTH = 3", "DEPTH = 3")
              + "## Variant: shallow\n" + edit("DEPTH = 3", "DEPTH = 1"))
    variants = variants_parser(CODE)(answer)
    assert [name for name, _ in variants] == ["fewer trees", "shallow"]  # a variant that changes nothing is dropped
    assert variants[0][1] == CODE.replace("TREES = 100", "TREES = 10")
    assert variants[1][1] == CODE.replace("DEPTH = 3", "DEPTH = 1")


def test_a_variant_written_out_as_a_whole_script_counts_and_gets_the_imports_back():
    """The 1.5B model often ignores the edit format: the script it wrote (from below the imports) still runs."""
    body = CODE.replace("import numpy as np\n", "").replace("TREES = 100", "TREES = 10")
    truncated = "### Variant: no depth\n```python\nTREES = 100\nDEPTH = (\n"  # cut off mid-script
    answer = f"### Variant: fewer trees\n```python\n{body}```\n" + truncated
    [(name, script)] = variants_parser(CODE)(answer)
    assert name == "fewer trees" and script.startswith("import numpy as np\n")
    assert script.replace("\n\n", "\n", 1) == CODE.replace("TREES = 100", "TREES = 10")


def test_a_bad_variant_is_skipped_when_another_one_is_usable():
    answer = ("### Variant: x\n" + edit("TREES = 7", "TREES = 1")
              + "### Variant: shallow\n" + edit("DEPTH = 3", "DEPTH = 1"))
    assert [name for name, _ in variants_parser(CODE)(answer)] == ["shallow"]


@pytest.mark.parametrize("answer, reason", [
    ("Remove the trees and see.", "no variant found"),
    ("### Variant: x\n" + edit("TREES = 7", "TREES = 1"), "variant 'x': edit 1: its SEARCH lines are not in the script"),
    ("### Variant: broken\n" + edit("DEPTH = 3", "DEPTH = (3"), "variant 'broken': after your edits"),
])
def test_unusable_variants_are_refused_with_a_reason_the_model_can_act_on(answer, reason):
    with pytest.raises(AnswerError, match=reason):
        variants_parser(CODE)(answer)


def test_findings_name_the_part_that_matters_and_the_change_that_helped():
    task = SimpleNamespace(metric="rmse", lower_is_better=True)
    study = {"original": 4.0, "variants": [{"name": "no cement ratio", "score": 6.5},
                                           {"name": "more trees", "score": 3.5},
                                           {"name": "crashes", "score": None}]}
    text = findings(study, task)
    assert "Validation rmse of the script as it is: 4." in text
    assert "With 'no cement ratio': 6.5 (worse by 2.5)." in text and "With 'more trees': 3.5 (better by 0.5)." in text
    assert "With 'crashes': it failed to run." in text
    assert "matters most is the one changed in 'no cement ratio'" in text and "'more trees' improved the score" in text
    accuracy = SimpleNamespace(metric="accuracy", lower_is_better=False)
    assert "matters most is the one changed in 'a'" in findings(
        {"original": 0.8, "variants": [{"name": "a", "score": 0.7}, {"name": "b", "score": 0.79}]}, accuracy)
    assert findings({"original": 0.8, "variants": [{"name": "a", "score": None}]}, accuracy).startswith("No variant ran")


def test_the_ablate_node_runs_each_variant_and_records_what_it_measured(tmp_path):
    ctx = malformed_context(tmp_path)
    state, runtime = prepared(ctx)
    code = example(state, "lightgbm")
    original = execute(ctx, state, code=code, exec_key="lane0/eval/lightgbm/d0").score
    lane = {**state, "lane": 0, "step": 0, "ablations": [], "solution": {"code": code, "score": original}}

    update = ablate(lane, runtime)
    [study] = update["ablations"]

    assert [v["name"] for v in study["variants"]] == ["other model size", "as it is"]
    assert study["original"] == original and all(v["score"] is not None for v in study["variants"])
    assert study["variants"][1]["score"] == pytest.approx(original)  # the comment changed nothing it computes
    assert "'other model size'" in study["summary"]
    journal = open_journal(ctx.journal_path)
    assert [row["exec_key"] for row in journal.db["executions"].rows_where("exec_key like 'lane0/t0/ablation/%'")] == [
        "lane0/t0/ablation/v0", "lane0/t0/ablation/v1"]
    assert len(calls(ctx, "lane0/t0/ablation%")) == 1  # one short answer, no reviewer call

    better = [(i, v) for i, v in enumerate(study["variants"]) if v["score"] > original]  # accuracy
    if better:  # the best of them is kept for the step's end, as a scored solution
        i, best = max(better, key=lambda iv: iv[1]["score"])
        assert update["variant"]["score"] == best["score"] and update["variant"]["origin"] == f"ablation:t0v{i}"
        assert update["variant"]["path"].endswith(f"v{i}")
    else:
        assert update["variant"] == {}

    run = {"run_id": "u1", "run_index": 0, "lanes": [{"lane": 0, "ablations": [study]}]}
    [effects] = ablation_effects({"history": [run]}, executions=[])
    assert [v["effect"] for v in effects["variants"]] == [v["score"] - original for v in study["variants"]]


def _step_state(before: float, rewrites: list[float | None], variant: float | None) -> dict:
    attempts = [{"plan": f"plan {k}", "score": score,
                 "solution": score and {"code": f"rewrite {k}", "score": score, "origin": f"refine:t0k{k}"}}
                for k, score in enumerate(rewrites)]
    return {"task": {"lower_is_better": True, "kind": "regression", "metric": "rmse", "target": "y", "id_column": "id",
                     "name": "t", "data_dir": "."},
            "lane": 0, "step": 0, "solution": {"code": "base", "score": before, "origin": "catalog:lightgbm"},
            "attempts": attempts, "target": {"block": "x = 1", "plan": "p"}, "history": [], "refined_blocks": [],
            "variant": variant and {"code": "variant", "score": variant, "origin": "ablation:t0v1"}}


@pytest.mark.parametrize("rewrites,variant,kept", [
    ([5.0, None], 4.0, "ablation:t0v1"),    # only the ablation's variant beat the solution
    ([3.5, 6.0], 4.0, "refine:t0k0"),       # a rewrite did better still
    ([4.0], 4.0, "refine:t0k0"),            # a tie goes to the planned change
    ([6.0], None, None),                    # nothing beat it: the solution stays
])
def test_a_step_ends_with_the_best_of_its_rewrites_and_the_ablation_variant(monkeypatch, rewrites, variant, kept):
    monkeypatch.setattr("nodes.refine.task_of", lambda state: SimpleNamespace(**state["task"]))
    update = conclude_step(_step_state(4.5, rewrites, variant), SimpleNamespace())
    [record] = update["history"]
    assert record["kept"] == kept and update["variant"] == {}
    assert update["solution"]["origin"] == (kept or "catalog:lightgbm")
    assert record["after"] == update["solution"]["score"]


def test_the_report_reads_which_attempt_the_step_kept():
    lane = {"lane": 0, "history": [
        {"step": 0, "before": 4.5, "after": 4.0, "kept": "ablation:t0v1",
         "attempts": [{"plan": "a", "score": 4.2}, {"plan": "b", "score": None}]},
        {"step": 1, "before": 4.0, "after": 3.9,  # recorded before steps said what they kept
         "attempts": [{"plan": "c", "score": 4.1}, {"plan": "d", "score": 3.9}]}]}
    found = run_attempts({"run_id": "u1", "run_index": 0, "lanes": [lane]}, True, {}, None)
    kept = [(a["kind"], a["label"]) for a in found if a["kept"]]
    assert kept == [("ablation", "step 0 ablation variant 1"), ("refine", "step 1 attempt 1")]
