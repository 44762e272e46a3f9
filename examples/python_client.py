"""Drive MLE-STAR from Python: run a task, answer a human review, look at the history, fork, report.

    .venv/bin/python examples/python_client.py                      # the embedded local model
    .venv/bin/python examples/python_client.py scripted:tests.scripted_model:respond   # seconds, no model

Everything lands in the same databases as `mlestar` (checkpoints/), so `mlestar status`, `mlestar report`
and `langgraph dev` see these runs too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph.client import MleStar  # noqa: E402


def show(event_namespace, mode, chunk) -> None:
    if mode == "custom" and isinstance(chunk, dict):
        print(f"  {chunk.get('node', '?'):<14} {chunk.get('event', '')}: "
              f"{ {k: v for k, v in chunk.items() if k not in ('node', 'event')} }")


def main(model: str = "local") -> None:
    agent = MleStar(on_event=show)
    run_id = f"client-example-{time.strftime('%Y%m%d-%H%M%S')}"
    result = agent.run(ROOT / "examples" / "penguins", run_id=run_id, runs=2, model=model,
                       num_lanes=1, refine_steps=1, ensemble_rounds=0, human_review="enhancer")
    while result.status == "review":  # the Enhancer proposes settings for run 1: accept them
        print(f"Review of {result.review.point}: {result.review.proposal}")
        result = agent.review(run_id, "approve")
    print(f"{run_id}: {result.status}, best validation score {result.best_score} (run {result.best_run})")
    print(f"submission: {result.submission}\nreport: {result.report}")
    for checkpoint in agent.history(run_id):
        print(f"  step {checkpoint.step:>3} next={checkpoint.next} runs done={checkpoint.runs_done}"
              f"{'  <- fork point' if checkpoint.can_fork else ''}")
    fork_at = next(c.step for c in agent.history(run_id) if c.can_fork)
    forked = agent.fork(run_id, fork_at, f"{run_id}-b", refine_steps=2, human_review="off")
    print(f"fork {forked.run_id}: best {forked.best_score} vs {result.best_score}")
    print(agent.report(forked.run_id)["markdown"])


if __name__ == "__main__":
    main(*sys.argv[1:2])
