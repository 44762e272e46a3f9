"""A thread's outer-graph checkpoints, and forks of a thread into a new one.

Fork points are checkpoints of the meta graph where the next node is `plan_run`: the state between two
pipeline runs, where the history of finished runs and the Enhancer's advice are complete and nothing of the
next run exists yet. (Forking inside the pipeline subgraph is not offered: replaying from a subgraph's
checkpoint is broken upstream, langgraph issue 8458.) A fork copies that checkpoint into a new thread under
a new id, so the new thread's runs get their own run ids, journal rows and workspace folders, while the
finished runs it inherits are not redone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointMetadata

FORK_NODE = "plan_run"


@dataclass(frozen=True)
class Checkpoint:
    """One outer-graph checkpoint as `mlestar history` lists it."""

    step: int
    checkpoint_id: str
    next: tuple[str, ...]
    runs_done: int
    best_score: float | None
    best_run: int | None
    created_at: str
    branch: int = 0          # 0: the thread's first line; 1, 2...: each replay from an earlier checkpoint
    current: bool = True     # on the line that leads to the thread's latest checkpoint

    @property
    def can_fork(self) -> bool:
        return self.next == (FORK_NODE,) and self.runs_done > 0


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def parent_id(snapshot) -> str | None:
    return (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id")


def branches(snapshots: list) -> dict[str, int]:
    """Branch number of every checkpoint: a checkpoint whose parent already has a child starts a new branch
    (a replay from an earlier checkpoint on the same thread, as Studio's fork does). Checkpoint ids grow
    with time, so sorting by id is sorting by creation."""
    numbers: dict[str, int] = {}
    has_child: set[str | None] = set()
    for snapshot in sorted(snapshots, key=lambda s: s.config["configurable"]["checkpoint_id"]):
        own, parent = snapshot.config["configurable"]["checkpoint_id"], parent_id(snapshot)
        if parent in has_child:
            numbers[own] = max(numbers.values()) + 1
        else:
            numbers[own] = numbers.get(parent, 0) if parent is not None else 0
        has_child.add(parent)
    return numbers


def outer_history(graph, thread_id: str) -> list[Checkpoint]:
    """The thread's meta-graph checkpoints, oldest first (by branch, then step)."""
    snapshots = list(graph.get_state_history(thread_config(thread_id)))  # newest first
    numbers = branches(snapshots)
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in snapshots}
    current, cursor = set(), snapshots[0].config["configurable"]["checkpoint_id"] if snapshots else None
    while cursor in by_id:
        current.add(cursor)
        cursor = parent_id(by_id[cursor])
    rows = []
    for snapshot in snapshots:
        values = snapshot.values or {}
        champion = values.get("champion") or {}
        own = snapshot.config["configurable"]["checkpoint_id"]
        rows.append(Checkpoint(
            step=snapshot.metadata.get("step", -1), checkpoint_id=own, next=tuple(snapshot.next),
            runs_done=len(values.get("history") or []), best_score=champion.get("best_score"),
            best_run=champion.get("run_index"), created_at=snapshot.created_at or "", branch=numbers[own],
            current=own in current))
    return sorted(rows, key=lambda c: (c.branch, c.step))


class ForkError(ValueError):
    """The requested fork point does not exist or is not between two pipeline runs."""


def fork_point(history: list[Checkpoint], step: int) -> Checkpoint:
    """The checkpoint at `step` on the thread's current line (other branches repeat step numbers)."""
    history = [c for c in history if c.current]
    at_step = [c for c in history if c.step == step]
    forkable = ", ".join(str(c.step) for c in history if c.can_fork) or "none yet (no run has finished)"
    if not at_step:
        raise ForkError(f"The thread has no checkpoint at step {step}; fork points (before a pipeline run): {forkable}.")
    if not at_step[0].can_fork:
        raise ForkError(f"Step {step} is not between two pipeline runs (its next node is "
                        f"{', '.join(at_step[0].next) or 'none: the thread ended there'}); fork points: {forkable}.")
    return at_step[0]


def fork_thread(graph, saver: BaseCheckpointSaver, source_id: str, step: int, new_id: str,
                state_changes: dict | None = None) -> Checkpoint:
    """Copy the checkpoint at ``step`` of ``source_id`` into the new thread ``new_id``, ready to go on.

    The new thread continues with `graph.invoke(None, thread_config(new_id))`. Its time budget counts the
    inherited runs' durations, not the wall-clock time since the source thread started. `state_changes`
    must name the new run (`meta_id`), so that its runs get their own ids, journal rows and folders.
    """
    point = fork_point(outer_history(graph, source_id), step)
    if saver.get_tuple(thread_config(new_id)) is not None:
        raise ForkError(f"Thread {new_id} already exists; pick another id for the fork.")
    source = saver.get_tuple(thread_config(source_id, point.checkpoint_id))
    if source is None:
        raise ForkError(f"Checkpoint {point.checkpoint_id} of thread {source_id} is gone; nothing to fork.")
    # savers keep any metadata key; CheckpointMetadata only lists langgraph's own
    metadata = cast(CheckpointMetadata, {**source.metadata, "source": "fork", "forked_from": f"{source_id}@{step}"})
    saved = saver.put(thread_config(new_id), source.checkpoint, metadata, source.checkpoint["channel_versions"])
    history = graph.get_state(saved).values.get("history") or []
    changes = {"started_at": time.time() - sum(run["duration_s"] for run in history), **(state_changes or {})}
    graph.update_state(saved, changes, as_node="enhance")  # enhance -> plan_run: the next run comes next
    return point
