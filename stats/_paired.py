"""Paired comparisons of neighbours with a centre trained on the same seeds, for ``archsearch sensitivity``.

Each neighbour is trained with the centre's seeds, so seed-to-seed noise cancels in the difference
``neighbour - centre`` of each seed. Each neighbour gets one of four verdicts:

- ``better`` or ``worse``: a two-sided Wilcoxon signed-rank test of the differences stays below ``alpha``
  after Holm's correction over all neighbours of the centre;
- ``equivalent``: the 95% interval holds 0, and an equivalence test (TOST, two one-sided paired t-tests)
  shows the mean within ``± margin`` of 0, also below ``alpha`` after Holm's correction; the default margin
  is the centre's seed-to-seed sd, and a margin is never below the metric's resolution (one validation row
  for accuracy). Differences without any spread show nothing: equal accuracies on 3 seeds are as likely
  one quantized value of a spread as no spread at all;
- ``inconclusive``: neither, with its direction ("lower on 3 of 3 seeds") and about how many seeds would
  resolve it. An effect significant alone but not after the correction is inconclusive, never "no difference".

The interval beside each p-value comes from the same test: the shifts of the differences that the
signed-rank test does not reject at 5% (inverting the test, as the Hodges-Lehmann interval does), so it
excludes 0 exactly when the unadjusted p-value is below 0.05. With 5 seeds or fewer no shift is rejected
(the smallest p-value is 2 / 2**n >= 0.0625) and the interval is unbounded.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from archsearch.stats._format import plural

VERDICTS = ("worse", "better", "equivalent", "inconclusive")
DIRECTIONS = ("maximize", "minimize")
# scipy's exact Wilcoxon distribution is used up to this many differences; beyond it the normal
# approximation is accurate.
_EXACT_MAX_N = 50
_ROW_METRICS = ("accuracy", "balanced_accuracy")  # metrics that move in steps of whole rows


@dataclass(frozen=True)
class PairedEffect:
    """How one neighbour differs from the centre, over the seeds both were trained with.

    Attributes:
        mean: Mean of ``neighbour - centre`` over the shared seeds.
        ci_low: Lower end of the 95% interval of the signed-rank test (the shifts it does not reject), which
            excludes 0 exactly when ``p_value < 0.05``; -inf when no shift is rejected, NaN with 1 seed.
        ci_high: Upper end of that interval; +inf when unbounded.
        n: Number of shared seeds.
        p_value: Two-sided Wilcoxon signed-rank p-value of the differences, before Holm's correction.
        p_adjusted: ``p_value`` after Holm's correction over all neighbours compared together.
        margin: Equivalence margin: a mean difference within ``± margin`` counts as no change; NaN when
            unknown (the centre has fewer than 2 seeds), and then nothing is called equivalent.
        p_equivalence: TOST p-value that the mean lies within ``± margin``, after Holm's correction.
        verdict: One of :data:`VERDICTS`.
        seeds_needed: For an inconclusive verdict, about how many seeds would resolve it at the spread
            seen (80% power, Holm's strictest level); None for the other verdicts, or with 1 seed.
        n_higher: Seeds on which the neighbour scored higher than the centre.
        n_lower: Seeds on which it scored lower (the rest it equalled).
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
    n_higher: int = 0
    n_lower: int = 0

    @property
    def direction(self) -> str:
        """On how many seeds the neighbour was higher, lower or equal: ``"lower on 3 of 3 seeds"``.

        Example:
            >>> PairedEffect(0.01, -0.01, 0.03, 4, 0.25, 1.0, 0.02, 0.4, "inconclusive", 12, 3, 0).direction
            'higher on 3, equal on 1 of 4 seeds'
        """
        counts = (("higher", self.n_higher), ("lower", self.n_lower), ("equal", self.n - self.n_higher - self.n_lower))
        return ", ".join(f"{word} on {count}" for word, count in counts if count) + f" of {plural(self.n, 'seed')}"

    @property
    def label(self) -> str:
        """The verdict as the table, summary and captions print it; an inconclusive one with its direction.

        Example:
            >>> PairedEffect(-0.01, -0.03, 0.01, 3, 0.25, 1.0, 0.02, 0.4, "inconclusive", 12, 0, 3).label
            'inconclusive (n=3; lower on 3 of 3 seeds)'
        """
        if self.verdict != "inconclusive":
            return self.verdict
        return f"inconclusive (n={self.n}; {self.direction})"


def paired_differences(centre: Mapping[int, float], other: Mapping[int, float]) -> np.ndarray:
    """Return ``other[seed] - centre[seed]`` for the seeds in both, by increasing seed.

    Example:
        >>> paired_differences({1: 0.5, 2: 0.7, 3: 0.6}, {2: 0.8, 1: 0.5, 4: 0.1}).round(3).tolist()
        [0.0, 0.1]
    """
    seeds = sorted(set(centre) & set(other))
    # Rounded so that equal differences of float metrics tie exactly (0.9 + 1/359 - 0.9 is not 1/359 in floating
    # point), as the rank tests assume; 12 decimals are far below any metric's resolution.
    return np.round(np.array([other[seed] - centre[seed] for seed in seeds], dtype=float), 12)


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
    resolution: float = 0.0,
) -> dict[str, PairedEffect]:
    """Compare every neighbour with the centre, seed by seed, correcting for the number of neighbours.

    Args:
        centre_by_seed: The centre's metric by training seed.
        neighbours_by_seed: Each neighbour's metric by seed, under its key.
        direction: ``"maximize"`` or ``"minimize"``, how the metric improves.
        alpha: Family-wise error rate over all neighbours, for differences and for equivalence alike.
        margin: Equivalence margin in metric units, > 0; default: the centre's seed-to-seed sd
            (:func:`noise_floor`), or none with fewer than 2 centre seeds.
        resolution: The smallest step the metric can take (:func:`metric_resolution`); the margin is
            raised to it, since a difference below one step cannot be seen.

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
    margin = _checked_margin(centre_by_seed, direction, alpha, margin, resolution)
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
        ci_low, ci_high = _wilcoxon_interval(diff)
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
            int((diff > 0).sum()),
            int((diff < 0).sum()),
        )
    return effects


def _checked_margin(
    centre_by_seed: Mapping[int, float], direction: str, alpha: float, margin: float | None, resolution: float
) -> float:
    """`compare_to_centre`'s checks, and its margin: the given one or the centre's sd, raised to `resolution`."""
    if direction not in DIRECTIONS:
        raise ValueError(
            f"The 'direction' parameter of compare_to_centre must be one of {DIRECTIONS}. Got {direction!r} instead."
        )
    _check_alpha("compare_to_centre", alpha)
    if margin is None:
        margin = noise_floor(centre_by_seed) if len(centre_by_seed) >= 2 else math.nan
    else:
        check_margin("compare_to_centre", margin)
    if not (isinstance(resolution, numbers.Real) and 0 <= resolution < math.inf):
        raise ValueError(
            f"The 'resolution' parameter of compare_to_centre must be a float >= 0. Got {resolution!r} instead."
        )
    return max(margin, resolution) if math.isfinite(margin) else margin


def metric_resolution(metric: str, n_rows: int) -> float:
    """The smallest step a validation metric can take: one row of ``n_rows`` for accuracy and balanced
    accuracy (for balanced accuracy one row moves it by about that much), 0 for a continuous metric.

    Raises:
        ValueError: If ``n_rows`` is not an int >= 1.

    Example:
        >>> round(metric_resolution("accuracy", 359), 4), metric_resolution("rmse", 359)
        (0.0028, 0.0)
    """
    _check_count("metric_resolution", "n_rows", n_rows)
    return 1.0 / n_rows if metric in _ROW_METRICS else 0.0


def tost_p(diff: np.ndarray, margin: float) -> float:
    """Return the TOST p-value that the mean of paired differences ``diff`` lies within ``± margin``.

    Two one-sided paired t-tests: ``mean > -margin`` and ``mean < margin``; the p-value is the larger of
    the two. With fewer than 2 differences, an unknown (NaN) margin, or differences without spread, nothing
    can be shown and it is 1: a t-test of zero spread would call any mean inside the margin certain, and
    equal differences of a metric counted in rows are as likely one value of a spread as no spread at all.

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
        return 1.0
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


def fewest_seeds(n_tests: int, alpha: float = 0.05) -> int:
    """Return the fewest seeds with which any of ``n_tests`` neighbours can be called better or worse after
    Holm's correction (:func:`can_reach_significance`).

    Raises:
        ValueError: If ``n_tests < 1`` or ``alpha`` is not in (0, 1).

    Example:
        >>> fewest_seeds(1), fewest_seeds(6), fewest_seeds(20)
        (6, 8, 10)
    """
    return next(n for n in itertools.count(1) if can_reach_significance(n, n_tests, alpha))


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided signed-rank p-value: exact (zeros dropped, tied magnitudes given their mean rank) up to
    `_EXACT_MAX_N` non-zero differences, scipy's normal approximation beyond.

    The exact distribution with ties is written here because scipy reaches it by enumerating all 2**n sign
    patterns (its permutation method: 0.06 s a call at 8 seeds, 2 s at 13), and the interval calls this
    some 20 times per neighbour; counting the sums of (doubled) ranks gives the same distribution at once.
    Without ties it is scipy's exact distribution.
    """
    from scipy import stats  # imported here so that importing archsearch.stats stays light

    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        # scipy returns NaN or warns here; no difference at all is no evidence of one.
        return 1.0
    if nonzero.size > _EXACT_MAX_N:
        return float(stats.wilcoxon(diff).pvalue)
    doubled = np.rint(2 * stats.rankdata(np.abs(nonzero))).astype(np.int64)  # mean ranks are whole or halves
    counts = np.zeros(int(doubled.sum()) + 1)  # counts[s]: sign patterns whose positive (doubled) ranks sum to s
    counts[0] = 1.0
    for rank in doubled:
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    observed = int(doubled[nonzero > 0].sum())
    probabilities = counts / 2.0**nonzero.size
    return float(min(1.0, 2 * min(probabilities[: observed + 1].sum(), probabilities[observed:].sum())))


def _wilcoxon_interval(diff: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The shifts ``d`` whose differences ``diff - d`` the signed-rank test does not reject at ``1 - level``.

    Between two consecutive Walsh averages ``(diff_i + diff_j) / 2`` the signs and the rank order of
    ``diff - d`` do not change, nor does the p-value, which falls away from the centre of the differences
    on either side; so each bound is a Walsh average, found by bisection over those segments. A bound
    is infinite when even the segment beyond the last Walsh average is not rejected; NaN with 1 value.
    """
    if diff.size < 2:
        return math.nan, math.nan
    walsh = np.unique((diff[:, None] + diff[None, :])[np.triu_indices(diff.size)] / 2)
    # One test point per segment: below the first Walsh average, between each pair, above the last.
    gap = max(float(walsh[-1] - walsh[0]), float(np.abs(diff).max()), 1e-12)
    points = np.concatenate([[walsh[0] - gap], (walsh[:-1] + walsh[1:]) / 2, [walsh[-1] + gap]])

    def p(i: int) -> float:
        return _wilcoxon_p(diff - points[i])

    # The p-value peaks next to the median Walsh average (the Hodges-Lehmann estimate) and falls either side.
    middle = int(np.searchsorted(walsh, np.median(walsh)))
    centre = max(range(max(0, middle - 1), min(len(points), middle + 2)), key=p)
    if p(centre) < 1 - level:
        # Differences without spread: only the shift onto their common value (all zeros, p = 1) is kept.
        kept = [float(w) for w in walsh if _wilcoxon_p(diff - w) >= 1 - level]
        return (min(kept), max(kept)) if kept else (math.nan, math.nan)
    low = _last_kept(lambda i: p(i) >= 1 - level, centre, 0)
    high = _last_kept(lambda i: p(i) >= 1 - level, centre, len(points) - 1)
    # Segment i spans walsh[i - 1] to walsh[i]; segments 0 and len(walsh) reach out to infinity.
    return (-math.inf if low == 0 else float(walsh[low - 1])), (
        math.inf if high == len(points) - 1 else float(walsh[high])
    )


def _last_kept(kept: Callable[[int], bool], start: int, end: int) -> int:
    """The farthest index from a kept `start` towards `end` that is still kept, by bisection (kept is monotone)."""
    if kept(end):
        return end
    inside, outside = start, end  # kept(inside), not kept(outside)
    while abs(outside - inside) > 1:
        middle = (inside + outside) // 2  # strictly between them, in either direction
        inside, outside = (middle, outside) if kept(middle) else (inside, middle)
    return inside


def _check_count(owner: str, name: str, value: int) -> None:
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"The {name!r} parameter of {owner} must be an int >= 1. Got {value!r} instead.")


def _check_alpha(owner: str, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of {owner} must be a float in (0, 1). Got {alpha!r} instead.")
