"""Data-leakage and data-usage checks of scored validation scripts.

A finding goes back to the coder like an error, through the debugger; when no fix gets past the check,
the debugger keeps the working script with its findings recorded (`run_with_debugging`), so a check can
cost a round trip but never a solution. Settings `leakage_check` and `usage_check` (docs/configuration.md):
off, static (the syntax-tree checks of `runtime.data_checks`, no model call) or model (static, then a
reviewer model when the static check finds nothing). A reviewer answer that cannot be used counts as
"no finding" and is logged; it never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from graph.context import Context
from nodes.common import emit, task_header, task_of
from nodes.llm import NO_ANSWER, ask
from prompts.checks import (
    LEAKAGE_PROBLEM,
    LEAKAGE_REVIEW,
    LEAKAGE_SCHEMA,
    UNUSED_FILE,
    USAGE_PROBLEM,
    USAGE_REVIEW,
    USAGE_SCHEMA,
)
from runtime.data_checks import leakage_findings, unused_files
from runtime.parsing import AnswerError, extract_json
from runtime.sandbox import ExecutionResult

log = logging.getLogger(__name__)


def verdict_parser(flag: str) -> Callable[[str], str | None]:
    """Parse a reviewer's JSON: the explanation when `flag` is true, None when false; anything else re-asks."""

    def parse(text: str) -> str | None:
        data = extract_json(text)
        value = data.get(flag)
        if not isinstance(value, bool):
            raise AnswerError(f'"{flag}" must be true or false, got {value!r}')
        if not value:
            return None
        explanation = data.get("explanation")
        if not isinstance(explanation, str) or not explanation.strip():
            raise AnswerError('"explanation" must say where the problem is and how to fix it')
        return explanation.strip()[:600]

    return parse


def review(ctx: Context, state: Mapping[str, Any], *, template: str, schema: dict, flag: str, code: str,
           call_key: str) -> list[str]:
    prompt = template.format(task_header=task_header(task_of(state), state["data_summary"]), code=code)
    try:
        finding = ask(ctx, run_id=state["run_id"], node="check", role="reviewer", call_key=call_key,
                      prompt=prompt, parse=verdict_parser(flag), schema=schema)
    except NO_ANSWER as exc:
        log.warning("Ignoring the %s review of %s: %s", flag, call_key, exc)
        return []
    return [finding] if finding else []


def leakage_problems(ctx: Context, state: Mapping[str, Any], code: str, call_key: str) -> list[str]:
    if ctx.leakage_check == "off":
        return []
    findings = leakage_findings(code)
    if not findings and ctx.leakage_check == "model":
        findings = review(ctx, state, template=LEAKAGE_REVIEW, schema=LEAKAGE_SCHEMA, flag="leakage", code=code,
                          call_key=f"{call_key}/leakage")
    return findings


def usage_problems(ctx: Context, state: Mapping[str, Any], code: str, call_key: str) -> list[str]:
    if ctx.usage_check == "off":
        return []
    task = task_of(state)
    exempt = {task.test_file, task.sample_submission_file}
    findings = [UNUSED_FILE.format(name=name) for name in unused_files(code, task.data_files, exempt)]
    if not findings and ctx.usage_check == "model":
        findings = review(ctx, state, template=USAGE_REVIEW, schema=USAGE_SCHEMA, flag="ignores_data", code=code,
                          call_key=f"{call_key}/usage")
    return findings


def validation_checks(ctx: Context, state: Mapping[str, Any], *, usage: bool = False):
    """The advisory check of a scored validation script: leakage always, data usage when `usage`."""
    if ctx.leakage_check == "off" and (not usage or ctx.usage_check == "off"):
        return None

    def check(code: str, result: ExecutionResult) -> str | None:
        call_key = Path(result.attempt_dir).name
        leaks = leakage_problems(ctx, state, code, call_key)
        ignored = usage_problems(ctx, state, code, call_key) if usage else []
        problems = ([LEAKAGE_PROBLEM.format(findings="\n".join(f"- {f}" for f in leaks))] if leaks else []) + \
                   ([USAGE_PROBLEM.format(findings="\n".join(f"- {f}" for f in ignored))] if ignored else [])
        if problems:
            emit(lane=state.get("lane"), node="check", event="finding", key=call_key,
                 leakage=len(leaks), unused=len(ignored))
        return "\n\n".join(problems) or None

    return check
