"""Scale-out benchmark: suite throughput on a local Ray cluster, and what the PostgreSQL store costs.

1. Throughput: the bundled suite (examples/, 5 tasks) with MLE-STAR on the scripted model and a 1-minute
   budget per attempt, run three ways by the real command line: the sequential harness (`mlestar bench`),
   and `mlestar bench --ray` on a local cluster of 1 and of 2 CPUs (one CPU per attempt). Figures: wall time
   of the whole suite (Ray's start included), attempts per hour, speed-up over the sequential harness, valid
   submissions and mean normalised score (the same work must give the same results).
2. Store overhead: one small scripted pipeline run, in this process, checkpointing and journalling to SQLite
   files and to a PostgreSQL server on this machine (bench/postgres_server.py), `--repeats` times each,
   alternating. Every checkpointer `put`/`put_writes` and every journal statement is timed: milliseconds per
   checkpoint, per journal statement, and the store's share of the run's wall time.

    PYTHONPATH=. .venv/bin/python bench/scale_out.py [--budget 1m] [--repeats 3] [--out bench/results/scale-out]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.postgres_server import PostgresServer  # noqa: E402
from bench.runner import read_records, summaries  # noqa: E402

SCRIPTED = "scripted:tests.scripted_model:respond"
WAYS = {"sequential harness": [], "Ray, 1 CPU": ["--ray", "--ray-cpus", "1"], "Ray, 2 CPUs": ["--ray", "--ray-cpus", "2"]}
# The store benchmark's run: every phase, small (floor, 2 candidates with a debug round, merge, refinement).
STORE_RUN = {"num_lanes": 1, "num_candidates": 2, "refine_steps": 1, "inner_steps": 2, "ensemble_rounds": 0,
             "debug_rounds": 1, "floor_approaches": 2}


def suite_throughput(out: Path, budget: str) -> list[dict]:
    rows = []
    for way, flags in WAYS.items():
        folder = out / way.replace(" ", "-").replace(",", "").lower()
        shutil.rmtree(folder, ignore_errors=True)
        command = [sys.executable, "-m", "graph.cli", "bench", "examples", "--systems", "mlestar", "--model",
                   SCRIPTED, "--budget", budget, "--out", str(folder), "--memory-mb", "1024", *flags]
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True)
        wall = time.monotonic() - started
        (folder / "command.log").write_text(done.stdout[-20000:] + done.stderr[-20000:])
        records = read_records(folder / "results.jsonl")
        [summary] = summaries(records) or [None]
        rows.append({"way": way, "command": " ".join(["mlestar", *command[3:]]), "exit_code": done.returncode,
                     "suite_wall_s": round(wall, 1), "attempts": len(records),
                     "attempt_wall_s": [r.wall_s for r in records],
                     "attempts_per_hour": round(3600 * len(records) / wall, 1),
                     "valid": sum(r.valid for r in records),
                     "mean_normalised": round(summary.mean_normalised, 4) if summary and summary.mean_normalised
                     is not None else None,
                     "scores": {r.task: r.score for r in records}})
        print(f"{way}: {rows[-1]['suite_wall_s']} s for {len(records)} attempts", flush=True)
    sequential = rows[0]["suite_wall_s"]
    for row in rows:
        row["speedup_vs_sequential"] = round(sequential / row["suite_wall_s"], 2)
    return rows


def timed(obj, names: list[str]) -> dict[str, list[float]]:
    """Wrap the named methods of `obj` so that each call's duration lands in the returned lists, by name. The
    process keeps one journal (and one PostgreSQL checkpointer) per store: an object is wrapped once."""
    if hasattr(obj, "_bench_times"):
        return obj._bench_times
    into: dict[str, list[float]] = {name: [] for name in names}
    obj._bench_times = into
    for name in names:
        original = getattr(obj, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                into[_name].append(time.perf_counter() - started)

        setattr(obj, name, wrapper)
    return into


def one_store_run(checkpoints: str, journal: str, work: Path, run_id: str) -> dict:
    from graph.checkpoint import open_checkpointer
    from graph.context import Context
    from graph.pipeline import build_graph
    from runtime.journal import open_journal

    saver = open_checkpointer(checkpoints)
    parts = [timed(saver, ["put", "put_writes", "get_tuple"]), timed(open_journal(journal), ["_fetch", "_write"])]
    for part in parts:
        for values in part.values():
            values.clear()
    ctx = Context(**{f"{role}_model": SCRIPTED for role in ("coder", "planner", "reviewer", "enhancer")},
                  **STORE_RUN, workspace_root=str(work / "ws"), journal_path=journal)
    graph = build_graph(saver)
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 500}
    started = time.perf_counter()
    graph.invoke({"task_dir": str(ROOT / "examples" / "concrete"), "run_id": run_id}, config, context=ctx,
                 durability="sync")
    wall = time.perf_counter() - started
    times = {name: list(values) for part in parts for name, values in part.items()}
    store_s = sum(sum(values) for values in times.values())
    return {"wall_s": wall, "store_s": store_s, **{name: values for name, values in times.items()}}


def ms(values: list[float]) -> dict:
    return {"calls": len(values), "mean_ms": round(1000 * statistics.fmean(values), 3) if values else None,
            "median_ms": round(1000 * statistics.median(values), 3) if values else None}


def store_overhead(repeats: int) -> dict:
    server = PostgresServer().start(durable=True)  # fsync on commit, as SQLite's WAL does by default
    work = Path(tempfile.mkdtemp(prefix="mlestar-store-bench-"))
    runs: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    try:
        url = server.new_database()
        for k in range(repeats):
            for store in ("sqlite", "postgresql") if k % 2 == 0 else ("postgresql", "sqlite"):
                checkpoints, journal = ((str(work / "cp.db"), str(work / "journal.db")) if store == "sqlite"
                                        else (url, url))
                runs[store].append(one_store_run(checkpoints, journal, work / store, f"{store}-{k}"))
                print(f"store {store} run {k}: {runs[store][-1]['wall_s']:.1f} s", flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures = {}
    for store, results in runs.items():
        merged = {name: [v for r in results for v in r[name]] for name in ("put", "put_writes", "get_tuple")}
        journal = [v for r in results for v in r["_fetch"] + r["_write"]]
        figures[store] = {
            "runs": len(results), "run_wall_s": [round(r["wall_s"], 2) for r in results],
            "store_share_of_wall": round(sum(r["store_s"] for r in results) / sum(r["wall_s"] for r in results), 4),
            "checkpoints_per_run": len(merged["put"]) // len(results),
            **{f"checkpointer_{name}": ms(values) for name, values in merged.items()},
            "journal_statement": ms(journal),
        }
    sqlite, postgres = figures["sqlite"], figures["postgresql"]
    figures["postgresql_vs_sqlite_put_ratio"] = round(postgres["checkpointer_put"]["median_ms"]
                                                      / sqlite["checkpointer_put"]["median_ms"], 2)
    figures["postgresql_minus_sqlite_put_ms"] = round(postgres["checkpointer_put"]["median_ms"]
                                                      - sqlite["checkpointer_put"]["median_ms"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale-out")
    parser.add_argument("--skip-suite", action="store_true", help="only the store overhead")
    parser.add_argument("--skip-store", action="store_true", help="only the suite throughput")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "command": " ".join(["PYTHONPATH=. .venv/bin/python bench/scale_out.py", *sys.argv[1:]]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if not args.skip_store:
        report["store_overhead"] = store_overhead(args.repeats)
    if not args.skip_suite:
        report["suite_throughput"] = suite_throughput(args.out, args.budget)
    (args.out / "scale_out.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
