"""Whether a comparison between groups of trials may be stated at all: one minimum for every caption and summary.

A median of one or two trials says more about their seeds and other hyperparameters than about the group
(``large: hurts (median 0.9694 of 3 trials with vs 0.9805 of 2 without)`` was a claim from two trials). Every
sentence that compares groups (depths, layer shapes, dropout against none, size bins by their spread, a width
trend) asks :func:`may_compare` first and, when it says no, prints :func:`too_few` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MIN_GROUP_TRIALS", "may_compare", "too_few"]

# The fewest finished trials a group needs before it is compared with another (or a trend is read from it).
MIN_GROUP_TRIALS = 3


def may_compare(*counts: int, minimum: int = MIN_GROUP_TRIALS) -> bool:
    """Whether groups of these sizes may be compared in words: every one holds at least ``minimum`` trials.

    One count asks whether a single group is large enough to read a spread or a trend from.

    Example:
        >>> may_compare(3, 2), may_compare(3, 3), may_compare(4), may_compare()
        (False, True, True, False)
    """
    return bool(counts) and all(n >= minimum for n in counts)


def too_few(counts: Mapping[str, int], what: str, minimum: int = MIN_GROUP_TRIALS) -> str:
    """The sentence printed instead of a comparison: each group's count and the minimum.

    Example:
        >>> too_few({"with dropout": 3, "without": 2}, "compare")
        'too few trials to compare (3 with dropout, 2 without; at least 3 each)'
    """
    listed = ", ".join(f"{n:,} {label}" for label, n in counts.items()) or "none"
    return f"too few trials to {what} ({listed}; at least {minimum:,} each)"
