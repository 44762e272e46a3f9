"""The systems a suite run compares: MLE-STAR itself, AIDE, FLAML and the plain baselines.

Each system says how to start it on one task (a command line, its environment, whether it must run jailed)
and, once the process has ended, what it produced (a submission file, its model use). The runner does the
rest the same way for all of them: one wall-clock budget, one kill, one grader.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from bench import aide
from bench.suite import SuiteTask
from bench.usage_proxy import UsageProxy
from graph.context import Context
from runtime import board
from runtime.journal import SqliteJournal
from runtime.models import openai_endpoint, parse_model_spec
from runtime.sandbox import scrubbed_env

BASELINE_SYSTEMS = ("trivial", "lgbm_default", "flaml")
SYSTEMS = ("mlestar", "aide", *BASELINE_SYSTEMS)
# Share of the budget MLE-STAR keeps back: after (budget - reserve) it makes no new model call and submits.
# Small, since the run's board holds a valid submission from its first minute on: the reserve is only for
# turning a better solution into a submission before the hard kill.
MLESTAR_RESERVE = 0.1
MIN_RESERVE_S = 20


@dataclass(frozen=True)
class Attempt:
    """One system on one task with one seed: where it works and how long it may take."""

    system: str
    task: SuiteTask
    seed: int
    budget_s: float
    visible: Path  # the task folder the system sees (public data and metadata only)
    work: Path  # the system's own folder for logs, checkpoints and outputs

    @property
    def run_id(self) -> str:
        return f"bench-{self.system}-{self.task.name}-s{self.seed}"


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    jailed: bool  # runs model-written code outside our sandbox: hide the suite (and its answers) from it


@dataclass(frozen=True)
class Outcome:
    submission: Path | None
    model_calls: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    notes: str = ""
    first_submission_s: float | None = None
    submissions: list[dict] | None = None


class System(Protocol):
    name: str

    def launch(self, attempt: Attempt) -> Launch: ...

    def outcome(self, attempt: Attempt) -> Outcome: ...


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint serving the model under test."""

    base_url: str
    model: str
    api_key: str | None = None


def endpoint_for(spec: str) -> Endpoint:
    """The HTTP endpoint behind a model spec, for systems that speak the OpenAI API (AIDE).

    ``local`` starts the embedded model's server in this process; ``openai:MODEL[@URL]`` is used as is.
    """
    provider, ref = parse_model_spec(spec)
    if provider == "local":
        from runtime.local_model import get_local_server

        server = get_local_server(ref or None)
        return Endpoint(server.base_url, server.model_name)
    if provider == "openai":
        name, base_url, key = openai_endpoint(ref)
        return Endpoint(base_url or "https://api.openai.com/v1", name, key)
    raise ValueError(f"Model {spec!r} has no HTTP endpoint that AIDE could use; give --model local or "
                     f"openai:MODEL[@URL], or leave aide out with --systems.")


def run_board(journal: SqliteJournal, run_id: str, submission: str | None) -> tuple[dict | None, str | None]:
    """The submission board of a run's pipeline runs (<run_id>-run<k>): the one that holds the run's final
    submission, else the latest with a submission, also when the run was killed before it ended."""
    boards = []
    for k in range(1000):
        row = journal.get_run(f"{run_id}-run{k}")
        if row is None:
            break
        held = board.current(row["workspace"]) if row.get("workspace") else None
        if held:
            boards.append((held, row["workspace"]))
    final = [b for b in boards if submission and Path(submission).parent == Path(b[1])]
    return (final or boards or [(None, None)])[-1]


def mlestar_soft_budget(budget_s: float) -> int:
    """When MLE-STAR stops asking the model, so that it submits before the hard wall-clock kill."""
    reserve = max(MIN_RESERVE_S, MLESTAR_RESERVE * budget_s)
    return max(1, int(budget_s - min(reserve, budget_s / 2)))


@dataclass
class MleStar:
    model: str
    settings: list[str] = field(default_factory=list)
    python: str = sys.executable
    name: str = "mlestar"

    def launch(self, attempt: Attempt) -> Launch:
        argv = [self.python, "-m", "graph.cli", "run", str(attempt.visible), "--run-id", attempt.run_id,
                "--model", self.model, "--checkpoints", str(attempt.work / "checkpoints.db"),
                "--set", f"journal_path={attempt.work / 'journal.db'}",
                "--set", f"workspace_root={attempt.work / 'workspace'}",
                "--set", f"run_time_budget_s={mlestar_soft_budget(attempt.budget_s)}"]
        for item in self.settings:
            argv += ["--set", item]
        # Not jailed: MLE-STAR runs every generated script in its own sandbox (no secrets, only the visible copy).
        return Launch(argv, dict(os.environ), jailed=False)

    def outcome(self, attempt: Attempt) -> Outcome:
        journal_path = attempt.work / "journal.db"
        if not journal_path.exists():
            return Outcome(None, notes="no journal: the run never started")
        journal = SqliteJournal(journal_path)
        row = journal.get_run(attempt.run_id) or {}
        usage = journal.usage(attempt.run_id)
        held, workspace = run_board(journal, attempt.run_id, row.get("submission"))
        submission = Path(workspace) / board.SUBMISSION if held else row.get("submission")
        history = held["history"] if held else None
        return Outcome(Path(submission) if submission else None, usage["model_calls"], usage["tokens_in"],
                       usage["tokens_out"], notes=row.get("stop_reason") or row.get("status") or "",
                       first_submission_s=history[0]["at_s"] if history else None, submissions=history)


class ServedModel:
    """A model endpoint in a child process (`argv` prints its Endpoint as one JSON line, then serves), started
    before an attempt's clock and killed after it, so nothing the attempt asked for runs on afterwards."""

    def __init__(self, argv: list[str], startup_s: float = 300.0):
        self.argv, self.startup_s = argv, startup_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> Endpoint:
        self.stop()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                     cwd=aide.REPO_ROOT)
        ready, _, _ = select.select([self.proc.stdout], [], [], self.startup_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"the model server {' '.join(self.argv)} did not start within {self.startup_s:.0f} s")
        return Endpoint(**json.loads(line))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@dataclass
class Aide:
    """AIDE (aideml) through a counting proxy in front of the model's endpoint, in its own virtualenv.

    With `served`, each attempt gets a fresh endpoint process, killed when the attempt ends."""

    proxy: UsageProxy
    model: str
    served: ServedModel | None = None
    aide_bin: Path = aide.DEFAULT_AIDE_BIN
    name: str = "aide"

    def launch(self, attempt: Attempt) -> Launch:
        if self.served is not None:
            endpoint = self.served.start()
            self.proxy.upstream, self.model = endpoint.base_url.rstrip("/"), endpoint.model
        task = attempt.task.task
        argv = aide.aide_command(self.aide_bin, attempt.visible / "public", aide.goal_for(task),
                                 aide.eval_for(task), attempt.work, self.model,
                                 steps=aide.MAX_STEPS, exec_timeout_s=aide.exec_timeout(attempt.budget_s))
        self.proxy.take()  # count from here
        return Launch(argv, aide.aide_env(self.proxy.base_url, home=attempt.work), jailed=True)

    def outcome(self, attempt: Attempt) -> Outcome:
        if self.served is not None:
            self.served.stop()
        usage = self.proxy.take()
        stats = aide.run_stats(attempt.work)
        return Outcome(aide.find_submission(attempt.work), usage.calls, usage.tokens_in, usage.tokens_out,
                       notes=", ".join(f"{k}={v}" for k, v in stats.items()))


@dataclass
class Baseline:
    """trivial, lgbm_default or flaml, run by `python -m bench.baselines` on the visible copy."""

    name: str
    python: str = sys.executable

    def launch(self, attempt: Attempt) -> Launch:
        argv = [self.python, "-m", "bench.baselines", self.name, str(attempt.visible),
                str(attempt.work / "submission.csv"), "--budget", str(int(attempt.budget_s)),
                "--seed", str(attempt.seed)]
        return Launch(argv, scrubbed_env() | {"HOME": os.environ.get("HOME", "/tmp")}, jailed=False)

    def outcome(self, attempt: Attempt) -> Outcome:
        path = attempt.work / "submission.csv"
        return Outcome(path if path.exists() else None, 0, 0, 0)


def answer_cap(settings: list[str]) -> int:
    """MLE-STAR's per-answer token cap for these settings (--set max_tokens=N, else the default)."""
    chosen = dict(item.partition("=")[::2] for item in settings)
    return int(chosen.get("max_tokens") or Context().max_tokens)


def make_systems(names: list[str], model: str, settings: list[str]) -> tuple[dict[str, System], Callable[[], None]]:
    """The named systems, all on the same model; AIDE reaches it through a counting proxy. Returns a closer."""
    unknown = sorted(set(names) - set(SYSTEMS))
    if unknown:
        raise ValueError(f"Unknown system {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}.")
    systems: dict[str, System] = {}
    proxy = None
    for name in names:
        if name == "mlestar":
            systems[name] = MleStar(model, settings)
        elif name == "aide":
            if not aide.DEFAULT_AIDE_BIN.exists():
                raise FileNotFoundError(f"AIDE is not installed ({aide.DEFAULT_AIDE_BIN} is missing): run "
                                        f"`bash bench/setup_aide.sh` (its own virtualenv), or leave it out with --systems.")
            if parse_model_spec(model)[0] == "local":  # served per attempt, see ServedModel
                served = ServedModel([sys.executable, "-m", "bench.serve_model", model])
                proxy = UsageProxy("http://127.0.0.1:9/v1", max_tokens=answer_cap(settings)).start()
                systems[name] = Aide(proxy, "", served)
            else:
                endpoint = endpoint_for(model)
                proxy = UsageProxy(endpoint.base_url, endpoint.api_key, max_tokens=answer_cap(settings)).start()
                systems[name] = Aide(proxy, endpoint.model)
        else:
            systems[name] = Baseline(name)
    return systems, (proxy.stop if proxy else lambda: None)
