"""Prepare: load and check the task folder, lay out the run's workspace, summarise the data."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.inputs import check_context, check_input
from graph.state import PipelineState
from nodes.common import emit
from nodes.llm import ask
from prompts.task import METRIC_SCHEMA
from runtime.journal import open_journal
from runtime.metrics import TASK_METRIC, TASK_METRIC_MODULE, resolve_metric_name
from runtime.parsing import AnswerError, extract_json
from runtime.sandbox import resolve_isolation
from runtime.task import data_summary, load_task


def copy_inputs(data_dir: Path, files: tuple[str, ...], input_dir: Path, extra: dict[str, Path] | None = None) -> None:
    """Copy the public task files once (into a temp folder, then rename), never the hidden answers;
    `extra` maps more names in the input folder to their source (the task's own metric code)."""
    if input_dir.is_dir():
        return
    staging = input_dir.with_name(input_dir.name + f".tmp-{uuid.uuid4().hex[:6]}")
    staging.mkdir(parents=True)
    for name in files:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / name, target)
    for name, source in (extra or {}).items():
        shutil.copy2(source, staging / name)
    staging.rename(input_dir)


def task_metric_file(task) -> dict[str, Path]:
    """The task's own metric code, which the scripts import to score themselves (none for a known metric)."""
    match = TASK_METRIC.match(task.metric)
    return {f"{TASK_METRIC_MODULE}.py": Path(task.root) / match["file"]} if match else {}


def metric_answer(text: str) -> str:
    """The metric answer as plain JSON when it names a listed metric (or "unknown"); else a re-ask."""
    data = extract_json(text)
    name = data.get("metric")
    if not isinstance(name, str) or not (name.strip().lower() == "unknown" or resolve_metric_name(name)):
        raise AnswerError(f'"metric" must be one of the listed names, or "unknown"; got {name!r}')
    return json.dumps(data)


def prepare(state: PipelineState, runtime: Runtime[Context]) -> dict:
    check_input(state, "pipeline", run_id_key="run_id", run_id_required=True)
    check_context(runtime.context)
    ctx = run_context(state, runtime)
    run_id = state["run_id"]

    def ask_metric(prompt: str) -> str:
        return ask(ctx, run_id=run_id, node="prepare", role="planner", call_key="metric", prompt=prompt,
                   parse=metric_answer, schema=METRIC_SCHEMA)

    task = load_task(state["task_dir"], ask_model=ask_metric)
    workspace = Path(state.get("workspace_dir") or Path(ctx.workspace_root) / task.name / run_id).resolve()
    input_dir = workspace / "input"
    copy_inputs(Path(task.data_dir), task.data_files, input_dir, task_metric_file(task))
    open_journal(ctx.journal_path).upsert_run(run_id, task=task.name, task_dir=task.root, workspace=str(workspace),
                                              status="running", **({"meta_id": state["meta_id"]}
                                                                   if state.get("meta_id") else {}))
    emit(node="prepare", event="task", task=task.name, metric=task.metric, workspace=str(workspace),
         isolation=resolve_isolation(ctx.isolation))
    return {"task": task.to_dict(), "workspace": str(workspace), "input_dir": str(input_dir),
            "data_summary": data_summary(task), "status": "running"}
