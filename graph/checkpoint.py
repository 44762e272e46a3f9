"""The SQLite checkpointer shared by the CLI and Python callers."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from runtime.journal import connect_wal

DEFAULT_CHECKPOINTS = "checkpoints/checkpoints.db"


def open_checkpointer(path: str | Path = DEFAULT_CHECKPOINTS) -> SqliteSaver:
    """A SqliteSaver usable from the graph's worker threads, patient with a second writer (busy timeout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(connect_wal(path))
