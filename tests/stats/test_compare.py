"""Tests of the one rule for stating a comparison between groups of trials (issue #23, item 5)."""

from __future__ import annotations

from archsearch.stats import MIN_GROUP_TRIALS, may_compare, too_few


def test_may_compare_needs_the_minimum_in_every_group() -> None:
    """Check that 3 against 2 (the issue's "hurts" claim) is refused and 3 against 3 allowed."""
    assert MIN_GROUP_TRIALS == 3
    assert not may_compare(3, 2) and not may_compare(2) and not may_compare()
    assert may_compare(3, 3) and may_compare(40, 3, 5) and may_compare(2, minimum=2)


def test_too_few_lists_every_count_and_the_minimum() -> None:
    """Check that the refusal names each group's n and the minimum."""
    assert too_few({"with dropout": 3, "without": 2}, "compare") == (
        "too few trials to compare (3 with dropout, 2 without; at least 3 each)"
    )
    assert too_few({}, "compare") == "too few trials to compare (none; at least 3 each)"
