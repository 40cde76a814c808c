"""Tests of the epoch budget hint shared by `archsearch status` and the report."""

from __future__ import annotations

import optuna
import pytest

from archsearch.status import study_status
from archsearch.storage import epoch_budget, still_improving

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(
    ("best_epoch", "epochs_run", "epochs", "expected"),
    [
        (30, 30, 30, True),
        (28, 30, 30, True),  # the last tenth of 30 epochs is epochs 28-30
        (27, 30, 30, False),
        (12, 30, 30, False),
        (8, 8, 30, False),  # stopped early (patience or pruner): the budget did not bind
        (5, 5, 5, True),  # the last tenth is at least the last epoch
        (4, 5, 5, False),
        (None, 30, 30, False),
    ],
)
def test_still_improving_needs_the_whole_budget_and_a_best_epoch_in_its_last_tenth(
    best_epoch: int | None, epochs_run: int, epochs: int, expected: bool
) -> None:
    """Check the decision on hand cases at and around the boundary."""
    assert still_improving(best_epoch, epochs_run, epochs) is expected


def _study(best_epochs: list[int], epochs: int = 20) -> optuna.Study:
    """A maximizing study whose trial i has value i and stopped at its best epoch unless that is the last."""
    study = optuna.create_study(direction="maximize", study_name="budget")
    study.set_user_attr("archsearch_config", {"train": {"epochs": epochs}})
    study.set_user_attr("metric", "accuracy")
    for value, best in enumerate(best_epochs):
        attrs = {"best_epoch": best, "epochs_run": epochs if best >= epochs - 2 else best + 8}
        study.add_trial(optuna.trial.create_trial(value=float(value), user_attrs=attrs))
    return study


def test_epoch_budget_counts_the_best_trials_still_improving() -> None:
    """Check that the hint looks at the 5 best trials and fires when most of them were still improving."""
    # The 5 best are the last 5: three of them peaked at the last epoch.
    budget = epoch_budget(_study([20, 20, 20, 5, 20, 9, 19, 20]))
    assert (budget.epochs, budget.n_best, budget.n_still_improving) == (20, 5, 3)
    assert budget.hint() == "3 of the 5 best trials were still improving at the last epoch (20): raise `epochs`."
    quiet = epoch_budget(_study([20, 20, 20, 5, 9, 9, 19, 20]))
    assert (quiet.n_still_improving, quiet.too_short, quiet.hint()) == (2, False, None)


def test_epoch_budget_needs_a_stored_budget_and_a_completed_trial() -> None:
    """Check that a study without archsearch's config or without completed trials gives no budget."""
    assert epoch_budget(optuna.create_study()) is None
    empty = optuna.create_study()
    empty.set_user_attr("archsearch_config", {"train": {"epochs": 20}})
    assert epoch_budget(empty) is None


def test_study_status_prints_the_hint(tmp_path) -> None:
    """Check that `archsearch status` says to raise epochs when the best trials hit the cap still improving."""
    url = f"sqlite:///{tmp_path}/s.db"
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="budget", direction="maximize")
    source = _study([20, 20, 9])
    study.set_user_attr("archsearch_config", source.user_attrs["archsearch_config"])
    for trial in source.trials:
        study.add_trial(trial)
    assert (
        "  2 of the 3 best trials were still improving at the last epoch (20): raise `epochs`."
        in study_status(storage, "budget").splitlines()
    )
