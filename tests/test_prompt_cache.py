"""Prompts laid out for the model server's prompt cache: what it has read once it does not read again.

A fix of a model-written script continues the conversation that wrote it (the server holds that prompt), the
prompts that show a script share their prefix up to the end of the script, and the time plan counts only the
prompt tokens the server has to read.
"""

from __future__ import annotations

import os

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from nodes.common import task_header, task_of
from nodes.evaluate import evaluate
from nodes.llm import unread_text
from prompts.debug import FIX_SCRIPT
from prompts.refine import ABLATION_VARIANTS, EXTRACT_BLOCK, REWRITE_BLOCK
from runtime.journal import open_journal
from tests import malformed_model as M
from tests.conftest import calls, execution, malformed_context, prepared, with_lane

TASK_TITLE = "# Task:"


def test_a_fix_of_a_model_written_script_continues_the_conversation_that_wrote_it(tmp_path, answers):
    ctx = malformed_context(tmp_path, debug_rounds=2)
    state, runtime = prepared(ctx)
    answers["write a solution script"] = [lambda prompt: M.fenced(M.no_predictions(M.shown_code(prompt)))]
    answers["fix a failing script"] = [M.fix]

    result = evaluate(with_lane(state), runtime)

    [written] = calls(ctx, "lane0/eval/linear#%")
    [fix] = calls(ctx, "lane0/eval/linear/fix%")
    assert fix["prompt"].startswith(written["prompt"])  # the whole first request is the prefix ...
    follow_up = fix["prompt"][len(written["prompt"]):]
    assert follow_up.startswith("\n\n[ai]\n```python\n")  # ... then the script as the model's answer ...
    assert "The script of your last answer failed" in follow_up  # ... then only the failure
    assert "could not be scored: the script saved no val_predictions.csv" in follow_up
    assert TASK_TITLE not in follow_up  # the task is not sent a second time
    assert execution(ctx, "lane0/eval/linear/d1")["score"] is not None
    assert result["candidates"][0]["solution"]["score"] is not None


def test_catalog_code_that_fails_is_fixed_with_a_standalone_prompt(tmp_path, answers):
    """Code no model wrote has no conversation to continue: the prompt shows the task, then the script."""
    ctx = malformed_context(tmp_path, debug_rounds=1, catalog_fallback=True)
    state, runtime = prepared(ctx)
    answers["write a solution script"] = [M.PROSE]  # no first script: the lane falls back to the catalog
    lane = with_lane(state)
    broken = M.no_predictions(lane["approaches"][0]["example_code"])
    lane["approaches"][0]["example_code"] = broken
    answers["fix a failing script"] = [M.fix]

    evaluate({**lane, "floor": []}, runtime)

    [fix] = calls(ctx, "lane0/catalog/linear/fix%")
    assert fix["prompt"].count(TASK_TITLE) == 1 and "[ai]" not in fix["prompt"]
    assert fix["prompt"].index(broken.strip()) < fix["prompt"].index("## Job: fix a failing script")


def test_prompts_that_show_a_script_share_their_prefix_to_the_end_of_the_script(tmp_path):
    state, _ = prepared(malformed_context(tmp_path))
    header, code = task_header(task_of(state), state["data_summary"]), "import pandas as pd\nmodel = 1\n"
    prompts = [
        ABLATION_VARIANTS.format(task_header=header, code=code, previous_ablations="", metric="accuracy"),
        EXTRACT_BLOCK.format(task_header=header, code=code, metric="accuracy", score="0.8", direction="higher",
                             summary="s", refined_note="", goals=""),
        REWRITE_BLOCK.format(task_header=header, code=code, block="model = 1", plan="p"),
        FIX_SCRIPT.format(task_header=header, code=code, error="e", rules="r"),
    ]
    shared = os.path.commonprefix(prompts)
    assert shared.startswith(header) and code in shared


def test_the_time_plan_reads_only_what_follows_the_last_answer():
    first = [SystemMessage("system"), HumanMessage("the task and the job")]
    assert "the task and the job" in unread_text(first)
    follow_up = [*first, AIMessage("the script"), HumanMessage("it failed: fix it")]
    assert unread_text(follow_up) == "[human]\nit failed: fix it"


def test_the_speed_fit_counts_only_prompt_tokens_not_served_from_the_cache(tmp_path):
    journal = open_journal(str(tmp_path / "journal.db"))
    for cached in (0, 900):
        journal.record_answer(run_id="r", node="n", role="coder", model="local", call_key=f"k{cached}",
                              prompt=f"p{cached}", answer="a", tokens_in=1000, tokens_out=100, latency_s=10.0,
                              tokens_cached=cached)
    assert sorted(read for read, _, _, _ in journal.measured_calls("local")) == [100, 1000]
