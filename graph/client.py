"""`MleStar`: the Python way in, for notebooks and scripts. The CLI is a thin layer over it.

    from graph.client import MleStar

    agent = MleStar()                                   # checkpoints/ and journal under ./checkpoints
    result = agent.run("examples/titanic", model="local", runs=2, num_lanes=1)
    print(result.status, result.best_score, result.submission)
    agent.history(result.run_id)                        # outer-graph checkpoints, fork points marked
    forked = agent.fork(result.run_id, at=5, refine_steps=2)

Every method works on the same checkpoint database and journal as `mlestar` and the `langgraph dev`
server, so a run started in one place can be watched, resumed, reviewed or forked from another. Results are
typed (`RunResult`, `Review`, `Checkpoint`); bad input raises `ClientError` (or `ConfigError`/`TaskError`)
with a message that names the problem and the fix.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from langgraph.types import Command

from graph.checkpoint import CheckpointError, checkpoints_location, journal_location, open_checkpointer, thread_id_for
from graph.context import ConfigError, Context, build_context, check_writable, load_config_file, preflight
from graph.inputs import check_run_id
from graph.meta import build_meta_graph
from graph.threads import Checkpoint, ForkError, fork_thread, outer_history, thread_config
from nodes.meta_loop import meta_workspace
from nodes.report import record_outcome, write_report
from runtime.journal import is_database_url, open_journal, redact
from runtime.models import ROLES
from runtime.orphans import reap_orphans
from runtime.rate_limit import ModelUnavailable
from runtime.sandbox import resolve_isolation
from runtime.stop import stop_on_signals
from runtime.task import load_task

RECURSION_LIMIT = 2000
EventHandler = Callable[[tuple, str, Any], None]


class ClientError(ValueError):
    """A request the client cannot carry out (unknown run, run not in the right state, bad id)."""


@dataclass(frozen=True)
class Review:
    """A pause for a person's decision (setting human_review): what is proposed and how to answer."""

    point: str                  # "submission" or "enhancer"
    proposal: dict
    how_to_edit: str
    problem: str | None         # why the previous answer could not be used


@dataclass(frozen=True)
class RunResult:
    """Where a run stands: finished (done/failed), stopped (paused/review/running) or never started."""

    run_id: str
    thread_id: str
    status: str                 # done | failed | review | paused | running
    next: tuple[str, ...]       # the outer-graph nodes it continues with; () once finished
    runs_done: int
    best_score: float | None    # validation score of the champion run
    best_run: int | None
    submission: str | None
    report: str | None          # Markdown report, once the run finished
    stop_reason: str | None
    review: Review | None
    values: dict = field(repr=False, default_factory=dict)


def new_run_id(task_name: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', task_name)}-{time.strftime('%Y%m%d-%H%M%S')}"


def model_settings(model: str | dict[str, str] | None) -> dict[str, str]:
    """A spec for every role, or {role: spec}."""
    if model is None:
        return {}
    if isinstance(model, str):
        return {f"{role}_model": model for role in ROLES}
    unknown = sorted(set(model) - set(ROLES))
    if unknown:
        raise ConfigError(f"Unknown role {', '.join(unknown)} in model; roles are {', '.join(ROLES)}.")
    return {f"{role}_model": spec for role, spec in model.items()}


def pending_review(snapshot) -> Review | None:
    for pending in snapshot.interrupts:
        value = pending.value if isinstance(pending.value, dict) else {}
        if "review" in value:
            return Review(value["review"], value.get("proposal") or {}, value.get("edit") or "",
                          value.get("problem"))
    return None


def status_of(snapshot, journal_row: dict | None) -> str:
    if pending_review(snapshot):
        return "review"
    if snapshot.values and not snapshot.next:
        return "done" if (snapshot.values.get("report") or {}).get("best_submission") else "failed"
    return (journal_row or {}).get("status") or "running"


class MleStar:
    """Run, resume, extend, review, fork and inspect runs of the `mle_star` graph."""

    def __init__(self, checkpoints: str | Path | None = None, journal: str | Path | None = None,
                 on_event: EventHandler | None = None, on_interrupt: Callable[[str], None] | None = None):
        """`checkpoints`: the checkpoint store, a SQLite file or a postgresql:// URL (default $MLESTAR_CHECKPOINTS
        or checkpoints/checkpoints.db); `journal`: the journal, a file or a URL (default: the checkpoints'
        PostgreSQL database when they are on one, else `Context.journal_path`); `on_event(namespace, mode,
        chunk)` sees the graph's stream
        (progress events are mode "custom"). On Ctrl-C the running script is killed, nothing new starts, the
        run is marked interrupted and KeyboardInterrupt is raised once the nodes have stopped;
        `on_interrupt(run_id)`, if given, is called first (the CLI exits there at once)."""
        self.checkpoints = checkpoints_location(checkpoints)
        self.journal_path = journal_location(journal, checkpoints)
        self.on_event = on_event or (lambda namespace, mode, chunk: None)
        self.on_interrupt = on_interrupt
        self._graph = None

    @property
    def graph(self):
        if self._graph is None:
            if not is_database_url(self.checkpoints):
                check_writable("checkpoints", self.checkpoints, is_file=True)
            self._graph = build_meta_graph(open_checkpointer(self.checkpoints))
        return self._graph

    def journal(self):
        return open_journal(self.journal_path)

    # --- starting and continuing runs ---------------------------------------------------------------

    def run(self, task_dir: str | Path, *, run_id: str | None = None, runs: int | None = None,
            model: str | dict[str, str] | None = None, config: str | Path | None = None,
            **settings: Any) -> RunResult:
        """Solve a task folder (N pipeline runs with runs=N). Settings are Context fields (see
        docs/configuration.md), layered over the config file; returns when the run stops."""
        task = load_task(task_dir)  # fail fast on a broken folder, before anything is written
        if Path(settings.pop("journal_path", self.journal_path)) != Path(self.journal_path):
            raise ClientError("The journal is the client's: pass MleStar(journal=PATH) instead of journal_path.")
        flags = {**settings, **model_settings(model), "journal_path": str(self.journal_path)}
        if runs is not None:
            flags["num_runs"] = runs
        ctx = preflight(build_context(load_config_file(config) if config else {}, flags))
        resolve_isolation(ctx.isolation)
        run_id = run_id or new_run_id(task.name)
        check_run_id(run_id)
        journal = self.journal()
        if journal.get_run(run_id):
            raise ClientError(f"Run {run_id} already exists; resume it or pick another run id.")
        journal.upsert_run(run_id, task=task.name, task_dir=task.root, status="running", context=asdict(ctx))
        return self._drive(run_id, {"task_dir": task.root, "meta_id": run_id}, ctx)

    def resume(self, run_id: str, **settings: Any) -> RunResult:
        """Finish an interrupted or paused run from its last checkpoint, re-using every finished step;
        settings change the rest of the run (e.g. a higher rate limit or budget)."""
        row, ctx = self._stored(run_id)
        if settings:
            ctx = preflight(build_context(asdict(ctx), settings))
            self.journal().upsert_run(run_id, context=asdict(ctx))
        snapshot = self.snapshot(run_id)
        if pending_review(snapshot):
            raise ClientError(f"Run {run_id} waits for a review decision; answer it with review().")
        if snapshot.values and not snapshot.next:  # finished: make sure the journal says so, then report it
            record_outcome(self.journal(), run_id, snapshot.values.get("report") or {})
            return self._result(run_id, snapshot)
        graph_input = None if snapshot.values else {"task_dir": row["task_dir"], "meta_id": run_id,
                                                    "from_journal": True}  # no checkpoints: rebuild the run
        self.journal().upsert_run(run_id, status="running")
        return self._drive(run_id, graph_input, ctx)

    def extend(self, run_id: str, runs: int = 1) -> RunResult:
        """Add pipeline runs to a finished run; the Enhancer studies everything so far."""
        if runs < 1:
            raise ClientError(f"runs={runs}: extend by at least 1 run.")
        _, ctx = self._stored(run_id)
        snapshot = self.snapshot(run_id)
        if snapshot.next or not snapshot.values.get("history"):
            raise ClientError(f"Run {run_id} has not finished; resume it first.")
        planned = len(snapshot.values["history"]) + runs
        self.graph.update_state(thread_config(thread_id_for(run_id)), {"runs_planned": planned}, as_node="record")
        self.journal().upsert_run(run_id, status="running")
        return self._drive(run_id, None, ctx)

    def review(self, run_id: str, answer: str | dict) -> RunResult:
        """Answer a pending review: "approve", "reject" or {"action": "edit", "edit": {...}}. An unusable
        answer comes back as a new pending review naming the problem."""
        _, ctx = self._stored(run_id)
        if pending_review(self.snapshot(run_id)) is None:
            raise ClientError(f"Run {run_id} is not waiting for a review.")
        self.journal().upsert_run(run_id, status="running")
        return self._drive(run_id, Command(resume=answer), ctx)

    def fork(self, run_id: str, at: int, new_id: str | None = None, **settings: Any) -> RunResult:
        """A new run from the outer-graph checkpoint `at` (a fork point of history()), with changed
        settings; it inherits the runs finished before that point and continues from there."""
        row, ctx = self._stored(run_id)
        new_id = new_id or f"{run_id}-fork-{at}"
        check_run_id(new_id)
        ctx = preflight(build_context(asdict(ctx), settings))
        journal = self.journal()
        if journal.get_run(new_id):
            raise ClientError(f"Run {new_id} already exists; pick another id for the fork.")
        try:
            fork_thread(self.graph, self.graph.checkpointer, thread_id_for(run_id), at, thread_id_for(new_id),
                        {"meta_id": new_id, **state_changes_for(settings, ctx)})
        except ForkError as exc:
            raise ClientError(str(exc)) from None
        journal.upsert_run(new_id, task=row["task"], task_dir=row["task_dir"], status="running",
                           context=asdict(ctx), stop_reason=None)
        return self._drive(new_id, None, ctx)

    # --- looking at runs ----------------------------------------------------------------------------

    def snapshot(self, run_id: str):
        """The raw LangGraph state snapshot of the run's outer graph."""
        try:
            graph = self.graph
        except CheckpointError as exc:
            if self.journal().get_run(run_id):
                self.journal().upsert_run(run_id, status="error", stop_reason=str(exc))
            raise
        return graph.get_state(thread_config(thread_id_for(run_id)))

    def status(self, run_id: str) -> RunResult:
        if not self.journal().get_run(run_id) and not self.snapshot(run_id).values:
            raise ClientError(f"No run {run_id} in {redact(self.journal_path)} or {redact(self.checkpoints)}.")
        return self._result(run_id, self.snapshot(run_id))

    def history(self, run_id: str) -> list[Checkpoint]:
        """The outer-graph checkpoints, oldest first; `can_fork` marks the fork points."""
        rows = outer_history(self.graph, thread_id_for(run_id))
        if not rows:
            raise ClientError(f"No checkpoints of {run_id} in {redact(self.checkpoints)}.")
        return rows

    def runs(self) -> list[dict]:
        """Every run (thread) in the journal: run_id, task, status, best_score, started_at, ..."""
        return [row for row in self.journal().runs() if row.get("context")]

    def report(self, run_id: str) -> dict:
        """Write the run's report (Markdown, HTML, plots) in its workspace; returns the summary and paths."""
        _, ctx = self._stored(run_id)
        values = self.snapshot(run_id).values
        if not values.get("history"):
            raise ClientError(f"Run {run_id} has no finished pipeline run yet.")
        journal = self.journal()
        return write_report(values, meta_workspace(values, ctx), journal.usage_breakdown(run_id),
                            journal.executions(run_id), calls=journal.model_calls(run_id))

    # --- internals ----------------------------------------------------------------------------------

    def _stored(self, run_id: str) -> tuple[dict, Context]:
        row = self.journal().get_run(run_id)
        if not row or not row.get("context"):
            raise ClientError(f"No run {run_id} in {redact(self.journal_path)}; runs() lists the runs.")
        return row, Context(**json.loads(row["context"]))

    def _drive(self, run_id: str, graph_input: Any, ctx: Context) -> RunResult:
        """Stream the outer graph until it ends or stops (pause, review); a Ctrl-C (KeyboardInterrupt) or an error
        propagates, with the run marked interrupted or error in the journal."""
        logging.getLogger("runtime.model_pool").setLevel(logging.INFO)  # which local models hold memory
        config = {**thread_config(thread_id_for(run_id)), "recursion_limit": RECURSION_LIMIT}
        reap_orphans(ctx.workspace_root, run_id)
        try:
            with stop_on_signals(self.on_interrupt and (lambda: self.on_interrupt(run_id))):
                for namespace, mode, chunk in self.graph.stream(graph_input, config, context=ctx, subgraphs=True,
                                                                stream_mode=["updates", "custom"],
                                                                durability="sync"):
                    self.on_event(namespace, mode, chunk)
        except KeyboardInterrupt:
            self.mark_interrupted(run_id)
            raise
        except ModelUnavailable as exc:
            self.journal().upsert_run(run_id, status="paused", stop_reason=str(exc))
            return self._result(run_id, self.snapshot(run_id))
        except Exception as exc:  # bad input found by a node, a bug, an outside failure: resumable once fixed
            self.journal().upsert_run(run_id, status="error", stop_reason=f"{type(exc).__name__}: {exc}")
            raise
        snapshot = self.snapshot(run_id)
        if pending_review(snapshot):
            self.journal().upsert_run(run_id, status="review")
        return self._result(run_id, snapshot)

    def mark_interrupted(self, run_id: str) -> None:
        self.journal().upsert_run(run_id, status="interrupted", stop_reason="stopped by the user; resume it")

    def _result(self, run_id: str, snapshot) -> RunResult:
        values = snapshot.values or {}
        row = self.journal().get_run(run_id)
        report = values.get("report") or {}
        champion = values.get("champion") or {}
        return RunResult(
            run_id=run_id, thread_id=thread_id_for(run_id), status=status_of(snapshot, row),
            next=tuple(snapshot.next), runs_done=len(values.get("history") or []),
            best_score=champion.get("best_score"), best_run=champion.get("run_index"),
            submission=report.get("best_submission") or champion.get("submission_path"),
            report=report.get("markdown"), stop_reason=(row or {}).get("stop_reason"),
            review=pending_review(snapshot), values=values)


def state_changes_for(changed: dict, ctx: Context) -> dict:
    """Settings the meta loop copied into its state at the start: a fork must change them there too."""
    changes: dict[str, Any] = {}
    if "num_runs" in changed:
        changes["runs_planned"] = ctx.num_runs
    if {"computational_budget_s", "early_stop_patience"} & changed.keys():
        changes["stop_rules"] = {"budget_s": ctx.computational_budget_s, "patience": ctx.early_stop_patience}
    return changes
