"""The one SQLite checkpoint store shared by the CLI, Python callers and the `langgraph dev` server.

The CLI and Python use `open_checkpointer` (sync); the server loads `server_checkpointer` (async, named in
langgraph.json) over the same file, so a thread started by any of them is visible and resumable from the
others. The server only accepts UUID thread ids, so a run named by the user (`titanic-1`) lives in the thread
`thread_id_for("titanic-1")`, a UUID derived from the name; a run started through the API may use the
thread's own UUID as its name.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import aiosqlite
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.context import ConfigError
from runtime.journal import connect_wal

DEFAULT_CHECKPOINTS = "checkpoints/checkpoints.db"
CHECKPOINTS_ENV = "MLESTAR_CHECKPOINTS"
RUN_NAMESPACE = uuid.UUID("6f2d3c1e-8b4a-5e7f-9a10-2c3d4e5f6a7b")


def thread_id_for(run_id: str) -> str:
    """The checkpoint thread of a run: the run id itself when it is a UUID, else a UUID derived from it."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(RUN_NAMESPACE, run_id))


def checkpoints_path(path: str | Path | None = None) -> Path:
    """The checkpoint database: the given path, else $MLESTAR_CHECKPOINTS, else checkpoints/checkpoints.db."""
    return Path(path or os.environ.get(CHECKPOINTS_ENV) or DEFAULT_CHECKPOINTS)


class CheckpointError(ConfigError):
    """The checkpoint database cannot be used; the message names the file and the way out."""


def damage(path: Path) -> str | None:
    """What SQLite finds wrong with the file (None: nothing). `quick_check` reads every page once."""
    try:
        conn = connect_wal(path)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if verdict == "ok" else verdict


def open_checkpointer(path: str | Path | None = None) -> SqliteSaver:
    """A SqliteSaver usable from the graph's worker threads, patient with a second writer (busy timeout).
    A damaged file is refused with CheckpointError before anything reads or writes it."""
    path = checkpoints_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = damage(path)
    if problem:
        raise CheckpointError(
            f"The checkpoint database {path} is damaged ({problem}). Nothing finished is lost: every model answer "
            f"and script result is in the journal. Move the file away (mv {path} {path}.damaged) and run "
            f"`mlestar resume RUN_ID` again: the run is rebuilt in a new checkpoint file from the journal, "
            f"without asking the model or running a script again for anything that had finished.")
    return SqliteSaver(connect_wal(path))


@asynccontextmanager
async def server_checkpointer() -> AsyncIterator[AsyncSqliteSaver]:
    """The `langgraph dev` server's checkpointer (langgraph.json): the same file, in WAL mode, so the server
    and a CLI process can write at the same time. Start the server where the CLI runs, or set
    $MLESTAR_CHECKPOINTS to the CLI's database."""
    path = checkpoints_path().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=30.0) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver
