"""Tests of the metric range every figure draws: fitted to the bulk, far-off trials fenced on the worse side only."""

from __future__ import annotations

import pytest

from archsearch.stats import FAR_OFF_IQRS, MIN_FIT_TRIALS, metric_range

# Twelve real trials of the digits demo and one at chance (SGD at lr 1e-4): issue #23.
DIGITS = [0.94, 0.952, 0.955, 0.96, 0.963, 0.966, 0.97, 0.972, 0.975, 0.978, 0.981, 0.986]


def test_a_trial_at_chance_is_fenced_and_the_axis_fits_the_rest() -> None:
    """Check that the chance trial falls past the fence, is clipped to the edge and named in the sentence."""
    found = metric_range([*DIGITS, 0.0975], range(13), maximize=True)
    assert found.far_off == ((12, 0.0975),)
    assert 0.0975 < found.low < found.edge < min(DIGITS) and found.high > max(DIGITS)
    assert found.high - found.low < 0.1
    assert found.clip(0.0975) == found.edge and found.clip(0.96) == 0.96
    assert (
        found.sentence().startswith("1 trial below 0.") and "(#12 at 0.0975) is drawn at the edge" in found.sentence()
    )
    assert found.sentence().endswith("so the axis fits the other 12.")


def test_a_far_better_trial_is_never_fenced() -> None:
    """Check that only the worse side is fenced: a trial far above the rest stays on the axis when maximizing."""
    values = [0.50, 0.51, 0.52, 0.53, 0.52, 0.99]
    found = metric_range(values, range(6), maximize=True)
    assert found.far_off == () and found.high > 0.99 and found.sentence() == ""


def test_a_minimized_metric_fences_the_high_side() -> None:
    """Check that for rmse a diverged trial (huge error) is fenced above and the far-off list is worst first."""
    values = [50.0, 51.0, 52.0, 53.0, 54.0, 55.0, 56.0, 57.0, 900.0, 5000.0]
    found = metric_range(values, range(10), maximize=False)
    assert [n for n, _ in found.far_off] == [9, 8]
    assert found.high < 900 and found.edge > 57 and "2 trials above" in found.sentence()


@pytest.mark.parametrize(
    "values",
    [[0.1, 0.9, 0.91, 0.92], [0.9, 0.9, 0.9, 0.9, 0.1]],
    ids=["too few trials", "no spread between the quartiles"],
)
def test_nothing_is_fenced_without_a_bulk(values: list[float]) -> None:
    """Check that below MIN_FIT_TRIALS trials, or with a zero interquartile range, the range spans every value."""
    found = metric_range(values, range(len(values)), maximize=True)
    assert found.fence is None and found.far_off == () and found.low < 0.1
    assert MIN_FIT_TRIALS == 5 and FAR_OFF_IQRS == 3.0


def test_included_values_widen_the_range_and_nan_is_ignored() -> None:
    """Check that a threshold line is kept on the axis and a non-finite value neither counts nor breaks the fit."""
    found = metric_range([0.9, 0.91, float("nan"), 0.92], range(4), maximize=True, include=[0.85])
    assert found.n == 3 and found.low < 0.85 < found.high
    assert metric_range([], [], maximize=True).bounds == [0.0, 1.0]
