"""Tests of archsearch.pool._objective: the pruning gate, the trial claim and what a trial records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.pool._objective import TotalReached, time_up_reason, train_and_record, train_settings
from archsearch.samplers import first_prunable_epoch, make_pruner
from archsearch.spaces import NetSpec
from archsearch.storage import keys, make_storage
from archsearch.trainers.data import DataSpec, load_data

from ..conftest import search_objective

NET8 = NetSpec((8,), (0.0,), "relu")  # one hidden layer of 8


def _config(tmp_path: Path, **study: object) -> SearchConfig:
    return SearchConfig.from_dict(
        {
            "study": {"name": "s", "storage": f"sqlite:///{tmp_path}/a.db", "n_trials": 4, "seed": 0, **study},
            "space": {"layers": [1, 1], "width": [8, 8], "batch_size": [64]},
            "train": {"epochs": 6, "patience": 6},
        }
    )


@pytest.mark.parametrize("pruner", ["median", "percentile", "successive_halving", "hyperband", "none"])
@pytest.mark.parametrize("epochs", [1, 2, 4, 10])
def test_first_prunable_epoch_is_exact_for_every_pruner(tmp_path: Path, pruner: str, epochs: int) -> None:
    """Check that the study's pruner never prunes before first_prunable_epoch, and can at that epoch.

    Six finished trials report 1.0 at every epoch; the trial under test reports 0.0, the worst value.
    Asking the pruner at earlier epochs would be wasted work, never a different decision.
    """
    config = SearchConfig.from_dict(
        {**_config(tmp_path, pruner=pruner).to_dict(), "train": {"epochs": epochs, "patience": epochs}}
    )
    study = optuna.create_study(direction="maximize", pruner=make_pruner(config))
    for _ in range(6):
        trial = study.ask()
        for epoch in range(1, epochs + 1):
            trial.report(1.0, epoch)
        study.tell(trial, 1.0)
    trial = study.ask()
    first = first_prunable_epoch(config)
    decisions = []
    for epoch in range(1, epochs + 1):
        trial.report(0.0, epoch)
        decisions.append(trial.should_prune())
    if first is None:
        assert not any(decisions)
    else:
        assert not any(decisions[: first - 1])
        if first <= epochs and pruner in ("median", "percentile"):
            assert decisions[first - 1]


class _CountingTrial:
    """A stand-in trial that records reports and pruning questions."""

    def __init__(self) -> None:
        self.reports: list[int] = []
        self.asked: list[int] = []
        self.user_attrs: dict = {}

    def report(self, value: float, step: int) -> None:
        self.reports.append(step)

    def should_prune(self) -> bool:
        self.asked.append(self.reports[-1])
        return False


def test_train_and_record_asks_the_pruner_only_from_prune_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Check that every epoch is reported but the pruner is asked from `prune_from` on (never with None)."""
    import archsearch.pool._objective as objective_module

    monkeypatch.setattr(objective_module, "set_user_attrs", lambda trial, attrs: trial.user_attrs.update(attrs))
    config = _config(tmp_path)
    data = load_data(DataSpec(dataset="wine", seed=0))
    settings = train_settings(
        config, "accuracy", {"lr": 1e-2, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}, seed=0
    )
    for prune_from, asked in ((3, [3, 4, 5, 6]), (1, [1, 2, 3, 4, 5, 6]), (None, [])):
        trial = _CountingTrial()
        train_and_record(trial, settings, data, NET8, prune_from=prune_from)
        assert trial.reports == [1, 2, 3, 4, 5, 6]
        assert trial.asked == asked
        assert trial.user_attrs["epochs_run"] == 6


def test_train_and_record_stops_a_trial_when_the_search_s_time_is_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Check that `time_up` ends the run after that epoch, as pruned, with the reason stored for the user."""
    import archsearch.pool._objective as objective_module

    monkeypatch.setattr(objective_module, "set_user_attrs", lambda trial, attrs: trial.user_attrs.update(attrs))
    data = load_data(DataSpec(dataset="wine", seed=0))
    settings = train_settings(
        _config(tmp_path), "accuracy", {"lr": 1e-2, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}, seed=0
    )
    trial, epochs = _CountingTrial(), iter(range(1, 100))
    with pytest.raises(optuna.TrialPruned, match=r"stopped at epoch 3: the search's time was up"):
        train_and_record(trial, settings, data, NET8, time_up=lambda: next(epochs) >= 3)
    assert trial.reports == [1, 2, 3] and trial.asked == [1, 2]  # the pruner is not asked once the time is up
    assert trial.user_attrs[keys.PRUNED_REASON] == time_up_reason(3)
    assert trial.user_attrs["epochs_run"] == 3


class _NoReads:
    """A storage that fails the test if the claim reads it."""

    def get_trial_system_attrs(self, trial_id: int) -> dict:
        raise AssertionError("the claim read the trial's system attributes although the total was far off")


def test_claim_skips_reading_the_study_when_the_total_is_far_off(tmp_path: Path) -> None:
    """Check that a worker's fresh count lets the claim pass without reading the storage."""
    config = _config(tmp_path, n_trials=10)
    data = load_data(DataSpec(dataset="wine", seed=0))
    objective = search_objective(config, data, _NoReads(), tmp_path / "artifacts", total=10)
    study = optuna.create_study(storage=make_storage(config.study.storage), study_name="s")
    trial = study.ask()
    objective.note_counts(claimable=3, existing=0)
    objective._claim(trial)  # 3 claimed + this one: far from 10, no read
    with pytest.raises(AssertionError, match="read the trial's system attributes"):
        objective._claim(trial)  # the count is used once: a second claim reads


def test_claim_stands_down_a_trial_beyond_the_total(tmp_path: Path) -> None:
    """Check that with the total reached while a trial was asked, that trial is marked not_run and stands down."""
    config = _config(tmp_path, n_trials=2)
    storage = make_storage(config.study.storage)
    study = optuna.create_study(storage=storage, study_name="s")
    for _ in range(2):
        study.tell(study.ask(), 1.0)
    data = load_data(DataSpec(dataset="wine", seed=0))
    objective = search_objective(config, data, storage, tmp_path / "artifacts", worker="w0", total=2)
    trial = study.ask()
    objective.note_counts(claimable=1, existing=1)  # an old count: the bound is not below the total, so it reads
    with pytest.raises(TotalReached):
        objective._claim(trial)
    assert trial.user_attrs[keys.NOT_RUN] is True
    assert trial.user_attrs["worker"] == "w0"
    assert study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING


@pytest.mark.timeout(120)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="/proc: Linux only")
def test_a_workers_peak_memory_is_its_own_not_its_parents() -> None:
    """Check that a process started from this one reports its own peak RSS, not this process's: Linux's
    ru_maxrss of a forked and exec'd child starts at its parent's peak, so every pool worker reported at least
    its controller's (which holds the data)."""
    ballast = np.ones(60_000_000)  # 480 MB, written so resident: this process's peak is above it
    code = "from archsearch.pool._objective import memory_attrs; print(memory_attrs()['peak_rss_mb'])"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=100)
    assert float(child.stdout) < ballast.nbytes / 2**20 - 100
    assert float(child.stdout) > 0
