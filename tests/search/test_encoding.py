"""Tests of input scaling and numeric-feature embeddings through a search: trial records, export, sensitivity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from archsearch.config import SearchConfig
from archsearch.export import export_best, load_model
from archsearch.sensitivity import run_sensitivity
from archsearch.spaces import NetSpec
from archsearch.storage import keys, make_storage
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers.data import load_data

from .conftest import search_objective

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def _csv(folder: Path) -> Path:
    """Two numeric columns and a three-way categorical one, so one-hot inputs are passed through."""
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"a": rng.exponential(1.0, n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    frame["label"] = np.where(frame["a"] > 1.0, "hi", "lo")
    path = folder / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def _config(folder: Path, scaling: str = "quantile") -> SearchConfig:
    return SearchConfig.from_dict(
        {
            "study": {"name": "enc", "storage": f"sqlite:///{folder}/enc.db", "n_trials": 2, "seed": 0},
            "data": {"path": str(_csv(folder)), "target": "label", "scaling": scaling},
            "space": {"layers": [1, 1], "width": [8, 8], "batch_size": [64], "embedding": "pl", "embedding_dim": 4},
            "train": {"epochs": 2, "patience": 2},
        }
    )


def test_trial_records_the_embedding_and_counts_its_parameters(tmp_path: Path) -> None:
    """Check that a trial stores embedding and embedding_dim, and n_params equals the trained network's count."""
    config = _config(tmp_path)
    data = load_data(config.data)
    storage = make_storage(config.study.storage)
    study = optuna.create_study(storage=storage, study_name="enc", direction="maximize")
    objective = search_objective(config, data, storage, tmp_path / "artifacts")
    study.optimize(objective, n_trials=1)
    attrs = study.trials[0].user_attrs
    assert (attrs[keys.EMBEDDING], attrs[keys.EMBEDDING_DIM]) == ("pl", 4)
    # The architecture's attributes are written from NetSpec.to_dict: its names are those of storage.keys.
    architecture_keys = {keys.WIDTHS, keys.DROPOUTS, keys.ACTIVATION, keys.EMBEDDING, keys.EMBEDDING_DIM}
    net = NetSpec.from_trial(attrs)
    if net.normalization != "none":  # the space searches the norm layer too
        architecture_keys.add(keys.NORMALIZATION)
    assert set(net.to_dict()) == architecture_keys
    trained = train_mlp(NetSpec([8], [0.0], "relu", embedding="pl", embedding_dim=4), data, TrainSettings(epochs=1))
    # 2 numeric inputs embedded (4 bins -> 4 values each), 3 one-hot inputs passed through.
    assert attrs["n_params"] == trained.n_params == 2 * (4 * 4 + 4) + (11 * 8 + 8) + (8 * 2 + 2)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["single", "fused"])
def test_search_with_scaling_and_embedding_exports_equal_predictions(tmp_path: Path, engine: str) -> None:
    """Check that an embedded, quantile-scaled search exports a program predicting as load_model does; fused,
    without the refit, so that the exported weights are those the fused engine trained."""
    from archsearch.controller import run_search

    stored = _config(tmp_path).to_dict()
    stored["train"]["engine"] = engine
    config = SearchConfig.from_dict(stored)
    study = run_search(config, workers=1)
    assert study.best_trial.user_attrs.get(keys.ENGINE, "single") == engine
    out = export_best(config.study.storage, "enc", tmp_path / "model", refit=engine == "single", greedy_ensemble=False)
    predictor = load_model(out)
    assert predictor.architecture["embedding"] == "pl" and predictor.preprocessing.scaling == "quantile"
    rows = pd.read_csv(tmp_path / "rows.csv").drop(columns="label")
    program = torch.export.load(out / "model.pt2").module()
    with torch.inference_mode():
        logits = program(torch.from_numpy(predictor.preprocessing.encode(rows)))
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), predictor.predict_proba(rows), atol=1e-6)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["single", "fused"])
def test_sensitivity_trains_an_embedded_centres_neighbours_with_its_embedding(tmp_path: Path, engine: str) -> None:
    """Check that the neighbours of a pl-embedded centre train with that embedding, the linear one without,
    that parameter counts count only the numeric inputs as embedded (as the search's trial does), and that
    a fused worker trains every run fused."""
    from archsearch.controller import run_search

    stored = _config(tmp_path).to_dict()
    stored["train"]["engine"] = engine
    config = SearchConfig.from_dict(stored)
    study = run_search(config, workers=1)
    centre = study.best_trial
    with pytest.warns(UserWarning, match="With 2 seeds no neighbour"):  # 2 seeds are enough to check the runs
        result = run_sensitivity(config.study.storage, "enc", repeats=2, steps=())
    companion = optuna.load_study(study_name="enc.sensitivity", storage=config.study.storage)
    runs = [t for t in companion.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert runs and all(t.user_attrs["centre_trial"] == centre.number for t in runs)
    for run in runs:
        expected = None if run.user_attrs["depth"] == 0 else "pl"
        assert run.user_attrs.get(keys.EMBEDDING) == expected, run.user_attrs["change"]
        if engine == "fused" and expected == "pl":  # every embedded run trains fused
            assert run.user_attrs[keys.ENGINE] == "fused" and keys.ENGINE_REASON not in run.user_attrs
        elif engine == "fused":  # the plain linear model is fitted by L-BFGS, on the single engine
            assert "linear_solver = 'lbfgs'" in run.user_attrs[keys.ENGINE_REASON]
    centre_runs = [t for t in runs if t.user_attrs["kind"] == "centre"]
    # 2 numeric inputs embedded, 3 one-hot passed through: the count the search stored for the trial itself.
    assert {t.user_attrs["n_params"] for t in centre_runs} == {centre.user_attrs["n_params"]}
    (found,) = result.centres
    linear = [n for n in found.neighbours if n.kind == "remove_layer"]
    assert (
        linear
        and linear[0].change
        == "remove layer 1 (linear model with the centre's hyperparameters, without its pl embedding)"
    )
    assert linear[0].n_params == 5 * 2 + 2
    assert (found.embedding, found.embedding_dim) == ("pl", 4) and result.to_dict()["centres"][0]["embedding"] == "pl"
    assert f"Centre trial {centre.number} (1 layer of 8, relu, pl embedding of 4; " in result.summary
