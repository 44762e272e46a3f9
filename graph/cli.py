"""The `mlestar` command: run, resume, status, grade."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import psutil
import typer
from rich.console import Console
from rich.table import Table

from graph.checkpoint import DEFAULT_CHECKPOINTS, open_checkpointer
from graph.context import ConfigError, Context, build_context, load_config_file
from graph.progress import Progress
from runtime.journal import open_journal
from runtime.models import ROLES
from runtime.task import TaskError, grade_submission, load_task

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="MLE-STAR Graph: an autonomous ML engineer for Kaggle-style task folders.")
console = Console()
RECURSION_LIMIT = 2000
DEFAULT_JOURNAL = Context().journal_path

CheckpointsOpt = Annotated[Path, typer.Option(help="SQLite checkpoint database.")]
JournalOpt = Annotated[Path, typer.Option(help="SQLite journal database.")]


def fail(message: str) -> None:
    console.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(2)


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{what} {item!r} is not of the form KEY=VALUE.")
        pairs[key.strip()] = value.strip()
    return pairs


def model_settings(items: list[str]) -> dict[str, str]:
    """--model SPEC sets every role; --model ROLE=SPEC one role."""
    settings = {}
    for item in items:
        role, sep, spec = item.partition("=")
        if not sep:
            settings.update({f"{r}_model": item for r in ROLES})
        elif role in ROLES:
            settings[f"{role}_model"] = spec
        else:
            fail(f"Unknown role {role!r} in --model {item}; roles are {', '.join(ROLES)}.")
    return settings


def new_run_id(task_name: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', task_name)}-{time.strftime('%Y%m%d-%H%M%S')}"


def drive(run_id: str, graph_input: dict | None, ctx: Context, checkpoints: Path) -> dict:
    """Stream the pipeline graph for one thread, showing progress; Ctrl-C stops it resumably."""
    from graph.pipeline import build_graph

    graph = build_graph(open_checkpointer(checkpoints))
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": RECURSION_LIMIT}
    progress = Progress(console, run_id)
    try:
        for namespace, mode, chunk in graph.stream(graph_input, config, context=ctx, subgraphs=True,
                                                   stream_mode=["updates", "custom"], durability="sync"):
            progress.handle(namespace, mode, chunk)
    except KeyboardInterrupt:
        for child in psutil.Process().children(recursive=True):
            child.kill()
        console.print(f"\n[yellow]Stopped.[/] Nothing finished is lost: [bold]mlestar resume {run_id}[/]")
        os._exit(130)
    return graph.get_state(config).values


def report_result(run_id: str, state: dict, ctx: Context) -> None:
    usage = open_journal(ctx.journal_path).usage(run_id)
    submission = state.get("submission") or {}
    if state.get("status") != "done":
        console.print(f"[bold red]Run {run_id} ended without a submission:[/] {state.get('stop_reason')}")
        raise typer.Exit(1)
    console.print(f"[bold green]Submission:[/] {submission['path']}  (from {submission['source']}, "
                  f"validation score {submission['validation_score']:.6g})")
    console.print(f"Model calls {usage['model_calls']} ({usage['tokens_in']} in / {usage['tokens_out']} out "
                  f"tokens, {usage['inference_s']} s), scripts {usage['executions']} ({usage['script_s']} s)")
    task = load_task(state["task_dir"])
    if task.answers_path:
        grade = grade_submission(task, submission["path"])
        console.print(f"Graded with the hidden answers: {grade.metric} = {grade.score:.6g}")


@app.command()
def run(
    task_dir: Annotated[Path, typer.Argument(help="Task folder (description, data files, sample submission).")],
    run_id: Annotated[Optional[str], typer.Option(help="Name of the run (default: task-date-time).")] = None,
    model: Annotated[list[str], typer.Option(help="SPEC for every role, or ROLE=SPEC; SPEC is local, "
                                                  "local:/path.gguf, openai:MODEL, scripted:module:fn.")] = [],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of settings.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Setting KEY=VALUE (see docs: Context).")] = [],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
) -> None:
    """Solve a task folder: search, evaluate, refine, ensemble, submit."""
    try:
        task = load_task(task_dir)  # fail fast on a broken folder, before anything is written
        base = load_config_file(config) if config else {}
        ctx = build_context(base, {**parse_assignments(set_, "--set"), **model_settings(model)})
    except (TaskError, ConfigError) as exc:
        fail(str(exc))
    run_id = run_id or new_run_id(task.name)
    journal = open_journal(ctx.journal_path)
    if journal.get_run(run_id):
        fail(f"Run {run_id} already exists; resume it with `mlestar resume {run_id}` or pick another --run-id.")
    journal.upsert_run(run_id, task=task.name, task_dir=task.root, status="running", context=asdict(ctx))
    console.print(f"Run [bold]{run_id}[/] on task [bold]{task.name}[/] ({task.metric}, "
                  f"{'lower' if task.lower_is_better else 'higher'} is better)")
    state = drive(run_id, {"task_dir": task.root, "run_id": run_id}, ctx, checkpoints)
    report_result(run_id, state, ctx)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to finish.")],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """Finish an interrupted run from its last checkpoint, re-using every finished step."""
    row = open_journal(str(journal_path)).get_run(run_id)
    if not row:
        fail(f"No run {run_id} in {journal_path}; `mlestar status` lists the runs.")
    ctx = Context(**json.loads(row["context"]))
    from graph.pipeline import build_graph

    graph = build_graph(open_checkpointer(checkpoints))
    snapshot = graph.get_state({"configurable": {"thread_id": run_id}})
    if not snapshot.values:
        graph_input = {"task_dir": row["task_dir"], "run_id": run_id}  # killed before the first checkpoint
    elif not snapshot.next:
        console.print(f"Run {run_id} has already finished.")
        report_result(run_id, snapshot.values, ctx)
        return
    else:
        graph_input = None
    console.print(f"Resuming [bold]{run_id}[/] at {', '.join(snapshot.next) or 'the start'}")
    state = drive(run_id, graph_input, ctx, checkpoints)
    report_result(run_id, state, ctx)


@app.command()
def status(
    run_id: Annotated[Optional[str], typer.Argument(help="One run to show in detail.")] = None,
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """List runs, or show one run: state, best score, model and script usage."""
    journal = open_journal(str(journal_path))
    rows = [journal.get_run(run_id)] if run_id else journal.runs()
    if run_id and rows[0] is None:
        fail(f"No run {run_id} in {journal_path}.")
    table = Table("run", "task", "status", "best validation score", "updated", "submission")
    for row in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["updated_at"]))
        best = "" if row.get("best_score") is None else f"{row['best_score']:.6g}"
        table.add_row(row["run_id"], row.get("task") or "", row.get("status") or "", best, updated,
                      row.get("submission") or "")
    console.print(table)
    if run_id:
        usage = journal.usage(run_id)
        console.print(" ".join(f"{k}={v}" for k, v in usage.items()))
        if rows[0]["status"] == "running" and Path(checkpoints).exists():
            from graph.pipeline import build_graph

            snapshot = build_graph(open_checkpointer(checkpoints)).get_state(
                {"configurable": {"thread_id": run_id}})
            if snapshot.next:
                console.print(f"Next: {', '.join(snapshot.next)}. If no process is running it, "
                              f"`mlestar resume {run_id}` finishes it.")


@app.command()
def grade(
    task_dir: Annotated[Path, typer.Argument(help="Task folder the submission is for.")],
    submission: Annotated[Path, typer.Argument(help="The submission CSV.")],
    answers: Annotated[Optional[Path], typer.Option(help="Answers CSV (default: the task's private/answers.csv).")] = None,
) -> None:
    """Validate a submission against the sample submission; score it when answers are available."""
    try:
        task = load_task(task_dir)
    except TaskError as exc:
        fail(str(exc))
    result = grade_submission(task, submission, answers)
    if not result.valid:
        console.print("[bold red]Invalid submission:[/]")
        for problem in result.problems:
            console.print(f"  - {problem}")
        raise typer.Exit(1)
    if result.score is None:
        console.print("Valid submission (no answers available to score it).")
    else:
        console.print(f"Valid submission. {result.metric} = {result.score:.6g} "
                      f"({'lower' if result.lower_is_better else 'higher'} is better)")


if __name__ == "__main__":
    app()
