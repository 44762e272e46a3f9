"""The `mlestar` command: run, resume, extend, history, fork, runs, report, status, grade, bench."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import psutil
import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Column, Table

from graph.checkpoint import CheckpointError, checkpoints_location, journal_location, open_checkpointer
from graph.client import ClientError, MleStar, RunResult, model_settings, new_run_id
from graph.cluster import read_ray_flag
from graph.context import SETTING_GROUPS, ConfigError, build_context, load_config_file, preflight
from graph.progress import Progress
from nodes.report_tables import USAGE_GROUPS, USAGE_HEADERS, usage_cells, usage_total
from runtime.journal import JournalError, is_database_url, open_journal, redact
from runtime.models import ROLES
from runtime.sandbox import IsolationUnavailable
from runtime.task import TaskError, grade_submission, load_task

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="MLE-STAR Graph: an autonomous ML engineer for Kaggle-style task folders.")
console = Console()
EXIT_PAUSED, EXIT_REVIEW = 3, 4
USER_ERRORS = (ClientError, ConfigError, TaskError, IsolationUnavailable, JournalError)

CheckpointsOpt = Annotated[Optional[str], typer.Option(
    help="Checkpoint store: a SQLite file or a postgresql:// URL (default: $MLESTAR_CHECKPOINTS or "
         "checkpoints/checkpoints.db).")]
JournalOpt = Annotated[Optional[str], typer.Option(
    "--journal", help="Journal: a SQLite file or a postgresql:// URL (default: $MLESTAR_JOURNAL, else the "
                      "checkpoints' PostgreSQL database, else checkpoints/journal.db).")]
#: The settings --set takes, by group (docs/configuration.md has each one's meaning, default and bounds).
SETTINGS_EPILOG = "Settings for --set KEY=VALUE, by group (docs/configuration.md):\n\n" + "\n\n".join(
    f"{group}: {', '.join(names)}" for group, names in SETTING_GROUPS.items())


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(2)


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{what} {item!r} is not of the form KEY=VALUE.")
        pairs[key.strip()] = value.strip()
    return pairs


def role_models(items: list[str]) -> dict[str, str]:
    """--model SPEC sets every role; --model ROLE=SPEC one role."""
    settings = {}
    for item in items:
        role, sep, spec = item.partition("=")
        if not sep:
            settings.update(model_settings(item))
        elif role in ROLES:
            settings.update(model_settings({role: spec}))
        else:
            fail(f"Unknown role {role!r} in --model {item}; roles are {', '.join(ROLES)}.")
    return settings


def client(checkpoints: str | None, journal: str | None, run_id: str) -> MleStar:
    """A client that shows the run's progress live and stops at once on Ctrl-C."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress = Progress(console, run_id)
    agent = MleStar(checkpoints, journal, on_event=progress.handle,
                    on_interrupt=lambda stopped: stop_now(agent, stopped))
    return agent


def stop_now(agent: MleStar, run_id: str) -> None:
    """Ctrl-C: kill every script, mark the run interrupted and exit, without waiting for running nodes
    (the checkpoints and the journal hold everything finished; `resume` redoes the rest)."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass
    agent.mark_interrupted(run_id)
    console.print(f"\n[yellow]Stopped.[/] Nothing finished is lost: [bold]mlestar resume {run_id}[/]")
    os._exit(130)


def drive(agent: MleStar, run_id: str, step) -> RunResult:
    """Run one client step (run, resume, fork...) and show how it ended."""
    try:
        result = step(agent)
    except USER_ERRORS as exc:
        fail(str(exc))
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        console.print(f"[bold red]Run {run_id} stopped on an error:[/] {escape(type(exc).__name__)}: "
                      f"{escape(str(exc))} ({where.filename}:{where.lineno}). Everything finished is kept: "
                      f"fix the cause, then [bold]mlestar resume {run_id}[/]")
        raise typer.Exit(1)
    show_result(result, open_journal(agent.journal_path))
    return result


def show_result(result: RunResult, journal) -> None:
    run_id = result.run_id
    if result.status == "paused":
        console.print(f"\n[yellow]Paused:[/] {escape(result.stop_reason or '')}\nNothing finished is lost: "
                      f"[bold]mlestar resume {run_id}[/]")
        raise typer.Exit(EXIT_PAUSED)
    if result.status == "review":
        show_review(result)
        raise typer.Exit(EXIT_REVIEW)
    for run in result.values.get("history", []):
        usage = journal.usage(run["run_id"])
        console.print(f"Run {run['run_index']}: {run['status']}, validation score {fmt(run['best_score'])}, "
                      f"{run['duration_s']:.0f} s, model calls {usage['model_calls']} ({usage['tokens_in']} in / "
                      f"{usage['tokens_out']} out tokens, {usage['inference_s']} s, ${usage['cost_usd']:.4f} where "
                      f"priced), scripts {usage['executions']} ({usage['script_s']} s)")
    if result.status != "done":
        reasons = "; ".join(str(r.get("stop_reason")) for r in result.values.get("history", []))
        console.print(f"[bold red]{run_id} ended without a submission:[/] {escape(reasons)}")
        raise typer.Exit(1)
    report = result.values.get("report") or {}
    console.print(f"[bold green]Best submission:[/] {result.submission} (run {result.best_run}, "
                  f"validation score {fmt(result.best_score)})")
    if report.get("improvement_pct") is not None and result.runs_done > 1:
        console.print(f"Improvement over the baseline run: {report['improvement_pct']:+.2f} %")
    console.print(f"Report: {result.report} and {(result.values.get('report') or {}).get('html')}")
    task = load_task(result.values["task_dir"])
    if task.answers_path and result.submission is not None:
        grade = grade_submission(task, result.submission)
        console.print(f"Graded with the hidden answers: {grade.metric} = {fmt(grade.score)}")


def show_review(result: RunResult) -> None:
    review = result.review
    assert review is not None  # status "review" means a pending review (graph.client.status_of)
    console.print(f"\n[bold yellow]Waiting for your review[/] of the {review.point} proposal of {result.run_id}:")
    console.print_json(data=review.proposal)
    if review.problem:
        console.print(f"[red]Your last answer could not be used:[/] {escape(review.problem)}")
    console.print(f"Answer with [bold]mlestar review {result.run_id} --approve[/], [bold]--reject[/], or "
                  f"[bold]--edit JSON[/] where JSON is {escape(review.how_to_edit)}")


def store_exists(checkpoints: str | None) -> bool:
    location = checkpoints_location(checkpoints)
    return is_database_url(location) or Path(location).exists()


def fmt(score) -> str:
    return "-" if score is None else f"{score:.6g}"


@app.command(epilog=SETTINGS_EPILOG)
def run(
    task_dir: Annotated[Path, typer.Argument(help="Task folder (description, data files, sample submission).")],
    run_id: Annotated[Optional[str], typer.Option(help="Name of the run (default: task-date-time).")] = None,
    model: Annotated[list[str], typer.Option(help="SPEC for every role, or ROLE=SPEC; SPEC is local, "
                                                  "local:/path.gguf, openai:MODEL, scripted:module:fn.")] = [],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of settings.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Setting KEY=VALUE (the settings are listed below).")] = [],
    runs: Annotated[Optional[int], typer.Option(help="Pipeline runs of the meta-learning loop (num_runs).")] = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """Solve a task folder: search, evaluate, refine, ensemble, submit (N times with --runs N)."""
    try:
        task = load_task(task_dir)
        base = load_config_file(config) if config else {}
    except (TaskError, ConfigError) as exc:
        fail(str(exc))
    settings = {**parse_assignments(set_, "--set"), **role_models(model)}
    journal = settings.pop("journal_path", None) or base.get("journal_path")
    run_id = run_id or new_run_id(task.name)
    console.print(f"Run [bold]{run_id}[/] on task [bold]{task.name}[/] ({task.metric}, "
                  f"{'lower' if task.lower_is_better else 'higher'} is better)")
    drive(client(checkpoints, journal, run_id), run_id,
          lambda agent: agent.run(task_dir, run_id=run_id, runs=runs, config=config, **settings))


@app.command(epilog=SETTINGS_EPILOG)
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to finish.")],
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
    set_: Annotated[list[str], typer.Option("--set", help="Change a setting for the rest of the run, "
                                                          "KEY=VALUE (e.g. a higher rate limit or budget).")] = [],
) -> None:
    """Finish an interrupted or paused run from its last checkpoint, re-using every finished step."""
    settings = parse_assignments(set_, "--set")
    agent = client(checkpoints, journal_path, run_id)
    try:
        before = agent.status(run_id)
    except CheckpointError as exc:
        fail(str(exc).replace("RUN_ID", run_id))
    except ClientError as exc:
        fail(f"{exc} `mlestar runs` lists the runs.")
    if before.values and not before.next:
        console.print(f"Run {run_id} has already finished.")
    else:
        console.print(f"Resuming [bold]{run_id}[/] at {', '.join(before.next) or 'the start'}")
    drive(agent, run_id, lambda agent: agent.resume(run_id, **settings))


@app.command()
def extend(
    run_id: Annotated[str, typer.Argument(help="A finished meta-loop run.")],
    runs: Annotated[int, typer.Option(help="How many more pipeline runs.")] = 1,
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
) -> None:
    """Add runs to a finished run: the Enhancer studies everything so far and steers the new runs."""
    console.print(f"Extending [bold]{run_id}[/] by {runs} run(s)")
    drive(client(checkpoints, journal_path, run_id), run_id, lambda agent: agent.extend(run_id, runs))


@app.command()
def review(
    run_id: Annotated[str, typer.Argument(help="A run waiting for a review (setting human_review).")],
    approve: Annotated[bool, typer.Option("--approve", help="Accept the proposal as it is.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Refuse it: no submission is written, or the "
                                                          "Enhancer's changes are dropped.")] = False,
    edit: Annotated[Optional[str], typer.Option(help="Replace parts of the proposal: a JSON object (see the "
                                                     "proposal for its fields).")] = None,
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
) -> None:
    """Show what a paused run proposes, or answer it and let the run go on."""
    agent = client(checkpoints, journal_path, run_id)
    if approve + reject + (edit is not None) > 1:
        fail("Give one of --approve, --reject or --edit.")
    if not (approve or reject or edit is not None):
        try:
            result = agent.status(run_id)
        except (ClientError, CheckpointError) as exc:
            fail(str(exc))
        if result.review is None:
            fail(f"Run {run_id} is not waiting for a review (status {result.status}).")
        show_review(result)
        return
    answer: str | dict = "approve" if approve else "reject"
    if edit is not None:
        try:
            answer = {"action": "edit", "edit": json.loads(edit)}
        except json.JSONDecodeError as exc:
            fail(f"--edit is not valid JSON ({exc}); e.g. --edit '{{\"config_overrides\": {{\"refine_steps\": 2}}}}'.")
    drive(agent, run_id, lambda agent: agent.review(run_id, answer))


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
    html: Annotated[bool, typer.Option("--html", help="Print only the path of the HTML report.")] = False,
) -> None:
    """Summary of a run: best score, which run produced it, improvement over the baseline, every attempt, the
    ablations, ensembles, plans, the Enhancer's reasoning and the cost; written as Markdown with its figures and
    as one self-contained HTML page in the run's workspace."""
    try:
        result = MleStar(checkpoints, journal_path).report(run_id)
    except (ClientError, CheckpointError) as exc:
        fail(f"{exc} `mlestar status {run_id}` shows where it is.")
    if html:
        print(result["html"])
        return
    console.print(Markdown(Path(result["markdown"]).read_text()))
    console.print(f"Written to {result['markdown']} (figures beside it) and {result['html']}")


@app.command()
def history(
    run_id: Annotated[str, typer.Argument(help="The run (thread) whose checkpoints to list.")],
    checkpoints: CheckpointsOpt = None,
) -> None:
    """The outer graph's checkpoints of a run: step, next node, finished runs, best score; fork points marked."""
    try:
        rows = MleStar(checkpoints).history(run_id)
    except (ClientError, CheckpointError) as exc:
        fail(f"{exc} `mlestar runs` lists the runs.")
    branched = any(row.branch for row in rows)
    table = Table(*(["branch"] if branched else []), "step", "next", "runs done", "best validation score",
                  "created", "fork point")
    for row in rows:
        best = "-" if row.best_score is None else f"{row.best_score:.6g} (run {row.best_run})"
        branch = [f"{row.branch}{'' if row.current else ' (replaced)'}"] if branched else []
        table.add_row(*branch, str(row.step), ", ".join(row.next) or "(end)", str(row.runs_done), best,
                      row.created_at[:19].replace("T", " "), "yes" if row.can_fork and row.current else "")
    console.print(table)
    if branched:
        console.print("The thread was replayed from an earlier checkpoint: each replay is a branch with its own "
                      "pipeline run ids; the latest one continues, '(replaced)' rows are the earlier lines.")
    console.print(f"Fork with `mlestar fork {run_id} --at STEP [--set key=value ...]` at a step marked 'yes'.")


@app.command()
def fork(
    run_id: Annotated[str, typer.Argument(help="The run (thread) to fork.")],
    at: Annotated[int, typer.Option(help="Outer-graph step to fork at (see `mlestar history ID`).")],
    new_id: Annotated[Optional[str], typer.Option("--run-id", help="Name of the new run (default: ID-fork-STEP).")]
    = None,
    set_: Annotated[list[str], typer.Option("--set", help="Changed setting KEY=VALUE for the new run.")] = [],
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
) -> None:
    """A new run from a checkpoint between two pipeline runs, with changed settings; it inherits the finished
    runs (not redone) and continues from there. Compare the two with `mlestar report`."""
    changed = parse_assignments(set_, "--set")
    new_id = new_id or f"{run_id}-fork-{at}"
    console.print(f"Forking [bold]{new_id}[/] from {run_id} at step {at}"
                  + (f" with {', '.join(f'{k}={v}' for k, v in changed.items())}" if changed else ""))
    drive(client(checkpoints, journal_path, new_id), new_id, lambda agent: agent.fork(run_id, at, new_id, **changed))


@app.command()
def runs(checkpoints: CheckpointsOpt = None, journal_path: JournalOpt = None) -> None:
    """Every run (thread) with its task, status, best validation score, model use and cost."""
    agent = MleStar(checkpoints, journal_path)
    try:
        journal = agent.journal()
    except JournalError as exc:
        fail(str(exc))
    table = Table("run", "task", "status", "best validation score", "model calls", "tokens", "cost $", "started")
    for row in agent.runs():
        usage = journal.usage(row["run_id"])
        table.add_row(row["run_id"], row.get("task") or "", row.get("status") or "", fmt(row.get("best_score")),
                      str(usage["model_calls"]), str(usage["tokens_in"] + usage["tokens_out"]),
                      f"{usage['cost_usd']:.4f}", time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started_at"])))
    console.print(table)


@app.command()
def status(
    run_id: Annotated[Optional[str], typer.Argument(help="One run to show in detail.")] = None,
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
) -> None:
    """List runs, or show one run: state, best score, model and script usage."""
    try:
        journal = open_journal(journal_location(journal_path, checkpoints))
    except JournalError as exc:
        fail(str(exc))
    if run_id:
        row = journal.get_run(run_id)
        if row is None:
            fail(f"No run {run_id} in {redact(journal.location)}.")
        rows = [row]
    else:
        rows = journal.runs()
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
        if rows[0]["status"] in ("running", "paused", "review") and store_exists(checkpoints):
            result = MleStar(checkpoints, journal_path).status(run_id)
            if result.review:
                show_review(result)
            elif result.next:
                console.print(f"Next: {', '.join(result.next)}. If no process is running it, "
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
    result = grade_submission(task, submission, None if answers is None else str(answers))
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


@app.command("import")
def import_task(
    source: Annotated[str, typer.Argument(help="mlebench:PATH (a prepared MLE-bench competition folder) or "
                                               "kaggle:COMPETITION (needs `pip install kaggle` and credentials).")],
    dest: Annotated[Path, typer.Argument(help="The task folder to create (must not exist, or be empty).")],
    metric: Annotated[Optional[str], typer.Option(help="Metric to use when the source's has no equivalent here "
                                                       "(e.g. rmse, auc, logloss).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="MLE-bench config.yaml of the competition "
                                                        "(default: PATH/config.yaml).")] = None,
) -> None:
    """Make a task folder from an MLE-bench prepared competition or a Kaggle competition."""
    from runtime.task_import import import_source

    try:
        task = load_task(import_source(source, dest, metric=metric, config=config))
    except TaskError as exc:
        fail(str(exc))
    console.print(f"Task folder {escape(task.root)}: {task.kind}, target {escape(task.target)}, metric "
                  f"{task.metric} ({'lower' if task.lower_is_better else 'higher'} is better).")
    if task.answers_path:
        console.print("Hidden answers in private/answers.csv: `mlestar grade` and `mlestar bench` can score it.")
    else:
        console.print("No hidden answers (Kaggle keeps the test labels): the task runs but cannot be graded here. "
                      f"Paste the competition's overview into {escape(task.path('description.md'))} for better "
                      "results.")


RayOpt = Annotated[Optional[str], typer.Option(
    "--ray", help="Run on a Ray cluster: --ray alone starts a local one; --ray ADDRESS joins a running one "
                  "(auto, HOST:6379, ray://HOST:10001). docs/scale-out.md.")]
RayCpusOpt = Annotated[Optional[int], typer.Option(min=1, help="CPUs of the local cluster --ray starts "
                                                               "(default: all of this machine's).")]


@app.command(epilog=SETTINGS_EPILOG)
def batch(
    task_dirs: Annotated[list[Path], typer.Argument(help="Task folders; each gets one run, <batch-id>-<task name>.")],
    batch_id: Annotated[Optional[str], typer.Option(help="Name of the batch (default: batch-date-time); the "
                                                         "same command with the same id finishes what is left.")]
    = None,
    model: Annotated[list[str], typer.Option(help="SPEC for every role, or ROLE=SPEC (as for run).")] = [],
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of settings.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Setting KEY=VALUE for every run.")] = [],
    runs: Annotated[Optional[int], typer.Option(help="Pipeline runs of each task's meta loop (num_runs).")] = None,
    checkpoints: CheckpointsOpt = None,
    journal_path: JournalOpt = None,
    ray: RayOpt = None,
    ray_cpus: RayCpusOpt = None,
    cpus_per_run: Annotated[float, typer.Option(help="CPUs each run reserves on the cluster.")] = 1.0,
    memory_mb: Annotated[Optional[int], typer.Option(help="Memory each run reserves on the cluster, MiB (default: "
                                                          "script_memory_mb + 2048 for the agent).")] = None,
    retries: Annotated[int, typer.Option(min=0, help="Restarts of a run whose worker or node died; each "
                                                     "resumes from the store.")] = 3,
) -> None:
    """Solve several task folders: one run each, in this process one after another, or at once with --ray."""
    from graph.batch import plan_batch, run_batch
    from graph.cluster import resources_for, start_ray

    if ray_cpus is not None and not ray:
        fail("--ray-cpus sizes the local cluster of --ray; add --ray.")
    settings: dict[str, Any] = {**parse_assignments(set_, "--set"), **role_models(model)}
    if runs is not None:
        settings["num_runs"] = runs
    try:
        base = load_config_file(config) if config else {}
        ctx = preflight(build_context(base, {k: v for k, v in settings.items() if k != "journal_path"}))
        journal = settings.pop("journal_path", None) or base.get("journal_path") or journal_path
        jobs = plan_batch(task_dirs, batch_id or f"batch-{time.strftime('%Y%m%d-%H%M%S')}",
                          {**settings, "workspace_root": ctx.workspace_root}, checkpoints, journal, config)
        resources = resources_for([ctx.role_model(role) for role in ROLES], cpus_per_run,
                                  ctx.script_memory_mb + 2048 if memory_mb is None else memory_mb, retries)
        open_journal(jobs[0].journal), open_checkpointer(jobs[0].checkpoints)  # reachable, set up: before any run
        where = start_ray(ray, ray_cpus) if ray else "this process, one after another"
    except (TaskError, ConfigError, JournalError) as exc:
        fail(str(exc))
    if ray and not is_database_url(jobs[0].checkpoints) and ray != "local":
        console.print("[yellow]Note:[/] the checkpoints are a SQLite file: every node must see it at the same path, "
                      "and SQLite is not safe on a network file system; use a postgresql:// store on a cluster.")
    console.print(f"Batch of {len(jobs)} run(s) in {where}; store {redact(jobs[0].checkpoints)}, journal "
                  f"{redact(jobs[0].journal)}")

    def show(result) -> None:
        colour = "green" if result.status == "done" else "red"
        console.print(f"[{colour}]{result.run_id}[/]: {result.status}, validation score {fmt(result.best_score)}, "
                      f"{result.executions} scripts ({result.executions_reused} re-used), {result.wall_s:.0f} s"
                      + (f" on {result.host}" if result.host else "")
                      + (f": {escape(result.stop_reason)}" if result.stop_reason and result.status != "done" else ""))

    results = run_batch(jobs, show, ray=bool(ray), resources=resources)
    table = Table("run", "task", "status", "validation score", "submission")
    for result in sorted(results, key=lambda r: r.run_id):
        table.add_row(result.run_id, result.task, result.status, fmt(result.best_score), result.submission or "")
    console.print(table)
    if any(result.status != "done" for result in results):
        console.print("Runs that did not finish keep everything they did: the same command finishes them.")
        raise typer.Exit(1)


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
    ray: RayOpt = None,
    ray_cpus: RayCpusOpt = None,
    cpus_per_attempt: Annotated[float, typer.Option(help="CPUs each attempt reserves on the cluster.")] = 1.0,
    memory_mb: Annotated[Optional[int], typer.Option(help="Memory each attempt reserves on the cluster, MiB "
                                                          "(default: script_memory_mb + 2048).")] = None,
) -> None:
    """Run and grade every system on every task of a suite; results.jsonl, table.md and scores.png in --out.
    With --ray the attempts run at once on a Ray cluster, each with its own budget."""
    from bench.runner import ClusterPlan, parse_budget, run_suite
    from bench.suite import load_suite
    from bench.systems import make_systems
    from graph.cluster import resources_for, start_ray

    try:
        budget_s = parse_budget(budget)
        suite = load_suite(suite_dir, [t.strip() for t in tasks.split(",")] if tasks else None)
        ctx = build_context({}, parse_assignments(set_, "--set"))
        chosen, close = make_systems([s.strip() for s in systems.split(",") if s.strip()], model, set_)
        cluster = None
        if ray:
            close()  # each worker builds its own systems
            close = lambda: None  # noqa: E731
            resources = resources_for([model], cpus_per_attempt,
                                      ctx.script_memory_mb + 2048 if memory_mb is None else memory_mb, retries=2)
            console.print(f"Attempts as Ray tasks in {start_ray(ray, ray_cpus)}")
            cluster = ClusterPlan(model, set_, resources, lambda attempt, error: console.print(
                f"[red]{attempt.task.name} {attempt.system} s{attempt.seed}: not recorded[/] ({escape(str(error))}); "
                f"the same command retries it"))
        elif ray_cpus is not None:
            raise ConfigError("--ray-cpus sizes the local cluster of --ray; add --ray.")
    except (ValueError, TaskError, FileNotFoundError) as exc:
        fail(str(exc))
    out = (out or Path("bench/results") / f"suite-{time.strftime('%Y%m%d-%H%M%S')}").resolve()  # systems run elsewhere
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(" ".join(["mlestar", *sys.argv[1:]]) + "\n")
    console.print(f"Suite {suite_dir}: {len(suite)} task(s) x {len(chosen)} system(s) x {seeds} seed(s), "
                  f"{budget_s:.0f} s each; results in {out}")

    def show(record, reused: bool) -> None:
        console.print(f"{'(recorded) ' if reused else ''}{record.task} {record.system} s{record.seed}: "
                      f"{record.status}, {'valid' if record.valid else 'INVALID'}, score {fmt(record.score)}, "
                      f"medal {record.medal or '-'}, {record.wall_s:.0f} s")

    try:
        run_suite(suite_dir, out, chosen, suite, seeds, budget_s, show, cluster)
    finally:
        close()
    console.print(Markdown((out / "table.md").read_text()))
    console.print(f"Table: {out / 'table.md'}; plot: {out / 'scores.png'}")


def main() -> None:
    """The `mlestar` entry point: `--ray` may stand without its address (graph.cluster.read_ray_flag)."""
    sys.argv[1:] = read_ray_flag(sys.argv[1:])
    app()


if __name__ == "__main__":
    main()
