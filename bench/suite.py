"""Task suites: a folder of task folders with hidden answers, plus optional medal thresholds.

A suite is a folder whose sub-folders are task folders (``task.json``, ``public/``, ``private/answers.csv``;
see ``runtime/task.py``) and, optionally, ``baselines.json`` mapping a task name to reference scores::

    {"titanic": {"trivial": 0.618, "thresholds": {"bronze": 0.828, "silver": 0.845, "gold": 0.863}, ...}}

The agents under test only ever see a *visible copy* of a task (``public/`` and the metadata): the answers
stay in the suite folder, which the harness hides from every competitor that runs generated code.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from runtime.task import Task, TaskError, load_task

MEDALS = ("gold", "silver", "bronze")
THRESHOLDS_FILE = "baselines.json"


@dataclass(frozen=True)
class Reference:
    """Reference scores of one task: the trivial baseline and the medal thresholds (any may be missing)."""

    trivial: float | None = None
    bronze: float | None = None
    silver: float | None = None
    gold: float | None = None


@dataclass(frozen=True)
class SuiteTask:
    name: str
    task: Task
    reference: Reference


def load_suite(suite_dir: str | Path, only: list[str] | None = None) -> list[SuiteTask]:
    """Every task folder of a suite (sorted by name), each checked to be complete and gradable."""
    root = Path(suite_dir)
    if not root.is_dir():
        raise TaskError(f"Suite folder {root} does not exist; give a folder of task folders, e.g. examples/.")
    references = _read_references(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and ((p / "task.json").is_file() or (p / "public").is_dir()))
    if only:
        unknown = sorted(set(only) - {p.name for p in folders})
        if unknown:
            raise TaskError(f"Suite {root} has no task {', '.join(unknown)}; it has {', '.join(p.name for p in folders)}.")
        folders = [p for p in folders if p.name in only]
    if not folders:
        raise TaskError(f"Suite folder {root} holds no task folder (a sub-folder with task.json or public/).")
    tasks = []
    for folder in folders:
        task = load_task(folder)
        if not task.answers_path:
            raise TaskError(f"Task {folder} has no hidden answers: add private/answers.csv so it can be graded.")
        tasks.append(SuiteTask(folder.name, task, references.get(folder.name, Reference())))
    return tasks


def _read_references(root: Path) -> dict[str, Reference]:
    path = root / THRESHOLDS_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path} is not valid JSON ({exc}); fix it or remove it (medals are then not assigned).")
    references = {}
    for name, entry in raw.items():
        thresholds = entry.get("thresholds") or {}
        references[name] = Reference(entry.get("trivial"), *(thresholds.get(m) for m in ("bronze", "silver", "gold")))
    return references


def medal(score: float | None, lower_is_better: bool, reference: Reference) -> str | None:
    """The best medal whose threshold the score reaches (ties earn it), or None."""
    if score is None:
        return None
    for name in MEDALS:
        threshold = getattr(reference, name)
        if threshold is not None and (score <= threshold if lower_is_better else score >= threshold):
            return name
    return None


def normalised_score(score: float | None, lower_is_better: bool, reference: Reference) -> float | None:
    """0 at the trivial baseline, 1 at the gold threshold (above 1 beats gold; negative is worse than trivial).

    The direction cancels out: (score - trivial) / (gold - trivial) is positive when the score moved from
    trivial towards gold, whichever way the metric improves.
    """
    if score is None or reference.trivial is None or reference.gold is None or reference.gold == reference.trivial:
        return None
    value = (score - reference.trivial) / (reference.gold - reference.trivial)
    return value if math.isfinite(value) else None


def visible_copy(task: Task, dest: Path) -> Path:
    """A task folder holding only what an agent may see: the public files and the metadata, never the answers."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(task.data_dir, dest / "public")
    metadata = Path(task.root) / "task.json"
    if metadata.is_file():
        shutil.copy2(metadata, dest / "task.json")
    return dest
