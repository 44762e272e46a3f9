"""Plumbing of the AIDE adapter (bench/aide.py): command line, environment, finding the submission.

Offline and fast: AIDE itself is not needed; its on-disk layout is recreated in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bench import aide

MODEL = "qwen2.5-coder-1.5b-instruct"


def _overrides(argv: list[str]) -> dict[str, object]:
    """Parse ``key=value`` arguments the way OmegaConf.from_cli does (split at the first '=', YAML value)."""
    out = {}
    for arg in argv:
        key, value = arg.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def _command(tmp_path: Path, **kw) -> list[str]:
    return aide.aide_command(Path("/opt/x/.venv-aide/bin/aide"), tmp_path / "task" / "public",
                             kw.pop("goal", "Predict `species`: multi-class."), kw.pop("eval_metric", "logloss"),
                             tmp_path / "work", kw.pop("model", MODEL), steps=7, exec_timeout_s=120, **kw)


def test_command_patched_launcher_and_keys(tmp_path):
    argv = _command(tmp_path)
    assert argv[:2] == ["/opt/x/.venv-aide/bin/python", "-c"]
    assert "aide.run import run" in argv[2] and '"required"' in argv[2]
    compile(argv[2], "<launcher>", "exec")  # the launcher is valid Python
    cfg = _overrides(argv[3:])
    assert cfg["data_dir"] == str((tmp_path / "task" / "public").resolve())
    assert cfg["goal"] == "Predict `species`: multi-class."  # quoted: YAML would make a mapping of it
    assert cfg["eval"] == "logloss"
    assert cfg["log_dir"] == str(tmp_path / "work" / "logs")
    assert cfg["workspace_dir"] == str(tmp_path / "work" / "workspaces")
    assert cfg["exp_name"] == aide.EXP_NAME
    assert cfg["agent.steps"] == 7 and cfg["exec.timeout"] == 120
    assert cfg["agent.code.model"] == cfg["agent.feedback.model"] == cfg["report.model"] == MODEL
    assert cfg["generate_report"] is False and cfg["copy_data"] is True
    assert "agent.search.num_drafts" not in cfg


def test_command_plain_aide_and_options(tmp_path):
    argv = _command(tmp_path, patched=False, num_drafts=2, eval_metric="")
    assert argv[0] == "/opt/x/.venv-aide/bin/aide"
    cfg = _overrides(argv[1:])
    assert cfg["agent.search.num_drafts"] == 2
    assert "eval" not in cfg


def test_goal_with_newlines_quotes_and_interpolation_survives(tmp_path):
    goal = 'Line 1: "a"\n- item: [x, y]\n# heading\nuse ${HOME} literally, \\d+ regex'
    cfg = _overrides(_command(tmp_path, goal=goal)[3:])
    # YAML gives back the text with ${ escaped for OmegaConf, which turns \${ back into ${
    assert cfg["goal"] == goal.replace("${", "\\${")


def test_goal_survives_omegaconf_if_available(tmp_path):
    omegaconf = pytest.importorskip("omegaconf")
    goal = 'Predict y: "a" ${x}\n- [1, 2]\n\\d+'
    cfg = omegaconf.OmegaConf.from_dotlist(_command(tmp_path, goal=goal)[3:])
    assert cfg.goal == goal


@pytest.mark.parametrize("name", ["gpt-4o-mini", "o4-mini", "claude-3-haiku", "gemini-2.0-flash"])
def test_vendor_model_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        _command(tmp_path, model=name)


def test_env_has_endpoint_and_dummy_key_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-secret")
    monkeypatch.setenv("HF_TOKEN", "hf-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-secret")
    env = aide.aide_env("http://127.0.0.1:8081/v1/", home=Path("/tmp/h"))
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:8081/v1"
    assert env["OPENAI_API_KEY"] == aide.DUMMY_API_KEY
    assert env["HOME"] == "/tmp/h"
    secrets = {"sk-real-secret", "sk-ant-secret", "or-secret", "hf-secret", "org-secret", "http://proxy.invalid:3128"}
    assert not secrets & set(env.values())
    assert not {"ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "HF_TOKEN", "HTTPS_PROXY", "OPENAI_ORG_ID"} & set(env)
    for key, value in env.items():  # nothing else from os.environ that looks like a credential
        if any(s in key.upper() for s in ("KEY", "TOKEN", "SECRET")):
            assert (key, value) == ("OPENAI_API_KEY", aide.DUMMY_API_KEY)
    assert env["PATH"] == os.environ["PATH"]


def test_goal_eval_and_timeout_from_task(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "sample_submission.csv").write_text("id,Adelie,Chinstrap,Gentoo\n1,0.3,0.3,0.4\n")
    task = SimpleNamespace(description="# Penguins\nPredict species.\n", test_file="test.csv",
                           sample_submission_file="sample_submission.csv", id_column="id",
                           target_columns=("species",), metric="logloss", lower_is_better=True,
                           path=lambda name: str(public / name))
    goal = aide.goal_for(task)
    assert goal.startswith("# Penguins\nPredict species.")
    assert "./working/submission.csv" in goal and "id, Adelie, Chinstrap, Gentoo" in goal
    assert aide.eval_for(task) == "logloss (lower is better)"
    assert aide.exec_timeout(3600) == 300 and aide.exec_timeout(200) == 100 and aide.exec_timeout(20) == 30


# --------------------------------------------------------------------------- AIDE's on-disk layout


def _node(step, *, metric=None, maximize=False, buggy=False, parent=None, exc=None, ctime=0.0, code=None):
    return {"code": code or f"print({step})", "plan": "p", "step": step, "id": f"n{step}", "ctime": ctime,
            "parent": None, "children": [], "_term_out": ["ok"], "exec_time": 1.5, "exc_type": exc,
            "exc_info": None, "exc_stack": None, "analysis": "a",
            "metric": {"value": None if buggy else metric, "maximize": None if buggy else maximize},
            "is_buggy": buggy}, parent


def _fake_run(work: Path, nodes, *, snapshots=(), last_written="last", idx="0"):
    """What AIDE 0.2.2 leaves in work/: logs/<idx>-bench/{journal.json,best_solution.py,submissions/},
    workspaces/<idx>-bench/{input,working/submission.csv}."""
    logs = work / "logs" / f"{idx}-{aide.EXP_NAME}"
    ws = work / "workspaces" / f"{idx}-{aide.EXP_NAME}"
    (ws / "input").mkdir(parents=True)
    (ws / "working").mkdir()
    logs.mkdir(parents=True)
    journal = {"nodes": [n for n, _ in nodes], "node2parent": {n["id"]: p for n, p in nodes if p},
               "__version": "2"}
    (logs / "journal.json").write_text(json.dumps(journal))
    (logs / "best_solution.py").write_text("# best by AIDE\n")
    (logs / "config.yaml").write_text("exp_name: 0-bench\n")
    for step in snapshots:
        (logs / "submissions").mkdir(exist_ok=True)
        (logs / "submissions" / f"step_{step}.csv").write_text(f"id,y\n1,{step}\n")
    if last_written:
        (ws / "working" / "submission.csv").write_text(f"id,y\n1,{last_written}\n")
    return logs, ws


def test_find_submission_picks_best_good_steps_snapshot(tmp_path):
    nodes = [_node(0, metric=0.9), _node(1, buggy=True, parent="n0", exc="ValueError"),
             _node(2, metric=0.5, parent="n0"), _node(3, metric=0.7, parent="n2")]
    logs, _ = _fake_run(tmp_path, nodes, snapshots=(0, 2, 3))
    assert aide.find_submission(tmp_path) == logs / "submissions" / "step_2.csv"  # lower is better
    stats = aide.run_stats(tmp_path)
    assert stats == {"steps": 4, "buggy": 1, "drafts": 1, "timeouts": 0, "exec_s": 6.0, "best_step": 2,
                     "best_metric": 0.5, "lower_is_better": True, "submission_step": 2}
    assert aide.best_solution_code(tmp_path) == "print(2)"


def test_find_submission_maximize_and_skips_best_without_file(tmp_path):
    nodes = [_node(0, metric=0.6, maximize=True), _node(1, metric=0.8, maximize=True),
             _node(2, metric=0.7, maximize=True)]
    logs, _ = _fake_run(tmp_path, nodes, snapshots=(0, 2))  # the best step (1) wrote no submission
    assert aide.find_submission(tmp_path) == logs / "submissions" / "step_2.csv"
    assert aide.run_stats(tmp_path)["best_step"] == 1


def test_falls_back_to_last_written_without_snapshots(tmp_path):
    nodes = [_node(0, metric=0.9), _node(1, metric=0.4)]
    _, ws = _fake_run(tmp_path, nodes, snapshots=())  # plain `aide` (patched=False) keeps none
    assert aide.find_submission(tmp_path) == ws / "working" / "submission.csv"
    assert aide.run_stats(tmp_path)["submission_step"] == "last"


def test_all_buggy_run(tmp_path):
    nodes = [_node(0, buggy=True, exc="TimeoutError"), _node(1, buggy=True, parent="n0")]
    _fake_run(tmp_path, nodes, last_written=None)
    assert aide.find_submission(tmp_path) is None
    assert aide.best_solution_code(tmp_path) == "# best by AIDE\n"  # AIDE writes one even then
    stats = aide.run_stats(tmp_path)
    assert stats["buggy"] == 2 and stats["timeouts"] == 1 and stats["best_step"] is None
    assert stats["submission_step"] is None


def test_nothing_there(tmp_path):
    assert aide.find_submission(tmp_path) is None
    assert aide.best_solution_code(tmp_path) is None
    assert aide.run_stats(tmp_path) == {"steps": 0}
    (tmp_path / "logs" / "0-bench").mkdir(parents=True)
    (tmp_path / "logs" / "0-bench" / "journal.json").write_text("{truncated")  # killed mid-write
    assert aide.run_stats(tmp_path) == {"steps": 0}


def test_experiment_folder_index_is_not_assumed(tmp_path):
    _fake_run(tmp_path, [_node(0, metric=1.0)], snapshots=(0,), idx="0")
    time.sleep(0.01)
    old = tmp_path / "logs" / "0-bench"
    os.utime(old, (1, 1))
    os.utime(tmp_path / "workspaces" / "0-bench", (1, 1))
    logs, _ = _fake_run(tmp_path, [_node(0, metric=2.0)], snapshots=(0,), idx="2")  # a second run
    assert aide.log_dir(tmp_path) == logs
    assert aide.find_submission(tmp_path) == logs / "submissions" / "step_0.csv"


def test_the_launcher_turns_an_unusable_review_into_a_buggy_step(tmp_path):
    """AIDE 0.2.2 crashes when the review answer is a bare string; the launcher makes it a buggy step, and
    reads a review written as text instead of a tool call."""
    fake = tmp_path / "aide"
    (fake / "backend").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "backend" / "__init__.py").write_text("")
    (fake / "backend" / "utils.py").write_text("class FunctionSpec:\n    pass\n")
    (fake / "agent.py").write_text(
        "ANSWERS = ['a bare string', {'is_bug': False, 'summary': 's', 'metric': 0.5, 'lower_is_better': False},\n"
        "           'Review:\\n```json\\n{\"name\": \"submit_review\", \"arguments\": {\"is_bug\": true, '\n"
        "           '\"summary\": \"t\", \"metric\": null, \"lower_is_better\": true}}\\n```']\n"
        "def query(**kwargs):\n    return ANSWERS.pop(0) if kwargs.get('func_spec') else 'code'\n"
        "class Agent:\n    def step(self, exec_callback):\n        pass\n")
    (fake / "run.py").write_text(
        "import json\nimport aide.agent\n"
        "def run():\n"
        "    print(json.dumps([aide.agent.query(func_spec=1) for _ in range(3)] + [aide.agent.query()]))\n")
    proc = subprocess.run([sys.executable, "-c", aide.LAUNCHER], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    unusable, usable, written, plain = json.loads(proc.stdout.strip().splitlines()[-1])
    assert unusable["is_bug"] is True and unusable["metric"] is None and "a bare string" in unusable["summary"]
    assert usable == {"is_bug": False, "summary": "s", "metric": 0.5, "lower_is_better": False}
    assert written == {"is_bug": True, "summary": "t", "metric": None, "lower_is_better": True}  # read from the text
    assert plain == "code"  # calls without a function spec are left alone
