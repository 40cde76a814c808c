"""Pareto fronts and their 2-D hypervolume (archsearch.stats._front)."""

from __future__ import annotations

import math

import pytest

from archsearch.stats import front_indices, hypervolume_2d, hypervolume_history, log_cost_hypervolume


def test_the_front_keeps_what_nothing_beats_for_less() -> None:
    assert front_indices([0.9, 0.8, 0.95, 0.7, 0.9], [100, 50, 400, 60, 100]) == [1, 0, 2]
    assert front_indices([math.nan, 0.5], [1, 2]) == [1]


def test_hypervolume_is_the_dominated_area() -> None:
    assert hypervolume_2d([1.0, 2.0], [1.0, 3.0], 0.0, 4.0) == pytest.approx(3 * 1 + 1 * 1)
    # Points worse than the reference add nothing; a dominated point changes nothing.
    assert hypervolume_2d([1.0, 2.0, 0.5, -1.0], [1.0, 3.0, 2.0, 0.5], 0.0, 4.0) == pytest.approx(4.0)
    assert log_cost_hypervolume([1.0], [10.0], 0.0, 1000.0) == pytest.approx(2.0)


def test_hypervolume_history_never_falls() -> None:
    history = hypervolume_history([0.5, 0.9, 0.4, 0.95], [10, 1000, 5, 100], 0.0, 10_000)
    assert list(history) == sorted(history) and history[-1] > history[0]
