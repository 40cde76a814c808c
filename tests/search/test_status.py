"""Tests of the trial counts that `search`, `worker` and `status` print."""

from __future__ import annotations

import optuna
import pytest
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


def test_status_and_search_end_say_when_test_disagrees(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch status` and the last lines of `archsearch search` show validation and test with their
    rows beside the linear baseline, and the one sentence when the linear model is better on test (issue #23)."""
    from archsearch.cli import main

    from ..stats.test_compare import DISAGREES, diabetes_like

    url = f"sqlite:///{tmp_path}/s.db"
    study = diabetes_like(tmp_path / "s.db")
    assert main(["status", "--storage", url, "--study", "diabetes"]) == 0
    status = capsys.readouterr().out
    assert "linear baseline      0" in status and "100 rows   100 rows" in status
    assert DISAGREES in " ".join(status.split()) and "`[data] folds = 5`" in " ".join(status.split())

    config = tmp_path / "c.toml"
    config.write_text(f'[study]\nname = "diabetes"\nstorage = "{url}"\n[data]\ndataset = "diabetes"\n', "utf-8")
    monkeypatch.setattr("archsearch.controller.run_search", lambda *args, **kwargs: study)
    assert main(["search", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Best trial 1: val rmse 48.2900, test rmse 59.6900" in out and "Best linear model trial 0" in out
    assert "100 rows   100 rows" in out and DISAGREES in " ".join(out.split())
    assert "the best of 3 trials" in " ".join(out.split())
