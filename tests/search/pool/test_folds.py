"""Tests of [data] folds: a trial's value is the mean over k folds of train + validation, pruned at fold boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

import archsearch.trainers
from archsearch.config import ConfigError, SearchConfig
from archsearch.pool import train_and_record, train_settings
from archsearch.samplers import first_prunable_epoch, make_pruner
from archsearch.spaces import NetSpec
from archsearch.trainers.data import DataSpec, load_folds

from ..conftest import small_config

NET8 = NetSpec((8,), (0.0,), "relu")  # one hidden layer of 8

HYPERPARAMETERS = {"lr": 1e-2, "weight_decay": 0.0, "batch_size": 32, "optimizer": "adam"}


class _RecordingTrial:
    """A stand-in trial that keeps reports and user attributes, and prunes when told to."""

    def __init__(self, prune_at: int | None = None) -> None:
        self.reports: dict[int, float] = {}
        self.user_attrs: dict = {}
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reports[step] = value

    def should_prune(self) -> bool:
        return max(self.reports) == self.prune_at


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list:
    """The data of every train_mlp call, with set_user_attrs writing into the stand-in trial."""
    import archsearch.pool._objective as objective_module

    monkeypatch.setattr(objective_module, "set_user_attrs", lambda trial, attrs: trial.user_attrs.update(attrs))
    calls = []
    real_train = archsearch.trainers.train_mlp

    def spy(net, data, settings, report=None):
        calls.append(data)
        return real_train(net, data, settings, report)

    monkeypatch.setattr(archsearch.trainers, "train_mlp", spy)
    return calls


def _rows(x: np.ndarray) -> set[tuple]:
    return {tuple(row) for row in x.tolist()}


@pytest.mark.slow
def test_a_trials_value_is_the_mean_over_its_folds(tmp_path: Path, recorded: list) -> None:
    """Check that the value is the mean of k fold values, reported as running means at steps 1..k, and no fold sees a test row."""
    config = small_config(tmp_path, data={"dataset": "wine", "folds": 3}, train={"epochs": 4, "patience": 4})
    folds = load_folds(config.data)
    trial = _RecordingTrial()
    settings = train_settings(config, "accuracy", HYPERPARAMETERS, seed=0)
    result = train_and_record(trial, settings, folds, NET8, prune_from=1)
    values = trial.user_attrs["fold_values"]
    assert len(values) == 3 and len(trial.user_attrs["fold_best_epochs"]) == 3
    assert result.best_value == pytest.approx(np.mean(values))
    assert trial.reports == pytest.approx({1: values[0], 2: np.mean(values[:2]), 3: np.mean(values)})
    assert trial.user_attrs["val_accuracy"] == pytest.approx(np.mean(values))
    assert [id(data) for data in recorded] == [id(fold) for fold in folds]
    for data in recorded:
        # Rows compare exactly within a fold: one preprocessing standardized them all.
        assert not _rows(data.x_test) & (_rows(data.x_train) | _rows(data.x_val))


def test_the_pruner_stops_a_trial_at_a_fold_boundary(tmp_path: Path, recorded: list) -> None:
    """Check that a pruning answer after fold 1 ends the trial there, with the reason and the folds done stored."""
    config = small_config(tmp_path, data={"dataset": "wine", "folds": 3}, train={"epochs": 3, "patience": 3})
    trial = _RecordingTrial(prune_at=1)
    settings = train_settings(config, "accuracy", HYPERPARAMETERS, seed=0)
    with pytest.raises(optuna.TrialPruned, match="pruned by the pruner after fold 1 of 3"):
        train_and_record(trial, settings, load_folds(config.data), NET8, prune_from=1)
    assert len(recorded) == 1 and list(trial.reports) == [1]
    assert len(trial.user_attrs["fold_values"]) == 1 and "after fold 1" in trial.user_attrs["pruned_reason"]


def test_the_search_s_time_stops_a_trial_inside_a_fold(tmp_path: Path, recorded: list) -> None:
    """Check that the time check reaches every epoch of a fold, and that its reason is kept."""
    config = small_config(tmp_path, data={"dataset": "wine", "folds": 3}, train={"epochs": 5, "patience": 5})
    trial, checks = _RecordingTrial(), iter(range(100))
    settings = train_settings(config, "accuracy", HYPERPARAMETERS, seed=0)
    with pytest.raises(optuna.TrialPruned, match=r"fold 2 of 3: stopped at epoch 2: the search's time was up"):
        # Fold 1 runs its 5 epochs (checks 0-4); fold 2 stops at its second epoch (check 6).
        train_and_record(trial, settings, load_folds(config.data), NET8, time_up=lambda: next(checks) >= 6)
    assert len(recorded) == 2 and list(trial.reports) == [1]


def test_a_trial_that_finished_every_fold_is_not_pruned(tmp_path: Path, recorded: list) -> None:
    """Check that the last fold's report completes the trial even when the pruner would stop it."""
    config = small_config(tmp_path, data={"dataset": "wine", "folds": 2}, train={"epochs": 2, "patience": 2})
    trial = _RecordingTrial(prune_at=2)
    settings = train_settings(config, "accuracy", HYPERPARAMETERS, seed=0)
    result = train_and_record(trial, settings, load_folds(config.data), NET8, prune_from=1)
    assert result.status == "completed" and list(trial.reports) == [1, 2]


def test_pruner_steps_are_folds(tmp_path: Path) -> None:
    """Check that with folds the pruner may stop a trial from fold 1 on and Hyperband's budget is k folds."""
    config = small_config(
        tmp_path, data={"dataset": "wine", "folds": 4}, study={"pruner": "median"}, train={"epochs": 20}
    )
    assert first_prunable_epoch(config) == 1
    assert make_pruner(config)._n_warmup_steps == 1
    hyperband = small_config(
        tmp_path, data={"dataset": "wine", "folds": 4}, study={"pruner": "hyperband"}, train={"epochs": 20}
    )
    assert make_pruner(hyperband)._max_resource == 4


def test_config_rejects_one_fold(tmp_path: Path) -> None:
    """Check that [data] folds = 1 is a config error naming the key, the rule and the value."""
    with pytest.raises(
        ConfigError,
        match=r"The 'folds' parameter of \[data\] must be an int in the range \[2, inf\) or None .*Got 1 instead\.",
    ):
        SearchConfig.from_dict({"data": {"dataset": "wine", "folds": 1}})


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_search_with_folds_stores_the_mean_over_folds(tmp_path: Path) -> None:
    """Check a real cross-validated search: every completed trial's value is the mean of its stored fold values."""
    from archsearch.controller import run_search
    from archsearch.export import export_best

    config = small_config(
        tmp_path,
        study={"n_trials": 3, "pruner": "none"},
        data={"dataset": "wine", "folds": 3},
        space={"layers": [0, 1], "width": [8, 16], "batch_size": [32]},
        train={"epochs": 3, "patience": 3},
    )
    study = run_search(config)
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(completed) == 3
    for trial in completed:
        assert trial.value == pytest.approx(np.mean(trial.user_attrs["fold_values"]))
        assert sorted(trial.intermediate_values) == [1, 2, 3]
    # Without a refit, the shipped network is the first fold's, trained on that fold's rows only.
    out = export_best(config.study.storage, "digits", tmp_path / "m", refit=False)
    meta = json.loads((out / "architecture.json").read_text())["metadata"]
    rows = meta["training_rows"]
    assert rows["splits"] == "fold 1 of 3 training rows" and rows["n_rows"] == len(load_folds(config.data)[0].y_train)
    # The default greedy ensemble needs one validation split for all trials; folds have none, so it is skipped.
    assert meta["greedy_ensemble"] == {"skipped": "the study searched with [data] folds = 3", "members": 1}
    assert DataSpec.from_dict(study.user_attrs["archsearch_config"]["data"]).folds == 3


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_folds_search_on_a_table_with_a_rare_category(tmp_path: Path) -> None:
    """Check that a category missing from the first fold's training rows does not fail every trial: the
    first fold's model (the one timed and stored) is one input narrower than the whole table's encoding."""
    import pandas as pd

    from archsearch.controller import run_search
    from archsearch.storage import keys
    from archsearch.trainers.data import load_data

    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], size=120).astype(object)
    colour[7] = "violet"  # one row only
    x = rng.normal(size=120)
    table = pd.DataFrame({"colour": colour, "x": x, "target": np.where(x + (colour == "red") > 0.5, "yes", "no")})
    path = tmp_path / "rare.csv"
    table.to_csv(path, index=False)
    data = {"path": str(path), "target": "target", "task": "classification", "folds": 2}
    # A seed whose first fold trains without the rare row, so its encoding is narrower than the whole table's.
    seed = next(
        s
        for s in range(50)
        if load_folds(DataSpec.from_dict({**data, "seed": s}))[0].n_features
        < load_data(DataSpec.from_dict({**data, "seed": s, "folds": None})).n_features
    )
    config = small_config(
        tmp_path,
        study={"n_trials": 2, "pruner": "none"},
        data={**data, "seed": seed, "dataset": None},
        space={"layers": [1, 1], "width": [8, 8], "batch_size": [32]},
        train={"epochs": 2, "patience": 2},
    )
    study = run_search(config)
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(completed) == 2 and all(t.user_attrs[keys.LATENCY_MS] > 0 for t in completed)
    # The stored (first-fold) network exports as it is, at its fold's width (it was refused as "other data").
    from archsearch import export_best

    out = export_best(config.study.storage, config.study.name, tmp_path / "model", refit=False)
    architecture = json.loads((out / "architecture.json").read_text())
    assert architecture["n_inputs"] == load_folds(config.data)[0].n_features
