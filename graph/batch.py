"""`mlestar batch`: one MLE-STAR run per task folder, one after another or at once on a Ray cluster.

Every run has a stable id (`<batch id>-<task name>`), so the same command started again finishes what is
unfinished and skips what is done; a run whose worker died mid-way is started again by Ray and resumes from
its checkpoints, re-using every finished model answer and script result in the journal. On a cluster the
checkpoints and the journal must be a store every node reaches (PostgreSQL), and the workspace a folder every
node sees (docs/scale-out.md).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.checkpoint import checkpoints_location, journal_location
from graph.client import MleStar
from graph.cluster import Resources, run_all
from graph.context import ConfigError, Context
from runtime.journal import is_database_url
from runtime.task import load_task


@dataclass(frozen=True)
class BatchJob:
    """One run of a batch, as a worker receives it: every path absolute, the stores named."""

    task_dir: str
    task: str
    run_id: str
    checkpoints: str
    journal: str
    settings: dict[str, Any] = field(default_factory=dict)  # Context settings, as for MleStar.run
    config: str | None = None


@dataclass(frozen=True)
class BatchResult:
    run_id: str
    task: str
    status: str  # done | failed | paused | review | running | error (the run raised; resume to go on)
    best_score: float | None = None
    submission: str | None = None
    stop_reason: str | None = None
    executions: int = 0
    executions_reused: int = 0
    answers_reused: int = 0
    wall_s: float = 0.0
    host: str = ""


def absolute(location: str) -> str:
    return location if is_database_url(location) else str(Path(location).resolve())


def plan_batch(task_dirs: list[Path], batch_id: str, settings: dict[str, Any], checkpoints: str | None = None,
               journal: str | None = None, config: str | Path | None = None) -> list[BatchJob]:
    """The batch's runs; fails before anything starts on a broken task folder or two tasks of one name."""
    tasks = [load_task(folder) for folder in task_dirs]
    names = [task.name for task in tasks]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"Two task folders are named {', '.join(twice)}: a batch names its runs after its tasks; "
                          f"run them in separate batches.")
    settings = {**settings, "workspace_root": absolute(str(settings.get("workspace_root", Context().workspace_root)))}
    store = absolute(checkpoints_location(checkpoints))
    return [BatchJob(task.root, task.name, f"{batch_id}-{task.name}", store, absolute(journal_location(journal, store)),
                     settings, str(Path(config).resolve()) if config else None) for task in tasks]


def run_job(job: BatchJob) -> BatchResult:
    """Start the run, or resume it when the store has it (a retry after a dead worker, a batch started again)."""
    started = time.monotonic()
    agent = MleStar(job.checkpoints, job.journal)
    row = agent.journal().get_run(job.run_id)
    if row and row.get("context"):
        result = agent.resume(job.run_id)
    else:
        result = agent.run(job.task_dir, run_id=job.run_id, config=job.config, **job.settings)
    usage = agent.journal().usage(job.run_id)
    return BatchResult(result.run_id, job.task, result.status, result.best_score,
                       result.submission, result.stop_reason, usage["executions"], usage["executions_reused"],
                       usage["answers_reused"], round(time.monotonic() - started, 1),
                       f"{socket.gethostname()}:{os.getpid()}")


def failed(job: BatchJob, error: BaseException) -> BatchResult:
    return BatchResult(job.run_id, job.task, "error",
                       stop_reason=f"{type(error).__name__}: {str(error).strip()[:500]}")


def run_batch(jobs: list[BatchJob], on_result: Callable[[BatchResult], None], ray: bool = False,
              resources: Resources = Resources()) -> list[BatchResult]:
    """Every job, in this process one after another or as Ray tasks (start_ray first); `on_result` sees each
    result as its run ends. A run that raised is reported as status "error"; the others go on."""
    results: list[BatchResult] = []

    def done(job: BatchJob, result: BatchResult | None, error: BaseException | None) -> None:
        outcome = result if result is not None else failed(job, error or RuntimeError("no result"))
        results.append(outcome)
        on_result(outcome)

    if ray:
        run_all(run_job, jobs, resources, done)
    else:
        for job in jobs:
            try:
                done(job, run_job(job), None)
            except Exception as exc:  # the run is kept (status error in the journal): resume goes on
                done(job, None, exc)
    return results
