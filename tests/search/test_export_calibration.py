"""Tests of exporting a study searched with class weights: calibrated probabilities, the search's decisions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from archsearch.export import describe_export, export_best, load_model
from archsearch.trainers.data import load_data
from archsearch.trainers.metrics import classification_metrics

from .conftest import FinishedSearch, small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def balanced_search(tmp_path_factory: pytest.TempPathFactory) -> FinishedSearch:
    """A balanced_accuracy search (class_weight "balanced") on 4,000 rows of which 8% are "yes"; 40% held out."""
    from archsearch.controller import run_search

    folder = tmp_path_factory.mktemp("balanced")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    p_yes = 1 / (1 + np.exp(-(x @ np.array([2.0, -1.5, 0.5]) - 3.2)))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(bought=np.where(rng.random(4000) < p_yes, "yes", "no"))
    frame.to_csv(folder / "rows.csv", index=False)
    config = small_config(
        folder,
        study={"name": "balanced", "n_trials": 4, "metric": "balanced_accuracy"},
        data={"dataset": None, "path": str(folder / "rows.csv"), "target": "bought", "test_fraction": 0.4},
        space={"layers": [0, 1], "width": [8, 16], "batch_size": [128], "lr": [3e-3, 3e-2]},
        train={"epochs": 6, "patience": 3},
    )
    study = run_search(config)
    return FinishedSearch(config=config, study=study, url=config.study.storage, folder=folder)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("options", [{}, {"refit": False, "greedy_ensemble": False}, {"ensemble": 2}])
def test_a_class_weighted_export_gives_probabilities_of_the_data(
    balanced_search: FinishedSearch, tmp_path: Path, options: dict
) -> None:
    """Check, for the default export (refit + greedy selection), the search's own network and a 2-trial
    ensemble, that on 1,600 held-out rows each class's mean probability is within 1 point of its rate and log
    loss beats the uncorrected output's, while predict keeps the class-weighted decision whose balanced
    accuracy the export recorded, and describe_export says what it corrected."""
    out = export_best(balanced_search.url, "balanced", tmp_path / "model", **options)
    model = load_model(out)
    data = load_data(balanced_search.config.data)
    y = data.y_test
    assert len(y) == 1600 and model.calibration is not None
    proba = model.predict_proba(data.raw_test)
    rates = np.bincount(y, minlength=2) / len(y)
    assert np.abs(proba.mean(axis=0) - rates).max() < 0.01
    # The uncorrected output is the class-weighted posterior: the program's output less the offsets.
    outputs = model._forward(data.raw_test) - np.asarray(model.calibration.log_offsets)
    weighted = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    assert weighted[:, 1].mean() > rates[1] + 0.1
    assert classification_metrics(y, proba)["log_loss"] < classification_metrics(y, weighted)["log_loss"]
    decided = model.predict(data.raw_test) == np.asarray(model.classes)[y]
    assert (decided == (weighted.argmax(axis=1) == y)).all()
    recall = [decided[y == k].mean() for k in range(2)]
    metadata = json.loads((out / "architecture.json").read_text())["metadata"]
    assert metadata["test_metrics"]["test_balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert "Probabilities are corrected for class_weight = 'balanced'" in describe_export(out)
