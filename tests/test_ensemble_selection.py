"""Greedy ensemble selection: blends that help are found and weighted, useless or overfitting ones are
not, every prediction kind blends the way its metric expects, and bad inputs fail loudly."""

from __future__ import annotations

import numpy as np
import pytest

from runtime import metrics
from runtime.ensemble_selection import Selection, blend, select_ensemble


def regression(n=2000, seed=0):
    """Truth, two members with independent unit noise, and a member that is pure noise."""
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 2, n)
    return y, [y + rng.normal(0, 1, n), y + rng.normal(0, 1, n), rng.normal(10, 2, n)]


def noisy_labels(y, accuracy, classes, rng):
    """``y`` with each label replaced, with probability 1 - accuracy, by another class at random."""
    wrong = rng.random(len(y)) > accuracy
    other = (y + rng.integers(1, len(classes), len(y))) % len(classes)
    return np.where(wrong, other, y)


@pytest.mark.parametrize("metric", ["rmse", "mse", "mae", "r2"])
def test_two_independent_regressors_blend_about_one_to_one_and_noise_is_left_out(metric):
    y, preds = regression()
    result = select_ensemble(preds, y, metric, "value")
    assert isinstance(result, Selection) and result.accepted, result.reason
    assert set(result.weights) == {0, 1} and abs(result.weights[0] - result.weights[1]) <= 1
    singles = [metrics.score(metric, y, p) for p in preds[:2]]
    better = min if metrics.METRICS[metric].lower_is_better else max
    assert better(singles + [result.score]) == result.score and result.score not in singles
    assert result.best_single in (0, 1)


def test_direction_matters_a_reversed_comparison_would_pick_the_noise():
    y, preds = regression()
    # r2 is higher-is-better, rmse lower-is-better: both must start from a good member, not the noise.
    for metric in ("r2", "rmse"):
        assert select_ensemble(preds, y, metric, "value").best_single != 2


def test_label_vote_of_three_independent_classifiers_beats_each_and_keys_unify_types():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 1500)
    members = [noisy_labels(y, 0.7, range(3), rng) for _ in range(3)]
    preds = [members[0], members[1].astype(float), members[2].astype(str)]  # 1, 1.0 and "1" agree
    result = select_ensemble(preds, y, "accuracy", "label")
    assert result.accepted, result.reason
    assert set(result.weights) == {0, 1, 2}
    singles = [metrics.score("accuracy", y, p) for p in preds]
    assert result.score > max(singles) + 0.03
    assert result.best_single_check_score < result.check_score


def test_class_probability_blend_lowers_logloss():
    rng = np.random.default_rng(2)
    labels = ["a", "b", "c"]
    truth = rng.integers(0, 3, 1200)
    y = np.array(labels, dtype=object)[truth]

    def member():
        logits = 1.5 * np.eye(3)[truth] + rng.normal(0, 1.2, (len(y), 3))
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    preds = [member(), member(), member()]
    result = select_ensemble(preds, y, "logloss", "class_probabilities", labels=labels)
    assert result.accepted, result.reason
    assert len(result.weights) >= 2
    singles = [metrics.score("logloss", y, p, labels=labels) for p in preds]
    assert result.score < min(singles) - 0.02
    # auc (higher is better) blends the same arrays the other way round
    auc = select_ensemble(preds, y, "auc", "class_probabilities", labels=labels)
    assert auc.accepted and auc.score > max(metrics.score("auc", y, p, labels=labels) for p in preds)


def test_binary_probabilities_blend():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    preds = [1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.5, len(y))))) for _ in range(2)]
    result = select_ensemble(preds, y, "logloss", "probability")
    assert result.accepted and result.weights == {result.best_single: 1, 1 - result.best_single: 1}


@pytest.mark.parametrize("seed", range(3))
def test_holdout_guard_rejects_a_blend_that_only_fits_the_selection_half(seed):
    """Noise members like tiny validation sets reward: each has the good member's error flipped on one
    row (so blending it with the good member helps there) and is a little worse everywhere else. The
    search on half A takes those whose row is in A; half B has no such row, so there the blend is
    worse than the good member on every row, whatever the split."""
    rng = np.random.default_rng(seed)
    n = 24
    y = rng.normal(0, 1, n)
    error = rng.normal(0, 1, n)
    good = y + error
    noise = [good + np.where(np.arange(n) == row, -2.0, 0.05) * error for row in range(n)]
    result = select_ensemble([good] + noise, y, "rmse", "value")
    assert len(result.weights) >= 3  # the search did find a "better" blend on half A...
    assert result.best_single == 0
    assert not result.accepted and "worse than the best single" in result.reason  # ...that does not hold up
    assert result.check_score > result.best_single_check_score


def test_a_metric_failing_on_a_blend_only_drops_that_candidate():
    y, (a, b, _) = regression()
    bad = -100 * y  # rmsle cannot score it, nor any blend with it at under 100 parts in 101
    result = select_ensemble([bad, a, b], y, "rmsle", "value")
    assert result.accepted and set(result.weights) == {1, 2} and result.best_single in (1, 2)


def test_blend_of_test_predictions_matches_a_hand_computation():
    a, b, c = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]), np.array([0.0, 0.0, 9.0])
    assert np.allclose(blend([a, b, c], {0: 2, 1: 1}, "value"), [5 / 3, 2.0, 7 / 3])
    assert np.allclose(blend([a, b, c], [0.5, 0.25, 0.25], "probability"), [1.25, 1.5, 4.0])
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    q = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert np.allclose(blend([p, q], {0: 1, 1: 3}, "class_probabilities"), [[0.425, 0.575], [0.9, 0.1]])
    votes = [np.array([1, "x", 2, 5]), np.array(["1", "y", 3.0, 6]), np.array([1.0, "y", 4, 7])]
    # row 0 unanimous, row 1 a 2:1 majority (weights 1+1 vs 1), rows 2-3 three-way ties: first listed wins
    assert list(blend(votes, {2: 1, 0: 1, 1: 1}, "label")) == ["1", "y", "4", "7"]
    assert list(blend(votes, {0: 1, 1: 1, 2: 1}, "label")) == ["1", "y", "2", "5"]
    assert list(blend(votes, {0: 3, 1: 1, 2: 1}, "label")) == ["1", "x", "2", "5"]
    assert list(blend(votes, [0, 1, 1], "label")) == ["1", "y", "3", "6"]


def test_wrong_shapes_and_weights_raise_naming_the_member():
    y, (a, b, _) = regression(n=50)
    with pytest.raises(ValueError, match="member 1: prediction shape \\(49,\\)"):
        select_ensemble([a, b[:-1]], y, "rmse", "value")
    with pytest.raises(ValueError, match="member 0: prediction shape \\(50,\\), expected \\(40,\\)"):
        select_ensemble([a, b], y[:40], "rmse", "value")
    with pytest.raises(ValueError, match=r"member 2: expected a 2-D array for .class_probabilities., got \(3,\)"):
        blend([np.ones((3, 2)), np.ones((3, 2)), np.ones(3)], [1, 1, 1], "class_probabilities")
    with pytest.raises(ValueError, match="member 1: prediction shape \\(5, 2\\), expected \\(5, 3\\)"):
        select_ensemble([np.ones((5, 3)), np.ones((5, 2))], list("abcab"), "logloss", "class_probabilities",
                        labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="member 1: predictions are not numeric"):
        blend([a, ["x"] * 50], [1, 1], "value")
    with pytest.raises(ValueError, match="outside"):
        blend([a, b], {2: 1}, "value")
    with pytest.raises(ValueError, match="positive sum"):
        blend([a, b], [0, 0], "value")
    with pytest.raises(ValueError, match="no blend of 'ranked_labels' predictions"):
        blend([a, b], [1, 1], "ranked_labels")
    with pytest.raises(ValueError, match="no blend of 'votes' predictions"):
        blend([a, b], [1, 1], "votes")


def test_too_few_members_or_rows_is_not_accepted_with_a_reason():
    y, (a, b, _) = regression(n=100)
    one = select_ensemble([a], y, "rmse", "value")
    few = select_ensemble([a[:10], b[:10]], y[:10], "rmse", "value")
    for result in (one, few):
        assert not result.accepted and "at least 2 members" in result.reason and result.weights == {}
    same = select_ensemble([a, a.copy()], y, "rmse", "value")
    assert not same.accepted and "no addition improved" in same.reason and same.weights == {0: 1}
