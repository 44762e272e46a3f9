"""Evaluate: candidates are ranked, and identical code is evaluated for merging only once."""

from __future__ import annotations

from nodes.common import distinct
from nodes.evaluate import evaluate
from tests.conftest import example, malformed_context, prepared, with_lane


def test_distinct_keeps_the_first_of_each_code():
    a, b, c = {"code": "x = 1\n", "score": 3}, {"code": "x = 2", "score": 2}, {"code": "x = 1", "score": 1}
    assert distinct([a, b, c]) == [a, b]


def test_the_champion_code_found_again_is_not_merged_with_itself(tmp_path, answers):
    """Warm start: when a lane re-finds the champion's exact code, there is nothing to merge."""
    ctx = malformed_context(tmp_path)
    state, runtime = prepared(ctx)
    lane = {**with_lane(state), "warm_start": {"code": example(state)}}

    result = evaluate(lane, runtime)

    assert [c["solution"]["score"] is not None for c in result["candidates"]] == [True, True]
    assert result["merge_queue"] == [] and result["solution"]["origin"] == "candidate:linear"
