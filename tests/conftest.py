from __future__ import annotations

from pathlib import Path

import pytest

from graph.context import Context

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTED = "scripted:tests.scripted_model:respond"


def scripted_context(tmp_path: Path, **overrides) -> Context:
    """A small, fast configuration that still exercises every phase (floor of 2 catalog approaches, 2 lanes,
    merge, T=1, K=2, R=1, blend)."""
    settings = dict(
        coder_model=SCRIPTED, planner_model=SCRIPTED, reviewer_model=SCRIPTED, enhancer_model=SCRIPTED,
        num_lanes=2, num_candidates=2, refine_steps=1, inner_steps=2, ensemble_rounds=1, debug_rounds=1,
        floor_approaches=2, script_timeout_s=120, workspace_root=str(tmp_path / "workspace"),
        journal_path=str(tmp_path / "journal.db"))
    settings.update(overrides)
    return Context(**settings)


@pytest.fixture
def ctx(tmp_path):
    return scripted_context(tmp_path)
