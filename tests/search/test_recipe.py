"""Tests of the training recipe in the config: [train] warmup and grad_clip, stored configs, train_settings."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.config import ConfigError, SearchConfig, TrainConfig, load_config
from archsearch.pool import train_settings
from archsearch.spaces import NetSpec
from archsearch.storage import keys

from .conftest import small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

HYPER = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}


def _old_stored(config: SearchConfig) -> dict:
    """The config as a study stored it before the training recipe keys existed."""
    stored = config.to_dict()
    for key in ("lr_schedule", "label_smoothing", "normalization", "embedding", "embedding_dim"):
        del stored["space"][key]
    for key in ("warmup", "grad_clip"):
        del stored["train"][key]
    return stored


def test_train_section_reads_warmup_and_grad_clip(tmp_path: Path) -> None:
    """Check that [train] warmup and grad_clip load from TOML and survive the round trip."""
    path = tmp_path / "search.toml"
    path.write_text("[train]\nwarmup = 0.1\ngrad_clip = 1.0\n", encoding="utf-8")
    config = load_config(path)
    assert (config.train.warmup, config.train.grad_clip) == (0.1, 1.0)
    assert SearchConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"warmup": 0.6},
            r"The 'warmup' parameter of \[train\] must be a float in \[0, 0.5\] \(a fraction of all training steps\)\. Got 0.6 instead\.",
        ),
        ({"warmup": True}, r"The 'warmup' parameter of \[train\] must be a float in \[0, 0.5\]"),
        (
            {"grad_clip": 0.0},
            r"The 'grad_clip' parameter of \[train\] must be a float > 0 \(leave it out to disable clipping\)\. Got 0.0 instead\.",
        ),
        ({"grad_clip": "1"}, r"The 'grad_clip' parameter of \[train\] must be a float > 0"),
    ],
)
def test_train_section_rejects_bad_recipe_values(kwargs: dict, match: str) -> None:
    """Check that a bad warmup or grad_clip names the key, the rule and the value."""
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_from_stored_gives_an_old_study_the_training_it_had(tmp_path: Path) -> None:
    """Check that a stored config without the recipe keys means constant lr, no warm-up, smoothing, clipping or norm."""
    config = SearchConfig.from_stored(_old_stored(small_config(tmp_path)))
    space, train = config.space, config.train
    assert (space.lr_schedule, space.label_smoothing, space.normalization) == (("constant",), (0.0, 0.0), ("none",))
    assert (train.warmup, train.grad_clip) == (0.0, None)
    # A config stored with the keys keeps them.
    current = small_config(tmp_path, space={"lr_schedule": ["onecycle"]}, train={"warmup": 0.2})
    assert SearchConfig.from_stored(current.to_dict()) == current
    with pytest.raises(ConfigError, match="A stored search config must be a table of sections. Got list instead."):
        SearchConfig.from_stored([])


def test_train_settings_without_recipe_keys_trains_as_before(tmp_path: Path) -> None:
    """Check that hyperparameters stored before the recipe keys give TrainSettings' defaults for them."""
    config = SearchConfig.from_stored(_old_stored(small_config(tmp_path)))
    settings = train_settings(config, "accuracy", HYPER, seed=0)
    recipe = (
        settings.lr_schedule,
        settings.warmup,
        settings.label_smoothing,
        settings.grad_clip,
    )
    assert recipe == ("constant", 0.0, 0.0, None)
    # The norm layer is part of the architecture now: an old trial without the param has none.
    stored = {"widths": [8], "dropouts": [0.0], "activation": "relu"}
    assert NetSpec.from_trial(stored, {**HYPER}).normalization == "none"
    assert NetSpec.from_trial(stored, {**HYPER, "normalization": "layer"}).normalization == "layer"


def test_train_settings_passes_the_recipe_and_drops_smoothing_for_regression(tmp_path: Path) -> None:
    """Check that the candidate's recipe and [train] warmup/grad_clip reach TrainSettings; regression gets no smoothing."""
    config = small_config(tmp_path, train={"warmup": 0.1, "grad_clip": 2.0})
    recipe = {"lr_schedule": "onecycle", "label_smoothing": 0.1, "normalization": "layer"}
    settings = train_settings(config, "accuracy", {**HYPER, **recipe}, seed=0)
    assert (settings.lr_schedule, settings.label_smoothing) == ("onecycle", 0.1)
    assert (settings.warmup, settings.grad_clip) == (0.1, 2.0)
    assert train_settings(config, "rmse", {**HYPER, **recipe}, seed=0).label_smoothing == 0.0


def test_resuming_an_old_study_compares_against_its_old_training(tmp_path: Path) -> None:
    """Check that an old study is refused with a new recipe and resumes with the old one spelled out."""
    from archsearch.controller import open_search_study

    legacy = {
        "lr_schedule": ["constant"],
        "label_smoothing": [0.0, 0.0],
        "normalization": ["none"],
        "embedding": "none",
    }
    old = small_config(tmp_path, space=legacy, train={"warmup": 0.0})
    study = open_search_study(old).study
    study.set_user_attr(keys.CONFIG, _old_stored(old))
    changed = small_config(
        tmp_path, space={**legacy, "lr_schedule": ["cosine"]}, train={"warmup": 0.0, "grad_clip": 1.0}
    )
    with pytest.raises(
        ConfigError,
        match=r"different search: \[space\] lr_schedule, \[train\] grad_clip \(stored None, now 1\.0\) changed",
    ):
        open_search_study(changed)
    open_search_study(old)
    # The resume stored the config with its recipe keys, for workers that join later.
    stored = optuna.load_study(study_name="digits", storage=old.study.storage).user_attrs[keys.CONFIG]
    assert (stored["space"]["lr_schedule"], stored["train"]["warmup"]) == (["constant"], 0.0)
    assert stored["space"]["embedding"] == ["none"]  # not today's default, which searches "pl" too


@pytest.mark.timeout(300)
def test_export_best_rebuilds_the_norm_layers_of_the_trial(tmp_path: Path) -> None:
    """Check that a searched trial with batch norm exports with it, and the loaded model scores as the trial did."""
    import json

    import numpy as np

    from archsearch.controller import run_search
    from archsearch.export import export_best, load_model
    from archsearch.trainers.data import load_data

    config = small_config(
        tmp_path,
        study={"n_trials": 1},
        space={"layers": [1, 1], "width": [16, 16], "normalization": ["batch"], "lr_schedule": ["cosine"]},
        train={"epochs": 2},
    )
    trial = run_search(config).best_trial
    assert (trial.params["normalization"], trial.params["lr_schedule"]) == ("batch", "cosine")
    # The trial's own weights, so the exported program must reproduce the trial's test accuracy exactly.
    out = export_best(config.study.storage, "digits", tmp_path / "model", refit=False)
    assert json.loads((out / "architecture.json").read_text())["normalization"] == "batch"
    data = load_data(config.data)
    labels = load_model(out).predict(data.raw_test)
    accuracy = float(np.mean(labels == data.preprocessing.decode_labels(data.y_test)))
    assert accuracy == pytest.approx(trial.user_attrs["test_accuracy"], abs=1e-9)
