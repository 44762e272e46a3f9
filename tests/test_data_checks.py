"""Data-leakage and data-usage checks: what they flag, what they leave alone, and how a finding flows
through the debugger (fixed when the coder can, the working script kept with its findings when not)."""

from __future__ import annotations

import re
import shutil

import pytest

from graph.context import ConfigError, Context, validate_context
from nodes.evaluate import evaluate_approach
from runtime.catalog import applicable, render_example
from runtime.data_checks import leakage_findings, unused_files
from runtime.task import load_task
from tests import malformed_model as M
from tests.conftest import EXAMPLES, calls, malformed_context, prepared, with_lane

SPLIT = "tr, va = split(train)"
LEAK = 'scale = StandardScaler().fit(train.select_dtypes("number"))  # malformed: leakage\n'
HEADER = "import pandas as pd\nfrom sklearn.model_selection import train_test_split\n" \
         "from sklearn.preprocessing import StandardScaler\ndf = pd.read_csv('./input/train.csv')\n"


@pytest.mark.parametrize("body, pattern", [
    ("X = df.drop(columns=['y'])\nXs = StandardScaler().fit_transform(X)\nX_tr, X_va = train_test_split(Xs)\n",
     "line 6: .* fits a StandardScaler on all rows before the train/validation split"),
    ("s = StandardScaler()\ns.fit(df)\ntr, va = train_test_split(df)\n",
     "line 6: `s.fit\\(df\\)` fits a StandardScaler on all rows"),
    ("X_tr, X_val = train_test_split(df)\nsc = StandardScaler().fit(X_val)\n", "fits on held-out rows \\(X_val\\)"),
    ("X_tr, X_test = train_test_split(df)\nm.fit(pd.concat([X_tr, X_test]))\n", "held-out rows \\(X_test\\)"),
    ("tr, valid_df = train_test_split(df)\nm.fit_transform(X=valid_df)\n", "held-out rows \\(valid_df\\)"),
])
def test_leakage_is_found_with_its_line_and_a_fix(body, pattern):
    [finding] = leakage_findings(HEADER + body)
    assert re.search(pattern, finding), finding
    assert "Fit only on the training part" in finding or "Split first" in finding


@pytest.mark.parametrize("body", [
    "X_tr, X_val = train_test_split(df)\nsc = StandardScaler().fit(X_tr)\nm.fit(sc.transform(X_tr))\n",
    "X_tr, X_val, y_tr, y_val = train_test_split(df, df.y)\nm.fit(X_tr, y_tr, eval_set=[(X_val, y_val)])\n",
    "enc = LabelEncoder().fit(df['s'])\nX_tr, X_val = train_test_split(df)\n",   # a vocabulary, not flagged
    "m.fit(df)\n",                                                               # no split at all
    "def f(x):\n    return StandardScaler().fit_transform(x)\nX_tr, X_val = train_test_split(df)\n",
])
def test_honest_patterns_are_not_flagged(body):
    assert leakage_findings(HEADER + body) == []


@pytest.mark.parametrize("task", ["titanic", "concrete", "penguins", "tweets", "births"])
def test_catalog_code_is_clean_on_every_bundled_task(task):
    loaded = load_task(EXAMPLES / task)
    exempt = {loaded.test_file, loaded.sample_submission_file}
    approaches = applicable(loaded)
    assert approaches
    for approach in approaches:
        code = render_example(approach, loaded)
        assert leakage_findings(code) == [], approach.key
        assert unused_files(code, loaded.data_files, exempt) == [], approach.key


def test_unused_files_names_a_file_never_read_unless_the_folder_is_listed():
    files = ("description.md", "extra.csv", "sample_submission.csv", "test.csv", "train.csv")
    code = "import pandas as pd\ntrain = pd.read_csv('./input/train.csv')\n"
    assert unused_files(code, files, {"test.csv", "sample_submission.csv"}) == ["extra.csv"]
    listing = code + "import os\nfor f in os.listdir('./input'):\n    print(f)\n"
    assert unused_files(listing, files, {"test.csv", "sample_submission.csv"}) == []
    assert unused_files("x = (", files, set()) == []  # not Python: no finding, no crash


def test_check_modes_are_validated():
    for name in ("leakage_check", "usage_check"):
        with pytest.raises(ConfigError, match=f"{name}='sometimes' is unknown; use one of off, static, model"):
            validate_context(Context(**{name: "sometimes"}))


def leaky(prompt: str) -> str:
    return M.fenced(M.changed(M.shown_code(prompt), SPLIT, LEAK + SPLIT))


def unleak(prompt: str) -> str:
    return M.fenced(M.shown_code(prompt).replace(LEAK, ""))


def test_leak_goes_to_the_coder_and_the_fixed_script_is_kept(tmp_path, answers):
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, _ = prepared(ctx)
    answers["write a solution script"] = [leaky]
    answers["fix a failing script"] = [unleak]

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    [fix] = calls(ctx, "lane0/eval/linear/fix%")
    assert "leaks validation data into training" in fix["prompt"] and "fits a StandardScaler" in fix["prompt"]
    assert LEAK not in solution["code"] and "findings" not in solution and solution["score"] > 0.7


def test_leak_the_coder_cannot_fix_keeps_the_working_script_with_its_findings(tmp_path, answers):
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, _ = prepared(ctx)
    answers["write a solution script"] = [leaky]
    answers["fix a failing script"] = [lambda prompt: M.fenced(M.shown_code(prompt))]  # the same script again

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    assert LEAK in solution["code"] and solution["score"] > 0.7
    assert "fits a StandardScaler" in solution["findings"]
    assert solution["path"].endswith("d0")  # the first scored script, not a later copy


def test_checks_off_run_no_check(tmp_path, answers):
    ctx = malformed_context(tmp_path, leakage_check="off", usage_check="off")
    state, _ = prepared(ctx)
    answers["write a solution script"] = [leaky]
    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])
    assert LEAK in solution["code"] and calls(ctx, "%fix%") == []


@pytest.mark.parametrize("review, in_fix", [
    ('{"leakage": true, "explanation": "The target mean is computed over all rows; compute it on tr."}',
     "The target mean is computed over all rows"),
    ('{"leakage": false, "explanation": ""}', None),
])
def test_model_review_finds_what_the_syntax_tree_cannot(tmp_path, answers, review, in_fix):
    ctx = malformed_context(tmp_path, debug_rounds=1, leakage_check="model")
    state, _ = prepared(ctx)
    answers["check a validation script for data leakage"] = [review, '{"leakage": false}']

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    fixes = calls(ctx, "lane0/eval/linear/fix%")
    if in_fix:
        assert len(fixes) == 1 and in_fix in fixes[0]["prompt"]
    else:
        assert fixes == [] and "findings" not in solution
    assert solution["score"] > 0.7


@pytest.mark.parametrize("bad", [M.PROSE, M.TRUNCATED_JSON, '{"leakage": "maybe"}', '{"leakage": true}', "[1, 2]"])
def test_malformed_reviewer_answers_count_as_no_finding(tmp_path, answers, caplog, bad):
    ctx = malformed_context(tmp_path, leakage_check="model", usage_check="model")
    state, _ = prepared(ctx)
    answers["check a validation script for data leakage"] = [bad]
    answers["check that a script uses the provided data"] = [bad]

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    assert solution["score"] > 0.7 and "findings" not in solution and calls(ctx, "%fix%") == []
    assert len(calls(ctx, "%/leakage#%")) == 1 + ctx.max_reasks  # bounded re-asks, then ignored
    assert "Ignoring the leakage review" in caplog.text and "Ignoring the ignores_data review" in caplog.text


def test_an_extra_file_the_script_ignores_is_sent_to_the_coder(tmp_path, answers):
    task_dir = tmp_path / "titanic"
    shutil.copytree(EXAMPLES / "titanic", task_dir)
    (task_dir / "public" / "cabins.csv").write_text("id,deck\n1,A\n")
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, _ = prepared(ctx, task_dir=task_dir)

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    [fix] = calls(ctx, "lane0/eval/linear/fix%")
    assert "./input/cabins.csv is provided but never read" in fix["prompt"]
    assert "cabins.csv" in solution["findings"]  # the scripted fix changes nothing: kept with the finding

