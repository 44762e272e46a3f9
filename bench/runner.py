"""Graded suite runs: every system on every task and seed, one wall-clock budget, hidden answers, one table.

Results go to ``OUT/results.jsonl``, one line per finished attempt, written as soon as it is graded; a killed
suite run started again with the same OUT skips what is recorded there and redoes only the attempt that was
cut off (from scratch: a half-finished attempt of another system cannot be resumed, and redoing ours the same
way keeps the comparison fair). ``OUT/table.md`` and ``OUT/scores.png`` are rewritten after every attempt.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.suite import SuiteTask, medal, normalised_score, visible_copy
from bench.systems import Attempt, Launch, System, make_systems
from graph.cluster import Resources
from runtime.sandbox import bwrap_problem
from runtime.task import grade_submission

RESULTS_FILE = "results.jsonl"
KILL_GRACE_S = 15  # beyond the budget, for a process to start and shut down
BUDGET = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_budget(text: str) -> float:
    """'20m', '90s', '1h30m' or plain seconds -> seconds."""
    match = BUDGET.fullmatch(text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"Budget {text!r} is not a duration; write e.g. 20m, 90s, 1h30m or a number of seconds.")
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"Budget {text!r} must be more than zero.")
    return total


@dataclass(frozen=True)
class Record:
    """One graded attempt: a line of results.jsonl."""

    system: str
    task: str
    seed: int
    budget_s: float
    status: str  # finished | timeout | failed (exit code N)
    valid: bool
    score: float | None
    medal: str | None
    normalised: float | None
    wall_s: float
    model_calls: int | None
    tokens_in: int | None
    tokens_out: int | None
    submission: str | None
    problems: list[str]
    notes: str
    jail: str  # how the answers were kept from the system: bwrap | none (warned) | own sandbox
    finished_at: str
    first_submission_s: float | None = None  # when the system first held a valid submission (if it tells)
    submissions: list[dict] | None = None  # MLE-STAR's board history: at_s, validation score, source (phase)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.system, self.task, self.seed


def read_records(path: Path) -> list[Record]:
    """The finished attempts of a suite run; a torn last line (killed while writing) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(Record(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


def append_record(path: Path, record: Record) -> None:
    """Append one line, durably; a torn last line (killed mid-write) is closed first, not glued onto."""
    torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as f:
        f.write(("\n" if torn else "") + json.dumps(asdict(record)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def jail_argv(argv: list[str], hidden: Path, work: Path) -> list[str]:
    """bubblewrap around a competitor: the whole system read-only, the suite (answers) replaced by an empty
    folder, only its work folder writable, its own /tmp and process namespace; the network is shared so it
    reaches the model endpoint on 127.0.0.1. A program installed under /tmp (a checkout there) stays visible
    through the private /tmp: its environment (bin/..) is bound back read-only."""
    program_env = Path(os.path.abspath(argv[0])).parent.parent  # not resolved: a venv's python is a symlink
    keep = ["--ro-bind", str(program_env), str(program_env)] if program_env.is_relative_to("/tmp") else []
    return ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", *keep,
            "--tmpfs", str(hidden.resolve()), "--bind", str(work.resolve()), str(work.resolve()),
            "--chdir", str(work.resolve()), "--unshare-pid", "--die-with-parent", "--new-session", "--", *argv]


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        tree = psutil.Process(proc.pid)
        victims = [tree, *tree.children(recursive=True)]
    except psutil.NoSuchProcess:
        victims = []
    for victim in victims:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_process(argv: list[str], env: dict[str, str], cwd: Path, limit_s: float, log: Path) -> tuple[str, float]:
    """Run to completion or kill the whole tree at ``limit_s``: (status, wall seconds)."""
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            return "timeout", time.monotonic() - started
        except BaseException:  # Ctrl-C: leave nothing running behind us
            kill_tree(proc)
            raise
    return ("finished" if code == 0 else f"failed (exit code {code})"), time.monotonic() - started


def run_attempt(system: System, attempt: Attempt, suite_dir: Path) -> Record:
    """Start one system on one task in a fresh folder, stop it at the budget, grade what it left."""
    if attempt.work.exists():
        shutil.rmtree(attempt.work)  # an attempt cut off by a killed suite run starts over
    attempt.work.mkdir(parents=True)
    visible_copy(attempt.task.task, attempt.visible)
    launch: Launch = system.launch(attempt)
    argv, jail = launch.argv, "own sandbox"
    if launch.jailed:
        problem = bwrap_problem()
        if problem is None:
            argv, jail = jail_argv(argv, suite_dir, attempt.work), "bwrap"
        else:
            jail = f"none ({problem}): the answers were readable"
    status, wall_s = run_process(argv, launch.env, attempt.work, attempt.budget_s + KILL_GRACE_S,
                                 attempt.work / "system.log")
    outcome = system.outcome(attempt)
    return grade_attempt(attempt, outcome, status, wall_s, jail)


def grade_attempt(attempt: Attempt, outcome, status: str, wall_s: float, jail: str) -> Record:
    """Grade the submission with the hidden answers; no submission is an invalid attempt, not a crash."""
    task = attempt.task
    valid, score, problems = False, None, ["no submission was produced"]
    if outcome.submission is not None and Path(outcome.submission).exists():
        grade = grade_submission(task.task, outcome.submission)
        valid, score, problems = grade.valid, grade.score, grade.problems
    lower = task.task.lower_is_better
    return Record(
        system=attempt.system, task=task.name, seed=attempt.seed, budget_s=attempt.budget_s, status=status,
        valid=valid, score=score, medal=medal(score, lower, task.reference),
        normalised=normalised_score(score, lower, task.reference), wall_s=round(wall_s, 1),
        model_calls=outcome.model_calls, tokens_in=outcome.tokens_in, tokens_out=outcome.tokens_out,
        submission=str(outcome.submission) if outcome.submission else None, problems=problems[:3],
        notes=outcome.notes, jail=jail, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        first_submission_s=outcome.first_submission_s, submissions=outcome.submissions)


def plan(systems: Iterable[str], tasks: list[SuiteTask], seeds: int) -> list[tuple[str, SuiteTask, int]]:
    """Task by task, seed by seed, every system in turn: a cut-short suite run still compares like with like."""
    return [(name, task, seed) for task in tasks for seed in range(seeds) for name in systems]


def run_suite(suite_dir: Path, out: Path, systems: dict[str, System], tasks: list[SuiteTask], seeds: int,
              budget_s: float, on_record: Callable[[Record, bool], None] = lambda r, reused: None,
              cluster: ClusterPlan | None = None) -> list[Record]:
    """Run what results.jsonl does not hold yet; return every record of the requested plan. With `cluster`, the
    attempts run as Ray tasks (as many at once as the cluster holds; `systems` only names them) and each
    record is written as its attempt ends."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS_FILE
    recorded = {r.key: r for r in read_records(results)}
    records: list[Record] = []

    def finished(record: Record, reused: bool) -> None:
        if not reused:
            append_record(results, record)
        records.append(record)
        on_record(record, reused)
        write_outputs(out, records)

    attempts = []
    for name, task, seed in plan(systems, tasks, seeds):
        if (name, task.name, seed) in recorded:
            finished(recorded[(name, task.name, seed)], True)
            continue
        work = out / "attempts" / task.name / f"{name}-s{seed}"
        attempts.append(Attempt(name, task, seed, budget_s, visible=work / "task", work=work))
    if cluster is None:
        for attempt in attempts:
            finished(run_attempt(systems[attempt.system], attempt, suite_dir), False)
    else:
        from graph.cluster import run_all

        def done(job: RemoteAttempt, record: Record | None, error: BaseException | None) -> None:
            if record is None:  # not recorded: running the suite again retries it
                cluster.on_error(job.attempt, error)
            else:
                finished(record, False)

        jobs = [RemoteAttempt(a, suite_dir, cluster.model, cluster.settings) for a in attempts]
        run_all(run_remote_attempt, jobs, cluster.resources, done)
    order = {key: i for i, key in enumerate((n, t.name, s) for n, t, s in plan(systems, tasks, seeds))}
    records.sort(key=lambda r: order[r.key])
    write_outputs(out, records)
    return records


@dataclass(frozen=True)
class ClusterPlan:
    """How the attempts run on Ray: each worker builds its system from the model and settings."""

    model: str
    settings: list[str]
    resources: Resources
    on_error: Callable[[Attempt, BaseException | None], None]


@dataclass(frozen=True)
class RemoteAttempt:
    attempt: Attempt
    suite_dir: Path
    model: str
    settings: list[str]


def run_remote_attempt(job: RemoteAttempt) -> Record:
    """One attempt on a Ray worker, its system built there. A retry after the worker died starts the attempt
    over: one uninterrupted budget per attempt keeps the comparison fair."""
    chosen, close = make_systems([job.attempt.system], job.model, job.settings)
    try:
        return run_attempt(chosen[job.attempt.system], job.attempt, job.suite_dir)
    finally:
        close()


# --------------------------------------------------------------------------- tables and plots


@dataclass(frozen=True)
class Row:
    """One system on one task over its seeds."""

    system: str
    task: str
    seeds: int
    score_mean: float | None
    score_sd: float | None
    medals: dict[str, int]
    valid: int
    wall_s: float
    model_calls: float | None
    tokens: float | None
    normalised_mean: float | None


@dataclass(frozen=True)
class Summary:
    system: str
    attempts: int
    valid_rate: float
    medal_rate: float
    mean_normalised: float | None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def task_rows(records: list[Record]) -> list[Row]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.task, record.system)].append(record)
    rows = []
    for (task, system), group in groups.items():
        scores = [r.score for r in group if r.score is not None]
        medals = defaultdict(int)
        for r in group:
            if r.medal:
                medals[r.medal] += 1
        calls = [r.model_calls for r in group if r.model_calls is not None]
        tokens = [r.tokens_in + r.tokens_out for r in group if r.tokens_in is not None and r.tokens_out is not None]
        normalised = [r.normalised for r in group if r.normalised is not None]
        rows.append(Row(system, task, len(group), _mean(scores), statistics.stdev(scores) if len(scores) > 1 else None,
                        dict(medals), sum(r.valid for r in group), _mean([r.wall_s for r in group]) or 0.0,
                        _mean(calls), _mean(tokens), _mean(normalised)))
    return rows


def summaries(records: list[Record]) -> list[Summary]:
    """Per system over all its attempts. An invalid submission counts as the trivial baseline (normalised 0)."""
    by_system: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_system[record.system].append(record)
    result = []
    for system, group in by_system.items():
        normalised = [(r.normalised if r.valid and r.normalised is not None else 0.0) for r in group
                      if r.normalised is not None or not r.valid]
        result.append(Summary(system, len(group), sum(r.valid for r in group) / len(group),
                              sum(r.medal is not None for r in group) / len(group), _mean(normalised)))
    return result


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def first_submission_lines(records: list[Record]) -> list[str]:
    """When each attempt first held a valid submission, and which phases improved it (MLE-STAR's board)."""
    timed = [r for r in records if r.first_submission_s is not None]
    if not timed:
        return []
    lines = ["", "| task | system | seed | first valid submission (s) | board: validation score by phase |",
             "|---|---|---|---|---|"]
    for r in sorted(timed, key=lambda r: (r.task, r.system, r.seed)):
        steps = " -> ".join(f"{h['source']} {_num(h['score'])} @{h['at_s']:.0f}s" for h in r.submissions or []
                            if h.get("at_s") is not None)
        lines.append(f"| {r.task} | {r.system} | {r.seed} | {r.first_submission_s:.0f} | {steps} |")
    return lines


def markdown_table(records: list[Record]) -> str:
    lines = ["| task | system | score | medal | valid | wall s | model calls | tokens |",
             "|---|---|---|---|---|---|---|---|"]
    for row in sorted(task_rows(records), key=lambda r: (r.task, r.system)):
        score = _num(row.score_mean) + (f" ± {_num(row.score_sd, 2)}" if row.score_sd is not None else "")
        medals = ", ".join(f"{m} {row.medals[m]}/{row.seeds}" if row.seeds > 1 else m
                           for m in ("gold", "silver", "bronze") if m in row.medals) or "-"
        lines.append(f"| {row.task} | {row.system} | {score} | {medals} | {row.valid}/{row.seeds} | "
                     f"{row.wall_s:.0f} | {_num(row.model_calls)} | {_num(row.tokens)} |")
    lines += ["", "| system | attempts | valid submissions | medal rate | mean normalised score |",
              "|---|---|---|---|---|"]
    for s in sorted(summaries(records), key=lambda s: -(s.mean_normalised or -1e9)):
        lines.append(f"| {s.system} | {s.attempts} | {s.valid_rate:.0%} | {s.medal_rate:.0%} | "
                     f"{_num(s.mean_normalised, 3)} |")
    lines += first_submission_lines(records)
    lines += ["", "Normalised score: 0 = trivial baseline, 1 = gold threshold; an invalid submission counts 0."]
    return "\n".join(lines) + "\n"


def plot_scores(records: list[Record], path: Path) -> None:
    """Normalised score per task, one bar per system (error bars: spread over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in task_rows(records)]
    tasks = sorted({r.task for r in rows})
    systems = sorted({r.system for r in rows})
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 4))
    for i, system in enumerate(systems):
        values, errors = [], []
        for task in tasks:
            group = [r.normalised for r in records if r.task == task and r.system == system and r.normalised is not None]
            values.append(statistics.fmean(group) if group else math.nan)
            errors.append(statistics.stdev(group) if len(group) > 1 else 0.0)
        ax.bar([t + i * width for t in range(len(tasks))], values, width, yerr=errors, label=system, capsize=2)
    ax.axhline(1.0, color="goldenrod", linestyle="--", linewidth=1, label="gold")
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xticks([t + width * (len(systems) - 1) / 2 for t in range(len(tasks))], tasks)
    ax.set_ylabel("normalised score (0 trivial, 1 gold)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, records: list[Record]) -> None:
    (out / "table.md").write_text(markdown_table(records))
    if records:
        plot_scores(records, out / "scores.png")
