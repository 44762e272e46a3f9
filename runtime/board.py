"""The submission board: a run always holds its best validated submission so far.

``<workspace>/submission.csv`` is replaced (atomically) whenever a validated submission with a better
validation score is offered; ``<workspace>/submission.json`` says which one it is and keeps the history
of every replacement (time since the run started, score, source), which shows when the first valid
submission existed and which phase improved it. A run stopped at any moment (budget, Ctrl-C, SIGKILL)
after its first offer leaves a valid file. Lanes offer from parallel threads, and a resumed process may
offer too: a file lock serialises the compare-and-replace.
"""

from __future__ import annotations

import fcntl
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from runtime.files import atomic_copy, atomic_write_text

SUBMISSION = "submission.csv"
RECORD = "submission.json"
LOCK = ".submission.lock"


@contextmanager
def _locked(workspace: Path) -> Iterator[None]:
    workspace.mkdir(parents=True, exist_ok=True)
    with open(workspace / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current(workspace: str | Path) -> dict | None:
    """The board's record: score, source, csv (the file it was copied from), history; None when empty."""
    path = Path(workspace) / RECORD
    if not path.is_file() or not (Path(workspace) / SUBMISSION).is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def beats(score: float, than: float | None, lower_is_better: bool) -> bool:
    return than is None or (score < than if lower_is_better else score > than)


def offer(workspace: str | Path, csv: str | Path, *, score: float, source: str, lower_is_better: bool,
          started_at: float | None = None, force: bool = False) -> bool:
    """Put ``csv`` (already validated) on the board if its validation score beats the board's; True if it did.

    ``force`` replaces whatever is there (a person chose this file). ``started_at`` (epoch seconds) dates
    the history entry relative to the run's start.
    """
    workspace = Path(workspace)
    with _locked(workspace):
        record = current(workspace) or {"history": []}
        if not force and not beats(score, record.get("score"), lower_is_better):
            return False
        atomic_copy(Path(csv), workspace / SUBMISSION)
        now = time.time()
        entry = {"at_s": round(now - started_at, 1) if started_at else None, "time": now, "score": score,
                 "source": source}
        record = {"score": score, "source": source, "csv": str(csv), "history": [*record["history"], entry]}
        atomic_write_text(workspace / RECORD, json.dumps(record, indent=2))
        return True
