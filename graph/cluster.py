"""Work spread over a Ray cluster: the runs of `mlestar batch --ray` and the attempts of `mlestar bench --ray`.

Each unit of work is one Ray task with declared resources (CPUs, a GPU when a model runs on one, memory), so
the cluster runs as many at once as it holds. Results come back one by one, as units finish. A unit whose
worker process or node dies is retried by Ray (`Resources.retries`) and picks up where the shared store says:
a batch run resumes from its checkpoints and re-uses its journal. `address` None (or "local") starts a local
cluster in this process, so the same command works on a laptop; "auto" or "ray://HOST:10001" joins a running
one (docs/scale-out.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from graph.context import ConfigError
from runtime.journal import SCALE_INSTALL
from runtime.models import parse_model_spec

#: `--ray` without an address: a local cluster (the shell form of `address=None`).
LOCAL = "local"
#: Object store of a local cluster: the units return small records, never data.
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20
Job = TypeVar("Job")


@dataclass(frozen=True)
class Resources:
    """What one unit asks of the cluster; Ray starts it only on a node that has it free."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0  # 0: not declared
    retries: int = 3  # restarts after the worker or its node died (an error in the unit itself is not retried)

    def ray_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": self.retries,
                                   "retry_exceptions": False}
        if self.memory_mb:
            options["memory"] = self.memory_mb * 2**20
        return options


def resources_for(model_specs: Iterable[str], cpus: float, memory_mb: int, retries: int = 3) -> Resources:
    """A GPU for units whose model runs through transformers (hf:), none otherwise."""
    gpus = 1.0 if any(parse_model_spec(spec)[0] == "hf" for spec in model_specs) else 0.0
    if cpus <= 0 or memory_mb < 0 or retries < 0:
        raise ConfigError(f"Resources cpus={cpus}, memory_mb={memory_mb}, retries={retries}: give more than 0 "
                          f"CPUs and no negative memory or retries.")
    return Resources(cpus, gpus, memory_mb, retries)


def read_ray_flag(argv: list[str], takes_paths: bool = True) -> list[str]:
    """`--ray` may stand alone (a local cluster) or take an address: written alone, at the end or before an
    option or an existing path (a task folder), it becomes `--ray=local`."""
    out = []
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        alone = following is None or following.startswith("-") or (takes_paths and Path(following).exists())
        out.append(f"--ray={LOCAL}" if arg == "--ray" and alone else arg)
    return out


def start_ray(address: str | None, cpus: int | None = None) -> str:
    """Connect to the cluster at `address`, or start a local one (with `cpus` CPUs, default all); returns what
    it connected to. Ray's own logs stay in its session folder."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray ({exc}): {SCALE_INSTALL}") from None
    if ray.is_initialized():
        return "the running Ray session"
    local = address in (None, "", LOCAL)
    if not local and cpus is not None:
        raise ConfigError("--ray-cpus sizes a local cluster only; a running cluster has the CPUs of its nodes.")
    try:
        if local:
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"Cannot reach the Ray cluster at {address}: {exc}. Fix: start it (`ray start --head` "
                          f"on one node) or give its address (auto, HOST:6379 or ray://HOST:10001); --ray alone "
                          f"starts a local one.") from None
    return f"a local Ray cluster ({int(ray.cluster_resources().get('CPU', 0))} CPUs)" if local else address or ""


def run_all(unit: Callable[[Job], Any], jobs: list[Job], resources: Resources,
            on_done: Callable[[Job, Any, BaseException | None], None]) -> None:
    """Run `unit(job)` for every job as Ray tasks, calling `on_done(job, result, error)` in this process as
    each one finishes (error: what the unit raised, or why Ray gave up on it). Ctrl-C cancels what is left."""
    import ray

    remote = ray.remote(unit).options(**resources.ray_options())
    pending = {remote.remote(job): job for job in jobs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    on_done(job, None, getattr(exc, "cause", None) or exc)
                else:
                    on_done(job, result, None)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
