"""Pareto fronts of quality against one size measure, and their hypervolume (hand-written: 2-D is a sweep).

Scores are oriented so that higher is better (`StudyData.score`); costs (parameters, FLOPs, latency) lower
is better. The hypervolume is measured in the (score, log10 cost) plane, where a front of networks that spans
three decades of size is not decided by its largest member alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["front_indices", "hypervolume_2d", "hypervolume_history", "log_cost_hypervolume"]


def front_indices(scores: Sequence[float], costs: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (higher score, lower cost), by increasing cost.

    Of points equal in both, the first is kept.

    >>> front_indices([0.9, 0.8, 0.95, 0.7], [100, 50, 400, 60])
    [1, 0, 2]
    """
    order = sorted(range(len(scores)), key=lambda i: (costs[i], -scores[i], i))
    front, best = [], -math.inf
    for i in order:
        if not (math.isfinite(scores[i]) and math.isfinite(costs[i])):
            continue
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front


def hypervolume_2d(scores: Sequence[float], costs: Sequence[float], ref_score: float, ref_cost: float) -> float:
    """Area dominated by the points and bounded by the reference point (worse than every point counted).

    >>> hypervolume_2d([1.0, 2.0], [1.0, 3.0], 0.0, 4.0)
    4.0
    """
    total, previous = 0.0, ref_score
    for i in front_indices(scores, costs):
        if scores[i] <= ref_score or costs[i] >= ref_cost:
            continue
        # Each front point, cheapest first, adds the strip from its cost to the reference, above the last score.
        total += (ref_cost - costs[i]) * (scores[i] - max(previous, ref_score))
        previous = scores[i]
    return total


def log_cost_hypervolume(scores: Sequence[float], costs: Sequence[float], ref_score: float, ref_cost: float) -> float:
    """`hypervolume_2d` with costs on a log10 scale (costs <= 0 left out)."""
    pairs = [(s, math.log10(c)) for s, c in zip(scores, costs) if c > 0]
    if not pairs:
        return 0.0
    s, c = zip(*pairs)
    return hypervolume_2d(s, c, ref_score, math.log10(ref_cost))


def hypervolume_history(
    scores: Sequence[float], costs: Sequence[float], ref_score: float, ref_cost: float
) -> np.ndarray:
    """The log-cost hypervolume of the first k points, for k = 1 .. n (points in the order they finished)."""
    return np.array(
        [log_cost_hypervolume(scores[: k + 1], costs[: k + 1], ref_score, ref_cost) for k in range(len(scores))]
    )
