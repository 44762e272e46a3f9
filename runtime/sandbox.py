"""Run one untrusted, LLM-generated Python script in a resource-limited child process.

Every attempt gets its own directory holding the script, an ``input`` symlink to the task's
data, the captured ``stdout.txt`` / ``stderr.txt`` and a ``result.json`` summary.

What this backend protects against
----------------------------------
* Runaway time: a wall-clock limit; on expiry the whole process tree is SIGKILLed.
* Runaway memory: ``RLIMIT_AS`` (a generous multiple of the budget, because numpy, BLAS and
  LightGBM reserve far more address space than they touch) turns huge single allocations into
  ``MemoryError``; a psutil monitor polls the summed RSS of the script and all its descendants
  and kills the tree once it exceeds the budget, so the machine never starts swapping/OOMing.
* Stray processes: the script runs in its own session/process group; on exit, timeout or
  memory kill we SIGKILL the group, every descendant ever observed (including ones that called
  ``setsid()``), and every process still carrying this run's environment tag (catches daemons
  that detached before the monitor saw them).
* Secret leakage through the environment: the child gets an allow-listed environment; anything
  whose name looks like a credential is dropped, and ``HOME`` points at the attempt directory.
* Deadlocks on output: stdout/stderr go to files, never pipes.
* Contention with local model inference: runs hold ``runtime.compute.exclusive_compute``.

What it does NOT protect against (a bubblewrap backend is planned for that)
--------------------------------------------------------------------------
* Filesystem access: the script runs as our user and can read/write anything we can
  (including files holding secrets, other attempts, the checkpoint DB). It is not chrooted.
* Network access, disk exhaustion (a script can fill the disk with output), CPU starvation of
  other users, fork bombs faster than the 0.1 s monitor, processes that clear their environment
  *and* detach before being observed, and anything requiring kernel-level isolation.
* RSS is summed per process, so copy-on-write pages shared by forked workers are counted more
  than once (errs on the side of killing). ``RLIMIT_AS`` is incompatible with CUDA, which
  reserves tens of GB of address space; GPU scripts need the future backend.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import psutil

from runtime.compute import exclusive_compute

TAIL_CHARS = 3000
POLL_INTERVAL_S = 0.1
# RLIMIT_AS = AS_FACTOR * memory_mb + AS_HEADROOM_MB. Importing pandas+sklearn+lightgbm alone
# reserves ~600 MB of address space with ~170 MB resident; the RSS monitor is the real guard.
AS_FACTOR = 2
AS_HEADROOM_MB = 1024
# Environment variable tagging every process of one run, so detached ones can be found.
RUN_TAG_VAR = "MLESTAR_SANDBOX_RUN"
_SCORE_MARKER = "Final Validation Performance:"
_SCORE_SCAN_BYTES = 4 * 1024 * 1024

_ENV_ALLOW = frozenset(
    {
        "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "LD_LIBRARY_PATH",
        "PYTHONHASHSEED", "PYTHONIOENCODING",
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MALLOC_ARENA_MAX",
        "CUDA_VISIBLE_DEVICES",
    }
)
_ENV_ALLOW_PREFIXES = ("LC_",)
_ENV_DENY_SUBSTRINGS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
_ENV_DEFAULTS = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "MALLOC_ARENA_MAX": "2",  # fewer malloc arenas -> far less reserved address space
}


@dataclass
class ExecutionResult:
    """Outcome of one script run; ``status`` is ok | error | timeout | memory."""

    status: str
    returncode: int | None
    score: float | None
    duration_s: float
    attempt_dir: str
    stdout_tail: str
    stderr_tail: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExecutionResult":
        """Inverse of ``to_dict``; unknown keys are ignored so old/new records interoperate."""
        score = d.get("score")
        returncode = d.get("returncode")
        return cls(
            status=str(d["status"]),
            returncode=None if returncode is None else int(returncode),
            score=None if score is None else float(score),
            duration_s=float(d.get("duration_s", 0.0)),
            attempt_dir=str(d.get("attempt_dir", "")),
            stdout_tail=str(d.get("stdout_tail", "")),
            stderr_tail=str(d.get("stderr_tail", "")),
        )

    @property
    def succeeded(self) -> bool:
        return self.status == "ok" and self.score is not None


# --------------------------------------------------------------------------- score parsing


def parse_score(stdout: str) -> float | None:
    """Score from the LAST line containing ``Final Validation Performance:``.

    The value is the first whitespace-separated token after the marker (trailing text such as
    ``(RMSE)`` is ignored). If that last report is unparsable or not finite the result is None:
    a broken final report must not silently fall back to an earlier, stale value.
    """
    last = None
    for line in stdout.splitlines():
        idx = line.find(_SCORE_MARKER)
        if idx != -1:
            last = line[idx + len(_SCORE_MARKER):]
    if last is None:
        return None
    tokens = last.split()
    if not tokens:
        return None
    try:
        value = float(tokens[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- environment


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(s in upper for s in _ENV_DENY_SUBSTRINGS)


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Allow-listed copy of ``base`` (default ``os.environ``) plus safe defaults.

    Names that look like credentials are dropped even if allow-listed. ``HOME`` is not set
    here; ``run_script`` points it at the attempt directory.
    """
    base = os.environ if base is None else base
    env = {
        k: v
        for k, v in base.items()
        if (k in _ENV_ALLOW or k.startswith(_ENV_ALLOW_PREFIXES)) and not _is_secret_name(k)
    }
    for k, v in _ENV_DEFAULTS.items():
        env.setdefault(k, v)
    return env


# --------------------------------------------------------------------------- file helpers


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise


def _link_input(attempt: Path, input_dir: Path) -> None:
    """Atomically (re)point ``attempt/input`` at ``input_dir``."""
    link = attempt / "input"
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; refusing to replace it")
    tmp = attempt / f".input.{uuid.uuid4().hex}.tmp"
    os.symlink(input_dir, tmp, target_is_directory=True)
    os.replace(tmp, link)


def _read_tail(path: Path, max_bytes: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc_type is not None and issubclass(exc_type, (OSError, psutil.Error))


# --------------------------------------------------------------------------- process tree


class _ProcessTree:
    """Remembers every descendant ever seen, so all of them can be killed at the end."""

    def __init__(self, pid: int, run_tag: str) -> None:
        self.pgid = pid  # start_new_session=True makes the child its own group leader
        self.run_tag = run_tag
        self.root = psutil.Process(pid)
        self.seen: dict[int, psutil.Process] = {pid: self.root}

    def rss_bytes(self) -> int:
        """Summed RSS of the root and all current descendants (recording them)."""
        with _suppress_os_error():
            for child in self.root.children(recursive=True):
                self.seen.setdefault(child.pid, child)
        total = 0
        for proc in list(self.seen.values()):
            with _suppress_os_error():
                if proc.status() != psutil.STATUS_ZOMBIE:
                    total += proc.memory_info().rss
        return total

    def _tagged(self) -> list[psutil.Process]:
        """Live processes whose environment carries this run's tag (detached daemons)."""
        found = []
        for proc in psutil.process_iter():
            with _suppress_os_error():
                if proc.pid != os.getpid() and proc.environ().get(RUN_TAG_VAR) == self.run_tag:
                    found.append(proc)
        return found

    def kill_all(self) -> None:
        """SIGKILL the process group, every remembered descendant and every tagged process.

        Repeated a few times because a dying tree may still fork. psutil.Process.kill checks the
        process creation time, so a recycled PID is never hit.
        """
        for _ in range(3):
            with _suppress_os_error():
                os.killpg(self.pgid, signal.SIGKILL)
            self.rss_bytes()  # pick up anything forked since the last poll
            alive = [p for p in list(self.seen.values()) + self._tagged() if _is_live(p)]
            if not alive:
                return
            for proc in alive:
                with _suppress_os_error():
                    proc.kill()
            _wait_dead(alive)


def _is_live(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_dead(procs: list[psutil.Process], timeout_s: float = 1.0) -> None:
    """Wait (bounded) until none of ``procs`` is live; zombies count as dead."""
    deadline = time.monotonic() + timeout_s
    while any(_is_live(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)


def _set_memory_rlimit(limit_bytes: int) -> None:
    """preexec_fn: cap address space (kept tiny: it runs between fork and exec)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _has_exited(pid: int) -> bool:
    """True once the child has exited, WITHOUT reaping it.

    Leaving it a zombie keeps its PID (= our process-group id) reserved until we have killed
    the group, so ``killpg`` can never hit an unrelated, recycled group.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _supervise(tree: _ProcessTree, deadline: float, memory_bytes: int) -> str:
    """Poll until the script exits ("exited"), times out ("timeout") or blows memory ("memory")."""
    while True:
        if _has_exited(tree.root.pid):
            return "exited"
        if time.monotonic() >= deadline:
            return "timeout"
        if tree.rss_bytes() > memory_bytes:
            return "memory"
        time.sleep(max(0.0, min(POLL_INTERVAL_S, deadline - time.monotonic())))


def _classify(reason: str, returncode: int, stderr_tail: str) -> str:
    if reason != "exited":
        return reason
    if returncode == 0:
        return "ok"
    # MemoryError from RLIMIT_AS, or SIGKILL we did not send (most likely the kernel OOM killer).
    if "MemoryError" in stderr_tail or returncode == -signal.SIGKILL:
        return "memory"
    return "error"


def _kill_note(reason: str, timeout_s: float, memory_mb: int) -> str:
    if reason == "timeout":
        return f"\n[sandbox] killed: exceeded the wall-clock limit of {timeout_s:g} s\n"
    return f"\n[sandbox] killed: memory use (RSS of the process tree) exceeded {memory_mb} MB\n"


# --------------------------------------------------------------------------- entry point


def _validate(script_name: str, timeout_s: float, memory_mb: int, input_dir: Path) -> None:
    if not script_name or os.path.basename(script_name) != script_name or script_name in (".", ".."):
        raise ValueError(f"script_name must be a plain file name, got {script_name!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
    if not memory_mb > 0:
        raise ValueError(f"memory_mb must be positive, got {memory_mb!r}")
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input_dir does not exist or is not a directory: {input_dir}")


def _execute(
    attempt: Path, script_name: str, python: str, timeout_s: float, memory_mb: int
) -> tuple[str, int | None, float]:
    """Run the script; return (status, returncode, duration). Must be called under the lock."""
    run_tag = uuid.uuid4().hex
    env = scrubbed_env()
    env["HOME"] = str(attempt)
    env[RUN_TAG_VAR] = run_tag
    as_limit = (AS_FACTOR * memory_mb + AS_HEADROOM_MB) * 1024 * 1024
    stdout_path, stderr_path = attempt / "stdout.txt", attempt / "stderr.txt"

    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [python, "-u", script_name],
            cwd=attempt,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
            preexec_fn=lambda: _set_memory_rlimit(as_limit),
        )
    try:
        tree = _ProcessTree(proc.pid, run_tag)
        reason = _supervise(tree, start + timeout_s, memory_mb * 1024 * 1024)
        tree.kill_all()
    finally:
        # Also the cleanup path if supervision itself raised: never leave the script running.
        with _suppress_os_error():
            os.killpg(proc.pid, signal.SIGKILL)
        returncode = proc.wait()
    duration = time.monotonic() - start

    if reason in ("timeout", "memory"):
        with open(stderr_path, "a", encoding="utf-8") as f:
            f.write(_kill_note(reason, timeout_s, memory_mb))
        return reason, None, duration
    stderr_scan = _read_tail(stderr_path, 64 * 1024)
    return _classify(reason, returncode, stderr_scan), returncode, duration


def run_script(
    code: str,
    attempt_dir: str | os.PathLike[str],
    input_dir: str | os.PathLike[str],
    *,
    timeout_s: float,
    memory_mb: int,
    script_name: str = "solution.py",
    python: str | None = None,
) -> ExecutionResult:
    """Write ``code`` into ``attempt_dir`` and run it under time/memory limits.

    Script failures are reported in the result, never raised. Raises only for caller errors
    (missing ``input_dir``, bad arguments, unusable interpreter). Thread-safe: concurrent calls
    are serialised by the process-wide compute lock.
    """
    input_path = Path(input_dir).resolve()
    _validate(script_name, timeout_s, memory_mb, input_path)
    attempt = Path(attempt_dir).resolve()
    attempt.mkdir(parents=True, exist_ok=True)
    _atomic_write(attempt / script_name, code)
    _link_input(attempt, input_path)

    with exclusive_compute():
        status, returncode, duration = _execute(
            attempt, script_name, python or sys.executable, timeout_s, memory_mb
        )

    stdout_text = _read_tail(attempt / "stdout.txt", _SCORE_SCAN_BYTES)
    result = ExecutionResult(
        status=status,
        returncode=returncode,
        score=parse_score(stdout_text),
        duration_s=round(duration, 3),
        attempt_dir=str(attempt),
        stdout_tail=stdout_text[-TAIL_CHARS:],
        stderr_tail=_read_tail(attempt / "stderr.txt", 4 * TAIL_CHARS)[-TAIL_CHARS:],
    )
    _atomic_write(attempt / "result.json", json.dumps(result.to_dict(), indent=2))
    return result
