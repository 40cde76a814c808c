"""Tests of greedy ensemble selection: what it adds, with what weight, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.export._selection import greedy_selection

Y = np.array([0, 1, 1, 0, 1, 0])


def _proba(p_class1: list[float]) -> np.ndarray:
    p = np.asarray(p_class1, dtype=np.float64)
    return np.stack([1 - p, p], axis=1)  # (rows, 2)


def test_a_complementary_member_is_added_and_the_best_comes_first() -> None:
    """Check that a member wrong on other rows than the best is added, and the best is member 0 however it scores."""
    best = _proba([0.1, 0.9, 0.4, 0.2, 0.8, 0.3])  # row 2 wrong: 5 of 6
    other = _proba([0.6, 0.9, 0.9, 0.2, 0.8, 0.3])  # row 0 wrong, more confidently right on row 2
    counts, value = greedy_selection([best, other], Y, "accuracy")
    assert counts[0] >= 1 and counts[1] >= 1 and value == 1.0


def test_nothing_better_leaves_the_best_alone() -> None:
    """Check that members that only hurt are not kept: the best trial alone, with its own validation value."""
    best = _proba([0.1, 0.9, 0.9, 0.2, 0.8, 0.3])  # all right
    bad = _proba([0.9, 0.1, 0.1, 0.8, 0.2, 0.7])  # all wrong
    counts, value = greedy_selection([best, bad, bad], Y, "accuracy")
    assert counts == [1, 0, 0] and value == 1.0


def test_the_first_candidate_is_kept_even_when_another_scores_better_alone() -> None:
    """Check that candidate 0 (the chosen trial) is always a member: the selection starts from it."""
    weak = _proba([0.9, 0.9, 0.9, 0.2, 0.8, 0.3])  # row 0 wrong
    strong = _proba([0.1, 0.9, 0.9, 0.2, 0.8, 0.3])
    counts, value = greedy_selection([weak, strong], Y, "accuracy")
    assert counts == [1, 1] and value == 1.0  # the first prefix that reaches the best value, not `strong` alone


def test_regression_minimizes_rmse_with_weights_by_count() -> None:
    """Check that for a minimized metric two members biased in opposite ways are averaged, and the returned
    value is the weighted mean's RMSE."""
    y = np.array([1.0, 2.0, 3.0, 4.0])
    high, low = y + 1.0, y - 0.5
    counts, value = greedy_selection([high, low], y, "rmse", rounds=6)
    weights = np.array(counts) / sum(counts)
    mean = weights[0] * high + weights[1] * low
    assert counts[1] > counts[0] >= 1  # the less biased member weighs more
    assert value == pytest.approx(float(np.sqrt(np.mean((mean - y) ** 2))))
    assert value < 0.5  # better than either member (1.0 and 0.5)


def test_log_loss_is_minimized() -> None:
    """Check that a minimized classification metric picks the mixture with the lower log loss."""
    sure = _proba([0.01, 0.99, 0.2, 0.01, 0.99, 0.01])  # right but very wrong on row 2
    soft = _proba([0.3, 0.7, 0.7, 0.3, 0.7, 0.3])
    counts, value = greedy_selection([sure, soft], Y, "log_loss")
    assert counts[1] >= 1 and value < 0.357  # below `soft` alone, -log(0.7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "f1"}, r"The 'metric' parameter of greedy_selection must be one of .*Got 'f1' instead\."),
        ({"predictions": []}, r"The 'predictions' parameter of greedy_selection must hold at least one candidate"),
        ({"rounds": 0}, r"The 'rounds' parameter of greedy_selection must be an int >= 1\. Got 0 instead\."),
        ({"rounds": True}, r"The 'rounds' parameter of greedy_selection must be an int >= 1\. Got True instead\."),
        (
            {"predictions": [_proba([0.5] * 6), _proba([0.5] * 5)]},
            r"must hold arrays of one shape with 6 rows \(the validation rows\)\. Got shapes",
        ),
    ],
)
def test_greedy_selection_refuses_bad_input(kwargs: dict, message: str) -> None:
    """Check that every bad argument is refused with its name, the rule and the value."""
    arguments = {"predictions": [_proba([0.5] * 6)], "y_true": Y, "metric": "accuracy"} | kwargs
    with pytest.raises(ValueError, match=message):
        greedy_selection(**arguments)


def test_a_metric_that_is_never_finite_keeps_the_best_alone() -> None:
    """Check that r2 on a constant validation target (NaN or -inf everywhere) keeps the best trial alone and says
    so by an infinite value, instead of a NaN that would win no comparison and end in the last counts."""
    y = np.array([2.0, 2.0, 2.0])
    counts, value = greedy_selection([np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.5])], y, "r2", rounds=5)
    assert counts == [1, 0] and value == -np.inf
