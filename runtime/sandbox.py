"""Run one untrusted, LLM-generated Python script in an isolated, resource-limited child process.

Every attempt gets its own directory holding the script, an ``input`` symlink to the task's
data, the captured ``stdout.txt`` / ``stderr.txt`` and a ``result.json`` summary.

Two isolation backends (docs/security.md has the full threat model):

* ``bwrap`` (bubblewrap, the sandbox Flatpak uses): the script sees a private mount namespace with
  only the system libraries, the Python installation, the task's input (read-only) and its own
  attempt folder (the only writable place) plus a private /tmp and /dev/shm of 64 MiB each; the root
  and /dev are remounted read-only. The script runs as uid 65534 in a user namespace with every
  capability dropped; no network, no other processes, no home directory, no checkpoint or journal
  files, no hidden answers.
* ``subprocess``: a plain child process; used when bwrap is unavailable, with a warning. It
  shares our filesystem and network.

Both backends apply the same limits and cleanup:

* Runaway time: a wall-clock limit (the whole process tree is SIGKILLed) and ``RLIMIT_CPU``.
* Runaway memory: ``RLIMIT_AS`` (a generous multiple of the budget, because numpy, BLAS and
  LightGBM reserve far more address space than they touch) turns huge single allocations into
  ``MemoryError``; a psutil monitor polls the summed RSS of the script and all its descendants
  and kills the tree once it exceeds the budget, so the machine never starts swapping/OOMing.
* Fork bombs: ``RLIMIT_NPROC`` (ignored by the kernel for root) and the monitor, which kills the
  tree once it holds more than ``max_processes`` live processes.
* Huge files: ``RLIMIT_FSIZE`` caps any single file the script writes.
* Stray processes: the script runs in its own session/process group; on exit, timeout or
  memory kill we SIGKILL the group, every descendant ever observed (including ones that called
  ``setsid()``), and every process still carrying this run's environment tag (catches daemons
  that detached before the monitor saw them). Under bwrap, the PID namespace dies with it.
* Secret leakage through the environment: the child gets an allow-listed environment; anything
  whose name looks like a credential is dropped, and ``HOME`` points at the attempt directory.
* Deadlocks on output: stdout/stderr go to files, never pipes.
* Tampered outputs: files the script could replace (stdout/stderr, submission.csv) are opened without
  following symlinks and only when they are regular files (``runtime.files.open_regular``), so a
  symlink cannot smuggle an outside file into the journal or the submission, nor a FIFO hang us.
* Contention with local model inference: runs hold ``runtime.compute.exclusive_compute``.

Not covered by either backend: total disk use (only single files are capped), CPU starvation of
other users within the limits, kernel exploits. RSS is summed per process, so copy-on-write pages
shared by forked workers are counted more than once (errs on the side of killing). ``RLIMIT_AS``
is incompatible with CUDA, which reserves tens of GB of address space.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

import psutil

from runtime.compute import exclusive_compute
from runtime.files import NotRegularFile, atomic_write_text, open_regular
from runtime.stop import raise_if_stopped, running_group

log = logging.getLogger(__name__)

Isolation = Literal["auto", "bwrap", "subprocess"]
ISOLATION_CHOICES = get_args(Isolation)
TAIL_CHARS = 3000
POLL_INTERVAL_S = 0.1
DISK_CHECK_S = 1.0
SANDBOX_UID = 65534  # "nobody" inside bwrap's user namespace, with no capabilities
TMPFS_BYTES = 64 * 1024 * 1024  # each of the sandbox's private /tmp and /dev/shm
# RLIMIT_AS = AS_FACTOR * memory_mb + AS_HEADROOM_MB. Importing pandas+sklearn+lightgbm alone
# reserves ~600 MB of address space with ~170 MB resident; the RSS monitor is the real guard.
AS_FACTOR = 2
AS_HEADROOM_MB = 1024
# Environment variable tagging every process of one run, so detached ones can be found.
RUN_TAG_VAR = "MLESTAR_SANDBOX_RUN"
# Read-only system files a Python ML script may need inside bwrap (no passwords, keys or user data).
_BWRAP_ETC = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
              "/etc/ssl", "/etc/ca-certificates", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
              "/etc/fonts", "/etc/mime.types")
#: What a script prints before its score (the last such line counts); see `parse_score`.
SCORE_MARKER = "Final Validation Performance:"
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
    """Outcome of one script run; ``status`` is ok | error | timeout | memory | processes | disk | refused."""

    status: str
    returncode: int | None
    score: float | None
    duration_s: float
    attempt_dir: str
    stdout_tail: str
    stderr_tail: str
    isolation: str = ""
    printed_score: float | None = None   # what the script printed, when the agent recomputed ``score``
    score_note: str = ""                 # how the score was obtained, or why there is none
    peak_memory_mb: float = 0.0          # largest summed RSS of the process tree seen (sampled every 0.1 s)

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
            isolation=str(d.get("isolation", "")),
            printed_score=None if d.get("printed_score") is None else float(d["printed_score"]),
            score_note=str(d.get("score_note", "")),
            peak_memory_mb=float(d.get("peak_memory_mb") or 0.0),
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
        idx = line.find(SCORE_MARKER)
        if idx != -1:
            last = line[idx + len(SCORE_MARKER):]
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


def _link_input(attempt: Path, input_dir: Path) -> None:
    """Atomically (re)point ``attempt/input`` at ``input_dir``."""
    link = attempt / "input"
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; refusing to replace it")
    tmp = attempt / f".input.{uuid.uuid4().hex}.tmp"
    os.symlink(input_dir, tmp, target_is_directory=True)
    os.replace(tmp, link)


def _read_tail(path: Path, max_bytes: int) -> str:
    """The end of an output file; the script may have replaced it by a symlink or FIFO: then a note, not its target."""
    try:
        with open_regular(path) as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    except NotRegularFile:
        return f"[sandbox] {path.name} was replaced by a link or special file; its content is ignored\n"


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
        self.peak_rss = 0

    def usage(self) -> tuple[int, int]:
        """(summed RSS in bytes, number of live processes) of the root and all descendants, recording them."""
        with _suppress_os_error():
            for child in self.root.children(recursive=True):
                self.seen.setdefault(child.pid, child)
        total, live = 0, 0
        for proc in list(self.seen.values()):
            with _suppress_os_error():
                if proc.status() != psutil.STATUS_ZOMBIE:
                    total += proc.memory_info().rss
                    live += 1
        self.peak_rss = max(self.peak_rss, total)
        return total, live

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
            self.usage()  # pick up anything forked since the last poll
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


def _rlimits(timeout_s: float, memory_mb: int, max_processes: int, max_file_mb: int) -> dict[int, int]:
    """Kernel limits for the script: address space, CPU seconds, processes of this user, file size, no core."""
    own_processes = sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == os.getuid())
    return {
        resource.RLIMIT_AS: (AS_FACTOR * memory_mb + AS_HEADROOM_MB) * 1024 * 1024,
        resource.RLIMIT_CPU: int(timeout_s * (os.cpu_count() or 1)) + 5,
        resource.RLIMIT_NPROC: own_processes + max_processes,  # the kernel ignores it for root
        resource.RLIMIT_FSIZE: max_file_mb * 1024 * 1024,
        resource.RLIMIT_CORE: 0,
    }


def _apply_rlimits(limits: dict[int, int]) -> None:
    """preexec_fn (kept tiny: it runs between fork and exec); never raises a limit above its hard cap."""
    for kind, value in limits.items():
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, hard))


def _has_exited(pid: int) -> bool:
    """True once the child has exited, WITHOUT reaping it.

    Leaving it a zombie keeps its PID (= our process-group id) reserved until we have killed
    the group, so ``killpg`` can never hit an unrelated, recycled group.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _supervise(tree: _ProcessTree, deadline: float, memory_bytes: int, max_processes: int,
               folder: Path, disk_bytes: int) -> str:
    """Poll until the script exits ("exited"), times out ("timeout"), blows memory ("memory"), holds too
    many processes ("processes") or fills its folder past the disk quota ("disk", checked every second)."""
    next_disk_check = 0.0
    while True:
        if _has_exited(tree.root.pid):
            return "exited"
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        rss, live = tree.usage()
        if rss > memory_bytes:
            return "memory"
        if live > max_processes:
            return "processes"
        if now >= next_disk_check:
            if folder_bytes(folder) > disk_bytes:
                return "disk"
            next_disk_check = now + DISK_CHECK_S
        time.sleep(max(0.0, min(POLL_INTERVAL_S, deadline - time.monotonic())))


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder`, links not followed (the input link is not the script's)."""
    total, pending = 0, [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:  # removed while we looked
            pass
    return total


def _classify(reason: str, returncode: int, stderr_tail: str) -> str:
    if reason != "exited":
        return reason
    if returncode == 0:
        return "ok"
    if returncode == -signal.SIGXCPU:
        return "timeout"
    # MemoryError from RLIMIT_AS, or SIGKILL we did not send (most likely the kernel OOM killer).
    if "MemoryError" in stderr_tail or returncode == -signal.SIGKILL:
        return "memory"
    return "error"


def _kill_note(reason: str, limits: "Limits") -> str:
    if reason == "disk":
        return f"\n[sandbox] killed: the files it wrote in its folder exceeded {limits.max_disk_mb} MB\n"
    timeout_s, memory_mb, max_processes = limits.timeout_s, limits.memory_mb, limits.max_processes
    if reason == "timeout":
        return f"\n[sandbox] killed: exceeded the wall-clock limit of {timeout_s:g} s\n"
    if reason == "processes":
        return f"\n[sandbox] killed: started more than {max_processes} processes\n"
    return f"\n[sandbox] killed: memory use (RSS of the process tree) exceeded {memory_mb} MB\n"


# --------------------------------------------------------------------------- isolation backends


class IsolationUnavailable(RuntimeError):
    """The isolation backend the user asked for cannot run on this machine."""


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can build a sandbox here, else the reason it cannot."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not start: {exc}"
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


def resolve_isolation(requested: str) -> str:
    """The backend to use for `requested` (auto | bwrap | subprocess). Without a working bubblewrap, `auto`
    refuses like `bwrap`: generated code never runs unconfined unless the user chose it knowingly."""
    if requested not in ISOLATION_CHOICES:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATION_CHOICES)}, got {requested!r}")
    if requested == "subprocess":
        _warn_once("isolation=subprocess was chosen")
        return "subprocess"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    raise IsolationUnavailable(
        f"Generated scripts need a sandbox, and {problem}. Install bubblewrap (Debian/Ubuntu: sudo apt-get "
        f"install bubblewrap; Fedora: sudo dnf install bubblewrap) and make sure unprivileged user namespaces "
        f"are allowed (sysctl kernel.unprivileged_userns_clone=1), or accept running model-written code with "
        f"your files, network and secrets within its reach: --set isolation=subprocess (time, memory and "
        f"process limits and a scrubbed environment only; the static checks are not a security boundary).")


@functools.lru_cache(maxsize=1)
def _warn_once(reason: str) -> None:
    log.warning("Generated scripts run WITHOUT filesystem and network isolation (%s). They still get time, "
                "memory and process limits and a scrubbed environment.", reason)


def _python_roots(python: str) -> list[str]:
    """Folders holding the interpreter and its packages, bound read-only into the sandbox."""
    candidates = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(python)),
                  os.path.dirname(os.path.dirname(os.path.realpath(python))), site.getusersitepackages()}
    roots = set()
    for path in candidates:
        for variant in (os.path.abspath(path), os.path.realpath(path)):
            if os.path.isdir(variant) and not variant.startswith("/usr/") and variant != "/":
                roots.add(variant)
    # A root inside another root needs no mount of its own.
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _bwrap_argv(attempt: Path, input_dir: Path, python: str) -> list[str]:
    """bubblewrap arguments: system files, Python and the input read-only; only the attempt folder writable."""
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
            "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/usr", "/usr"]
    # RAM-backed scratch space is small: the RSS monitor cannot see what a tmpfs holds.
    for scratch in ("/tmp", "/dev/shm"):
        argv += ["--size", str(TMPFS_BYTES), "--tmpfs", scratch]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for path in _BWRAP_ETC:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    for root in _python_roots(python):
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", str(input_dir), str(input_dir), "--bind", str(attempt), str(attempt),
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(attempt), "--"]
    return argv


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


@dataclass(frozen=True)
class Limits:
    """Resource limits of one script run."""

    timeout_s: float
    memory_mb: int
    max_processes: int = 64
    max_file_mb: int = 2048
    max_disk_mb: int = 4096


def _execute(attempt: Path, input_dir: Path, script_name: str, python: str, limits: Limits,
             isolation: str) -> tuple[str, int | None, float, int]:
    """Run the script; return (status, returncode, duration, peak RSS in bytes). Must be called under the lock."""
    run_tag = uuid.uuid4().hex
    env = scrubbed_env()
    env["HOME"] = str(attempt)
    env[RUN_TAG_VAR] = run_tag
    rlimits = _rlimits(limits.timeout_s, limits.memory_mb, limits.max_processes, limits.max_file_mb)
    prefix = _bwrap_argv(attempt, input_dir, python) if isolation == "bwrap" else []
    stdout_path, stderr_path = attempt / "stdout.txt", attempt / "stderr.txt"

    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [*prefix, python, "-u", script_name],
            cwd=attempt,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
            preexec_fn=lambda: _apply_rlimits(rlimits),
        )
    try:
        tree = _ProcessTree(proc.pid, run_tag)
        # bwrap itself and its namespace init count as processes too.
        allowed = limits.max_processes + (2 if prefix else 0)
        with running_group(proc.pid):
            reason = _supervise(tree, start + limits.timeout_s, limits.memory_mb * 1024 * 1024, allowed,
                                attempt, limits.max_disk_mb * 1024 * 1024)
        tree.kill_all()
    finally:
        # Also the cleanup path if supervision itself raised: never leave the script running.
        with _suppress_os_error():
            os.killpg(proc.pid, signal.SIGKILL)
        returncode = proc.wait()
    duration = time.monotonic() - start

    if reason in ("timeout", "memory", "processes", "disk"):
        with _suppress_os_error(), open_regular(stderr_path, "ab") as f:  # never append through a symlink
            f.write(_kill_note(reason, limits).encode())
        return reason, None, duration, tree.peak_rss
    stderr_scan = _read_tail(stderr_path, 64 * 1024)
    return _classify(reason, returncode, stderr_scan), returncode, duration, tree.peak_rss


def run_script(
    code: str,
    attempt_dir: str | os.PathLike[str],
    input_dir: str | os.PathLike[str],
    *,
    timeout_s: float,
    memory_mb: int,
    script_name: str = "solution.py",
    python: str | None = None,
    isolation: str = "auto",
    max_processes: int = Limits.max_processes,
    max_file_mb: int = Limits.max_file_mb,
    max_disk_mb: int = Limits.max_disk_mb,
) -> ExecutionResult:
    """Write ``code`` into ``attempt_dir`` and run it isolated, under time/memory/process/file limits.

    Script failures are reported in the result, never raised. Raises only for caller errors
    (missing ``input_dir``, bad arguments, unusable interpreter, isolation=bwrap without bubblewrap).
    Thread-safe: concurrent calls are serialised by the process-wide compute lock.
    """
    backend = resolve_isolation(isolation)
    input_path = Path(input_dir).resolve()
    _validate(script_name, timeout_s, memory_mb, input_path)
    attempt = Path(attempt_dir).resolve()
    attempt.mkdir(parents=True, exist_ok=True)
    atomic_write_text(attempt / script_name, code)
    _link_input(attempt, input_path)

    limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes, max_file_mb=max_file_mb,
                    max_disk_mb=max_disk_mb)
    with exclusive_compute():
        raise_if_stopped("this script")
        status, returncode, duration, peak = _execute(attempt, input_path, script_name,
                                                      python or sys.executable, limits, backend)
    raise_if_stopped("this script (killed by the stop)")

    stdout_text = _read_tail(attempt / "stdout.txt", _SCORE_SCAN_BYTES)
    result = ExecutionResult(
        status=status,
        returncode=returncode,
        score=parse_score(stdout_text),
        duration_s=round(duration, 3),
        attempt_dir=str(attempt),
        stdout_tail=stdout_text[-TAIL_CHARS:],
        stderr_tail=_read_tail(attempt / "stderr.txt", 4 * TAIL_CHARS)[-TAIL_CHARS:],
        isolation=backend,
        peak_memory_mb=round(peak / 2**20, 1),
    )
    atomic_write_text(attempt / "result.json", json.dumps(result.to_dict(), indent=2))
    return result
