"""Live progress of a run from the graph's stream: one line per event, a status bar with the best score."""

from __future__ import annotations

import time

from rich.console import Console

from runtime.keys import PIPELINE_LANE


class Progress:
    def __init__(self, console: Console, run_id: str):
        self.console = console
        self.run_id = run_id
        self.started = time.monotonic()
        self.best: float | None = None
        self.lower_is_better: bool | None = None

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def note_score(self, score) -> None:
        if score is None or self.lower_is_better is None:
            return
        if self.best is None or (score < self.best if self.lower_is_better else score > self.best):
            self.best = score

    def handle(self, namespace: tuple, mode: str, chunk) -> None:
        if mode == "updates":
            for update in chunk.values():
                if isinstance(update, dict) and "lower_is_better" in (update.get("task") or {}):
                    self.lower_is_better = update["task"]["lower_is_better"]
            return
        if mode != "custom" or not isinstance(chunk, dict):
            return
        self.note_score(chunk.get("score"))
        where = f"lane {chunk['lane']}" if chunk.get("lane") not in (None, PIPELINE_LANE) else "run"
        details = " ".join(f"{k}={v}" for k, v in chunk.items()
                           if k not in {"lane", "node", "event"} and v not in (None, ""))
        best = "-" if self.best is None else f"{self.best:.5g}"
        self.console.print(f"[dim]{self.elapsed()}[/] [cyan]{where:>6}[/] [bold]{chunk.get('node', '?'):<15}[/] "
                           f"{chunk.get('event', '')}: {details}  [dim](best {best})[/]", highlight=False, soft_wrap=True)
