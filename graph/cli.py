"""The `mlestar` command: run, resume, extend, history, fork, runs, report, status, grade, bench."""

from __future__ import annotations

import json
import logging
import os
import sys
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import psutil
import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Column, Table

from graph.checkpoint import DEFAULT_CHECKPOINTS, open_checkpointer
from graph.context import ConfigError, Context, build_context, check_writable, load_config_file, preflight
from graph.meta import build_meta_graph
from graph.progress import Progress
from graph.threads import ForkError, fork_thread, outer_history
from nodes.meta_loop import meta_workspace
from nodes.report import USAGE_GROUPS, USAGE_HEADERS, usage_cells, usage_total, write_report
from runtime.journal import open_journal
from runtime.models import ROLES
from runtime.orphans import reap_orphans
from runtime.rate_limit import ModelUnavailable
from runtime.sandbox import IsolationUnavailable, resolve_isolation
from runtime.task import TaskError, grade_submission, load_task

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="MLE-STAR Graph: an autonomous ML engineer for Kaggle-style task folders.")
console = Console()
RECURSION_LIMIT = 2000
DEFAULT_JOURNAL = Context().journal_path
RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")

CheckpointsOpt = Annotated[Path, typer.Option(help="SQLite checkpoint database.")]
JournalOpt = Annotated[Path, typer.Option(help="SQLite journal database.")]


def fail(message: str) -> None:
    console.print(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(2)


def check_run_id(run_id: str) -> None:
    """A run id names folders: letters, digits, '_', '-' and '.', not starting with '.'."""
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(f"--run-id {run_id!r} is not a valid run name: use letters, digits, '_', '-' and '.' "
                          f"(no '/', not starting with '.'), e.g. --run-id titanic-1.")


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


def drive(thread_id: str, graph_input: dict | None, ctx: Context, checkpoints: Path) -> dict:
    """Stream the meta graph for one thread, showing progress; Ctrl-C stops it resumably."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime.model_pool").setLevel(logging.INFO)  # which local models hold how much memory
    graph = build_meta_graph(open_checkpointer(checkpoints))
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}
    progress = Progress(console, thread_id)
    orphans = reap_orphans(ctx.workspace_root, thread_id)
    if orphans:
        console.print(f"Stopped {orphans} script process(es) left running by a killed process of this run.")
    try:
        for namespace, mode, chunk in graph.stream(graph_input, config, context=ctx, subgraphs=True,
                                                   stream_mode=["updates", "custom"], durability="sync"):
            progress.handle(namespace, mode, chunk)
    except KeyboardInterrupt:
        for child in psutil.Process().children(recursive=True):
            child.kill()
        console.print(f"\n[yellow]Stopped.[/] Nothing finished is lost: [bold]mlestar resume {thread_id}[/]")
        os._exit(130)
    except ModelUnavailable as exc:
        open_journal(ctx.journal_path).upsert_run(thread_id, status="paused", stop_reason=str(exc))
        console.print(f"\n[yellow]Paused:[/] {escape(str(exc))}\nNothing finished is lost: "
                      f"[bold]mlestar resume {thread_id}[/]")
        raise typer.Exit(3)
    state = graph.get_state(config).values
    record_outcome(thread_id, state, ctx)
    return state


def record_outcome(thread_id: str, state: dict, ctx: Context) -> None:
    """The journal's record of a finished thread (status, best score, submission)."""
    report = state.get("report") or {}
    open_journal(ctx.journal_path).upsert_run(
        thread_id, status="done" if report.get("best_submission") else "failed",
        best_score=report.get("best_score"), submission=report.get("best_submission"))


def stored_run(run_id: str, journal_path: Path) -> tuple[dict, Context]:
    """The journal's record of a run and the settings it was started with."""
    row = open_journal(str(journal_path)).get_run(run_id)
    if not row or not row.get("context"):
        fail(f"No run {run_id} in {journal_path}; `mlestar status` lists the runs.")
    return row, Context(**json.loads(row["context"]))


def thread_state(thread_id: str, checkpoints: Path):
    return build_meta_graph(open_checkpointer(checkpoints)).get_state({"configurable": {"thread_id": thread_id}})


def report_result(thread_id: str, state: dict, ctx: Context) -> None:
    journal = open_journal(ctx.journal_path)
    report = state.get("report") or {}
    for run in state.get("history", []):
        usage = journal.usage(run["run_id"])
        console.print(f"Run {run['run_index']}: {run['status']}, validation score {fmt(run['best_score'])}, "
                      f"{run['duration_s']:.0f} s, model calls {usage['model_calls']} ({usage['tokens_in']} in / "
                      f"{usage['tokens_out']} out tokens, {usage['inference_s']} s, ${usage['cost_usd']:.4f} where "
                      f"priced), scripts {usage['executions']} ({usage['script_s']} s)")
    if not report.get("best_submission"):
        reasons = "; ".join(str(r.get("stop_reason")) for r in state.get("history", []))
        console.print(f"[bold red]{thread_id} ended without a submission:[/] {reasons}")
        raise typer.Exit(1)
    console.print(f"[bold green]Best submission:[/] {report['best_submission']} (run {report['best_run']}, "
                  f"validation score {fmt(report['best_score'])})")
    if report.get("improvement_pct") is not None and len(state["history"]) > 1:
        console.print(f"Improvement over the baseline run: {report['improvement_pct']:+.2f} %")
    console.print(f"Report: {report['markdown']}")
    task = load_task(state["task_dir"])
    if task.answers_path:
        grade = grade_submission(task, report["best_submission"])
        console.print(f"Graded with the hidden answers: {grade.metric} = {fmt(grade.score)}")


def fmt(score) -> str:
    return "-" if score is None else f"{score:.6g}"


@app.command()
def run(
    task_dir: Annotated[Path, typer.Argument(help="Task folder (description, data files, sample submission).")],
    run_id: Annotated[Optional[str], typer.Option(help="Name of the run (default: task-date-time).")] = None,
    model: Annotated[list[str], typer.Option(help="SPEC for every role, or ROLE=SPEC; SPEC is local, "
                                                  "local:/path.gguf, openai:MODEL, scripted:module:fn.")] = [],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of settings.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Setting KEY=VALUE (see docs: Context).")] = [],
    runs: Annotated[Optional[int], typer.Option(help="Pipeline runs of the meta-learning loop (num_runs).")] = None,
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
) -> None:
    """Solve a task folder: search, evaluate, refine, ensemble, submit (N times with --runs N)."""
    try:
        task = load_task(task_dir)  # fail fast on a broken folder, before anything is written
        base = load_config_file(config) if config else {}
        flags = {**parse_assignments(set_, "--set"), **model_settings(model)}
        if runs is not None:
            flags["num_runs"] = runs
        ctx = preflight(build_context(base, flags))
        check_writable("--checkpoints", checkpoints, is_file=True)
        if run_id is not None:
            check_run_id(run_id)
        isolation = resolve_isolation(ctx.isolation)
    except (TaskError, ConfigError, IsolationUnavailable) as exc:
        fail(str(exc))
    run_id = run_id or new_run_id(task.name)
    journal = open_journal(ctx.journal_path)
    if journal.get_run(run_id):
        fail(f"Run {run_id} already exists; resume it with `mlestar resume {run_id}` or pick another --run-id.")
    journal.upsert_run(run_id, task=task.name, task_dir=task.root, status="running", context=asdict(ctx))
    console.print(f"Run [bold]{run_id}[/] on task [bold]{task.name}[/] ({task.metric}, "
                  f"{'lower' if task.lower_is_better else 'higher'} is better), {ctx.num_runs} pipeline run(s), "
                  f"scripts isolated by {isolation}")
    state = drive(run_id, {"task_dir": task.root, "meta_id": run_id}, ctx, checkpoints)
    report_result(run_id, state, ctx)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to finish.")],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
    set_: Annotated[list[str], typer.Option("--set", help="Change a setting for the rest of the run, "
                                                          "KEY=VALUE (e.g. a higher rate limit or budget).")] = [],
) -> None:
    """Finish an interrupted or paused run from its last checkpoint, re-using every finished step."""
    row, ctx = stored_run(run_id, journal_path)
    if set_:
        try:
            ctx = preflight(build_context(asdict(ctx), parse_assignments(set_, "--set")))
        except ConfigError as exc:
            fail(str(exc))
        open_journal(ctx.journal_path).upsert_run(run_id, context=asdict(ctx))
    snapshot = thread_state(run_id, checkpoints)
    if not snapshot.values:
        graph_input = {"task_dir": row["task_dir"], "meta_id": run_id}  # killed before the first checkpoint
    elif not snapshot.next:
        console.print(f"Run {run_id} has already finished.")
        record_outcome(run_id, snapshot.values, ctx)  # the process that finished it may have died before this
        report_result(run_id, snapshot.values, ctx)
        return
    else:
        graph_input = None
    open_journal(ctx.journal_path).upsert_run(run_id, status="running")
    console.print(f"Resuming [bold]{run_id}[/] at {', '.join(snapshot.next) or 'the start'}")
    state = drive(run_id, graph_input, ctx, checkpoints)
    report_result(run_id, state, ctx)


@app.command()
def extend(
    run_id: Annotated[str, typer.Argument(help="A finished meta-loop run.")],
    runs: Annotated[int, typer.Option(help="How many more pipeline runs.")] = 1,
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """Add runs to a finished run: the Enhancer studies everything so far and steers the new runs."""
    row, ctx = stored_run(run_id, journal_path)
    graph = build_meta_graph(open_checkpointer(checkpoints))
    config = {"configurable": {"thread_id": run_id}}
    snapshot = graph.get_state(config)
    if snapshot.next or not snapshot.values.get("history"):
        fail(f"Run {run_id} has not finished; `mlestar resume {run_id}` first.")
    planned = len(snapshot.values["history"]) + runs
    graph.update_state(config, {"runs_planned": planned}, as_node="record")
    console.print(f"Extending [bold]{run_id}[/] to {planned} runs")
    state = drive(run_id, None, ctx, checkpoints)
    report_result(run_id, state, ctx)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """Summary of a run: best score, which run produced it, improvement over the baseline, the Enhancer's
    reasoning; also written as Markdown with a plot in the run's workspace."""
    _, ctx = stored_run(run_id, journal_path)
    snapshot = thread_state(run_id, checkpoints)
    if not snapshot.values.get("history"):
        fail(f"Run {run_id} has no finished pipeline run yet; `mlestar status {run_id}` shows where it is.")
    result = write_report(snapshot.values, meta_workspace(snapshot.values, ctx),
                          open_journal(str(journal_path)).usage_breakdown(run_id))
    console.print(Markdown(Path(result["markdown"]).read_text()))
    console.print(f"Written to {result['markdown']} and {result['plot']}")


@app.command()
def history(
    run_id: Annotated[str, typer.Argument(help="The run (thread) whose checkpoints to list.")],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
) -> None:
    """The outer graph's checkpoints of a run: step, next node, finished runs, best score; fork points marked."""
    rows = outer_history(build_meta_graph(open_checkpointer(checkpoints)), run_id)
    if not rows:
        fail(f"No checkpoints of {run_id} in {checkpoints}; `mlestar runs` lists the runs.")
    table = Table("step", "next", "runs done", "best validation score", "created", "fork point")
    for row in rows:
        best = "-" if row.best_score is None else f"{row.best_score:.6g} (run {row.best_run})"
        table.add_row(str(row.step), ", ".join(row.next) or "(end)", str(row.runs_done), best,
                      row.created_at[:19].replace("T", " "), "yes" if row.can_fork else "")
    console.print(table)
    console.print(f"Fork with `mlestar fork {run_id} --at STEP [--set key=value ...]` at a step marked 'yes'.")


@app.command()
def fork(
    run_id: Annotated[str, typer.Argument(help="The run (thread) to fork.")],
    at: Annotated[int, typer.Option(help="Outer-graph step to fork at (see `mlestar history ID`).")],
    new_id: Annotated[Optional[str], typer.Option("--run-id", help="Name of the new run (default: ID-fork-STEP).")]
    = None,
    set_: Annotated[list[str], typer.Option("--set", help="Changed setting KEY=VALUE for the new run.")] = [],
    checkpoints: CheckpointsOpt = Path(DEFAULT_CHECKPOINTS),
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """A new run from a checkpoint between two pipeline runs, with changed settings; it inherits the finished
    runs (not redone) and continues from there. Compare the two with `mlestar report`."""
    row, ctx = stored_run(run_id, journal_path)
    new_id = new_id or f"{run_id}-fork-{at}"
    changed = parse_assignments(set_, "--set")
    try:
        check_run_id(new_id)
        ctx = preflight(build_context(asdict(ctx), changed))
    except ConfigError as exc:
        fail(str(exc))
    journal = open_journal(ctx.journal_path)
    if journal.get_run(new_id):
        fail(f"Run {new_id} already exists; pick another --run-id.")
    graph = build_meta_graph(open_checkpointer(checkpoints))
    try:
        fork_thread(graph, graph.checkpointer, run_id, at, new_id, state_changes_for(changed, ctx))
    except ForkError as exc:
        fail(str(exc))
    journal.upsert_run(new_id, task=row["task"], task_dir=row["task_dir"], status="running", context=asdict(ctx),
                       stop_reason=None)
    console.print(f"Forked [bold]{new_id}[/] from {run_id} at step {at}"
                  + (f" with {', '.join(f'{k}={v}' for k, v in changed.items())}" if changed else ""))
    state = drive(new_id, None, ctx, checkpoints)
    report_result(new_id, state, ctx)


def state_changes_for(changed: dict, ctx: Context) -> dict:
    """Settings that the meta loop copied into its state at the start: a fork must change them there too."""
    changes = {}
    if "num_runs" in changed:
        changes["runs_planned"] = ctx.num_runs
    if {"computational_budget_s", "early_stop_patience"} & changed.keys():
        changes["stop_rules"] = {"budget_s": ctx.computational_budget_s, "patience": ctx.early_stop_patience}
    return changes


@app.command()
def runs(
    journal_path: Annotated[Path, typer.Option("--journal", help="SQLite journal database.")] = Path(DEFAULT_JOURNAL),
) -> None:
    """Every run (thread) with its task, status, best validation score, model use and cost."""
    journal = open_journal(str(journal_path))
    table = Table("run", "task", "status", "best validation score", "model calls", "tokens", "cost $", "started")
    for row in journal.runs():
        if not row.get("context"):
            continue  # a pipeline run inside a thread: `mlestar status ID` shows those
        usage = journal.usage(row["run_id"])
        table.add_row(row["run_id"], row.get("task") or "", row.get("status") or "", fmt(row.get("best_score")),
                      str(usage["model_calls"]), str(usage["tokens_in"] + usage["tokens_out"]),
                      f"{usage['cost_usd']:.4f}", time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started_at"])))
    console.print(table)


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
    table = Table("run", "task", "status", "best validation score", "updated", "submission", "stop reason")
    for row in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["updated_at"]))
        best = "" if row.get("best_score") is None else f"{row['best_score']:.6g}"
        table.add_row(row["run_id"], row.get("task") or "", row.get("status") or "", best, updated,
                      row.get("submission") or "", row.get("stop_reason") or "")
    console.print(table)
    if run_id:
        for run in journal.meta_runs(run_id):
            stopped = (journal.get_run(run["run_id"]) or {}).get("stop_reason") or "-"
            console.print(f"  run {run['run_index']}: {run['status']} ({escape(stopped)}), validation score "
                          f"{fmt(run['best_score'])}, {run['duration_s']:.0f} s, settings changed: {run['overrides']}")
        usage = journal.usage(run_id)
        console.print(" ".join(f"{k}={v}" for k, v in usage.items()))
        for usage_table in usage_tables(journal.usage_breakdown(run_id)):
            console.print(usage_table)
        if rows[0]["status"] in ("running", "paused") and Path(checkpoints).exists():
            snapshot = thread_state(run_id, checkpoints)
            if snapshot.next:
                console.print(f"Next: {', '.join(snapshot.next)}. If no process is running it, "
                              f"`mlestar resume {run_id}` finishes it.")


def usage_tables(breakdown: dict[str, list[dict]]) -> list[Table]:
    """Model calls, tokens, inference time and cost per role and per phase, each with a total row."""
    tables = []
    for group, title in USAGE_GROUPS:
        table = Table(title, *(Column(h, justify="right") for h in USAGE_HEADERS), title=f"Model usage by {group}")
        rows = breakdown.get(group, [])
        for row in rows:
            table.add_row(row["name"], *usage_cells(row))
        total = usage_total(rows)
        table.add_row("total", *usage_cells(total), style="bold")
        tables.append(table)
    return tables


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


@app.command()
def bench(
    suite_dir: Annotated[Path, typer.Argument(help="A folder of task folders with hidden answers, e.g. examples/.")],
    budget: Annotated[str, typer.Option(help="Wall-clock budget per task and system: 20m, 90s, 1h30m.")] = "20m",
    model: Annotated[str, typer.Option(help="Model spec for every system that uses one (local, openai:MODEL[@URL]).")] = "local",
    systems: Annotated[str, typer.Option(help="Comma-separated: mlestar, aide, flaml, lgbm_default, trivial.")]
    = "mlestar,aide,flaml,lgbm_default,trivial",
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated task names (default: all).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Attempts per task and system (the table shows the spread).")] = 1,
    out: Annotated[Optional[Path], typer.Option(help="Results folder; rerun with the same one to continue a "
                                                     "killed suite run.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Setting KEY=VALUE for MLE-STAR's runs.")] = [],
) -> None:
    """Run and grade every system on every task of a suite; results.jsonl, table.md and scores.png in --out."""
    from bench.runner import parse_budget, run_suite
    from bench.suite import load_suite
    from bench.systems import make_systems

    try:
        budget_s = parse_budget(budget)
        suite = load_suite(suite_dir, [t.strip() for t in tasks.split(",")] if tasks else None)
        parse_assignments(set_, "--set")
        chosen, close = make_systems([s.strip() for s in systems.split(",") if s.strip()], model, set_)
    except (ValueError, TaskError, FileNotFoundError) as exc:
        fail(str(exc))
    out = out or Path("bench/results") / f"suite-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(" ".join(["mlestar", *sys.argv[1:]]) + "\n")
    console.print(f"Suite {suite_dir}: {len(suite)} task(s) x {len(chosen)} system(s) x {seeds} seed(s), "
                  f"{budget_s:.0f} s each; results in {out}")

    def show(record, reused: bool) -> None:
        console.print(f"{'(recorded) ' if reused else ''}{record.task} {record.system} s{record.seed}: "
                      f"{record.status}, {'valid' if record.valid else 'INVALID'}, score {fmt(record.score)}, "
                      f"medal {record.medal or '-'}, {record.wall_s:.0f} s")

    try:
        run_suite(suite_dir, out, chosen, suite, seeds, budget_s, show)
    finally:
        close()
    console.print(Markdown((out / "table.md").read_text()))
    console.print(f"Table: {out / 'table.md'}; plot: {out / 'scores.png'}")


if __name__ == "__main__":
    app()
