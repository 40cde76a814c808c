"""Successive halving and Hyperband that wait for some complete trials before they prune.

Both compare a trial only with the trials that reached the same epoch so far. Early in a search those
are the first few trials, still random samples, and with `min_resource=1` the pruners stopped 7 of 8
and 12 of 14 trials after 1-3 epochs, leaving 1-2 trials trained in full. Like the median pruner's
`n_startup_trials`, these wait until `min_complete_trials` trials of the study have completed.

They subclass Optuna's pruners instead of wrapping them: Optuna recognises Hyperband by its class to
give the sampler each bracket's trials, which a wrapper would hide.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from archsearch.storage import trial_state_counts

__all__ = ["PatientSuccessiveHalvingPruner", "PatientHyperbandPruner"]


class _WaitsForCompleteTrials:
    """Mixin: `prune` answers False until the study holds `min_complete_trials` complete trials."""

    def __init__(self, *args: Any, min_complete_trials: int, **kwargs: Any) -> None:
        if isinstance(min_complete_trials, bool) or not isinstance(min_complete_trials, int) or min_complete_trials < 0:
            raise ValueError(
                f"The 'min_complete_trials' parameter of {type(self).__name__} must be an int >= 0. "
                f"Got {min_complete_trials!r} instead."
            )
        super().__init__(*args, **kwargs)
        self.min_complete_trials = min_complete_trials
        self._ready = min_complete_trials == 0  # complete trials never go back, so once is enough

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        # Asked even while waiting: it records the trial's value at each rung, which later trials compete with.
        decision = super().prune(study, trial)
        if not self._ready:
            # Counted over the whole study: Hyperband passes a view of one bracket's trials.
            self._ready = trial_state_counts(study)[TrialState.COMPLETE] >= self.min_complete_trials
        return decision and self._ready


class PatientSuccessiveHalvingPruner(_WaitsForCompleteTrials, optuna.pruners.SuccessiveHalvingPruner):
    """`SuccessiveHalvingPruner` that prunes nothing before `min_complete_trials` trials completed."""


class PatientHyperbandPruner(_WaitsForCompleteTrials, optuna.pruners.HyperbandPruner):
    """`HyperbandPruner` that prunes nothing before `min_complete_trials` trials completed."""
