"""Tests for runtime.sandbox: score parsing, env scrubbing and real subprocess runs."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from pathlib import Path

import pytest

from runtime.sandbox import ExecutionResult, parse_score, run_script, scrubbed_env
from tests.conftest import BACKENDS, processes_in

# Every backend that works on this machine (bubblewrap needs the Debian package `bubblewrap`).


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    d = tmp_path / "task_input"
    d.mkdir()
    (d / "x.csv").write_text("a,b\n1,2\n3,4\n")
    return d


def run(code: str, attempt: Path, input_dir: Path, **kw) -> ExecutionResult:
    kw.setdefault("timeout_s", 20)
    kw.setdefault("memory_mb", 1024)
    return run_script(textwrap.dedent(code), attempt, input_dir, **kw)


def wait_none_in(folder: Path, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not processes_in(folder)


# --------------------------------------------------------------------------- parse_score


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ("Final Validation Performance: 0.5\nFinal Validation Performance: 0.75\n", 0.75),
        ("noise\n  Final Validation Performance:   0.9123  \nmore noise\n", 0.9123),
        ("Final Validation Performance: 1.5e-3", 1.5e-3),
        ("Final Validation Performance: -2.25", -2.25),
        ("Final Validation Performance: 3E+2", 300.0),
        ("Final Validation Performance: 0.81 (ROC AUC)", 0.81),
        ("[INFO] Final Validation Performance: 0.7", 0.7),
    ],
)
def test_parse_score_values(stdout: str, expected: float) -> None:
    assert parse_score(stdout) == pytest.approx(expected)


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "accuracy: 0.9\n",
        "Final Validation Performance: nan",
        "Final Validation Performance: NaN",
        "Final Validation Performance: inf",
        "Final Validation Performance: -inf",
        "Final Validation Performance: garbage",
        "Final Validation Performance: 0.8abc",
        "Final Validation Performance:",
        # A broken final report must not fall back to an earlier, stale score.
        "Final Validation Performance: 0.9\nFinal Validation Performance: nan\n",
    ],
)
def test_parse_score_none(stdout: str) -> None:
    assert parse_score(stdout) is None


# --------------------------------------------------------------------------- env + result


def test_scrubbed_env_allow_list_and_defaults() -> None:
    base = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "LC_API_KEY": "leak",  # allow-listed prefix, but looks like a secret
        "OPENAI_API_KEY": "sk-x",
        "GITHUB_TOKEN": "t",
        "AWS_SECRET_ACCESS_KEY": "s",
        "DB_PASSWORD": "p",
        "SOME_RANDOM_VAR": "x",
        "OMP_NUM_THREADS": "1",
        "HOME": "/root",
    }
    env = scrubbed_env(base)
    assert env["PATH"] == "/usr/bin" and env["LC_ALL"] == "C.UTF-8"
    for name in ("LC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                 "DB_PASSWORD", "SOME_RANDOM_VAR", "HOME"):
        assert name not in env
    assert env["OMP_NUM_THREADS"] == "1"  # given values win over defaults
    assert env["OPENBLAS_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "2"
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["MPLBACKEND"] == "Agg"


def test_result_roundtrip() -> None:
    r = ExecutionResult("ok", 0, 0.5, 1.25, "/tmp/a", "out", "err")
    d = json.loads(json.dumps(r.to_dict()))
    assert ExecutionResult.from_dict(d) == r
    assert r.succeeded
    assert not ExecutionResult("ok", 0, None, 1.0, "/a", "", "").succeeded
    assert not ExecutionResult("error", 1, 0.5, 1.0, "/a", "", "").succeeded


def test_missing_input_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="input_dir"):
        run_script("print(1)", tmp_path / "a", tmp_path / "nope", timeout_s=5, memory_mb=512)


# --------------------------------------------------------------------------- real runs


@pytest.mark.parametrize("backend", BACKENDS)
def test_success_reads_input_and_scores(tmp_path: Path, input_dir: Path, backend: str) -> None:
    attempt = tmp_path / "runs" / "attempt_1"  # parents created on demand
    code = """
        import pandas as pd
        df = pd.read_csv("./input/x.csv")
        print("rows", len(df))
        print(f"Final Validation Performance: {df['b'].sum() / 10}")
    """
    r = run(code, attempt, input_dir, isolation=backend)
    assert r.status == "ok", r.stderr_tail
    assert r.returncode == 0 and r.score == pytest.approx(0.6) and r.succeeded
    assert r.attempt_dir == str(attempt.resolve())
    assert "rows 2" in (attempt / "stdout.txt").read_text()
    assert (attempt / "solution.py").read_text().startswith("\nimport pandas")
    assert os.readlink(attempt / "input") == str(input_dir.resolve())
    saved = json.loads((attempt / "result.json").read_text())
    assert ExecutionResult.from_dict(saved) == r


def test_rerun_replaces_stale_input_link(tmp_path: Path, input_dir: Path) -> None:
    attempt = tmp_path / "a"
    attempt.mkdir()
    os.symlink(tmp_path / "old_input", attempt / "input")  # dangling, stale link
    r = run("print(open('input/x.csv').read())", attempt, input_dir)
    assert r.status == "ok", r.stderr_tail
    assert "a,b" in r.stdout_tail and r.score is None and not r.succeeded


def test_exception_is_error_with_traceback(tmp_path: Path, input_dir: Path) -> None:
    code = """
        def train():
            raise ValueError("bad feature matrix shape")
        train()
    """
    r = run(code, tmp_path / "a", input_dir)
    assert r.status == "error"
    assert r.returncode == 1 and r.score is None
    assert "Traceback" in r.stderr_tail and "ValueError: bad feature matrix shape" in r.stderr_tail


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_kills_whole_tree(tmp_path: Path, input_dir: Path, backend: str) -> None:
    attempt = tmp_path / "a"
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(60)
    """
    r = run(code, attempt, input_dir, isolation=backend, timeout_s=1.5)
    assert r.status == "timeout" and r.returncode is None
    assert r.duration_s < 1.5 + 3
    assert "wall-clock" in r.stderr_tail
    assert (attempt / "child.pid").exists()  # the child did start
    assert wait_none_in(attempt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_setsid_child_killed_after_normal_exit(tmp_path: Path, input_dir: Path, backend: str) -> None:
    attempt = tmp_path / "a"
    code = """
        import os, subprocess, sys, time
        child = subprocess.Popen(
            [sys.executable, "-c", "import os, time; os.setsid(); time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(0.6)  # long enough for the monitor to have seen the child
        print("Final Validation Performance: 0.5")
    """
    r = run(code, attempt, input_dir, isolation=backend)
    assert r.status == "ok" and r.score == 0.5, r.stderr_tail
    assert (attempt / "child.pid").exists()  # the child did start
    assert wait_none_in(attempt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_detached_daemon_unseen_by_monitor_is_killed(tmp_path: Path, input_dir: Path, backend: str) -> None:
    """A daemon that detaches and whose parent exits at once is found via the run tag."""
    attempt = tmp_path / "a"
    code = """
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
        open("child.pid", "w").write(str(child.pid))
    """
    r = run(code, attempt, input_dir, isolation=backend)
    assert r.status == "ok", r.stderr_tail
    assert (attempt / "child.pid").exists()  # the child did start
    assert wait_none_in(attempt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_allocation_is_memory(tmp_path: Path, input_dir: Path, backend: str) -> None:
    code = """
        big = bytearray(2 * 1024**3)
        print("Final Validation Performance: 1.0")
    """
    r = run(code, tmp_path / "a", input_dir, isolation=backend, memory_mb=300)
    assert r.status == "memory", (r.status, r.stderr_tail)
    assert not r.succeeded


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradual_growth_killed_by_rss_monitor(tmp_path: Path, input_dir: Path, backend: str) -> None:
    """Stays under RLIMIT_AS, so only the RSS monitor can stop it."""
    code = """
        import time
        chunks = []
        for _ in range(24):                       # up to ~1.2 GB, touched pages
            chunks.append(b"x" * (50 * 1024**2))
            time.sleep(0.05)
        time.sleep(5)
        print("Final Validation Performance: 1.0")
    """
    r = run(code, tmp_path / "a", input_dir, isolation=backend, memory_mb=300)
    assert r.status == "memory", (r.status, r.stderr_tail)
    assert r.returncode is None and "exceeded 300 MB" in r.stderr_tail
    assert r.duration_s < 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_not_visible_and_home_is_attempt(
    tmp_path: Path, input_dir: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MY_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("HF_TOKEN", "hf_xxx")
    attempt = tmp_path / "a"
    code = """
        import json, os
        print(json.dumps(dict(os.environ)))
    """
    r = run(code, attempt, input_dir, isolation=backend)
    assert r.status == "ok", r.stderr_tail
    env = json.loads((attempt / "stdout.txt").read_text())
    for name in ("OPENAI_API_KEY", "MY_SECRET_TOKEN", "HF_TOKEN"):
        assert name not in env
    assert not any(v in (attempt / "stdout.txt").read_text() for v in ("sk-secret", "hunter2"))
    assert os.path.realpath(env["HOME"]) == os.path.realpath(attempt)
    assert env["PYTHONUNBUFFERED"] == "1" and env["MPLBACKEND"] == "Agg"


def test_concurrent_calls_are_serialised(tmp_path: Path, input_dir: Path) -> None:
    code = """
        import time
        print("start", time.time()); time.sleep(0.4); print("end", time.time())
    """
    results: dict[int, ExecutionResult] = {}

    def worker(i: int) -> None:
        results[i] = run(code, tmp_path / f"a{i}", input_dir)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = []
    for r in results.values():
        assert r.status == "ok", r.stderr_tail
        words = r.stdout_tail.split()
        spans.append((float(words[1]), float(words[3])))
    (s1, e1), (s2, e2) = sorted(spans)
    assert e1 <= s2  # no overlap


@pytest.mark.parametrize("backend", BACKENDS)
def test_ml_stack_runs_under_memory_limit(tmp_path: Path, input_dir: Path, backend: str) -> None:
    code = """
        import numpy as np, pandas as pd, lightgbm as lgb
        from sklearn.model_selection import train_test_split
        from sklearn.metrics import roc_auc_score
        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(600, 5)), columns=list("abcde"))
        y = (X["a"] + 0.5 * X["b"] > 0).astype(int)
        Xtr, Xva, ytr, yva = train_test_split(X, y, random_state=0)
        model = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(Xtr, ytr)
        print(f"Final Validation Performance: {roc_auc_score(yva, model.predict_proba(Xva)[:, 1])}")
    """
    r = run(code, tmp_path / "a", input_dir, isolation=backend, memory_mb=4096, timeout_s=60)
    assert r.status == "ok", r.stderr_tail
    assert r.score is not None and r.score > 0.8


def test_auto_isolation_refuses_to_run_code_unconfined_when_bubblewrap_cannot_sandbox(monkeypatch, tmp_path):
    import runtime.sandbox as sandbox

    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap is not installed")
    for requested in ("auto", "bwrap"):
        with pytest.raises(sandbox.IsolationUnavailable) as refused:
            sandbox.resolve_isolation(requested)
        message = str(refused.value)
        assert "bubblewrap is not installed" in message and "apt-get install bubblewrap" in message
        assert "--set isolation=subprocess" in message  # the knowing opt-in
    assert sandbox.resolve_isolation("subprocess") == "subprocess"
    (tmp_path / "input").mkdir()
    with pytest.raises(sandbox.IsolationUnavailable):
        sandbox.run_script("print(1)", tmp_path / "a", tmp_path / "input", timeout_s=10, memory_mb=512)
    assert not (tmp_path / "a" / "stdout.txt").exists()  # nothing ran


def test_a_script_that_fills_its_folder_past_the_disk_quota_is_killed(tmp_path):
    (tmp_path / "input").mkdir()
    code = textwrap.dedent("""
        import time
        chunk = b"x" * (1 << 20)
        for i in range(400):  # 8 files of 50 MB, each under the per-file limit
            with open(f"blob{i // 50}.bin", "ab") as f:
                f.write(chunk)
        time.sleep(5)
        print("wrote everything")
    """)
    result = run_script(code, tmp_path / "a", tmp_path / "input", timeout_s=60, memory_mb=1024, max_file_mb=64,
                        max_disk_mb=100)
    assert result.status == "disk", result
    assert "exceeded 100 MB" in result.stderr_tail and "wrote everything" not in result.stdout_tail
