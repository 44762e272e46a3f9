"""Malformed model answers: each is re-asked (bounded) or met by a fallback, recorded in the journal, and
never crashes the run.

The corpus: no code block, two code blocks, a "block to replace" that is not in the script, truncated
JSON, a script without a score line, a NaN score, a submission with wrong ids or wrong columns, an empty
answer, prose only. The model is `tests.malformed_model` (scripted; each test says which answers it gives).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from types import SimpleNamespace

import pytest

from graph import routing
from graph.checkpoint import open_checkpointer
from graph.pipeline import build_graph
from nodes.common import task_of
from nodes.enhance import SAFE_DEFAULT, enhance
from nodes.evaluate import evaluate, evaluate_approach
from nodes.llm import ask
from nodes.refine import conclude_step, extract
from nodes.search import search
from nodes.submit import submit
from prompts.common import REASK
from runtime.catalog import applicable
from runtime.journal import open_journal
from runtime.parsing import AnswerError, extract_code, extract_json
from runtime.task import TaskError, grade_submission, load_task
from tests import malformed_model as M
from tests.conftest import EXAMPLES, calls, example, execution, malformed_context, prepared, with_lane

REASKED = REASK.split("{problem}")[0]  # "Your answer could not be used: "
NOT_IN_SCRIPT = M.json_answer(code_block="model = GradientBoostingClassifier(n_estimators=500)", plan="More trees.")
ELIDED = M.json_answer(code_block="def new_model(X):\n    ...\n    return make_pipeline(prep)", plan="Tune it.")
C_LINE = "return make_pipeline(prep, Ridge(alpha=1.0) if CLASSES is None else LogisticRegression(C=1.0, max_iter=2000))"


def assert_reasked(rows: list[dict], *reasons: str) -> None:
    """Every try after the first carries the re-ask message with the parser's reason."""
    assert len(rows) == len(reasons) + 1
    assert REASKED not in rows[0]["prompt"]
    for row, reason in zip(rows[1:], reasons):
        assert REASKED + reason in row["prompt"]


# --------------------------------------------------------------------------- parsers: each kind is refused


@pytest.mark.parametrize("answer, parse, reason", [
    (M.EMPTY, extract_code, "no code block found"),
    (M.PROSE, extract_code, "no code block found"),
    ("```python\nx = (1,\n```\nor\n```python\ny = [2,\n```\n", extract_code, "2 code blocks and none is valid"),
    ("```python\nimport pandas as pd\ntrain = pd.read_csv(", extract_code, "truncated"),
    (M.EMPTY, extract_json, "no JSON object found"),
    (M.PROSE, extract_json, "no JSON object found"),
    (M.TRUNCATED_JSON, extract_json, "truncated"),
    ('```json\n{"code_block": "x = 1", "plan": "be', extract_json, "truncated"),
])
def test_each_malformed_answer_is_refused_with_a_reason_the_model_can_act_on(answer, parse, reason):
    with pytest.raises(AnswerError, match=reason):
        parse(answer)


def test_two_code_blocks_give_the_whole_script_not_the_snippet():
    code = "import pandas as pd\nprint('Final Validation Performance: 0.5')\n"
    assert extract_code(M.two_blocks(code)) == code


def test_reasks_are_bounded_and_each_carries_the_reason(tmp_path, answers):
    ctx = malformed_context(tmp_path, max_reasks=2)
    answers["write a solution script"] = [M.PROSE, M.EMPTY, M.TRUNCATED_JSON]
    with pytest.raises(AnswerError, match="3 tries"):
        ask(ctx, run_id="a1", node="evaluate", role="coder", call_key="k", prompt="## Job: write a solution script\n",
            parse=extract_code)
    rows = calls(ctx, "k#%")
    assert [r["answer"] for r in rows] == [M.PROSE, M.EMPTY, M.TRUNCATED_JSON]
    assert_reasked(rows, "no code block found", "no code block found")

    ctx0 = malformed_context(tmp_path / "none", max_reasks=0)
    with pytest.raises(AnswerError, match="1 tries"):
        ask(ctx0, run_id="a1", node="evaluate", role="coder", call_key="k", prompt="## Job: write a solution script\n",
            parse=extract_code)
    assert len(calls(ctx0, "k#%")) == 1


# --------------------------------------------------------------------------- scripts


def test_prose_then_two_blocks_runs_the_whole_script(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    state, _ = prepared(ctx)
    code = example(state)
    answers["write a solution script"] = [M.PROSE, lambda prompt: M.two_blocks(M.shown_code(prompt))]

    solution = evaluate_approach(ctx, with_lane(state), with_lane(state)["approaches"][0])

    assert solution["code"] == code and solution["score"] > 0.7
    assert_reasked(calls(ctx, "lane0/eval/linear#%"), "no code block found")
    assert execution(ctx, "lane0/eval/linear/d0")["score"] == solution["score"]


def test_empty_answers_exhaust_the_reasks_then_the_catalog_code_runs(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    state, runtime = prepared(ctx)
    answers["write a solution script"] = [M.EMPTY]

    result = evaluate(with_lane(state), runtime)

    assert result["candidates"][0]["solution"] is None
    assert result["solution"]["origin"] == "catalog:linear" and result["solution"]["score"] > 0.7
    rows = calls(ctx, "lane0/eval/linear#%")
    assert [r["answer"] for r in rows] == ["", "", ""]  # 1 + max_reasks tries, then the fallback
    assert_reasked(rows, "no code block found", "no code block found")
    assert execution(ctx, "lane0/catalog/linear/d0")["status"] == "ok"


def test_what_a_script_prints_does_not_score_it_its_saved_predictions_do(tmp_path, answers):
    """A NaN or a missing score line is a finding, not a failure: the agent recomputes the score itself."""
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, runtime = prepared(ctx)
    answers["write a solution script"] = [lambda prompt: M.fenced(M.nan_score(M.shown_code(prompt)))]

    result = evaluate(with_lane(state), runtime)

    nan_run = execution(ctx, "lane0/eval/linear/d0")
    assert "Final Validation Performance: nan" in nan_run["result"]["stdout_tail"]
    assert nan_run["status"] == "ok" and nan_run["score"] is not None
    assert nan_run["result"]["printed_score"] is None and "printed None" in nan_run["result"]["score_note"]
    assert calls(ctx, "lane0/eval/linear/fix%") == []  # nothing to fix
    assert result["candidates"][0]["solution"]["score"] == nan_run["score"]


def test_no_saved_predictions_is_no_score_and_the_debugger_is_told_why(tmp_path, answers):
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, runtime = prepared(ctx)
    answers["write a solution script"] = [lambda prompt: M.fenced(M.no_predictions(M.shown_code(prompt)))]
    answers["fix a failing script"] = [M.fix]  # saves them again

    result = evaluate(with_lane(state), runtime)

    unsaved, fixed = execution(ctx, "lane0/eval/linear/d0"), execution(ctx, "lane0/eval/linear/d1")
    assert "Final Validation Performance" in unsaved["result"]["stdout_tail"]  # it printed a score ...
    assert (unsaved["status"], unsaved["score"]) == ("ok", None)  # ... which does not count
    assert "saved no val_predictions.csv" in unsaved["result"]["score_note"]
    [fix] = calls(ctx, "lane0/eval/linear/fix%")
    assert "could not be scored: the script saved no val_predictions.csv" in fix["prompt"]
    assert fixed["score"] is not None and result["candidates"][0]["solution"]["score"] == fixed["score"]


# --------------------------------------------------------------------------- JSON answers


def test_search_truncated_json_then_prose_then_a_valid_pick(tmp_path, answers):
    ctx = malformed_context(tmp_path, num_lanes=1, num_candidates=1)
    state, runtime = prepared(ctx)
    answers["pick model approaches"] = [M.TRUNCATED_JSON, M.PROSE, M.json_answer(approaches=["linear"])]

    assert [a["key"] for a in search(state, runtime)["approaches"]] == ["linear"]
    assert_reasked(calls(ctx, "search#%"), "the JSON object is truncated", "no JSON object found")


def test_search_keeps_the_forecasting_specialist_the_planner_left_out(tmp_path, answers):
    ctx = malformed_context(tmp_path, num_lanes=2, num_candidates=1)
    state, runtime = prepared(ctx, EXAMPLES / "births")
    answers["pick model approaches"] = [M.json_answer(approaches=["lightgbm", "hist_gradient_boosting"])]

    approaches = search(state, runtime)["approaches"]

    assert [a["key"] for a in approaches] == ["lightgbm", "timeseries_calendar_gbm"]
    assert 'DATE_COLUMN = "date"' in approaches[1]["example_code"]  # rendered for this task


def test_search_without_a_usable_answer_keeps_the_catalog_order(tmp_path, answers):
    ctx = malformed_context(tmp_path, num_lanes=1, num_candidates=1)
    state, runtime = prepared(ctx)
    answers["pick model approaches"] = [M.TRUNCATED_JSON]

    first = applicable(task_of(state))[0].key
    assert [a["key"] for a in search(state, runtime)["approaches"]] == [first]
    assert len(calls(ctx, "search#%")) == 3


def refine_state(state: dict) -> dict:
    solution = {"code": example(state), "score": 0.8, "origin": "candidate:linear", "path": "x"}
    return {**with_lane(state), "solution": solution, "step": 0, "refined_blocks": [], "history": [],
            "ablations": [{"step": 0, "summary": "The regularisation matters most."}], "attempts": []}


def test_block_not_in_the_script_is_reasked_until_an_exact_block(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    state, runtime = prepared(ctx)
    lane = refine_state(state)
    answers["choose a code block to improve"] = [NOT_IN_SCRIPT, ELIDED,
                                                 M.json_answer(code_block=C_LINE, plan="Use C=0.5.")]

    target = extract(lane, runtime)["target"]

    assert target == {"block": C_LINE, "plan": "Use C=0.5."} and C_LINE in lane["solution"]["code"]
    reason = "the block is not an exact substring of the current script"
    assert_reasked(calls(ctx, "lane0/t0/extract#%"), reason, reason)


def test_block_never_in_the_script_ends_the_step_unchanged(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    state, runtime = prepared(ctx)
    lane = refine_state(state)
    answers["choose a code block to improve"] = [NOT_IN_SCRIPT, ELIDED, M.PROSE]

    lane = {**lane, **extract(lane, runtime)}

    assert lane["target"] == {} and routing.after_extract(lane) == "conclude_step"
    concluded = conclude_step(lane, runtime)
    assert concluded["solution"] == lane["solution"]
    assert concluded["history"][0]["attempts"] == [] and concluded["history"][0]["block"] is None
    assert len(calls(ctx, "lane0/t0/extract#%")) == 3
    assert open_journal(ctx.journal_path).db["executions"].count == 0  # nothing ran for a missing block


def test_enhancer_truncated_json_gives_the_safe_default(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    answers["steer the next run"] = ['{"strategic_summary": "Refinement helped", "config_overrides": {"refine_']
    run = {"run_index": 0, "status": "done", "best_score": 0.8, "duration_s": 60.0, "config": asdict(ctx)}
    state = {"meta_id": "m1", "history": [run], "task": {"name": "titanic", "metric": "accuracy",
                                                         "lower_is_better": False}}

    [enhancement] = enhance(state, SimpleNamespace(context=ctx))["enhancements"]

    assert {k: enhancement[k] for k in SAFE_DEFAULT} == SAFE_DEFAULT
    assert "truncated" in enhancement["problems"][0]
    assert len(calls(ctx, "enhance/after-run0#%")) == 3


def no_metric_task(tmp_path):
    folder = tmp_path / "concrete"
    shutil.copytree(EXAMPLES / "concrete", folder)
    meta = json.loads((folder / "task.json").read_text())
    (folder / "task.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("metric", "lower_is_better")}))
    (folder / "public" / "description.md").write_text("# Concrete\nPredict compressive_strength. Scored by the usual error.\n")
    return folder


def test_metric_question_prose_then_truncated_then_valid(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    answers[M.METRIC_JOB] = [M.PROSE, '{"metric": "mae", "lower_is', '{"metric": "mae", "lower_is_better": true}']

    state, _ = prepared(ctx, task_dir=no_metric_task(tmp_path))

    assert (state["task"]["metric"], state["task"]["lower_is_better"]) == ("mae", True)
    assert_reasked(calls(ctx, "metric#%"), "no JSON object found", "the JSON object is truncated")


def test_metric_question_without_a_usable_answer_stops_with_the_fix_before_any_workspace(tmp_path, answers):
    ctx = malformed_context(tmp_path)
    answers[M.METRIC_JOB] = [M.PROSE, '{"metric": "gini"}', M.EMPTY]

    with pytest.raises(TaskError, match="3 tries.*add task.json"):
        prepared(ctx, task_dir=no_metric_task(tmp_path))
    assert_reasked(calls(ctx, "metric#%"), "no JSON object found", "\"metric\" must be one of the listed names")
    assert not (tmp_path / "workspace").exists()


# --------------------------------------------------------------------------- submission


def test_submission_with_wrong_ids_that_the_fix_does_not_repair_falls_back_to_catalog_code(tmp_path, answers):
    ctx = malformed_context(tmp_path, debug_rounds=1)
    state, runtime = prepared(ctx)
    solution = {"code": M.without_submit_flag(example(state)), "score": 0.8, "origin": "candidate:linear", "path": "x"}
    state = {**state, "lane_results": [{"lane": 0, "solution": solution}], "ensemble_rounds": []}
    answers["write the submission script"] = [M.submission_script]
    answers["fix a failing script"] = [lambda prompt: M.fenced(M.shown_code(prompt))]  # changes nothing

    result = submit(state, runtime)

    assert result["status"] == "done"
    assert result["submission"]["source"].startswith("catalog:")
    assert grade_submission(load_task(EXAMPLES / "titanic"), result["submission"]["path"]).valid
    for key in ("submit/s0/d0", "submit/s0/d1"):  # both scored, both refused for their ids
        assert execution(ctx, key)["score"] is not None
    [fix] = calls(ctx, "submit/s0/fix0#%")
    assert "The submission file was not valid" in fix["prompt"]
    assert "test id values are missing" in fix["prompt"] and "not in the test set" in fix["prompt"]
    assert execution(ctx, f"submit/catalog/{result['submission']['source'].split(':')[1]}/d0")["status"] == "ok"


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_pipeline_with_many_malformed_answers_ends_with_a_valid_submission(tmp_path, answers):
    ctx = malformed_context(tmp_path, num_lanes=1, num_candidates=1, refine_steps=1, inner_steps=1,
                            ensemble_rounds=0, debug_rounds=2, max_reasks=2, floor_approaches=0)
    answers.update({
        "pick model approaches": [M.TRUNCATED_JSON, M.PROSE, M.json_answer(approaches=["linear"])],
        "write a solution script": [M.PROSE, lambda p: M.two_blocks(M.no_predictions(M.nan_score(
            M.without_submit_flag(M.shown_code(p)))))],
        "fix a failing script": [M.fix],
        "ablation study": [M.EMPTY],
        "choose a code block to improve": [NOT_IN_SCRIPT, ELIDED, M.json_answer(code_block=C_LINE, plan="Use C=0.5.")],
        "rewrite a code block": [M.PROSE, lambda p: M.fenced(M.scripted_model.code_blocks(p)[1].replace("C=1.0", "C=0.5"))],
        "write the submission script": [M.submission_script],
    })
    graph = build_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    config = {"configurable": {"thread_id": "e2e"}, "recursion_limit": 200}
    graph.invoke({"task_dir": str(EXAMPLES / "titanic"), "run_id": "e2e"}, config, context=ctx, durability="sync")
    state = graph.get_state(config).values

    # the run ends with a valid submission, written by the coder's (twice fixed) submission script
    assert state["status"] == "done"
    assert grade_submission(load_task(EXAMPLES / "titanic"), state["submission"]["path"]).valid
    assert state["submission"]["script"].endswith("submit_s0_d2")

    # re-asks, with the reason, where answers could not be parsed
    assert_reasked(calls(ctx, "search#%"), "the JSON object is truncated", "no JSON object found")
    assert_reasked(calls(ctx, "lane0/eval/linear#%"), "no code block found")
    assert_reasked(calls(ctx, "lane0/t0/ablation#%"), "no variant found", "no variant found")
    block_reason = "the block is not an exact substring of the current script"
    assert_reasked(calls(ctx, "lane0/t0/extract#%"), block_reason, block_reason)
    assert_reasked(calls(ctx, "lane0/t0/k0#%"), "no code block found")
    journal = open_journal(ctx.journal_path)
    assert journal.db["model_calls"].count_where("call_key not like '%#0'") == 8

    # fallbacks and fixes: the ablation gave no findings, the scoreless scripts were debugged
    [lane] = state["lane_results"]
    assert lane["ablations"][0]["summary"].startswith("The ablation study failed")
    assert [execution(ctx, f"lane0/eval/linear/d{i}")["score"] is None for i in range(3)] == [True, True, False]
    assert lane["history"][0]["attempts"][0]["score"] is not None  # the rewritten block ran and scored
    fixes = calls(ctx, "submit/s0/fix%")
    assert "test id values are missing" in fixes[0]["prompt"] and "Columns are" in fixes[1]["prompt"]
    assert journal.usage("e2e")["executions"] == 7  # eval 3, refine 1, submit 3: no ablation script ran
