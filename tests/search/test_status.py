"""Tests of the trial counts that `search`, `worker` and `status` print."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from archsearch.status import counts_line, trial_counts
from archsearch.storage import keys


def _study(surplus: int) -> optuna.Study:
    study = optuna.create_study(study_name="s", direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9))
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.5}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={keys.FAIL_REASON: "RuntimeError: boom"}))
    for _ in range(surplus):
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={keys.NOT_RUN: True}))
    return study


def test_surplus_claims_are_counted_apart_from_failures() -> None:
    """Check that a trial claimed as the total was reached (FAIL with not_run) is no failed trial, and is said once."""
    counts, surplus = trial_counts(_study(2))
    assert (counts["COMPLETE"], counts["PRUNED"], counts["FAIL"], surplus) == (1, 1, 1, 2)
    assert counts_line(_study(1)) == (
        "Study 's': 1 complete, 1 pruned, 1 failed trials (and 1 surplus claim that trained nothing)."
    )
    assert counts_line(_study(0)) == "Study 's': 1 complete, 1 pruned, 1 failed trials."
