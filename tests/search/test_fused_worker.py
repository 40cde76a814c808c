"""Tests for archsearch.fused_worker: a search with [train] engine = "fused" stores ordinary trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import archsearch.trainers
from archsearch.controller import run_search
from archsearch.fused_worker import ENGINE_ATTR, ENGINE_REASON_ATTR, FUSED_SLOT_ATTR
from archsearch.storage import WEIGHTS_ATTR

from .conftest import small_config

SPACE = {"layers": [0, 2], "width": [16, 64], "dropout": [0.0, 0.0], "batch_size": [64, 128]}


def _search(folder: Path, engine: str) -> optuna.Study:
    folder.mkdir()
    config = small_config(
        folder, study={"n_trials": 8}, space=SPACE, train={"epochs": 3, "patience": 2, "engine": engine, "slots": 3}
    )
    return run_search(config)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fused_search_stores_the_single_engine_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that fused trials hold the single engine's values and attributes, and unsupported ones run single."""
    single = _search(tmp_path / "single", "single")
    real = archsearch.trainers.fused_unsupported_reason

    def two_layers_unsupported(widths, dropouts, activation, settings):  # noqa: ANN001, ANN202
        return "two layers are not fused in this test" if len(widths) == 2 else real(widths, dropouts, activation, settings)

    monkeypatch.setattr(archsearch.trainers, "fused_unsupported_reason", two_layers_unsupported)
    fused = _search(tmp_path / "fused", "fused")

    trials = fused.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(trials) == 8
    for trial in trials:
        depth = trial.user_attrs["depth"]
        # Only the engine attributes tell the two engines' trials apart.
        assert trial.user_attrs[ENGINE_ATTR] == ("single" if depth == 2 else "fused")
        if depth == 2:
            assert trial.user_attrs[ENGINE_REASON_ATTR] == "two layers are not fused in this test"
        else:
            assert FUSED_SLOT_ATTR in trial.user_attrs
        assert len(trial.intermediate_values) == trial.user_attrs["epochs_run"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert WEIGHTS_ATTR in trial.user_attrs
            assert trial.value == pytest.approx(trial.user_attrs["val_accuracy"])
    # Random start-up trials sample the same parameters under both engines; with dropout 0 their
    # per-epoch values agree to float rounding (the pruner may stop them at different epochs).
    by_number = {t.number: t for t in single.trials}
    compared = 0
    for trial in trials:
        twin = by_number[trial.number]
        if twin.params != trial.params:
            continue
        common = sorted(set(trial.intermediate_values) & set(twin.intermediate_values))
        assert [trial.intermediate_values[e] for e in common] == pytest.approx(
            [twin.intermediate_values[e] for e in common], abs=1e-4
        )
        compared += 1
    assert compared >= 4


def test_cli_engine_option_is_checked_like_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `archsearch search --engine` with an unknown engine exits 2 naming the rule and the value."""
    from archsearch.cli import main

    config = tmp_path / "search.toml"
    config.write_text(f"[study]\nstorage = 'sqlite:///{tmp_path}/s.db'\n", encoding="utf-8")
    assert main(["search", str(config), "--engine", "turbo"]) == 2
    err = capsys.readouterr().err
    assert "The 'engine' parameter of [train] must be one of single, fused. Got 'turbo' instead." in err
    assert not (tmp_path / "s.db").exists()
