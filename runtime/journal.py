"""The journal: every model call, every script execution and every run, in one database.

It serves two purposes. For people, it is the record of what the agent did (any SQL client can query it).
For the graph, it is the memo that makes nodes idempotent: LangGraph re-runs an interrupted node from its
start, and the node then finds its finished model answers and script results here instead of paying for them
again. A finished entry is never written twice; a reuse bumps its `reused` counter, so tests (and users) can
see that nothing was redone.

One interface (`Journal`), two stores: a SQLite file through sqlite-utils (the default, no server) and
PostgreSQL (`runtime.journal_postgres`), chosen by the location: a path or a `postgresql://` URL. Every query
is written once, here, in SQL that both understand; a store only supplies its connection and its schema.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils

from runtime import keys
from runtime.budget import RunUsage

MODEL_CALLS = "model_calls"
EXECUTIONS = "executions"
RUNS = "runs"
META_RUNS = "meta_runs"
#: The rows of a run and, for a meta run, of its pipeline runs (two parameters: the run id twice).
WHERE_RUN = f"(run_id = ? or run_id in (select run_id from {RUNS} where meta_id = ?))"
#: The version of the tables' layout a store records; a store written by a newer version is refused.
SCHEMA_VERSION = 2
# Columns newer than the first journals: (table, column, type), added to an existing database on open.
ADDED_COLUMNS = [(MODEL_CALLS, "cost_usd", float), (MODEL_CALLS, "tokens_cached", int), (RUNS, "meta_id", str)]
# Usage by role or by phase: the grouping column and the order of its rows.
USAGE_GROUPS = {"role": "role", "phase": "node"}
# The look-ups that make resumed nodes re-use finished work (the names sqlite-utils gives them by default).
INDEXES = {
    f"idx_{MODEL_CALLS}_run_id_call_key_prompt_sha": (MODEL_CALLS, ["run_id", "call_key", "prompt_sha"]),
    f"idx_{EXECUTIONS}_run_id_exec_key_code_sha": (EXECUTIONS, ["run_id", "exec_key", "code_sha"]),
    f"idx_{RUNS}_meta_id": (RUNS, ["meta_id"]),
}
# The columns of each table and their kinds; `id` is the store's own auto-numbered key.
COLUMNS: dict[str, dict[str, type]] = {
    MODEL_CALLS: {
        "id": int, "run_id": str, "node": str, "role": str, "model": str, "call_key": str, "prompt_sha": str,
        "prompt": str, "answer": str, "tokens_in": int, "tokens_out": int, "latency_s": float, "cost_usd": float,
        "tokens_cached": int, "created_at": float, "reused": int},
    EXECUTIONS: {
        "id": int, "run_id": str, "lane": int, "exec_key": str, "code_sha": str, "code_path": str, "status": str,
        "score": float, "duration_s": float, "result": str, "created_at": float, "reused": int},
    RUNS: {
        "run_id": str, "task": str, "task_dir": str, "workspace": str, "status": str, "started_at": float,
        "updated_at": float, "best_score": float, "submission": str, "context": str, "stop_reason": str,
        "meta_id": str},
    META_RUNS: {
        "meta_id": str, "run_index": int, "run_id": str, "status": str, "start_time_iso": str, "duration_s": float,
        "best_score": float, "best_solution_path": str, "submission_path": str, "config": str, "overrides": str,
        "goals": str, "shaped_by": str, "summary": str},
}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    MODEL_CALLS: ("id",), EXECUTIONS: ("id",), RUNS: ("run_id",), META_RUNS: ("meta_id", "run_index")}
#: What the timeline of a report needs of each model call (no prompts, no answers).
CALL_COLUMNS = ("run_id", "node", "role", "call_key", "latency_s", "created_at", "reused")
POSTGRES_SCHEMES = ("postgresql", "postgres")
#: What installs the PostgreSQL store and Ray (the `scale` extra), for error messages.
SCALE_INSTALL = "pip install 'mlestar-graph[scale]' (in this repository: .venv/bin/pip install -e '.[scale]')"


class JournalError(RuntimeError):
    """The journal's store cannot be used; the message names the store and the way out."""


def is_database_url(location: str | Path) -> bool:
    """True for a PostgreSQL URL (postgresql://...), False for a file path."""
    return urlsplit(str(location)).scheme in POSTGRES_SCHEMES


def redact(location: str | Path) -> str:
    """The location as it may be shown: a URL's password replaced by ***."""
    parts = urlsplit(str(location))
    if not is_database_url(location) or parts.password is None:
        return str(location)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect_wal(path: str | Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """A connection usable from several threads, in WAL mode, patient with other writers (busy timeout).

    Switching a new database to WAL needs an exclusive lock, and SQLite reports "database is locked" at once,
    without waiting, while another process holds the file; so the switch is retried until `timeout_s`.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(random.uniform(0.01, 0.1))


def unreachable_message(what: str, url: str, exc: Exception) -> str:
    """Why a PostgreSQL store cannot be used, and the fix; the URL's password is not shown."""
    return (f"Cannot use the PostgreSQL {what} {redact(url)}: {str(exc).strip() or type(exc).__name__}. Fix: "
            f"start the server or correct the URL (postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def newer_schema_error(location: str, found: int) -> JournalError:
    return JournalError(
        f"The journal {redact(location)} has layout version {found}, newer than this mlestar knows "
        f"({SCHEMA_VERSION}): a newer version wrote it. Upgrade mlestar here, or point journal_path at another "
        f"journal.")


class Journal(ABC):
    """The journal's interface, safe to share between threads (lanes write from parallel graph branches).

    A store implements `_fetch` (rows of a query, `?` placeholders) and `_write`; everything else is here."""

    location: str

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of one query."""

    @abstractmethod
    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement that changes the journal, committed when it returns."""

    @abstractmethod
    def _json_field(self, column: str, key: str) -> str:
        """SQL for a top-level field of a JSON text column."""

    def close(self) -> None:
        """Release the store's connections (the process keeps one Journal per store, see `open_journal`)."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._fetch(sql, params)[1]

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        columns, rows = self._fetch(sql, params)
        return [dict(zip(columns, row)) for row in rows]

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        self._write(f"insert into {table} ({names}) values ({', '.join('?' * len(row))})", list(row.values()))

    def _upsert(self, table: str, row: dict[str, Any], keep: tuple[str, ...] = ()) -> None:
        """Insert the row, or update the existing one with the same primary key (columns in `keep` excepted)."""
        key = PRIMARY_KEYS[table]
        changed = [name for name in row if name not in key and name not in keep]
        update = ", ".join(f"{name} = excluded.{name}" for name in changed)
        self._write(f"insert into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))}) "
                    f"on conflict ({', '.join(key)}) do " + (f"update set {update}" if update else "nothing"),
                    list(row.values()))

    # -- model calls ---------------------------------------------------------------------------

    def find_answer(self, run_id: str, call_key: str, prompt_sha: str) -> str | None:
        """A finished answer to exactly this prompt at this call site, marking it reused."""
        rows = self._rows(f"select id, answer from {MODEL_CALLS} where run_id = ? and call_key = ? and "
                          f"prompt_sha = ? order by id limit 1", [run_id, call_key, prompt_sha])
        if not rows:
            return None
        self._write(f"update {MODEL_CALLS} set reused = reused + 1 where id = ?", [rows[0][0]])
        return rows[0][1]

    def record_answer(self, *, run_id: str, node: str, role: str, model: str, call_key: str,
                      prompt: str, answer: str, tokens_in: int, tokens_out: int,
                      latency_s: float, cost_usd: float | None = None, tokens_cached: int = 0) -> None:
        """One finished call; `cost_usd` None means the model's price is unknown; `tokens_cached`: prompt
        tokens the server took from its prompt cache (as it reports them; 0 when it does not)."""
        self._insert(MODEL_CALLS, {
            "run_id": run_id, "node": node, "role": role, "model": model,
            "call_key": call_key, "prompt_sha": sha256_text(prompt), "prompt": prompt,
            "answer": answer, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "latency_s": round(latency_s, 3), "cost_usd": cost_usd, "tokens_cached": tokens_cached,
            "created_at": time.time(), "reused": 0,
        })

    def run_usage(self, run_id: str) -> RunUsage:
        """What exactly this run's calls spent: every row is one call made once; re-uses add nothing."""
        [(calls, tokens_in, tokens_out, cost)] = self._rows(
            f"select count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
            f"coalesce(sum(cost_usd),0) from {MODEL_CALLS} where run_id = ?", [run_id])
        return RunUsage(calls=calls, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost)

    def request_count(self, model_pattern: str, since: float) -> tuple[int, float | None]:
        """Model requests made since ``since`` whose spec matches the LIKE pattern: (count, oldest time).
        Reused answers are the same rows, so a resumed run's re-reads cost no quota."""
        [(count, oldest)] = self._rows(
            f"select count(*), min(created_at) from {MODEL_CALLS} where model like ? and created_at >= ?",
            [model_pattern, since])
        return count, oldest

    def measured_calls(self, model: str, limit: int = 60) -> list[tuple[int, int, float, str]]:
        """(tokens read, tokens_out, latency_s, node) of the model's latest calls on this machine, any run:
        what the time plan learns the model's speed from. Prompt tokens served from the server's cache cost
        almost nothing, so only the others count as read. Answers without token counts tell nothing."""
        return self._rows(
            f"select tokens_in - coalesce(tokens_cached, 0), tokens_out, latency_s, node from {MODEL_CALLS} "
            f"where model = ? and latency_s > 0 and tokens_out > 0 order by id desc limit ?", [model, limit])

    def model_calls(self, run_id: str) -> list[dict]:
        """The model calls of a run and its pipeline runs, oldest first, with `CALL_COLUMNS` (no prompts)."""
        return self._dicts(f"select {', '.join(CALL_COLUMNS)} from {MODEL_CALLS} where {WHERE_RUN} order by id",
                           [run_id, run_id])

    # -- script executions ---------------------------------------------------------------------

    def script_durations(self, run_id: str) -> list[float]:
        """Wall-clock seconds of this run's scripts that finished with a score."""
        return [row[0] for row in self._rows(
            f"select duration_s from {EXECUTIONS} where run_id = ? and status = 'ok' and score is not null",
            [run_id])]

    def find_execution(self, run_id: str, exec_key: str, code_sha: str) -> dict | None:
        rows = self._rows(f"select id, result from {EXECUTIONS} where run_id = ? and exec_key = ? and "
                          f"code_sha = ? order by id limit 1", [run_id, exec_key, code_sha])
        if not rows:
            return None
        self._write(f"update {EXECUTIONS} set reused = reused + 1 where id = ?", [rows[0][0]])
        return json.loads(rows[0][1])

    def record_execution(self, *, run_id: str, lane: int, exec_key: str, code: str,
                         code_path: str, result: dict) -> None:
        self._insert(EXECUTIONS, {
            "run_id": run_id, "lane": lane, "exec_key": exec_key, "code_sha": sha256_text(code),
            "code_path": code_path, "status": result["status"], "score": result.get("score"),
            "duration_s": result.get("duration_s"), "result": json.dumps(result),
            "created_at": time.time(), "reused": 0,
        })

    def executions(self, run_id: str) -> list[dict]:
        """Script executions of a run and its pipeline runs, oldest first, for reports: no code, no stderr,
        only the stdout tail (an ablation study's findings are printed there)."""
        return self._dicts(
            f"select run_id, lane, exec_key, status, score, duration_s, created_at, "
            f"{self._json_field('result', 'stdout_tail')} as stdout_tail from {EXECUTIONS} where {WHERE_RUN} "
            f"order by id", [run_id, run_id])

    def repeated_work(self, run_id: str) -> dict[str, int]:
        """Scripts that ran, and questions the model was asked, more than once at the same place with the same
        code or prompt, in a run and its pipeline runs: both 0 when every resume re-used what had finished."""
        counts = {}
        for name, table, key, sha in (("executions", EXECUTIONS, "exec_key", "code_sha"),
                                      ("answers", MODEL_CALLS, "call_key", "prompt_sha")):
            [(counts[name],)] = self._rows(
                f"select count(*) from (select 1 from {table} where {WHERE_RUN} "
                f"group by run_id, {key}, {sha} having count(*) > 1) as repeated", [run_id, run_id])
        return counts

    # -- runs ----------------------------------------------------------------------------------

    def upsert_run(self, run_id: str, **fields: Any) -> None:
        now = time.time()
        fields = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in fields.items()}
        self._upsert(RUNS, {"run_id": run_id, **fields, "started_at": now, "updated_at": now}, keep=("started_at",))

    def record_meta_run(self, meta_id: str, summary: dict) -> None:
        """One row per run of a meta loop (upsert: recording the same run twice keeps one row)."""
        row = {"meta_id": meta_id, **{k: summary.get(k) for k in (
            "run_index", "run_id", "status", "start_time_iso", "duration_s", "best_score",
            "best_solution_path", "submission_path")}}
        for key in ("config", "overrides", "goals", "shaped_by"):
            row[key] = json.dumps(summary.get(key), default=str)
        row["summary"] = json.dumps(summary, default=str)
        self._upsert(META_RUNS, row)

    def meta_runs(self, meta_id: str) -> list[dict]:
        return self._dicts(f"select * from {META_RUNS} where meta_id = ? order by run_index", [meta_id])

    def unused_run_id(self, run_id: str) -> str:
        """`run_id` if no run has it, else the first free `run_id.b2`, `run_id.b3`, ..."""
        branch = 2
        candidate = run_id
        while self.get_run(candidate):
            candidate, branch = f"{run_id}.b{branch}", branch + 1
        return candidate

    def get_run(self, run_id: str) -> dict | None:
        rows = self._dicts(f"select * from {RUNS} where run_id = ?", [run_id])
        return rows[0] if rows else None

    def runs(self) -> list[dict]:
        return self._dicts(f"select * from {RUNS} order by started_at")

    def usage_breakdown(self, run_id: str) -> dict[str, list[dict]]:
        """Model usage of a run and its pipeline runs, grouped by role and by phase (node), in order of first use.

        Each row: name, calls, tokens_in, tokens_out, inference_s, cost_usd (of the priced calls),
        unpriced (calls whose model has no known price), reused (answers taken from the journal).
        """
        groups = {}
        for group, column in USAGE_GROUPS.items():
            rows = self._rows(
                f"select {column}, count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
                f"coalesce(sum(latency_s),0), coalesce(sum(cost_usd),0), count(*) - count(cost_usd), "
                f"coalesce(sum(reused),0) from {MODEL_CALLS} where {WHERE_RUN} group by {column} "
                f"order by min(id)", [run_id, run_id])
            groups[group] = [dict(zip(("name", "calls", "tokens_in", "tokens_out", "inference_s", "cost_usd",
                                       "unpriced", "reused"), row)) for row in rows]
        return groups

    def usage(self, run_id: str) -> dict:
        """Totals for one run and its pipeline runs: calls, tokens, inference and script time."""
        [calls] = self._rows(
            f"select count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
            f"coalesce(sum(latency_s),0), coalesce(sum(reused),0), coalesce(sum(cost_usd),0) "
            f"from {MODEL_CALLS} where {WHERE_RUN}", [run_id, run_id])
        [execs] = self._rows(
            f"select count(*), coalesce(sum(duration_s),0), coalesce(sum(reused),0), "
            f"coalesce(sum(case when status = 'ok' and score is not null then 1 else 0 end),0) "
            f"from {EXECUTIONS} where {WHERE_RUN}", [run_id, run_id])
        return {
            "model_calls": calls[0], "tokens_in": calls[1], "tokens_out": calls[2],
            "inference_s": round(calls[3], 1), "answers_reused": calls[4], "cost_usd": round(calls[5], 6),
            "executions": execs[0], "script_s": round(execs[1], 1), "executions_reused": execs[2],
            "executions_scored": execs[3],
        }


class SqliteJournal(Journal):
    """The journal in one SQLite file (WAL mode: readers never wait for the writer), through sqlite-utils.
    `db` is the sqlite-utils Database, for people who want to query it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite_utils.Database(connect_wal(self.path))
        self._ensure_tables()

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        with self._lock:
            cursor = self.db.execute(sql, list(params))
            return [d[0] for d in cursor.description or ()], cursor.fetchall()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock, self.db.conn:
            self.db.execute(sql, list(params))

    def _json_field(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def close(self) -> None:
        self.db.close()

    def _ensure_tables(self) -> None:
        # BEGIN IMMEDIATE takes the write lock first (waiting up to the busy timeout). Without it, two
        # processes opening a new journal at once fail: sqlite-utils reads the schema, then writes, inside
        # one deferred transaction, and SQLite refuses (no waiting) to upgrade a read snapshot that another
        # writer has made stale ("database is locked"). An existing journal is only read here.
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise newer_schema_error(self.location, version)
        names = {row[0] for row in self.db.execute("select name from sqlite_master")}
        if names >= {*COLUMNS, *INDEXES} and not self._missing_columns() and version == SCHEMA_VERSION:
            return
        with self._lock, self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            missing = self._missing_columns()
            for table, column, kind in missing:
                self.db.table(table).add_column(column, kind)
            self._create_tables()
            if (RUNS, "meta_id", str) in missing:
                self._link_pipeline_runs()
            self.db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _missing_columns(self) -> list[tuple[str, str, type]]:
        """Columns added after a journal may have been created (an older journal keeps working)."""
        return [(table, column, kind) for table, column, kind in ADDED_COLUMNS
                if self.db[table].exists() and column not in self.db[table].columns_dict]

    def _link_pipeline_runs(self) -> None:
        """A journal from before the meta_id column: link each pipeline run to its meta run by the form of its
        id, once, when the column is added."""
        ids = {row[0] for row in self.db.execute(f"select run_id from {RUNS}")}
        for run_id in ids:
            meta_id = keys.meta_id_of(run_id)
            if meta_id in ids:
                self.db.execute(f"update {RUNS} set meta_id = ? where run_id = ?", [meta_id, run_id])

    def _create_tables(self) -> None:
        for table, columns in COLUMNS.items():
            key = PRIMARY_KEYS[table]
            self.db.table(table).create(columns, pk=key[0] if len(key) == 1 else key, if_not_exists=True)
        for name, (table, indexed) in INDEXES.items():
            self.db.table(table).create_index(indexed, index_name=name, if_not_exists=True)


@lru_cache(maxsize=8)
def open_journal(location: str) -> Journal:
    """One Journal per store and process: a SQLite file path, or a postgresql:// URL."""
    if is_database_url(location):
        try:
            from runtime.journal_postgres import PostgresJournal
        except ImportError as exc:
            raise JournalError(f"A PostgreSQL journal needs psycopg ({exc}): {SCALE_INSTALL}") from None
        return PostgresJournal(location)
    return SqliteJournal(location)
