"""Tests that successive halving and Hyperband prune nothing until enough trials completed."""

from __future__ import annotations

import optuna
import pytest

from archsearch._pruners import PatientHyperbandPruner, PatientSuccessiveHalvingPruner
from archsearch.config import SearchConfig
from archsearch.samplers import make_pruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _complete(study: optuna.Study, value: float) -> None:
    trial = study.ask()
    trial.report(value, 1)
    trial.should_prune()  # as a worker asks after every epoch
    study.tell(trial, value)


def _bad_trial_is_pruned(study: optuna.Study) -> bool:
    trial = study.ask()
    trial.report(0.0, 1)
    pruned = trial.should_prune()
    study.tell(trial, state=optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.FAIL)
    return pruned


def test_successive_halving_waits_for_complete_trials() -> None:
    """Check that a hopeless trial survives while fewer than 3 trials completed, and is pruned after."""
    study = optuna.create_study(
        direction="maximize", pruner=PatientSuccessiveHalvingPruner(min_resource=1, min_complete_trials=3)
    )
    _complete(study, 0.9)
    _complete(study, 0.8)
    assert not _bad_trial_is_pruned(study)
    _complete(study, 0.85)
    assert _bad_trial_is_pruned(study)


def test_plain_successive_halving_prunes_from_the_first_trials() -> None:
    """Check the default this replaces: Optuna's pruner stops the same trial with only 2 trials done."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1))
    _complete(study, 0.9)
    _complete(study, 0.8)
    assert _bad_trial_is_pruned(study)


def test_hyperband_stays_a_hyperband_and_waits() -> None:
    """Check that the patient Hyperband is still recognised as Hyperband (bracket-wise sampling) and waits too."""
    pruner = PatientHyperbandPruner(min_resource=1, max_resource=9, min_complete_trials=4)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for value in (0.9, 0.8, 0.85):
        _complete(study, value)
    assert not _bad_trial_is_pruned(study)


def test_make_pruner_uses_pruner_startup_trials() -> None:
    """Check that [study] pruner_startup_trials reaches every pruner that compares trials."""
    for name in ("successive_halving", "hyperband"):
        config = SearchConfig.from_dict({"study": {"pruner": name, "pruner_startup_trials": 7}})
        assert make_pruner(config).min_complete_trials == 7
    median = make_pruner(SearchConfig.from_dict({"study": {"pruner": "median", "pruner_startup_trials": 7}}))
    assert median._n_startup_trials == 7


def test_patient_pruner_rejects_a_negative_count() -> None:
    """Check that a negative minimum is refused with the parameter's name."""
    with pytest.raises(
        ValueError,
        match=r"The 'min_complete_trials' parameter of PatientSuccessiveHalvingPruner must be an int >= 0\. Got -1 instead\.",
    ):
        PatientSuccessiveHalvingPruner(min_resource=1, min_complete_trials=-1)
