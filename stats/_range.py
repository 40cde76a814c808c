"""The metric range every figure draws: fitted to the bulk of the trials, with far-off ones counted apart.

One trial at chance (a diverged learning rate: 0.0975 accuracy on digits while the rest sit at 0.94-0.986) would
otherwise stretch every metric axis to 0.1-1 and press the other trials into one line, and give a colour scale
one colour for all of them. So an axis spans the trials inside Tukey's far-out fence (3 interquartile ranges past
the quartile) and draws the trials beyond it at the axis's edge, where the caption counts them. Only the worse
side is fenced: a trial far better than the rest is the search's finding and stays where it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archsearch.stats._format import format_number, plural

__all__ = ["FAR_OFF_IQRS", "MIN_FIT_TRIALS", "MetricRange", "metric_range"]

# Tukey's "far out": past 3 interquartile ranges from the quartile, a value is not part of the bulk.
FAR_OFF_IQRS = 3.0
# Below this many trials there is no bulk to fit: the axis spans them all.
MIN_FIT_TRIALS = 5
# Room around the drawn values, as a share of their span; far-off trials sit two of these past the bulk.
_PAD = 0.06


@dataclass(frozen=True)
class MetricRange:
    """The axis (or colour) range of a metric, and the far-off trials drawn at its edge.

    Attributes:
        low: Lower end of the axis.
        high: Upper end of the axis.
        maximize: Whether a higher metric is better (far-off trials are below the fence then, else above).
        fence: The value past which a trial is far off; None when nothing is fenced (too few trials, no spread).
        edge: Where far-off trials are drawn (inside the axis, past the bulk); None when none is far off.
        far_off: ``(label, value)`` of each far-off trial, worst first: its trial number, or a name (a change).
        n: How many trials the range was fitted to.
    """

    low: float
    high: float
    maximize: bool
    fence: float | None
    edge: float | None
    far_off: tuple[tuple[int | str, float], ...]
    n: int

    @property
    def bounds(self) -> list[float]:
        """``[low, high]``, as plotly's ``range`` takes it."""
        return [self.low, self.high]

    def is_far(self, value: float) -> bool:
        """Whether ``value`` lies past the fence on the worse side."""
        if self.fence is None or not math.isfinite(value):
            return False
        return value < self.fence if self.maximize else value > self.fence

    def clip(self, value: float) -> float:
        """``value``, or the edge when it is far off."""
        return self.edge if self.is_far(value) and self.edge is not None else value

    def clip_all(self, values: Sequence[float]) -> list[float]:
        """Every value clipped to the edge where far off."""
        return [self.clip(float(v)) for v in values]

    def sentence(self, how: str = "at the edge of the metric axis", noun: str = "trial") -> str:
        """The caption's count of far-off trials, or ``""`` when there are none.

        Example:
            >>> metric_range([0.95, 0.96, 0.97, 0.98, 0.97, 0.0975], range(6), maximize=True).sentence()
            '1 trial below 0.9000 (#5 at 0.0975) is drawn at the edge of the metric axis, so the axis fits the other 5.'
        """
        if not self.far_off:
            return ""
        k = len(self.far_off)
        listed = ", ".join(f"{_name(label)} at {format_number(value)}" for label, value in self.far_off[:3])
        listed += ", ..." if k > 3 else ""
        side = "below" if self.maximize else "above"
        verb = "is" if k == 1 else "are"
        return (
            f"{plural(k, noun)} {side} {format_number(self.fence)} ({listed}) {verb} drawn {how}, "
            f"so the axis fits the other {self.n - k:,}."
        )


def _name(label: int | str) -> str:
    return f"#{label}" if isinstance(label, int) else str(label)


def metric_range(
    values: Sequence[float], labels: Sequence[int | str], *, maximize: bool, include: Sequence[float] = ()
) -> MetricRange:
    """Fit a metric axis to the bulk of ``values``, fencing far-off trials on the worse side.

    Args:
        values: The metric of each trial drawn (non-finite ones are ignored).
        labels: Their trial numbers (or names, such as a sensitivity change), in the same order.
        maximize: Whether a higher metric is better.
        include: Other values the axis must show (a threshold line), never fenced.

    Returns:
        The range; with fewer than :data:`MIN_FIT_TRIALS` trials, or no spread between the quartiles,
        nothing is fenced and the range spans every value.

    Example:
        >>> r = metric_range([0.95, 0.96, 0.97, 0.98, 0.97, 0.0975], range(6), maximize=True)
        >>> r.far_off, r.clip(0.0975) == r.edge, round(r.low, 4), round(r.high, 4)
        (((5, 0.0975),), True, 0.9446, 0.9818)
    """
    pairs = [
        (label if isinstance(label, str) else int(label), float(v))
        for label, v in zip(labels, values)
        if v is not None and math.isfinite(v)
    ]
    finite = np.array([v for _, v in pairs], dtype=float)
    fence = None
    if len(finite) >= MIN_FIT_TRIALS:
        q1, q3 = np.percentile(finite, [25, 75])
        iqr = float(q3 - q1)
        if iqr > 0:
            fence = float(q1 - FAR_OFF_IQRS * iqr) if maximize else float(q3 + FAR_OFF_IQRS * iqr)
    if fence is None:
        far, kept = [], [v for _, v in pairs]
    else:
        far = sorted(((n, v) for n, v in pairs if (v < fence if maximize else v > fence)), key=lambda p: p[1])
        far = far if maximize else far[::-1]
        kept = [v for _, v in pairs if (v >= fence if maximize else v <= fence)]
    shown = kept + [float(v) for v in include if v is not None and math.isfinite(v)]
    if not shown:
        return MetricRange(0.0, 1.0, maximize, fence, None, tuple(far), len(pairs))
    low, high = min(shown), max(shown)
    pad = _PAD * (high - low) or abs(high) * 0.01 or 0.01
    low, high, edge = low - pad, high + pad, None
    if far:
        edge = low - pad if maximize else high + pad
        low, high = (edge - pad, high) if maximize else (low, edge + pad)
    return MetricRange(low, high, maximize, fence, edge, tuple(far), len(pairs))
