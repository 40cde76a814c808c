"""Paired comparisons of neighbours with a centre trained on the same seeds, for ``archsearch sensitivity``.

Each neighbour is trained with the centre's seeds, so seed-to-seed noise cancels in the difference
``neighbour - centre`` of each seed. Each neighbour gets one of four verdicts:

- ``better`` or ``worse``: a two-sided Wilcoxon signed-rank test of the differences stays below ``alpha``
  after Holm's correction over all neighbours of the centre;
- ``equivalent``: the 95% interval of the mean difference holds 0, and an equivalence test (TOST, two
  one-sided paired t-tests) shows the mean within ``± margin`` of 0, also below ``alpha`` after Holm's
  correction; the default margin is the centre's seed-to-seed sd;
- ``inconclusive``: neither, with about how many seeds would resolve it. An effect whose interval
  excludes 0 but that does not survive the correction is inconclusive, never "no difference".
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("worse", "better", "equivalent", "inconclusive")
DIRECTIONS = ("maximize", "minimize")
# scipy's exact Wilcoxon distribution is used up to this many differences; beyond it the normal
# approximation is accurate.
_EXACT_MAX_N = 50


@dataclass(frozen=True)
class PairedEffect:
    """How one neighbour differs from the centre, over the seeds both were trained with.

    Attributes:
        mean: Mean of ``neighbour - centre`` over the shared seeds.
        ci_low: Lower end of the 95% t-interval of ``mean``; NaN with fewer than 2 seeds.
        ci_high: Upper end of that interval.
        n: Number of shared seeds.
        p_value: Two-sided Wilcoxon signed-rank p-value of the differences.
        p_adjusted: ``p_value`` after Holm's correction over all neighbours compared together.
        margin: Equivalence margin: a mean difference within ``± margin`` counts as no change; NaN when
            unknown (the centre has fewer than 2 seeds), and then nothing is called equivalent.
        p_equivalence: TOST p-value that the mean lies within ``± margin``, after Holm's correction.
        verdict: One of :data:`VERDICTS`.
        seeds_needed: For an inconclusive verdict, about how many seeds would resolve it at the spread
            seen (80% power, Holm's strictest level); None for the other verdicts, or with 1 seed.
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float
    p_adjusted: float
    margin: float
    p_equivalence: float
    verdict: str
    seeds_needed: int | None = None

    @property
    def label(self) -> str:
        """The verdict as the table, summary and captions print it.

        Example:
            >>> PairedEffect(0.01, -0.01, 0.03, 3, 0.25, 1.0, 0.02, 0.4, "inconclusive", 12).label
            'inconclusive (n=3; about 12 seeds would resolve it)'
        """
        if self.verdict != "inconclusive":
            return self.verdict
        if self.seeds_needed is None:
            return f"inconclusive (n={self.n})"
        return f"inconclusive (n={self.n}; about {self.seeds_needed:,} seeds would resolve it)"


def paired_differences(centre: Mapping[int, float], other: Mapping[int, float]) -> np.ndarray:
    """Return ``other[seed] - centre[seed]`` for the seeds in both, by increasing seed.

    Example:
        >>> paired_differences({1: 0.5, 2: 0.7, 3: 0.6}, {2: 0.8, 1: 0.5, 4: 0.1}).round(3).tolist()
        [0.0, 0.1]
    """
    seeds = sorted(set(centre) & set(other))
    return np.array([other[seed] - centre[seed] for seed in seeds], dtype=float)


def holm(p_values: Sequence[float]) -> list[float]:
    """Adjust p-values for multiple tests with Holm's step-down method.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i`` (from 0), each adjusted value is
    raised to at least the one before it in that order, and all are capped at 1.

    Raises:
        ValueError: If a p-value is outside ``[0, 1]``.

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    if not all(0 <= p <= 1 for p in p_values):
        raise ValueError(f"The 'p_values' parameter of holm must be floats in [0, 1]. Got {p_values!r} instead.")
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare_to_centre(
    centre_by_seed: Mapping[int, float],
    neighbours_by_seed: Mapping[str, Mapping[int, float]],
    direction: str,
    alpha: float = 0.05,
    margin: float | None = None,
) -> dict[str, PairedEffect]:
    """Compare every neighbour with the centre, seed by seed, correcting for the number of neighbours.

    Args:
        centre_by_seed: The centre's metric by training seed.
        neighbours_by_seed: Each neighbour's metric by seed, under its key.
        direction: ``"maximize"`` or ``"minimize"``, how the metric improves.
        alpha: Family-wise error rate over all neighbours, for differences and for equivalence alike.
        margin: Equivalence margin in metric units, > 0; default: the centre's seed-to-seed sd
            (:func:`noise_floor`), or none with fewer than 2 centre seeds.

    Returns:
        The effect of each neighbour, under its key, in the order given.

    Raises:
        ValueError: If ``direction`` is unknown, ``alpha`` is not in (0, 1), ``margin`` is not a finite
            float > 0, or a neighbour shares no seed with the centre.

    Example:
        >>> centre = {seed: 0.80 + 0.01 * seed for seed in range(8)}
        >>> wider = {seed: value + 0.02 + 0.001 * seed for seed, value in centre.items()}
        >>> compare_to_centre(centre, {"wider": wider}, "maximize")["wider"].verdict
        'better'
    """
    if direction not in DIRECTIONS:
        raise ValueError(
            f"The 'direction' parameter of compare_to_centre must be one of {DIRECTIONS}. Got {direction!r} instead."
        )
    _check_alpha("compare_to_centre", alpha)
    if margin is None:
        margin = noise_floor(centre_by_seed) if len(centre_by_seed) >= 2 else math.nan
    else:
        check_margin("compare_to_centre", margin)
    differences = {key: paired_differences(centre_by_seed, other) for key, other in neighbours_by_seed.items()}
    for key, diff in differences.items():
        if diff.size == 0:
            raise ValueError(
                f"Neighbour {key!r} shares no seed with the centre; train it with the centre's seeds first."
            )
    keys = list(differences)
    p_values = {key: _wilcoxon_p(diff) for key, diff in differences.items()}
    adjusted = dict(zip(keys, holm([p_values[k] for k in keys])))
    equivalence = dict(zip(keys, holm([tost_p(differences[k], margin) for k in keys])))
    sign = 1.0 if direction == "maximize" else -1.0
    effects = {}
    for key, diff in differences.items():
        mean = float(diff.mean())
        ci_low, ci_high = _t_interval(diff)
        seeds_needed = None
        if adjusted[key] < alpha and sign * mean > 0:
            verdict = "better"
        elif adjusted[key] < alpha and sign * mean < 0:
            verdict = "worse"
        elif ci_low <= 0 <= ci_high and equivalence[key] < alpha:
            verdict = "equivalent"
        else:
            verdict = "inconclusive"
            sd = float(diff.std(ddof=1)) if diff.size >= 2 else math.nan
            seeds_needed = seeds_to_resolve(mean, sd, margin, diff.size, len(keys), alpha)
        effects[key] = PairedEffect(
            mean,
            ci_low,
            ci_high,
            diff.size,
            p_values[key],
            adjusted[key],
            margin,
            equivalence[key],
            verdict,
            seeds_needed,
        )
    return effects


def tost_p(diff: np.ndarray, margin: float) -> float:
    """Return the TOST p-value that the mean of paired differences ``diff`` lies within ``± margin``.

    Two one-sided paired t-tests: ``mean > -margin`` and ``mean < margin``; the p-value is the larger of
    the two. With fewer than 2 differences, or an unknown (NaN) margin, nothing can be shown and it is 1.
    Differences without spread are equivalent exactly when their mean is inside the margin.

    Example:
        >>> round(tost_p(np.array([0.001, -0.002, 0.0, 0.001]), 0.01), 4)
        0.0004
    """
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    n = diff.size
    if n < 2 or not math.isfinite(margin):
        return 1.0
    mean = float(diff.mean())
    se = float(diff.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    above_low = float(stats.t.sf((mean + margin) / se, n - 1))
    below_high = float(stats.t.cdf((mean - margin) / se, n - 1))
    return max(above_low, below_high)


def seeds_to_resolve(
    mean: float, sd: float, margin: float, n: int, n_tests: int, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Return about how many seeds would turn an inconclusive comparison into a verdict.

    The fewer of: the seeds at which the observed ``mean`` is the :func:`minimum_detectable_difference`
    at Holm's strictest level ``alpha / n_tests`` (and at which the Wilcoxon test can reach it at all),
    and the seeds at which TOST shows equivalence with this power when ``|mean| < margin``. Always more
    than ``n``; None when the spread is unknown (``n < 2``) or neither verdict is reachable.

    Raises:
        ValueError: If ``n`` or ``n_tests`` is not an int >= 1, or ``alpha`` or ``power`` is not in (0, 1).

    Example:
        >>> seeds_to_resolve(mean=0.01, sd=0.01, margin=0.005, n=3, n_tests=10)
        14
    """
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    owner = "seeds_to_resolve"
    _check_count(owner, "n", n)
    _check_count(owner, "n_tests", n_tests)
    _check_alpha(owner, alpha)
    if not 0 < power < 1:
        raise ValueError(f"The 'power' parameter of {owner} must be a float in (0, 1). Got {power!r} instead.")
    if not (math.isfinite(sd) and math.isfinite(mean)):
        return None
    level = alpha / n_tests
    candidates = []
    if mean != 0:
        z = stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power)
        reachable = next(k for k in itertools.count(1) if can_reach_significance(k, n_tests, alpha))
        candidates.append(max(reachable, math.ceil((z * sd / abs(mean)) ** 2)))
    if math.isfinite(margin) and abs(mean) < margin:
        z = stats.norm.ppf(1 - level) + stats.norm.ppf(power)
        candidates.append(max(2, math.ceil((z * sd / (margin - abs(mean))) ** 2)))
    return max(n + 1, min(candidates)) if candidates else None


def check_margin(owner: str, margin: float) -> float:
    """Return ``margin`` if it is a finite real > 0; raise the scikit-learn style error otherwise.

    Raises:
        ValueError: If ``margin`` is not a finite real number > 0.
    """
    ok = isinstance(margin, numbers.Real) and not isinstance(margin, bool) and math.isfinite(margin) and margin > 0
    if not ok:
        raise ValueError(
            f"The 'margin' parameter of {owner} must be a finite float > 0 (the largest mean difference "
            f"that counts as no change, in metric units). Got {margin!r} instead."
        )
    return float(margin)


def noise_floor(centre_by_seed: Mapping[int, float]) -> float:
    """Return the sample standard deviation (``ddof=1``) of the centre's metric across seeds.

    Raises:
        ValueError: With fewer than 2 seeds.
    """
    if len(centre_by_seed) < 2:
        raise ValueError(
            f"noise_floor needs the centre trained with 2 seeds or more. Got {len(centre_by_seed)} seed(s)."
        )
    return float(np.std(list(centre_by_seed.values()), ddof=1))


def minimum_detectable_difference(sd_of_differences: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Return the smallest mean paired difference a two-sided test of ``n`` seeds finds with this power.

    Uses the normal approximation ``(z_{1 - alpha / 2} + z_power) * sd / sqrt(n)``; Holm's correction
    over many neighbours is not included, so pass ``alpha / n_tests`` for the strictest neighbour.

    Raises:
        ValueError: If ``sd_of_differences < 0``, ``n < 1``, or ``alpha`` or ``power`` is not in (0, 1).

    Example:
        >>> round(minimum_detectable_difference(0.01, 8), 4)
        0.0099
    """
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    owner = "minimum_detectable_difference"
    if not sd_of_differences >= 0:
        raise ValueError(
            f"The 'sd_of_differences' parameter of {owner} must be a float >= 0. Got {sd_of_differences!r} instead."
        )
    _check_count(owner, "n", n)
    _check_alpha(owner, alpha)
    if not 0 < power < 1:
        raise ValueError(f"The 'power' parameter of {owner} must be a float in (0, 1). Got {power!r} instead.")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * sd_of_differences / math.sqrt(n))


def smallest_possible_p(n: int) -> float:
    """Return the smallest two-sided exact Wilcoxon p-value of ``n`` differences, ``2 / 2**n`` (at most 1).

    Raises:
        ValueError: If ``n < 1``.
    """
    _check_count("smallest_possible_p", "n", n)
    return min(1.0, 2.0 / 2**n)


def can_reach_significance(n: int, n_tests: int, alpha: float = 0.05) -> bool:
    """Say whether ``n`` seeds can make any of ``n_tests`` neighbours significant after Holm's correction.

    Holm's strictest threshold is ``alpha / n_tests``; with all signs alike the exact p-value is
    :func:`smallest_possible_p`, and no result with ``n`` seeds goes below it.

    Raises:
        ValueError: If ``n < 1``, ``n_tests < 1`` or ``alpha`` is not in (0, 1).

    Example:
        >>> can_reach_significance(5, 1), can_reach_significance(9, 20), can_reach_significance(10, 20)
        (False, False, True)
    """
    _check_count("can_reach_significance", "n_tests", n_tests)
    _check_alpha("can_reach_significance", alpha)
    return smallest_possible_p(n) < alpha / n_tests


def _wilcoxon_p(diff: np.ndarray) -> float:
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    if not np.any(diff):
        # scipy returns NaN or warns here; no difference at all is no evidence of one.
        return 1.0
    # With zeros or tied magnitudes the exact distribution no longer applies; scipy's default handles them.
    no_ties = np.all(diff != 0) and np.unique(np.abs(diff)).size == diff.size
    exact = diff.size <= _EXACT_MAX_N and no_ties
    if exact:
        return float(stats.wilcoxon(diff, method="exact").pvalue)
    return float(stats.wilcoxon(diff).pvalue)


def _t_interval(diff: np.ndarray) -> tuple[float, float]:
    """The 95% t-interval of the mean of ``diff``; NaN bounds with fewer than 2 values."""
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    n = diff.size
    if n < 2:
        return math.nan, math.nan
    mean = float(diff.mean())
    half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
    return mean - half, mean + half


def _check_count(owner: str, name: str, value: int) -> None:
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"The {name!r} parameter of {owner} must be an int >= 1. Got {value!r} instead.")


def _check_alpha(owner: str, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of {owner} must be a float in (0, 1). Got {alpha!r} instead.")
