"""The Enhancer's answer is untrusted: every malformed part falls back to a safe default, with a reason."""

from __future__ import annotations

import pytest

from graph.context import Context
from nodes.enhance import SAFE_DEFAULT, digest_run, real_changes, validate_enhancement
from nodes.meta_loop import champion_of
from tests.scripted_model import ENHANCEMENT


def goal(phase="refinement", priority=1, focus="try x"):
    return {"target_agent_phase": phase, "focus": focus, "priority": priority, "rationale": "because"}


def test_a_good_answer_passes_unchanged():
    clean, problems = validate_enhancement(ENHANCEMENT)
    assert problems == []
    assert clean["config_overrides"] == {"refine_steps": 2}
    assert [g["priority"] for g in clean["strategic_goals"]] == [1, 2, 3]


def test_restated_settings_are_not_changes():
    """Seen with the 1.5B model: every current setting sent back as an override. Only real changes remain,
    and a value equal to the user's is dropped even if an earlier run had overridden it (overrides apply over
    the user's settings, so dropping it is what restores that value)."""
    base = Context(refine_steps=1, num_lanes=2)
    restated = {"refine_steps": 1, "num_lanes": 2, "inner_steps": base.inner_steps, "ensemble_rounds": 3}
    assert real_changes(restated, base) == {"ensemble_rounds": 3}
    assert real_changes({}, base) == {}


@pytest.mark.parametrize("answer, needle", [
    ("not json at all", "not a JSON object"),
    ([1, 2], "not a JSON object"),
    ({"strategic_summary": "x", "config_overrides": {}}, "lacks strategic_goals"),
    ({"config_overrides": {}, "strategic_goals": []}, "lacks strategic_summary"),
])
def test_unusable_answers_give_safe_defaults(answer, needle):
    clean, problems = validate_enhancement(answer)
    assert clean == SAFE_DEFAULT
    assert any(needle in p for p in problems)


@pytest.mark.parametrize("overrides, needle", [
    ({"num_lanes": 50}, "outside [1, 4]"),
    ({"script_timeout_s": 0}, "outside [30, 3600]"),
    ({"refine_steps": "many"}, "not a valid int"),
    ({"journal_path": "/etc/passwd"}, "not a setting the Enhancer may change"),
    ({"no_such_knob": 1}, "not a setting the Enhancer may change"),
])
def test_bad_overrides_are_dropped_one_by_one(overrides, needle):
    clean, problems = validate_enhancement({"strategic_summary": "s", "strategic_goals": [],
                                            "config_overrides": {**overrides, "inner_steps": 3}})
    assert clean["config_overrides"] == {"inner_steps": 3}
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize("goals, needle", [
    ([goal(phase="search")], "is not one of refinement, ensemble, submission"),
    ([goal(priority=1), goal("ensemble", priority=1)], "not unique"),
    ([goal(priority=2)], "numbered from 1"),
    ([goal(focus="")], "no focus"),
    ("refine harder", "not a list"),
])
def test_bad_goals_are_rejected(goals, needle):
    clean, problems = validate_enhancement({"strategic_summary": "s", "config_overrides": {},
                                            "strategic_goals": goals})
    assert any(needle in p for p in problems), problems
    assert all(g["target_agent_phase"] in ("refinement", "ensemble", "submission") for g in clean["strategic_goals"])


def test_unknown_phase_is_dropped_but_valid_goals_stay():
    clean, problems = validate_enhancement({"strategic_summary": "s", "config_overrides": {},
                                            "strategic_goals": [goal(priority=1), goal("deploy", priority=2)]})
    # the remaining goal list [1] is numbered from 1, so it is kept
    assert [g["focus"] for g in clean["strategic_goals"]] == ["try x"] and len(problems) == 1


def test_champion_is_the_best_run_not_the_latest():
    history = [{"run_index": 0, "best_score": 0.80}, {"run_index": 1, "best_score": 0.85},
               {"run_index": 2, "best_score": 0.70}, {"run_index": 3, "best_score": None}]
    assert champion_of(history, lower_is_better=False)["run_index"] == 1
    assert champion_of(history, lower_is_better=True)["run_index"] == 2


def test_digest_is_compact():
    run = {"status": "done", "best_score": 0.8, "best_origin": "merge", "duration_s": 100, "scripts": 9,
           "scripts_ok": 7, "lanes": [{"lane": 0, "score": 0.8, "candidates": [{"key": "lightgbm", "score": 0.79}],
                                       "history": [{"step": 0, "before": 0.79, "after": 0.8,
                                                    "attempts": [{"plan": "p" * 5000, "score": 0.8}]}],
                                       "ablations": [{"step": 0, "summary": "s" * 5000}]}],
           "ensemble_rounds": [{"round": 0, "plan": "average", "score": 0.81}]}
    text = digest_run(run)
    assert "lightgbm 0.79" in text and "0.79 -> 0.8" in text and "average -> 0.81" in text
    assert len(text) < 1200


def test_stop_rules():
    from graph.routing import should_continue

    base = {"runs_planned": 5, "started_at": 0.0, "champion": {"run_index": 0},
            "history": [{"run_index": 0}, {"run_index": 1}]}
    assert should_continue({**base, "stop_rules": {}}) == "enhance"
    assert should_continue({**base, "runs_planned": 2}) == "report"
    assert should_continue({**base, "stop_rules": {"budget_s": 60}}) == "report"  # started at the epoch
    assert should_continue({**base, "stop_rules": {"patience": 1}}) == "report"  # run 1 did not beat run 0
    assert should_continue({**base, "stop_rules": {"patience": 2}}) == "enhance"
