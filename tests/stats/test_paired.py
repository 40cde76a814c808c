"""Paired statistics of neighbours against a centre, on synthetic seeds whose answers are known."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from scipy import stats

from archsearch.stats import (
    can_reach_significance,
    compare_to_centre,
    holm,
    metric_resolution,
    minimum_detectable_difference,
    noise_floor,
    paired_differences,
    seeds_to_resolve,
    smallest_possible_p,
    tost_p,
)

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


def test_compare_to_centre_interval_is_the_signed_rank_tests_own() -> None:
    """Check that the interval is the set of shifts the Wilcoxon signed-rank test does not reject at 5%, the
    test whose p-value stands beside it, so that it excludes 0 exactly when that p-value is below 0.05."""
    other = _shifted(0.01, jitter=0.004)
    diff = paired_differences(CENTRE, other)
    effect = compare_to_centre(CENTRE, {"a": other}, "maximize")["a"]
    assert effect.n == 8 and effect.mean == pytest.approx(0.01)
    # scipy's own test keeps the shifts just inside either bound and rejects those just outside.
    eps = 1e-9
    for inside, outside in ((effect.ci_low + eps, effect.ci_low - eps), (effect.ci_high - eps, effect.ci_high + eps)):
        assert stats.wilcoxon(diff - inside).pvalue >= 0.05 > stats.wilcoxon(diff - outside).pvalue
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 6, 8, 12):
        for _ in range(10):
            diffs = dict(enumerate(rng.normal(rng.uniform(-0.02, 0.02), 0.01, n)))
            e = compare_to_centre({s: 0.0 for s in range(n)}, {"a": diffs}, "maximize")["a"]
            assert (e.ci_low > 0 or e.ci_high < 0) == (e.p_value < 0.05), (n, e)


def test_an_interval_the_test_cannot_bound_is_unbounded() -> None:
    """Check the issue's case: 4 seeds all lower by about 0.0175, p = 0.125 at best, so no 95% interval excludes 0."""
    centre = {seed: 0.9 for seed in range(4)}
    other = {seed: 0.9 - 0.0175 + 0.002 * (seed - 1.5) for seed in range(4)}
    effect = compare_to_centre(centre, {"a": other}, "maximize", margin=0.01)["a"]
    assert effect.p_value == pytest.approx(0.125) and effect.verdict == "inconclusive"
    assert effect.ci_low == -math.inf and effect.ci_high == math.inf
    assert effect.label == "inconclusive (n=4; lower on 4 of 4 seeds)"


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


def test_differences_without_spread_are_no_evidence_of_equivalence() -> None:
    """Check the issue's case: 3 seeds whose runs are identical (all differences 0) are inconclusive, not
    equivalent, and say that the neighbour equalled the centre on every seed; scipy warns of nothing."""
    centre = {0: 0.9610, 1: 0.9638, 2: 0.9582}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effect = compare_to_centre(centre, {"same": dict(centre)}, "maximize", resolution=1 / 359)["same"]
    assert (effect.mean, effect.p_value, effect.p_adjusted, effect.verdict) == (0.0, 1.0, 1.0, "inconclusive")
    assert effect.p_equivalence == 1.0
    assert effect.label == "inconclusive (n=3; equal on 3 of 3 seeds)"
    # Many more seeds, one row apart each time: still no spread, still no evidence of equivalence.
    centre = {seed: 0.9 for seed in range(12)}
    shifted = {seed: 0.9 + 1 / 359 for seed in range(12)}
    assert compare_to_centre(centre, {"a": shifted}, "maximize", margin=0.01)["a"].verdict != "equivalent"


def test_the_margin_is_never_below_the_metrics_resolution() -> None:
    """Check the issue's case: a seed-to-seed sd of 0.0016 is below one validation row of 359 (0.0028), so the
    margin is one row; a given margin below a row is raised to it too."""
    centre = {0: 0.9610, 1: 0.9638, 2: 0.9610, 3: 0.9638}
    other = {seed: value + 0.0001 * seed for seed, value in centre.items()}
    assert noise_floor(centre) == pytest.approx(0.0016, abs=1e-4)
    effect = compare_to_centre(centre, {"a": other}, "maximize", resolution=1 / 359)["a"]
    assert effect.margin == pytest.approx(1 / 359)
    given = compare_to_centre(centre, {"a": other}, "maximize", margin=0.001, resolution=1 / 359)["a"]
    assert given.margin == pytest.approx(1 / 359)
    assert compare_to_centre(centre, {"a": other}, "maximize", margin=0.01, resolution=1 / 359)["a"].margin == 0.01


@pytest.mark.parametrize(
    ("metric", "n_rows", "expected"),
    [("accuracy", 359, 1 / 359), ("balanced_accuracy", 100, 0.01), ("log_loss", 359, 0.0), ("rmse", 50, 0.0)],
)
def test_metric_resolution_is_one_row_for_accuracy_like_metrics(metric: str, n_rows: int, expected: float) -> None:
    """Check that a metric counting rows moves in steps of one row, and a continuous one has no step."""
    assert metric_resolution(metric, n_rows) == pytest.approx(expected)


def test_metric_resolution_rejects_no_rows() -> None:
    """Check that a resolution needs at least one row."""
    with pytest.raises(ValueError, match=r"The 'n_rows' parameter of metric_resolution must be an int >= 1\. Got 0"):
        metric_resolution("accuracy", 0)


def test_compare_to_centre_gives_each_of_the_four_verdicts() -> None:
    """Check the verdicts for a clear gain, a clear loss, a tight null change and a noisy null change."""
    neighbours = {
        "gain": _shifted(0.01),
        "loss": _shifted(-0.01),
        "same": _shifted(0.0, jitter=0.001),
        "noisy": _shifted(0.0, jitter=0.03),
    }
    effects = compare_to_centre(CENTRE, neighbours, "maximize")
    assert {key: e.verdict for key, e in effects.items()} == {
        "gain": "better",
        "loss": "worse",
        "same": "equivalent",
        "noisy": "inconclusive",
    }
    # All 8 signs alike: the exact p is 2 / 2**8, multiplied by Holm for the smallest of four.
    assert effects["gain"].p_value == pytest.approx(2 / 2**8)
    assert [e.p_adjusted for e in effects.values()] == pytest.approx(holm([e.p_value for e in effects.values()]))
    # The default margin is the centre's seed-to-seed sd, and equivalence is Holm-corrected too.
    assert effects["same"].margin == pytest.approx(noise_floor(CENTRE))
    raw = [tost_p(paired_differences(CENTRE, other), noise_floor(CENTRE)) for other in neighbours.values()]
    assert [e.p_equivalence for e in effects.values()] == pytest.approx(holm(raw))
    # Only the inconclusive verdict says how many seeds would resolve it, and more than were used.
    assert effects["noisy"].seeds_needed > 8
    noisy = paired_differences(CENTRE, neighbours["noisy"])
    higher, lower = int((noisy > 0).sum()), int((noisy < 0).sum())
    assert effects["noisy"].label == f"inconclusive (n=8; higher on {higher}, lower on {lower} of 8 seeds)"
    assert [effects[k].seeds_needed for k in ("gain", "loss", "same")] == [None, None, None]


def test_compare_to_centre_minimize_swaps_better_and_worse() -> None:
    """Check that with minimize a lower metric is better."""
    neighbours = {"gain": _shifted(0.01), "loss": _shifted(-0.01)}
    effects = compare_to_centre(CENTRE, neighbours, "minimize")
    assert (effects["gain"].verdict, effects["loss"].verdict) == ("worse", "better")


def test_compare_to_centre_interval_without_zero_but_not_holm_significant_is_inconclusive() -> None:
    """Check that p-values significant alone but not after Holm, with intervals excluding 0, are inconclusive."""
    neighbours = {f"n{i}": _shifted(0.01) for i in range(8)}
    effects = compare_to_centre(CENTRE, neighbours, "maximize")
    # 2 / 256 < 0.05 alone, but 8 * 2 / 256 = 0.0625 is not; the intervals exclude 0 by far.
    assert all(e.p_value < 0.05 <= e.p_adjusted for e in effects.values())
    assert all(e.ci_low > 0 for e in effects.values())
    assert {e.verdict for e in effects.values()} == {"inconclusive"}
    # The mean 0.01 is inside the margin (the centre sd, about 0.02), yet a shown difference is not "no change".
    assert all(abs(e.mean) < e.margin and e.p_equivalence < 0.05 for e in effects.values())
    # Holm over 8 tests needs 2 / 2**n < 0.05 / 8, so at least 9 seeds.
    assert {e.seeds_needed for e in effects.values()} == {9}


def test_compare_to_centre_with_an_explicit_margin() -> None:
    """Check that a given margin replaces the centre's sd: a margin below the spread leaves it inconclusive."""
    same = _shifted(0.0, jitter=0.001)
    assert compare_to_centre(CENTRE, {"a": same}, "maximize", margin=0.01)["a"].verdict == "equivalent"
    tight = compare_to_centre(CENTRE, {"a": same}, "maximize", margin=0.0001)["a"]
    assert (tight.margin, tight.verdict) == (0.0001, "inconclusive")


def test_compare_to_centre_with_one_seed_is_inconclusive_without_a_seed_count() -> None:
    """Check that one shared seed gives no interval, no margin, no verdict and no estimate of the seeds needed."""
    effect = compare_to_centre({0: 0.5}, {"a": {0: 0.9}}, "maximize")["a"]
    assert math.isnan(effect.ci_low) and math.isnan(effect.margin)
    assert (effect.verdict, effect.seeds_needed) == ("inconclusive", None)
    assert effect.label == "inconclusive (n=1; higher on 1 of 1 seed)"


def test_tost_p_matches_two_one_sided_t_tests_by_hand() -> None:
    """Check that TOST's p-value is the larger of scipy's two one-sided one-sample t-tests against -+margin."""
    diff = np.array([0.004, -0.002, 0.001, 0.006, -0.001, 0.003])
    margin = 0.005
    lower = stats.ttest_1samp(diff, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(diff, margin, alternative="less").pvalue
    assert tost_p(diff, margin) == pytest.approx(max(lower, upper))
    # By hand: mean 0.0018333, sd 0.0030605, se 0.0012494; the upper test is the binding one.
    t_upper = (diff.mean() - margin) / (diff.std(ddof=1) / math.sqrt(6))
    assert t_upper == pytest.approx(-2.5344, abs=1e-4)
    assert tost_p(diff, margin) == pytest.approx(stats.t.cdf(t_upper, 5))


def test_tost_p_edge_cases() -> None:
    """Check that one difference or an unknown margin shows nothing, and spread-free differences are exact."""
    assert tost_p(np.array([0.0]), 0.1) == 1.0
    assert tost_p(np.array([0.0, 0.001]), math.nan) == 1.0
    # Without spread nothing is shown: equal differences are as likely one quantized value of a spread as none.
    assert tost_p(np.array([0.01, 0.01]), 0.02) == 1.0
    assert tost_p(np.array([0.03, 0.03]), 0.02) == 1.0


def test_seeds_to_resolve_inverts_the_power_calculation() -> None:
    """Check that the seeds needed make the observed mean the minimum detectable difference (normal formula)."""
    n = seeds_to_resolve(mean=0.01, sd=0.02, margin=0.001, n=3, n_tests=4)
    z = stats.norm.ppf(1 - 0.05 / 4 / 2) + stats.norm.ppf(0.8)
    assert n == math.ceil((z * 0.02 / 0.01) ** 2)
    assert (
        minimum_detectable_difference(0.02, n, 0.05 / 4) <= 0.01 < minimum_detectable_difference(0.02, n - 1, 0.05 / 4)
    )
    # A mean near 0 inside the margin is resolved sooner by equivalence.
    z_eq = stats.norm.ppf(1 - 0.05 / 4) + stats.norm.ppf(0.8)
    assert seeds_to_resolve(0.0, 0.02, 0.01, 3, 4) == math.ceil((z_eq * 0.02 / 0.01) ** 2)
    # Always more seeds than used, and nothing to say without a spread.
    assert seeds_to_resolve(0.5, 0.0, 0.1, 20, 1) == 21
    assert seeds_to_resolve(0.5, math.nan, 0.1, 1, 1) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "The 'n' parameter of seeds_to_resolve must be an int >= 1. Got 0 instead."),
        ({"n_tests": 0}, "The 'n_tests' parameter of seeds_to_resolve must be an int >= 1. Got 0 instead."),
        ({"alpha": 0.0}, "The 'alpha' parameter of seeds_to_resolve must be a float in (0, 1). Got 0.0 instead."),
        ({"power": 1.0}, "The 'power' parameter of seeds_to_resolve must be a float in (0, 1). Got 1.0 instead."),
    ],
)
def test_seeds_to_resolve_rejects_invalid_input(kwargs: dict, match: str) -> None:
    """Check that invalid counts, alpha and power raise with the parameter named."""
    arguments = {"mean": 0.01, "sd": 0.01, "margin": 0.01, "n": 3, "n_tests": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(match)):
        seeds_to_resolve(**arguments)


@pytest.mark.parametrize("margin", [-0.01, 0.0, math.nan, math.inf, True, "0.01"])
def test_compare_to_centre_rejects_an_invalid_margin(margin: object) -> None:
    """Check that a margin that is not a finite float > 0 raises with the rule and the value."""
    match = f"The 'margin' parameter of compare_to_centre must be a finite float > 0 (the largest mean difference that counts as no change, in metric units). Got {margin!r} instead."
    with pytest.raises(ValueError, match=re.escape(match)):
        compare_to_centre(CENTRE, {"a": _shifted(0.0)}, "maximize", margin=margin)


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
