"""Tests for archsearch.pool (the fused worker): a search with [train] engine = "fused" stores ordinary trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import archsearch.trainers
from archsearch.controller import run_search
from archsearch.storage import finished_count, keys, make_storage

from ...conftest import wait_for
from ..conftest import small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# The default training recipe (warm-up, lr schedule, label smoothing, normalization) and the default space's
# "pl" embedding (4 values a feature here, to keep the networks small): all of it is fused.
SPACE = {"layers": [0, 2], "width": [16, 64], "dropout": [0.0, 0.0], "batch_size": [64, 128], "embedding_dim": [4]}


def _search(folder: Path, engine: str) -> optuna.Study:
    folder.mkdir()
    # linear_solver "optimizer": the linear trials train fused too (L-BFGS would send them to the single engine),
    # so the engines' linear slots are compared below.
    config = small_config(
        folder,
        study={"n_trials": 8},
        space=SPACE,
        train={"epochs": 3, "patience": 2, "engine": engine, "slots": 3, "linear_solver": "optimizer"},
    )
    assert config.space.embedding == ("none", "pl")
    return run_search(config)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fused_search_stores_the_single_engine_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that fused trials hold the single engine's values and attributes, and unsupported ones run single."""
    single = _search(tmp_path / "single", "single")
    real = archsearch.trainers.fused_unsupported_reason

    def two_layers_unsupported(net, settings):  # noqa: ANN001, ANN202
        return "two layers are not fused in this test" if len(net.widths) == 2 else real(net, settings)

    monkeypatch.setattr(archsearch.trainers, "fused_unsupported_reason", two_layers_unsupported)
    fused = _search(tmp_path / "fused", "fused")

    trials = fused.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(trials) == 8
    for trial in trials:
        depth = trial.user_attrs["depth"]
        # Only the engine attributes tell the two engines' trials apart.
        assert trial.user_attrs[keys.ENGINE] == ("single" if depth == 2 else "fused")
        if depth == 2:
            assert trial.user_attrs[keys.ENGINE_REASON] == "two layers are not fused in this test"
        else:
            assert keys.FUSED_SLOT in trial.user_attrs
        assert len(trial.intermediate_values) == trial.user_attrs["epochs_run"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert keys.WEIGHTS in trial.user_attrs
            assert trial.value == pytest.approx(trial.user_attrs["val_accuracy"])
    # Random start-up trials sample the same parameters under both engines; with dropout 0 their
    # per-epoch values agree to float rounding (the pruner may stop them at different epochs). Batch-norm
    # trials are left out: under Adam their pre-norm biases follow Adam-scaled rounding noise in either engine.
    by_number = {t.number: t for t in single.trials}
    compared, embedded = 0, 0
    for trial in trials:
        twin = by_number[trial.number]
        if twin.params != trial.params or trial.params.get("normalization") == "batch":
            continue
        common = sorted(set(trial.intermediate_values) & set(twin.intermediate_values))
        assert [trial.intermediate_values[e] for e in common] == pytest.approx(
            [twin.intermediate_values[e] for e in common], abs=1e-4
        )
        compared += 1
        fused_pl = trial.params.get("embedding") == "pl" and trial.user_attrs[keys.ENGINE] == "fused"
        embedded += fused_pl and trial.user_attrs["depth"] > 0
    assert compared >= 4 and embedded >= 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_past_the_timeout_with_no_complete_trial_a_fused_worker_finishes_only_its_best(tmp_path: Path) -> None:
    """Check that a fused worker whose timeout passes before any trial completed stops all its trials but the
    most promising one, which completes (the export needs one), instead of training every slot to the end."""
    config = small_config(
        tmp_path,
        study={"n_trials": 20, "timeout": 2},
        space={**SPACE, "layers": [1, 1], "width": [16, 16], "batch_size": [64], "embedding": "none"},
        train={"epochs": 200, "patience": 200, "engine": "fused", "slots": 3},
    )
    study = run_search(config)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    others = [t for t in study.trials if t.state != TrialState.COMPLETE]
    assert len(complete) == 1 and complete[0].user_attrs["epochs_run"] == 200
    assert len(others) == 2 and all(t.state == TrialState.PRUNED for t in others)
    reason = f"stopped at the timeout with no trial complete yet: the worker finishes only trial {complete[0].number}"
    assert {t.user_attrs[keys.PRUNED_REASON] for t in others} == {reason}
    # The one kept had the best validation value of the three when the others stopped (the slots ran in lockstep).
    kept = complete[0].intermediate_values
    for trial in others:
        stopped_at = max(trial.intermediate_values)
        assert max(trial.intermediate_values.values()) <= max(v for e, v in kept.items() if e <= stopped_at)


def test_cli_engine_option_is_checked_like_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `archsearch search --engine` with an unknown engine exits 2 naming the rule and the value."""
    from archsearch.cli import main

    config = tmp_path / "search.toml"
    config.write_text(f"[study]\nstorage = 'sqlite:///{tmp_path}/s.db'\n", encoding="utf-8")
    assert main(["search", str(config), "--engine", "turbo"]) == 2
    err = capsys.readouterr().err
    assert "The 'engine' parameter of [train] must be one of auto, single, fused. Got 'turbo' instead." in err
    assert not (tmp_path / "s.db").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fused_worker_fails_and_puts_back_its_running_trials_on_a_signal_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that SIGINT fails every trial the fused worker trains (none left RUNNING) and puts each back as
    waiting, and that a rerun completes."""
    step_epoch = archsearch.trainers.Population.step_epoch
    calls = []

    def interrupted_step_epoch(self):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the worker's handler only asks the loop to stop
        return step_epoch(self)

    monkeypatch.setattr(archsearch.trainers.Population, "step_epoch", interrupted_step_epoch)
    config = small_config(
        tmp_path,
        study={"n_trials": 6},
        space={**SPACE, "layers": [1, 1], "batch_size": [64]},
        train={"epochs": 4, "patience": 4, "engine": "fused", "slots": 3},
    )
    with pytest.raises(KeyboardInterrupt):
        run_search(config)
    study = optuna.load_study(study_name=config.study.name, storage=make_storage(config.study.storage))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 3
    assert {t.user_attrs["fail_reason"] for t in failed} == {"stopped by a signal"}
    assert not study.get_trials(states=(TrialState.RUNNING,))
    # Each is put back with its parameters, to train first on the next run.
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.system_attrs["failed_trial"] for t in waiting) == sorted(t.number for t in failed)
    assert all(t.params == study.trials[t.system_attrs["failed_trial"]].params for t in waiting)
    monkeypatch.setattr(archsearch.trainers.Population, "step_epoch", step_epoch)
    study = run_search(config)
    assert finished_count(study) == 6 and not study.get_trials(states=(TrialState.WAITING,))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sigkilled_fused_worker_trials_are_failed_and_retried(tmp_path: Path) -> None:
    """Check that every trial of a SIGKILLed fused worker ends FAILED and is retried to the study's total."""
    config = tmp_path / "fused.toml"
    config.write_text(
        f'[study]\nname = "faults"\nstorage = "sqlite:///{tmp_path}/faults.db"\nn_trials = 8\n'
        "heartbeat_interval = 1\ngrace_period = 4\n"
        '[data]\ndataset = "digits"\n[space]\nlayers = [1, 2]\nwidth = [16, 64]\nbatch_size = [32]\n'
        '[train]\nepochs = 6\npatience = 6\nengine = "fused"\nslots = 3\n',
        encoding="utf-8",
    )
    storage = make_storage(f"sqlite:///{tmp_path}/faults.db")

    def running() -> list[optuna.trial.FrozenTrial]:
        try:
            study = optuna.load_study(study_name="faults", storage=storage)
        except KeyError:  # not created yet
            return []
        return [t for t in study.get_trials(states=(TrialState.RUNNING,)) if "fused_slot" in t.user_attrs]

    controller = subprocess.Popen(
        [sys.executable, "-m", "archsearch.cli", "search", str(config), "--workers", "2", "--quiet"], cwd=tmp_path
    )
    try:
        wait_for(lambda: bool(running()), 180, "a fused trial to start")
        victims = running()
        pid = int(victims[0].user_attrs["worker"].split(":")[1].split("/")[0])
        victims = [t for t in victims if t.user_attrs["worker"] == victims[0].user_attrs["worker"]]
        os.kill(pid, signal.SIGKILL)
        assert controller.wait(timeout=360) == 0
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=30)
    study = optuna.load_study(study_name="faults", storage=storage)
    for victim in victims:
        assert study.trials[victim.number].state == TrialState.FAIL
        retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
        assert len(retries) == 1 and retries[0].params == victim.params
    assert finished_count(study) == 8


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fused_search_with_folds_trains_on_the_single_engine_and_says_why(tmp_path: Path) -> None:
    """Check that [data] folds, which the fused engine does not train, sends every trial to the single engine."""
    config = small_config(
        tmp_path,
        study={"n_trials": 3},
        data={"folds": 2},
        space=SPACE,
        train={"epochs": 2, "patience": 2, "engine": "fused", "slots": 3},
    )
    trials = run_search(config).get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 3
    for trial in trials:
        assert trial.user_attrs[keys.ENGINE] == "single"
        assert trial.user_attrs[keys.ENGINE_REASON] == "the fused engine does not train [data] folds yet"
        if trial.state == TrialState.COMPLETE:
            assert len(trial.user_attrs["fold_values"]) == 2  # trained on both folds, not on one split
