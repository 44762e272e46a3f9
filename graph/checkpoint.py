"""The checkpoint store shared by the CLI, Python callers and the `langgraph dev` server.

A run's checkpoints live in a SQLite file (the default, no server needed) or in a PostgreSQL database
(`postgresql://...`, through LangGraph's Postgres checkpointer), where several machines can reach them
(docs/scale-out.md). The CLI and Python use `open_checkpointer` (sync); the server loads `server_checkpointer`
(async, named in langgraph.json) over the same store, so a thread started by any of them is visible and
resumable from the others. The server only accepts UUID thread ids, so a run named by the user (`titanic-1`)
lives in the thread `thread_id_for("titanic-1")`, a UUID derived from the name; a run started through the API
may use the thread's own UUID as its name.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import AsyncIterator, Iterator

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.context import CHECKPOINTS_ENV, DEFAULT_CHECKPOINTS, JOURNAL_ENV, ConfigError, default_journal
from runtime.journal import SCALE_INSTALL, connect_wal, is_database_url, unreachable_message

RUN_NAMESPACE = uuid.UUID("6f2d3c1e-8b4a-5e7f-9a10-2c3d4e5f6a7b")
#: Any constant of our own: the advisory lock under which a process creates or upgrades LangGraph's tables.
SETUP_LOCK = 0x6D6C_6573_7461_73


def thread_id_for(run_id: str) -> str:
    """The checkpoint thread of a run: the run id itself when it is a UUID, else a UUID derived from it."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(RUN_NAMESPACE, run_id))


def checkpoints_location(location: str | Path | None = None) -> str:
    """The checkpoint store: the given path or URL, else $MLESTAR_CHECKPOINTS, else checkpoints/checkpoints.db."""
    return str(location or os.environ.get(CHECKPOINTS_ENV) or DEFAULT_CHECKPOINTS)


def journal_location(journal: str | Path | None, checkpoints: str | Path | None = None) -> str:
    """The journal that goes with a checkpoint store: the given one, else the PostgreSQL database of the
    checkpoints (one database holds a run's whole state), else the default (`Context.journal_path`)."""
    if journal:
        return str(journal)
    store = checkpoints_location(checkpoints)
    return store if is_database_url(store) and not os.environ.get(JOURNAL_ENV) else default_journal()


class CheckpointError(ConfigError):
    """The checkpoint database cannot be used; the message names the store and the way out."""


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


def open_checkpointer(location: str | Path | None = None) -> BaseCheckpointSaver:
    """A checkpointer usable from the graph's worker threads: SQLite (patient with a second writer) or
    PostgreSQL. A damaged SQLite file is refused with CheckpointError before anything reads or writes it."""
    location = checkpoints_location(location)
    if is_database_url(location):
        return postgres_checkpointer(location)
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = damage(path)
    if problem:
        raise CheckpointError(
            f"The checkpoint database {path} is damaged ({problem}). Nothing finished is lost: every model answer "
            f"and script result is in the journal. Move the file away (mv {path} {path}.damaged) and run "
            f"`mlestar resume RUN_ID` again: the run is rebuilt in a new checkpoint file from the journal, "
            f"without asking the model or running a script again for anything that had finished.")
    return SqliteSaver(connect_wal(path))


@contextmanager
def setup_lock(url: str) -> Iterator[None]:
    """Held while LangGraph creates or upgrades its tables: two processes starting on a new database at once
    would otherwise both try to create them. Taken by polling, never by a waiting statement: LangGraph's
    CREATE INDEX CONCURRENTLY waits for every open statement of the database, a waiting lock request too."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        while not conn.execute("select pg_try_advisory_lock(%s)", [SETUP_LOCK]).fetchone()[0]:  # type: ignore[index]
            time.sleep(random.uniform(0.05, 0.2))
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [SETUP_LOCK])


@lru_cache(maxsize=8)
def postgres_checkpointer(url: str) -> BaseCheckpointSaver:
    """LangGraph's PostgresSaver on a small connection pool (one per database and process), tables set up."""
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool, PoolTimeout
    except ImportError as exc:
        raise CheckpointError(f"PostgreSQL checkpoints need langgraph-checkpoint-postgres ({exc}): "
                              f"{SCALE_INSTALL}") from None

    pool = ConnectionPool(url, min_size=1, max_size=4, open=False, check=ConnectionPool.check_connection,
                          kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row,
                                  "connect_timeout": 10})
    try:
        psycopg.connect(url, connect_timeout=10).close()  # fails at once, where the pool would retry
        pool.open(wait=True, timeout=10)
        saver = PostgresSaver(pool)  # type: ignore[arg-type]  # a pool of dict-row connections
        with setup_lock(url):
            saver.setup()
    except (psycopg.Error, PoolTimeout) as exc:
        pool.close()
        raise CheckpointError(unreachable_message("checkpoint store", url, exc) + ".") from None
    return saver


@asynccontextmanager
async def server_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The `langgraph dev` server's checkpointer (langgraph.json): the store of $MLESTAR_CHECKPOINTS. A SQLite
    file is opened in WAL mode, so the server and a CLI process can write at the same time: start the server
    where the CLI runs, or set $MLESTAR_CHECKPOINTS to the CLI's database (or the team's PostgreSQL URL)."""
    location = checkpoints_location()
    if is_database_url(location):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(location) as saver:
            with setup_lock(location):
                await saver.setup()
            yield saver
        return
    path = Path(location).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=30.0) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        sqlite_saver = AsyncSqliteSaver(conn)
        await sqlite_saver.setup()
        yield sqlite_saver

