"""The conditional edges: merge stops at the first non-gain, refinement loops run T x K times."""

from __future__ import annotations

from types import SimpleNamespace

from graph import routing
from graph.context import Context
from nodes.common import is_better, not_worse, ranked
from nodes.search import keep_specialists, lane_approaches


def rt(**settings):
    return SimpleNamespace(context=Context(**settings))


def test_after_evaluate():
    assert routing.after_evaluate({"solution": {}}, rt()) == "finish_lane"
    assert routing.after_evaluate({"solution": {"score": 1}, "merge_queue": [{}]}, rt()) == "merge"
    assert routing.after_evaluate({"solution": {"score": 1}, "merge_queue": []}, rt(refine_steps=1)) == "ablate"
    assert routing.after_evaluate({"solution": {"score": 1}, "merge_queue": []}, rt(refine_steps=0)) == "finish_lane"


def test_after_merge_stops_when_queue_is_emptied_by_a_failed_merge():
    assert routing.after_merge({"merge_queue": [{}], "step": 0}, rt()) == "merge"
    assert routing.after_merge({"merge_queue": [], "step": 0}, rt(refine_steps=2)) == "ablate"
    assert routing.after_merge({"merge_queue": [], "step": 0}, rt(refine_steps=0)) == "finish_lane"


def test_inner_and_outer_refinement_loops():
    assert routing.after_extract({"target": {}}) == "conclude_step"
    assert routing.after_extract({"target": {"block": "x", "plan": "y"}}) == "refine"
    assert routing.after_refine({"attempts": [{}]}, rt(inner_steps=2)) == "plan_refinement"
    assert routing.after_refine({"attempts": [{}, {}]}, rt(inner_steps=2)) == "conclude_step"
    assert routing.after_conclude({"step": 1}, rt(refine_steps=2)) == "ablate"
    assert routing.after_conclude({"step": 2}, rt(refine_steps=2)) == "finish_lane"


def test_after_ensemble():
    assert routing.after_ensemble({"ensemble_rounds": []}, rt(ensemble_rounds=3)) == "blend"  # skipped
    assert routing.after_ensemble({"ensemble_rounds": [{}]}, rt(ensemble_rounds=3)) == "ensemble"
    assert routing.after_ensemble({"ensemble_rounds": [{}, {}, {}]}, rt(ensemble_rounds=3)) == "blend"


def test_score_comparisons_treat_missing_scores_as_no_score():
    assert is_better(0.8, None, False) and not is_better(None, 0.8, False)
    assert is_better(3.0, 4.0, True) and not is_better(4.0, 3.0, True)
    assert not_worse(0.5, 0.5, False) and not not_worse(None, None, False)
    order = ranked([{"score": 2.0}, None, {"score": None}, {"score": 1.0}], lower_is_better=True)
    assert [s["score"] for s in order] == [1.0, 2.0]


def test_lanes_start_from_different_approaches():
    approaches = [{"key": k} for k in "abc"]
    assert [a["key"] for a in lane_approaches(approaches, 0, 2)] == ["a", "b"]
    assert [a["key"] for a in lane_approaches(approaches, 1, 2)] == ["b", "c"]
    assert [a["key"] for a in lane_approaches(approaches, 4, 2)] == ["b", "c"]


def test_a_specialist_the_planner_left_out_replaces_its_lowest_general_pick():
    order = ["gbm", "hgb", "linear", "calendar"]
    assert keep_specialists(order, ["calendar"], 2) == ["gbm", "calendar", "hgb", "linear"]
    assert keep_specialists(order, ["calendar"], 3) == ["gbm", "hgb", "calendar", "linear"]
    assert keep_specialists(order, ["calendar"], 1) == order  # one slot: the planner's first pick stands
    assert keep_specialists(["calendar", "gbm"], ["calendar"], 1) == ["calendar", "gbm"]
    assert keep_specialists(["gbm", "tfidf", "hgb", "cal"], ["tfidf", "cal"], 2) == ["gbm", "tfidf", "hgb", "cal"]
    assert keep_specialists(["gbm", "hgb", "tfidf", "cal"], ["tfidf", "cal"], 3) == ["gbm", "cal", "tfidf", "hgb"]


def test_only_lane_0_warm_starts_from_the_champion():
    """The other lanes explore from scratch, so the ensemble has different solutions to combine."""
    state = {"run_id": "r", "task": {}, "workspace": "w", "input_dir": "i", "data_summary": "",
             "approaches": [{"key": k} for k in "abc"], "goals": [{"focus": "g"}],
             "warm_start": {"code": "print(1)"}}
    sends = routing.fan_out_lanes(state, rt(num_lanes=3))
    assert [s.arg["lane"] for s in sends] == [0, 1, 2]
    assert [s.arg.get("warm_start") for s in sends] == [{"code": "print(1)"}, None, None]
    assert all(s.arg["goals"] == [{"focus": "g"}] for s in sends)
