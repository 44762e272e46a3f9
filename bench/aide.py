"""Adapter for AIDE (``aideml`` 0.2.2, Weco's AI-driven data-science agent) as a benchmark competitor.

AIDE lives in its own virtualenv (``.venv-aide``, made by ``bench/setup_aide.sh``) because it pins many
packages. Everything here is a small pure function over paths and strings; nothing imports AIDE.

How AIDE 0.2.2 works, read from its source (``aide/run.py``, ``aide/agent.py``, ``aide/utils/config.py``,
``aide/backend/backend_openai.py``):

* Configuration is OmegaConf: ``aide/utils/config.yaml`` merged with ``OmegaConf.from_cli()``, i.e.
  ``key=value`` arguments whose values are parsed as YAML (so free text must be quoted, see ``_yaml_str``).
* The data folder is copied into ``<workspace_dir>/<idx>-<exp_name>/input``; generated code runs with that
  experiment folder as its cwd, *in AIDE's own Python process tree* (``multiprocessing`` + ``exec``), and is
  told to write its test predictions to ``./working/submission.csv``. Each step overwrites that file, so
  after a run it holds the LAST step's predictions, not the best step's. AIDE itself keeps only the best
  *code* (``<log_dir>/<idx>-<exp_name>/best_solution.py``) and the whole tree in ``journal.json`` (saved
  after every step).
* ``<idx>`` comes from a buggy scan of existing folders: "0" in a fresh folder, something else otherwise;
  the functions below therefore search for ``*-<EXP_NAME>`` instead of assuming a name.
* With ``OPENAI_BASE_URL`` set and a model name that is not OpenAI's (``gpt-*``, ``o1``...), every call goes
  to ``$OPENAI_BASE_URL/chat/completions`` with ``$OPENAI_API_KEY``; the key must be set (the official
  client is always constructed), any value works for a local server.
* The review ("feedback") call uses function calling: ``tools=[submit_review]`` and
  ``tool_choice={"type": "function", "function": {"name": "submit_review"}}``, and AIDE crashes (TypeError)
  when the answer has no tool call. llama.cpp's server reads ``tool_choice`` only as a string
  (auto/none/required) and serves the object form as ``auto``, so a small model that answers in prose
  kills the run. The default launcher therefore patches that one property to ``"required"`` (identical
  meaning with a single tool), see ``LAUNCHER``.
* ``generate_report`` (on by default) calls ``gpt-4.1`` at the end, which would go to api.openai.com and
  retry forever: it is switched off.

The launcher also snapshots ``working/submission.csv`` after every step whose execution wrote it, into
``<log_dir>/<idx>-<exp_name>/submissions/step_<k>.csv``; ``find_submission`` returns the best good step's
snapshot, so a run cut short by the wall-clock kill is graded on its best node's predictions, as MLE-bench's
AIDE fork does. The search itself is untouched.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
AIDE_VERSION = "0.2.2"
AIDE_VENV = REPO_ROOT / ".venv-aide"
DEFAULT_AIDE_BIN = AIDE_VENV / "bin" / "aide"
EXP_NAME = "bench"
MAX_STEPS = 1000  # the wall-clock budget ends a run long before this
DEFAULT_EXEC_TIMEOUT_S = 300  # same as MLE-STAR's default script_timeout_s
MIN_EXEC_TIMEOUT_S = 30
DUMMY_API_KEY = "sk-no-key-local"
SUBMISSION_NAME = "submission.csv"
SNAPSHOT_DIR = "submissions"
# Model names AIDE sends to api.openai.com / Anthropic / Gemini whatever OPENAI_BASE_URL says.
_FOREIGN_MODEL = re.compile(r"^(gpt-|o\d|codex-mini-latest$|claude-|gemini-)")

# Run by ``python -c`` in AIDE's venv in place of the ``aide`` console script (``aide.run:run``); the
# ``key=value`` overrides follow as sys.argv[1:], exactly as for ``aide``. Three patches and a cleanup:
# 1. the feedback call's tool_choice becomes "required" (llama.cpp ignores the named-function object);
# 2. a review the model wrote as text, not as a tool call (the 1.5B model writes a fenced JSON object, often
#    {"name": "submit_review", "arguments": {...}}), is read from that text, as our agent reads its answers;
#    an answer that holds no review (a bare string, on which AIDE 0.2.2 crashes with a TypeError) marks the
#    step buggy, as AIDE itself does with a metric that is not a number: the run goes on;
# 3. after each step, the submission that step wrote is kept as submissions/step_<k>.csv in the log dir;
# 4. when AIDE crashes, its interpreter child is killed, so the process exits (code 1) instead of hanging.
LAUNCHER = """\
import json
import re
import shutil
import aide.agent
from aide.backend.utils import FunctionSpec
from aide.agent import Agent

FunctionSpec.openai_tool_choice_dict = property(lambda self: "required")
_query = aide.agent.query
REVIEW_KEYS = ("is_bug", "summary", "metric", "lower_is_better")

def _review_in(answer):
    if isinstance(answer, str):
        found = re.search(r"\\{.*\\}", answer, re.S)
        try:
            answer = json.loads(found.group(0)) if found else answer
        except ValueError:
            pass
    if isinstance(answer, dict) and isinstance(answer.get("arguments"), dict):
        answer = answer["arguments"]
    return answer

def _usable_review(*args, **kwargs):
    answer = _query(*args, **kwargs)
    if kwargs.get("func_spec") is None:
        return answer
    review = _review_in(answer)
    if isinstance(review, dict) and all(k in review for k in REVIEW_KEYS):
        return review
    return {"is_bug": True, "metric": None, "lower_is_better": True,
            "summary": "the review answer could not be read: " + str(answer)[:200]}

aide.agent.query = _usable_review
_step = Agent.step

def _step_and_snapshot(self, exec_callback):
    _step(self, exec_callback)
    node = self.journal.nodes[-1]
    src = self.cfg.workspace_dir / "working" / "submission.csv"
    if src.is_file() and src.stat().st_mtime >= node.ctime:
        dst = self.cfg.log_dir / "submissions" / f"step_{node.step}.csv"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)

Agent.step = _step_and_snapshot
import multiprocessing
from aide.run import run
try:
    run()
finally:  # on a crash AIDE's idle interpreter child is left alive and exit would wait for it forever
    for child in multiprocessing.active_children():
        child.kill()
"""


# --------------------------------------------------------------------------- launching


def _yaml_str(value: str) -> str:
    """Quote free text for OmegaConf's CLI parser (YAML per value) and escape ``${`` interpolations."""
    # OmegaConf: "\${" is a literal "${"; backslashes right before it escape each other, so double them first.
    escaped = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    return json.dumps(escaped, ensure_ascii=False)


def aide_command(aide_bin: Path, data_dir: Path, goal: str, eval_metric: str, work_dir: Path, model: str,
                 steps: int = MAX_STEPS, exec_timeout_s: int = DEFAULT_EXEC_TIMEOUT_S, *,
                 num_drafts: int | None = None, patched: bool = True) -> list[str]:
    """argv of one AIDE run on ``data_dir`` with logs and workspaces under ``work_dir``.

    Code, feedback (and the disabled report) model are all ``model``. With ``patched`` (default) AIDE is
    started through ``LAUNCHER`` by the venv's python next to ``aide_bin``; else the plain ``aide`` script.
    """
    if _FOREIGN_MODEL.match(model):
        raise ValueError(f"AIDE routes model {model!r} to its vendor's API, never to OPENAI_BASE_URL; serve "
                         f"the model under another name.")
    work_dir = Path(work_dir).resolve()
    overrides = [
        f"data_dir={_yaml_str(str(Path(data_dir).resolve()))}",
        f"goal={_yaml_str(goal)}",
        f"log_dir={_yaml_str(str(work_dir / 'logs'))}",
        f"workspace_dir={_yaml_str(str(work_dir / 'workspaces'))}",
        f"exp_name={EXP_NAME}",
        "copy_data=true",  # the agent gets a copy, never our task folder
        "preprocess_data=true",
        "generate_report=false",
        f"report.model={_yaml_str(model)}",
        f"agent.steps={int(steps)}",
        f"agent.code.model={_yaml_str(model)}",
        f"agent.feedback.model={_yaml_str(model)}",
        f"exec.timeout={int(exec_timeout_s)}",
    ]
    if eval_metric:
        overrides.insert(2, f"eval={_yaml_str(eval_metric)}")
    if num_drafts is not None:
        overrides.append(f"agent.search.num_drafts={int(num_drafts)}")
    aide_bin = Path(aide_bin)
    if patched:
        return [str(aide_bin.parent / "python"), "-c", LAUNCHER, *overrides]
    return [str(aide_bin), *overrides]


def aide_env(base_url: str, home: Path | None = None) -> dict[str, str]:
    """AIDE's environment: the scrubbed sandbox env plus ``OPENAI_BASE_URL`` and a dummy ``OPENAI_API_KEY``.

    Those two are the only variables AIDE's OpenAI backend reads (``os.getenv`` in backend_openai.py);
    no other key, token or proxy setting of ours is passed on.
    """
    from runtime.sandbox import scrubbed_env

    env = scrubbed_env()
    env.update({
        "OPENAI_BASE_URL": base_url.rstrip("/"),
        "OPENAI_API_KEY": DUMMY_API_KEY,
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "PYTHONUNBUFFERED": "1",
    })
    if home is not None:
        env["HOME"] = str(home)
    return env


def exec_timeout(budget_s: float) -> int:
    """AIDE's per-script limit: MLE-STAR's default (300 s), but at most half the budget and at least 30 s."""
    return int(max(MIN_EXEC_TIMEOUT_S, min(DEFAULT_EXEC_TIMEOUT_S, budget_s / 2)))


def _submission_columns(task: Any) -> list[str]:
    try:
        with open(task.path(task.sample_submission_file), newline="") as f:
            return next(csv.reader(f))
    except (OSError, StopIteration, AttributeError):
        return [task.id_column, *task.target_columns]


def goal_for(task: Any) -> str:
    """AIDE's ``goal``: the task's description plus where and in which shape to write the predictions.

    AIDE's own prompt already says ``./working/submission.csv``; the columns come from the sample
    submission (what our grader checks).
    """
    cols = ", ".join(_submission_columns(task))
    return (f"{task.description.strip()}\n\n"
            f"Submission: write predictions for every row of `{task.test_file}` to `./working/{SUBMISSION_NAME}`, "
            f"with exactly the columns of `{task.sample_submission_file}` ({cols}), one row per test id.")


def eval_for(task: Any) -> str:
    """AIDE's ``eval``: the metric and its direction."""
    return f"{task.metric} ({'lower' if task.lower_is_better else 'higher'} is better)"


# --------------------------------------------------------------------------- results


def _experiment_dir(root: Path) -> Path | None:
    """The newest ``<idx>-EXP_NAME`` folder under ``root`` (else the newest folder at all)."""
    if not root.is_dir():
        return None
    dirs = [p for p in root.iterdir() if p.is_dir()]
    named = [p for p in dirs if p.name.endswith(f"-{EXP_NAME}")]
    pool = named or dirs
    return max(pool, key=lambda p: p.stat().st_mtime) if pool else None


def log_dir(work_dir: Path) -> Path | None:
    """AIDE's log folder of the run (journal.json, best_solution.py, submissions/)."""
    return _experiment_dir(Path(work_dir) / "logs")


def workspace_dir(work_dir: Path) -> Path | None:
    """AIDE's workspace of the run (input/, working/)."""
    return _experiment_dir(Path(work_dir) / "workspaces")


def load_journal(work_dir: Path) -> list[dict]:
    """The journal's nodes (dicts, with ``parent`` ids restored), ordered by step; [] when absent or unreadable."""
    logs = log_dir(work_dir)
    if logs is None:
        return []
    try:
        data = json.loads((logs / "journal.json").read_text())
    except (OSError, ValueError):
        return []
    parents = data.get("node2parent") or {}
    nodes = [dict(n, parent=parents.get(n.get("id"))) for n in data.get("nodes") or []]
    return sorted(nodes, key=lambda n: n.get("step") or 0)


def _is_good(node: dict) -> bool:
    metric = node.get("metric") or {}
    return not node.get("is_buggy") and metric.get("value") is not None


def ranked_good_nodes(nodes: list[dict]) -> list[dict]:
    """Good (not buggy, with a metric) nodes, best first, as AIDE's ``get_best_node`` ranks them.

    The direction is each node's ``maximize`` as the review model reported it; the first good node's wins
    if they disagree (AIDE itself would fail an assertion then). Ties keep the earlier step first.
    """
    good = [n for n in nodes if _is_good(n)]
    if not good:
        return []
    maximize = bool(good[0]["metric"].get("maximize"))
    sign = -1.0 if maximize else 1.0
    return sorted(good, key=lambda n: (sign * float(n["metric"]["value"]), n.get("step") or 0))


def _snapshot(work_dir: Path, step: int) -> Path | None:
    logs = log_dir(work_dir)
    path = logs / SNAPSHOT_DIR / f"step_{step}.csv" if logs else None
    return path if path and path.is_file() and path.stat().st_size > 0 else None


def _last_written(work_dir: Path) -> Path | None:
    ws = workspace_dir(work_dir)
    path = ws / "working" / SUBMISSION_NAME if ws else None
    return path if path and path.is_file() and path.stat().st_size > 0 else None


def find_submission(work_dir: Path) -> Path | None:
    """The predictions to grade: the best good step's snapshot, else the last-written ``working/submission.csv``.

    Snapshots exist only with the patched launcher; ranked best first, a good step that wrote no file is
    skipped. Without any, the file AIDE left in ``working/`` (the last step that wrote one, which may be a
    worse or even buggy step) is the fallback.
    """
    for node in ranked_good_nodes(load_journal(work_dir)):
        snap = _snapshot(work_dir, int(node.get("step") or 0))
        if snap is not None:
            return snap
    return _last_written(work_dir)


def best_solution_code(work_dir: Path) -> str | None:
    """The best good node's code (from journal.json), else AIDE's ``best_solution.py``, else None.

    AIDE writes best_solution.py even when every node is buggy; the journal tells which case it is.
    """
    ranked = ranked_good_nodes(load_journal(work_dir))
    if ranked:
        return ranked[0].get("code")
    logs = log_dir(work_dir)
    try:
        return (logs / "best_solution.py").read_text() if logs else None
    except OSError:
        return None


def run_stats(work_dir: Path) -> dict[str, Any]:
    """What AIDE's journal says: steps, buggy steps, timeouts, best step and its self-reported metric, and
    which step's predictions ``find_submission`` picks (``submission_step``, or "last" for the fallback)."""
    nodes = load_journal(work_dir)
    if not nodes:
        return {"steps": 0}
    ranked = ranked_good_nodes(nodes)
    best = ranked[0] if ranked else None
    stats: dict[str, Any] = {
        "steps": len(nodes),
        "buggy": sum(1 for n in nodes if not _is_good(n)),
        "drafts": sum(1 for n in nodes if n.get("parent") is None),
        "timeouts": sum(1 for n in nodes if n.get("exc_type") == "TimeoutError"),
        "exec_s": round(sum(float(n.get("exec_time") or 0.0) for n in nodes), 1),
        "best_step": best.get("step") if best else None,
        "best_metric": best["metric"]["value"] if best else None,
        "lower_is_better": (not best["metric"].get("maximize")) if best else None,
    }
    submission = find_submission(work_dir)
    if submission is None:
        stats["submission_step"] = None
    elif submission.parent.name == SNAPSHOT_DIR:
        stats["submission_step"] = int(submission.stem.split("_")[-1])
    else:
        stats["submission_step"] = "last"
    return stats
