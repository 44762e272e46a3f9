"""The journal: every model call, every script execution and every run, in one SQLite file.

It serves two purposes. For people, it is the record of what the agent did (any SQLite client or
sqlite-utils can query it). For the graph, it is the memo that makes nodes idempotent: LangGraph re-runs
an interrupted node from its start, and the node then finds its finished model answers and script results
here instead of paying for them again. A finished entry is never written twice; a reuse bumps its
`reused` counter, so tests (and users) can see that nothing was redone.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlite_utils

from runtime import keys
from runtime.budget import RunUsage

MODEL_CALLS = "model_calls"
EXECUTIONS = "executions"
RUNS = "runs"
META_RUNS = "meta_runs"
#: The rows of a run and, for a meta run, of its pipeline runs (two parameters: the run id twice).
WHERE_RUN = f"(run_id = ? or run_id in (select run_id from {RUNS} where meta_id = ?))"
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


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Journal:
    """Thread-safe access to the journal database (lanes write from parallel graph branches)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite_utils.Database(connect_wal(self.path))
        self._ensure_tables()

    def _ensure_tables(self) -> None:
        # BEGIN IMMEDIATE takes the write lock first (waiting up to the busy timeout). Without it, two
        # processes opening a new journal at once fail: sqlite-utils reads the schema, then writes, inside
        # one deferred transaction, and SQLite refuses (no waiting) to upgrade a read snapshot that another
        # writer has made stale ("database is locked"). An existing journal is only read here.
        names = {row[0] for row in self.db.execute("select name from sqlite_master")}
        if names >= {MODEL_CALLS, EXECUTIONS, RUNS, META_RUNS, *INDEXES} and not self._missing_columns():
            return
        with self._lock, self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            missing = self._missing_columns()
            for table, column, kind in missing:
                self.db.table(table).add_column(column, kind)
            self._create_tables()
            if (RUNS, "meta_id", str) in missing:
                self._link_pipeline_runs()

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
        self.db.table(MODEL_CALLS).create(
            {
                "id": int, "run_id": str, "node": str, "role": str, "model": str,
                "call_key": str, "prompt_sha": str, "prompt": str, "answer": str,
                "tokens_in": int, "tokens_out": int, "latency_s": float, "cost_usd": float,
                "tokens_cached": int, "created_at": float, "reused": int,
            },
            pk="id", if_not_exists=True,
        )
        self.db.table(EXECUTIONS).create(
            {
                "id": int, "run_id": str, "lane": int, "exec_key": str, "code_sha": str,
                "code_path": str, "status": str, "score": float, "duration_s": float,
                "result": str, "created_at": float, "reused": int,
            },
            pk="id", if_not_exists=True,
        )
        self.db.table(RUNS).create(
            {
                "run_id": str, "task": str, "task_dir": str, "workspace": str, "status": str,
                "started_at": float, "updated_at": float, "best_score": float,
                "submission": str, "context": str, "stop_reason": str, "meta_id": str,
            },
            pk="run_id", if_not_exists=True,
        )
        self.db.table(META_RUNS).create(
            {"meta_id": str, "run_index": int, "run_id": str, "status": str, "start_time_iso": str,
             "duration_s": float, "best_score": float, "best_solution_path": str, "submission_path": str,
             "config": str, "overrides": str, "goals": str, "shaped_by": str, "summary": str},
            pk=("meta_id", "run_index"), if_not_exists=True,
        )
        for name, (table, columns) in INDEXES.items():
            self.db.table(table).create_index(columns, index_name=name, if_not_exists=True)

    # -- model calls ---------------------------------------------------------------------------

    def find_answer(self, run_id: str, call_key: str, prompt_sha: str) -> str | None:
        """A finished answer to exactly this prompt at this call site, marking it reused."""
        with self._lock:
            rows = list(self.db[MODEL_CALLS].rows_where(
                "run_id = ? and call_key = ? and prompt_sha = ?", [run_id, call_key, prompt_sha],
                order_by="id", limit=1))
            if not rows:
                return None
            self.db.table(MODEL_CALLS).update(rows[0]["id"], {"reused": rows[0]["reused"] + 1})
            return rows[0]["answer"]

    def record_answer(self, *, run_id: str, node: str, role: str, model: str, call_key: str,
                      prompt: str, answer: str, tokens_in: int, tokens_out: int,
                      latency_s: float, cost_usd: float | None = None, tokens_cached: int = 0) -> None:
        """One finished call; `cost_usd` None means the model's price is unknown; `tokens_cached`: prompt
        tokens the server took from its prompt cache (as it reports them; 0 when it does not)."""
        with self._lock:
            self.db.table(MODEL_CALLS).insert({
                "run_id": run_id, "node": node, "role": role, "model": model,
                "call_key": call_key, "prompt_sha": sha256_text(prompt), "prompt": prompt,
                "answer": answer, "tokens_in": tokens_in, "tokens_out": tokens_out,
                "latency_s": round(latency_s, 3), "cost_usd": cost_usd, "tokens_cached": tokens_cached,
                "created_at": time.time(), "reused": 0,
            })

    def run_usage(self, run_id: str) -> RunUsage:
        """What exactly this run's calls spent: every row is one call made once; re-uses add nothing."""
        with self._lock:
            calls, tokens_in, tokens_out, cost = self.db.execute(
                f"select count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
                f"coalesce(sum(cost_usd),0) from {MODEL_CALLS} where run_id = ?", [run_id]).fetchone()
        return RunUsage(calls=calls, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost)

    def request_count(self, model_pattern: str, since: float) -> tuple[int, float | None]:
        """Model requests made since ``since`` whose spec matches the LIKE pattern: (count, oldest time).
        Reused answers are the same rows, so a resumed run's re-reads cost no quota."""
        with self._lock:
            count, oldest = self.db.execute(
                f"select count(*), min(created_at) from {MODEL_CALLS} where model like ? and created_at >= ?",
                [model_pattern, since]).fetchone()
        return count, oldest

    def measured_calls(self, model: str, limit: int = 60) -> list[tuple[int, int, float, str]]:
        """(tokens read, tokens_out, latency_s, node) of the model's latest calls on this machine, any run:
        what the time plan learns the model's speed from. Prompt tokens served from the server's cache cost
        almost nothing, so only the others count as read. Answers without token counts tell nothing."""
        with self._lock:
            return self.db.execute(
                f"select tokens_in - coalesce(tokens_cached, 0), tokens_out, latency_s, node from {MODEL_CALLS} "
                f"where model = ? and "
                f"latency_s > 0 and tokens_out > 0 order by id desc limit ?", [model, limit]).fetchall()

    # -- script executions ---------------------------------------------------------------------

    def script_durations(self, run_id: str) -> list[float]:
        """Wall-clock seconds of this run's scripts that finished with a score."""
        with self._lock:
            return [row[0] for row in self.db.execute(
                f"select duration_s from {EXECUTIONS} where run_id = ? and status = 'ok' and score is not null",
                [run_id]).fetchall()]

    def find_execution(self, run_id: str, exec_key: str, code_sha: str) -> dict | None:
        with self._lock:
            rows = list(self.db[EXECUTIONS].rows_where(
                "run_id = ? and exec_key = ? and code_sha = ?", [run_id, exec_key, code_sha],
                order_by="id", limit=1))
            if not rows:
                return None
            self.db.table(EXECUTIONS).update(rows[0]["id"], {"reused": rows[0]["reused"] + 1})
            return json.loads(rows[0]["result"])

    def record_execution(self, *, run_id: str, lane: int, exec_key: str, code: str,
                         code_path: str, result: dict) -> None:
        with self._lock:
            self.db.table(EXECUTIONS).insert({
                "run_id": run_id, "lane": lane, "exec_key": exec_key, "code_sha": sha256_text(code),
                "code_path": code_path, "status": result["status"], "score": result.get("score"),
                "duration_s": result.get("duration_s"), "result": json.dumps(result),
                "created_at": time.time(), "reused": 0,
            })

    def executions(self, run_id: str) -> list[dict]:
        """Script executions of a run and its pipeline runs, oldest first, for reports: no code, no stderr,
        only the stdout tail (an ablation study's findings are printed there)."""
        columns = ("run_id", "lane", "exec_key", "status", "score", "duration_s", "created_at", "stdout_tail")
        with self._lock:
            rows = self.db.execute(
                f"select run_id, lane, exec_key, status, score, duration_s, created_at, "
                f"json_extract(result, '$.stdout_tail') from {EXECUTIONS} where {WHERE_RUN} order by id",
                [run_id, run_id]).fetchall()
        return [dict(zip(columns, row)) for row in rows]

    # -- runs ----------------------------------------------------------------------------------

    def upsert_run(self, run_id: str, **fields: Any) -> None:
        with self._lock:
            fields = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in fields.items()}
            existing = self.db[RUNS].count_where("run_id = ?", [run_id])
            if existing:
                self.db.table(RUNS).update(run_id, {**fields, "updated_at": time.time()})
            else:
                self.db.table(RUNS).insert({"run_id": run_id, "started_at": time.time(),
                                            "updated_at": time.time(), **fields})

    def record_meta_run(self, meta_id: str, summary: dict) -> None:
        """One row per run of a meta loop (upsert: recording the same run twice keeps one row)."""
        row = {"meta_id": meta_id, **{k: summary.get(k) for k in (
            "run_index", "run_id", "status", "start_time_iso", "duration_s", "best_score",
            "best_solution_path", "submission_path")}}
        for key in ("config", "overrides", "goals", "shaped_by"):
            row[key] = json.dumps(summary.get(key), default=str)
        row["summary"] = json.dumps(summary, default=str)
        with self._lock:
            self.db.table(META_RUNS).upsert(row, pk=("meta_id", "run_index"))

    def meta_runs(self, meta_id: str) -> list[dict]:
        with self._lock:
            return list(self.db[META_RUNS].rows_where("meta_id = ?", [meta_id], order_by="run_index"))

    def unused_run_id(self, run_id: str) -> str:
        """`run_id` if no run has it, else the first free `run_id.b2`, `run_id.b3`, ..."""
        branch = 2
        candidate = run_id
        while self.get_run(candidate):
            candidate, branch = f"{run_id}.b{branch}", branch + 1
        return candidate

    def get_run(self, run_id: str) -> dict | None:
        with self._lock:
            rows = list(self.db[RUNS].rows_where("run_id = ?", [run_id]))
        return rows[0] if rows else None

    def runs(self) -> list[dict]:
        with self._lock:
            return list(self.db[RUNS].rows_where(order_by="started_at"))

    def usage_breakdown(self, run_id: str) -> dict[str, list[dict]]:
        """Model usage of a run and its pipeline runs, grouped by role and by phase (node), in order of first use.

        Each row: name, calls, tokens_in, tokens_out, inference_s, cost_usd (of the priced calls),
        unpriced (calls whose model has no known price), reused (answers taken from the journal).
        """
        groups = {}
        with self._lock:
            for group, column in USAGE_GROUPS.items():
                rows = self.db.execute(
                    f"select {column}, count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
                    f"coalesce(sum(latency_s),0), coalesce(sum(cost_usd),0), count(*) - count(cost_usd), "
                    f"coalesce(sum(reused),0) from {MODEL_CALLS} where {WHERE_RUN} group by {column} "
                    f"order by min(id)", [run_id, run_id]).fetchall()
                groups[group] = [dict(zip(("name", "calls", "tokens_in", "tokens_out", "inference_s", "cost_usd",
                                           "unpriced", "reused"), row)) for row in rows]
        return groups

    def usage(self, run_id: str) -> dict:
        """Totals for one run and its pipeline runs: calls, tokens, inference and script time."""
        with self._lock:
            calls = self.db.execute(
                f"select count(*), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), "
                f"coalesce(sum(latency_s),0), coalesce(sum(reused),0), coalesce(sum(cost_usd),0) "
                f"from {MODEL_CALLS} where {WHERE_RUN}", [run_id, run_id]).fetchone()
            execs = self.db.execute(
                f"select count(*), coalesce(sum(duration_s),0), coalesce(sum(reused),0), "
                f"coalesce(sum(status = 'ok' and score is not null),0) from {EXECUTIONS} where {WHERE_RUN}", [run_id, run_id]).fetchone()
        return {
            "model_calls": calls[0], "tokens_in": calls[1], "tokens_out": calls[2],
            "inference_s": round(calls[3], 1), "answers_reused": calls[4], "cost_usd": round(calls[5], 6),
            "executions": execs[0], "script_s": round(execs[1], 1), "executions_reused": execs[2],
            "executions_scored": execs[3],
        }


@lru_cache(maxsize=8)
def open_journal(path: str) -> Journal:
    """One Journal per database file and process."""
    return Journal(path)
