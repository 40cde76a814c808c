"""Paired statistics of neighbours against a centre, on synthetic seeds whose answers are known."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from scipy import stats

from archsearch.stats import can_reach_significance
from archsearch.stats import compare_to_centre
from archsearch.stats import holm
from archsearch.stats import minimum_detectable_difference
from archsearch.stats import noise_floor
from archsearch.stats import paired_differences
from archsearch.stats import smallest_possible_p


SEEDS = range(8)
# Seed-to-seed noise much larger than the effects, so only the paired design can see them.
CENTRE = {seed: 0.80 + 0.03 * math.sin(3 * seed) for seed in SEEDS}


def _shifted(shift: float, jitter: float = 0.001) -> dict[int, float]:
    """The centre moved by ``shift`` on every seed, plus a small distinct jitter per seed."""
    return {seed: value + shift + jitter * (seed - 3.5) for seed, value in CENTRE.items()}


def test_paired_differences_keeps_shared_seeds_in_seed_order() -> None:
    """Check that differences are other - centre, over seeds in both, by increasing seed."""
    centre = {3: 0.5, 1: 0.7, 2: 0.6}
    other = {2: 0.9, 3: 0.4, 7: 0.1}
    np.testing.assert_allclose(paired_differences(centre, other), [0.3, -0.1])
    assert paired_differences(centre, {}).shape == (0,)


def test_holm_matches_the_hand_example() -> None:
    """Check that Holm's step-down adjustment of [0.01, 0.04, 0.03] is [0.03, 0.06, 0.06]."""
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_holm_is_monotone_and_capped_at_one() -> None:
    """Check that adjusted values never decrease with the raw ones and never exceed 1."""
    # 0.02 * 3 = 0.06 would fall below 0.04 * 2 = 0.08 before the running maximum.
    np.testing.assert_allclose(holm([0.04, 0.02, 0.7]), [0.08, 0.06, 0.7])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []


def test_holm_rejects_values_outside_zero_one() -> None:
    """Check that a p-value above 1 raises."""
    with pytest.raises(ValueError, match=re.escape("The 'p_values' parameter of holm must be floats in [0, 1]")):
        holm([0.01, 1.5])


def test_compare_to_centre_interval_is_the_t_interval_of_the_mean() -> None:
    """Check that the confidence interval is scipy's 95% t-interval of the mean paired difference."""
    other = _shifted(0.01, jitter=0.004)
    diff = paired_differences(CENTRE, other)
    effect = compare_to_centre(CENTRE, {"a": other}, "maximize")["a"]
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert effect.n == 8
    assert effect.mean == pytest.approx(0.01)
    assert (effect.ci_low, effect.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_compare_to_centre_uses_the_exact_wilcoxon_p_value() -> None:
    """Check that a small case without ties gets the exact two-sided p-value counted by hand."""
    centre = {seed: 0.0 for seed in range(5)}
    other = dict(enumerate([1.0, -2.0, 3.0, 4.0, 5.0]))
    effect = compare_to_centre(centre, {"a": other}, "maximize")["a"]
    # Of the 2**5 sign patterns, 3 have a negative rank sum <= 2 ({}, {1}, {2}): p = 2 * 3 / 32.
    assert effect.p_value == pytest.approx(0.1875)
    assert effect.p_value == pytest.approx(stats.wilcoxon([1.0, -2.0, 3.0, 4.0, 5.0], method="exact").pvalue)


def test_compare_to_centre_with_ties_uses_scipy_default() -> None:
    """Check that tied or zero differences fall back to scipy's default method."""
    centre = {seed: 0.0 for seed in range(6)}
    diffs = [1.0, 1.0, 2.0, -3.0, 0.0, 4.0]
    effect = compare_to_centre(centre, {"a": dict(enumerate(diffs))}, "maximize")["a"]
    assert effect.p_value == pytest.approx(stats.wilcoxon(diffs).pvalue)


def test_compare_to_centre_all_zero_differences_are_within_noise() -> None:
    """Check that identical results give p = 1 and no warning from scipy."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effect = compare_to_centre(CENTRE, {"same": dict(CENTRE)}, "maximize")["same"]
    assert (effect.mean, effect.p_value, effect.p_adjusted, effect.verdict) == (0.0, 1.0, 1.0, "within noise")
    assert effect.ci_low == effect.ci_high == 0.0


def test_compare_to_centre_gives_better_worse_and_within_noise() -> None:
    """Check the verdicts for a clear gain, a clear loss and a change smaller than the pairing noise."""
    neighbours = {"gain": _shifted(0.01), "loss": _shifted(-0.01), "noise": _shifted(0.0, jitter=0.01)}
    effects = compare_to_centre(CENTRE, neighbours, "maximize")
    assert {key: e.verdict for key, e in effects.items()} == {
        "gain": "better", "loss": "worse", "noise": "within noise"
    }
    # All 8 signs alike: the exact p is 2 / 2**8, tripled by Holm for the smallest of three.
    assert effects["gain"].p_value == pytest.approx(2 / 2**8)
    assert [e.p_adjusted for e in effects.values()] == pytest.approx(holm([e.p_value for e in effects.values()]))


def test_compare_to_centre_minimize_swaps_better_and_worse() -> None:
    """Check that with minimize a lower metric is better."""
    neighbours = {"gain": _shifted(0.01), "loss": _shifted(-0.01)}
    effects = compare_to_centre(CENTRE, neighbours, "minimize")
    assert (effects["gain"].verdict, effects["loss"].verdict) == ("worse", "better")


def test_compare_to_centre_correction_can_hide_a_lone_significant_result() -> None:
    """Check that p-values significant alone stay within noise once corrected over many neighbours."""
    neighbours = {f"n{i}": _shifted(0.01) for i in range(8)}
    effects = compare_to_centre(CENTRE, neighbours, "maximize")
    # 2 / 256 < 0.05 alone, but 8 * 2 / 256 = 0.0625 is not.
    assert all(e.p_value < 0.05 <= e.p_adjusted for e in effects.values())
    assert {e.verdict for e in effects.values()} == {"within noise"}


@pytest.mark.parametrize(
    ("neighbours", "direction", "alpha", "match"),
    [
        ({}, "max", 0.05, "The 'direction' parameter of compare_to_centre must be one of ('maximize', 'minimize')"),
        ({}, "maximize", 1.0, "The 'alpha' parameter of compare_to_centre must be a float in (0, 1). Got 1.0"),
        ({"late": {99: 0.5}}, "maximize", 0.05, "Neighbour 'late' shares no seed with the centre"),
    ],
)
def test_compare_to_centre_rejects_invalid_input(neighbours, direction: str, alpha: float, match: str) -> None:
    """Check that an unknown direction, an alpha outside (0, 1) and a neighbour without shared seeds raise."""
    with pytest.raises(ValueError, match=re.escape(match)):
        compare_to_centre(CENTRE, neighbours, direction, alpha=alpha)


def test_noise_floor_is_the_sample_standard_deviation() -> None:
    """Check that the noise floor is the ddof=1 standard deviation across seeds."""
    assert noise_floor({1: 1.0, 2: 2.0, 3: 4.0}) == pytest.approx(math.sqrt(7 / 3))


def test_noise_floor_rejects_a_single_seed() -> None:
    """Check that one seed has no spread to measure."""
    with pytest.raises(ValueError, match="noise_floor needs the centre trained with 2 seeds or more. Got 1"):
        noise_floor({1: 0.5})


def test_minimum_detectable_difference_matches_the_normal_formula() -> None:
    """Check that it equals (z_0.975 + z_0.8) * sd / sqrt(n), computed by hand."""
    # z_0.975 = 1.959964, z_0.8 = 0.841621.
    assert minimum_detectable_difference(0.01, 8) == pytest.approx(2.801585 * 0.01 / math.sqrt(8), rel=1e-6)
    assert minimum_detectable_difference(0.0, 8) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sd_of_differences": -1.0, "n": 8}, "The 'sd_of_differences' parameter of minimum_detectable_difference"),
        ({"sd_of_differences": 0.1, "n": 0}, "The 'n' parameter of minimum_detectable_difference must be an int >= 1"),
        ({"sd_of_differences": 0.1, "n": 8, "power": 1.0}, "The 'power' parameter of minimum_detectable_difference"),
        ({"sd_of_differences": 0.1, "n": 8, "alpha": 0.0}, "The 'alpha' parameter of minimum_detectable_difference"),
    ],
)
def test_minimum_detectable_difference_rejects_invalid_input(kwargs: dict, match: str) -> None:
    """Check that a negative sd, n < 1, and alpha or power outside (0, 1) raise."""
    with pytest.raises(ValueError, match=re.escape(match)):
        minimum_detectable_difference(**kwargs)


def test_smallest_possible_p_matches_scipy_for_all_signs_alike() -> None:
    """Check that 2 / 2**n is the exact p-value when every difference has the same sign."""
    assert smallest_possible_p(6) == pytest.approx(stats.wilcoxon([1, 2, 3, 4, 5, 6], method="exact").pvalue)
    assert (smallest_possible_p(5), smallest_possible_p(1)) == (0.0625, 1.0)


def test_smallest_possible_p_rejects_zero_seeds() -> None:
    """Check that n must be at least 1."""
    with pytest.raises(ValueError, match="The 'n' parameter of smallest_possible_p must be an int >= 1. Got 0"):
        smallest_possible_p(0)


@pytest.mark.parametrize(
    ("n", "n_tests", "expected"),
    [(5, 1, False), (6, 1, True), (9, 20, False), (10, 20, True)],
)
def test_can_reach_significance_compares_holm_threshold_with_smallest_p(n: int, n_tests: int, expected: bool) -> None:
    """Check that n seeds suffice exactly when 2 / 2**n is below alpha / n_tests."""
    assert can_reach_significance(n, n_tests) is expected


def test_can_reach_significance_rejects_zero_tests() -> None:
    """Check that n_tests must be at least 1."""
    with pytest.raises(ValueError, match="The 'n_tests' parameter of can_reach_significance must be an int >= 1"):
        can_reach_significance(8, 0)
