"""The export's budget (search/export/_budget.py, the greedy ensemble's loop in _greedy.py), without training."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from archsearch.export._budget import ExportBudget, size_metadata
from archsearch.export._greedy import _within_budget
from archsearch.storage import keys


def _study(sizes: list[int]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for i, params in enumerate(sizes):
        study.add_trial(
            optuna.trial.create_trial(
                value=0.9 - 0.01 * i, user_attrs={keys.SIZE_PARAMS: params, keys.SIZE_FLOPS: 2 * params}
            )
        )
    return study


def test_a_budget_sums_every_member_and_says_what_breaks_it() -> None:
    trials = _study([100, 300]).trials
    budget = ExportBudget(max_params=350)
    assert budget.why_over(trials[:1]) is None
    assert budget.why_over([trials[0], trials[0], trials[0], trials[0]]) == "400 parameters > --max-params 350"
    assert size_metadata(trials, budget) == {
        "members": 2,
        "params": 400,
        "flops": 800,
        "latency_ms": None,
        "budget": {"max_params": 350},
    }
    assert "no stored ms at batch 1" in ExportBudget(max_latency_ms=1.0).why_over(trials[:1])


@pytest.mark.parametrize("value", [0, -3, float("nan"), True, "5"])
def test_a_budget_must_be_a_positive_number(value: object) -> None:
    from archsearch.export import ExportError

    with pytest.raises(ExportError, match=r"The --max-params option of export must be a number of parameters > 0"):
        ExportBudget(max_params=value)  # type: ignore[arg-type]


def test_greedy_selection_drops_the_largest_member_until_the_ensemble_fits() -> None:
    # greedy_selection's own example: a and b together are right on every row. Candidate 1 is b as a
    # 1,000-parameter network, candidate 2 the same predictions from 200 parameters.
    y = np.array([0, 1, 1, 0])
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.6, 0.4]])
    b = np.array([[0.4, 0.6], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])
    study = _study([100, 1000, 200])
    members = [SimpleNamespace(record={"trial": n}) for n in range(3)]
    free = SimpleNamespace(study=study, budget=ExportBudget())
    assert _within_budget(free, members, [a, b, b], y, "accuracy", None) == ([1, 1, 0], 1.0)
    tight = SimpleNamespace(study=study, budget=ExportBudget(max_params=350))
    assert _within_budget(tight, members, [a, b, b], y, "accuracy", None) == ([1, 0, 1], 1.0)
    alone = SimpleNamespace(study=study, budget=ExportBudget(max_params=250))
    assert _within_budget(alone, members, [a, b, b], y, "accuracy", None)[0] == [1, 0, 0]
