"""The SQLite checkpointer shared by the CLI and Python callers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

DEFAULT_CHECKPOINTS = "checkpoints/checkpoints.db"


def open_checkpointer(path: str | Path = DEFAULT_CHECKPOINTS) -> SqliteSaver:
    """A SqliteSaver usable from the graph's worker threads, patient with a second writer (busy timeout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return SqliteSaver(conn)
