"""The ablation study by edits: the coder proposes variants of the solution as SEARCH/REPLACE edits (a short
answer), the agent runs each one, scores it from its saved predictions and writes the findings itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nodes.debug import execute
from nodes.refine import ablate, findings
from nodes.report_data import ablation_effects
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


@pytest.mark.parametrize("answer, reason", [
    ("Remove the trees and see.", "no variant with edits found"),
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

    [study] = ablate(lane, runtime)["ablations"]

    assert [v["name"] for v in study["variants"]] == ["other model size", "as it is"]
    assert study["original"] == original and all(v["score"] is not None for v in study["variants"])
    assert study["variants"][1]["score"] == pytest.approx(original)  # the comment changed nothing it computes
    assert "'other model size'" in study["summary"]
    journal = open_journal(ctx.journal_path)
    assert [row["exec_key"] for row in journal.db["executions"].rows_where("exec_key like 'lane0/t0/ablation/%'")] == [
        "lane0/t0/ablation/v0", "lane0/t0/ablation/v1"]
    assert len(calls(ctx, "lane0/t0/ablation%")) == 1  # one short answer, no reviewer call

    run = {"run_id": "u1", "run_index": 0, "lanes": [{"lane": 0, "ablations": [study]}]}
    [effects] = ablation_effects({"history": [run]}, executions=[])
    assert [v["effect"] for v in effects["variants"]] == [v["score"] - original for v in study["variants"]]
