"""Tests for archsearch.pool's refit budget: the refit's predicted time, and when a worker stops starting trials."""

from __future__ import annotations

import io
import time
from pathlib import Path

import optuna
import pytest

from archsearch.config import ConfigError
from archsearch.controller import open_search_study
from archsearch.pool import REFIT_RESERVE_CAP, AskDeadline, WorkerSlot, refit_seconds, run_worker
from archsearch.storage import keys

from ..conftest import small_config

DATA = {"n_train": 600, "n_val": 200, "n_test": 200}


def test_refit_seconds_scales_the_trial_s_epoch_time_to_the_refit() -> None:
    """Check the prediction: seconds per epoch x the refit's epochs x refit rows / trained rows."""
    attrs = {"train_seconds": 10.0, "epochs_run": 20, "best_epoch": 16}
    assert refit_seconds(attrs, DATA, None, 30) == pytest.approx(0.5 * 16 * 800 / 600)
    # Without a best epoch the refit trains the study's epochs.
    assert refit_seconds({**attrs, "best_epoch": None}, DATA, None, 30) == pytest.approx(0.5 * 30 * 800 / 600)
    # With 4 folds a trial trained on 3/4 of train + val (600 rows) and counts all folds' epochs and seconds.
    assert refit_seconds({**attrs, "epochs_run": 80, "train_seconds": 40.0}, DATA, 4, 30) == pytest.approx(
        0.5 * 16 * 800 / 600
    )
    # Trials stored without a timing, or a study without its data sizes, predict nothing.
    assert refit_seconds({"epochs_run": 20}, DATA, None, 30) is None
    assert refit_seconds(attrs, {}, None, 30) is None


def _study_with_best(train_seconds: float) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(keys.DATA, DATA)
    attrs = {"train_seconds": train_seconds, "epochs_run": 10, "best_epoch": 10}
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs=attrs))
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={**attrs, "train_seconds": 1000.0}))
    return study


def _count_best_trial_reads(study: optuna.Study) -> list[int]:
    """Records each read of the study's best trial (Study.best_trial asks the storage for it)."""
    reads: list[int] = []
    real = study._storage.get_best_trial
    study._storage.get_best_trial = lambda study_id: reads.append(1) or real(study_id)  # type: ignore[method-assign]
    return reads


def test_ask_deadline_keeps_the_best_trial_s_refit_inside_the_timeout() -> None:
    """Check that asking stops once the time left is what the best trial's refit needs (about 13.3 s here)."""
    study = _study_with_best(10.0)  # the refit: 1 s an epoch x 10 epochs x 800 / 600 rows
    log = io.StringIO()

    def passed(left: float, **options: object) -> bool:
        settings = {"timeout": 100.0, "reserve": True, "folds": None, "epochs": 30, "log": log, "label": "w0"}
        return AskDeadline(study, time.time() + left, **{**settings, **options}).passed()

    assert passed(12.0)
    assert (
        "no new trials with 12 s of the timeout left: the export's refit of trial 0 needs about 13 s" in log.getvalue()
    )
    assert not passed(20.0)
    assert not passed(12.0, reserve=False)  # [study] reserve_refit = false: only the deadline counts
    assert not passed(12.0, timeout=None)
    assert passed(-1.0, reserve=False)  # the deadline itself
    assert not AskDeadline(study, None, timeout=None, reserve=True, folds=None, epochs=30).passed()


def test_the_reserve_holds_one_refit_per_export_member() -> None:
    """Check that [export] ensemble_seeds = 3 reserves three refits (40 s here) and says so in the log."""
    log = io.StringIO()
    study = _study_with_best(10.0)
    settings = {"timeout": 100.0, "reserve": True, "folds": None, "epochs": 30}
    assert not AskDeadline(study, time.time() + 45, **settings, members=3).passed()
    assert AskDeadline(study, time.time() + 35, **settings, members=3, log=log, label="w0").passed()
    assert "refit of trial 0 (3 seeds, [export] ensemble_seeds) needs about 40 s" in log.getvalue()


def test_running_trials_stop_only_once_the_reserve_began() -> None:
    """Check that a bare deadline (nothing to refit yet) stops new trials but lets running ones finish."""
    empty = optuna.create_study()
    bare = AskDeadline(empty, time.time() - 1, timeout=100.0, reserve=True, folds=None, epochs=30)
    assert bare.passed() and not bare.time_up()
    reserved = AskDeadline(_study_with_best(10.0), time.time() + 5, timeout=100.0, reserve=True, folds=None, epochs=30)
    assert reserved.time_up() and reserved.passed()
    # Past the deadline itself with a trial to refit, running trials stop even if no ask saw the reserve begin.
    late = AskDeadline(_study_with_best(10.0), time.time() - 1, timeout=100.0, reserve=True, folds=None, epochs=30)
    assert late.passed() and late.time_up()
    # Without the reserve a timeout keeps Optuna's meaning: running trials finish.
    plain = AskDeadline(_study_with_best(10.0), time.time() - 1, timeout=100.0, reserve=False, folds=None, epochs=30)
    assert plain.passed() and not plain.time_up()


def test_ask_deadline_reserves_at_most_its_cap_and_reads_nothing_before() -> None:
    """Check that a slow best trial stops asking at half the timeout, not before, and that nothing is read earlier."""
    study = _study_with_best(100.0)  # a 133 s refit in a 100 s timeout
    reads = _count_best_trial_reads(study)
    early = AskDeadline(study, time.time() + 60, timeout=100.0, reserve=True, folds=None, epochs=30)
    assert not early.passed() and not reads  # 60 s left is more than the cap: the best trial is not read
    assert AskDeadline(
        study, time.time() + REFIT_RESERVE_CAP * 100 - 1, timeout=100.0, reserve=True, folds=None, epochs=30
    ).passed()
    # A study with no complete trial has nothing to refit.
    empty = optuna.create_study()
    assert not AskDeadline(empty, time.time() + 1, timeout=100.0, reserve=True, folds=None, epochs=30).passed()


def test_ask_deadline_stays_passed_and_rereads_the_best_trial_at_most_every_two_seconds() -> None:
    """Check the latch (a running trial stops for good) and that per-epoch asks do not read the study each time."""
    study = _study_with_best(10.0)
    reads = _count_best_trial_reads(study)
    deadline = AskDeadline(study, time.time() + 30, timeout=100.0, reserve=True, folds=None, epochs=30)
    assert not any(deadline.passed() for _ in range(50)) and len(reads) == 1
    deadline.deadline = time.time() + 5  # the time left falls below the 13 s refit
    deadline._read_at -= AskDeadline.REREAD_SECONDS
    assert deadline.passed()
    deadline.deadline = time.time() + 1000
    assert deadline.passed()  # stays passed


def test_worker_starts_no_trial_when_the_refit_needs_the_time_left(tmp_path: Path) -> None:
    """Check that a worker of a study with a timeout starts nothing when its best trial's refit fills the time left."""
    config = small_config(tmp_path, study={"n_trials": None, "timeout": 100})
    study = open_search_study(config).study
    attrs = {"train_seconds": 200.0, "epochs_run": 8, "best_epoch": 8}
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs=attrs, params={}, distributions={}))
    log = io.StringIO()
    slot = WorkerSlot(index=0, device="cpu", gpu=None, threads=1)
    outcome = run_worker(config.study.storage, "digits", slot, deadline=time.time() + 40, log=log)
    # Only the added trial is finished; the baselines that the study enqueued are still waiting.
    states = [t.state.name for t in study.get_trials()]
    assert outcome.finished == 0 and states.count("COMPLETE") == 1 and set(states) <= {"COMPLETE", "WAITING"}
    added, sizes = study.best_trial.number, study.user_attrs[keys.DATA]
    needs = round(200.0 * (sizes["n_train"] + sizes["n_val"]) / sizes["n_train"])  # 257 s at digits' default split
    assert f"the export's refit of trial {added} needs about {needs} s ([study] reserve_refit)" in log.getvalue()


def test_reserve_refit_must_be_a_bool(tmp_path: Path) -> None:
    """Check that [study] reserve_refit names the rule and the value."""
    with pytest.raises(
        ConfigError, match=r"The 'reserve_refit' parameter of \[study\] must be true or false\. Got 'yes' instead\."
    ):
        small_config(tmp_path, study={"reserve_refit": "yes"})
