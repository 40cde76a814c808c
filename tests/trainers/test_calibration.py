"""Tests of the class-weight calibration of exported models: probabilities for the data's class frequencies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from archsearch.spaces import NetSpec
from archsearch.trainers import (
    ExportError,
    Member,
    TrainSettings,
    export_ensemble,
    export_model,
    fit_calibration,
    load_model,
    train_mlp,
)
from archsearch.trainers._calibration import Calibration, balanced_class_weights, class_weight_offsets
from archsearch.trainers.data import DataSpec, PreparedData, load_data
from archsearch.trainers.metrics import classification_metrics

LINEAR = NetSpec((), (), "relu")  # a linear model: class weights act on its logits alone


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    """8,000 rows of a 3-class logistic model whose classes hold about 80%, 15% and 5% of the rows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8000, 4))
    logits = x @ np.array([[0.0, 1.5, -1.0], [0.0, -1.0, 1.5], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    logits += np.log([0.8, 0.15, 0.05])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    path = tmp_path_factory.mktemp("imbalanced") / "rows.csv"
    pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(label=np.array(["no", "maybe", "yes"])[y]).to_csv(
        path, index=False
    )
    return load_data(DataSpec(dataset=None, path=str(path), target="label", val_fraction=0.1, test_fraction=0.4))


def _train(data: PreparedData, seed: int, label_smoothing: float = 0.0) -> dict:
    """A linear model trained with balanced class weights, as a balanced_accuracy search trains it."""
    settings = TrainSettings(
        lr=0.03,
        epochs=4,
        batch_size=256,
        metric="balanced_accuracy",
        class_weight="balanced",
        seed=seed,
        label_smoothing=label_smoothing,
    )
    return train_mlp(LINEAR, data, settings).state_dict


@pytest.fixture(scope="module")
def weighted(imbalanced: PreparedData) -> list[dict]:
    """Two linear models (seeds 0 and 1) trained with balanced class weights, and one with label smoothing 0.15."""
    return [_train(imbalanced, 0), _train(imbalanced, 1), _train(imbalanced, 2, label_smoothing=0.15)]


def _export(folder: Path, data: PreparedData, state_dict: dict, calibration: Calibration | None) -> Path:
    return export_model(
        folder,
        net=LINEAR,
        state_dict=state_dict,
        preprocessing=data.preprocessing,
        metadata={},
        calibration=calibration,
    )


def _member(state_dict: dict, weight: float | None = None) -> Member:
    return Member(LINEAR, state_dict, weight)


def _offsets_only(data: PreparedData, n_networks: int = 1) -> Calibration:
    """The prior correction alone (biases 0): what the calibration would be without its fitted biases."""
    counts = tuple(int(c) for c in np.bincount(data.y_train, minlength=data.n_outputs))
    offsets = class_weight_offsets(data.y_train, data.n_outputs)
    return Calibration("balanced", counts, offsets, ((0.0,) * data.n_outputs,) * n_networks)


def _gap(model, data: PreparedData) -> float:
    """The largest difference, over classes, between mean predicted probability and rate on the test rows."""
    rates = np.bincount(data.y_test, minlength=data.n_outputs) / len(data.y_test)
    return float(np.abs(model.predict_proba(data.raw_test).mean(axis=0) - rates).max())


def test_balanced_weights_are_sklearns() -> None:
    """Check that the training weights are scikit-learn's "balanced" class weights, computed in one place."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 0, 1, 1, 2])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(balanced_class_weights(y, 3), expected)


def test_calibrated_probabilities_match_the_class_rates_on_held_out_rows(tmp_path: Path, imbalanced, weighted) -> None:
    """Check that on 3,200 held-out rows the mean predicted probability of each class is within 1 point of its
    rate (uncorrected: tens of points off), log loss is lower than the uncorrected model's, and predict keeps
    the class-weighted decision of balanced accuracy."""
    data = imbalanced
    calibration = fit_calibration([_member(weighted[0])], data)
    plain = load_model(_export(tmp_path / "plain", data, weighted[0], None))
    calibrated = load_model(_export(tmp_path / "calibrated", data, weighted[0], calibration))
    y = data.y_test
    before, after = plain.predict_proba(data.raw_test), calibrated.predict_proba(data.raw_test)
    assert len(y) == 3200
    assert _gap(plain, data) > 0.2 and _gap(calibrated, data) < 0.01
    assert classification_metrics(y, after)["log_loss"] < classification_metrics(y, before)["log_loss"]
    # The decision is the class-weighted posterior of the calibrated probabilities; for a network trained
    # without smoothing to its optimum it is the network's own argmax on almost every row.
    decided = calibrated.predict(data.raw_test)
    weighted_posterior = after / np.exp(np.asarray(calibration.log_offsets))
    assert (decided == np.asarray(calibrated.classes)[weighted_posterior.argmax(axis=1)]).all()
    assert (decided == plain.predict(data.raw_test)).mean() > 0.97


def test_fitted_biases_correct_what_the_offsets_leave(tmp_path: Path, imbalanced, weighted) -> None:
    """Check that a network trained with label smoothing 0.15 too, stopped at its best balanced accuracy, whose
    prior correction alone leaves its class rates off by more than 1 point, is within 1 point with its biases."""
    data = imbalanced
    alone = load_model(_export(tmp_path / "offsets", data, weighted[2], _offsets_only(data)))
    fitted = load_model(_export(tmp_path / "fitted", data, weighted[2], fit_calibration([_member(weighted[2])], data)))
    assert _gap(alone, data) > 0.01 and _gap(fitted, data) < 0.01
    y = data.y_test
    losses = [classification_metrics(y, m.predict_proba(data.raw_test))["log_loss"] for m in (alone, fitted)]
    assert losses[1] < losses[0]


def test_the_program_outputs_calibrated_logits_and_the_folder_says_so(tmp_path: Path, imbalanced, weighted) -> None:
    """Check that model.pt2's softmax is predict_proba, and architecture.json names the calibration and the decision."""
    data = imbalanced
    calibration = fit_calibration([_member(weighted[0])], data)
    folder = _export(tmp_path / "model", data, weighted[0], calibration)
    program = torch.export.load(folder / "model.pt2").module()
    encoded = torch.from_numpy(data.preprocessing.encode(data.raw_test[:50]))
    proba = torch.softmax(program(encoded), dim=1).detach().numpy()
    np.testing.assert_allclose(proba, load_model(folder).predict_proba(data.raw_test[:50]), atol=1e-6)
    stored = json.loads((folder / "architecture.json").read_text())["calibration"]
    assert stored["class_weight"] == "balanced" and len(stored["biases"]) == 1
    assert stored["train_class_counts"] == np.bincount(data.y_train, minlength=3).tolist()
    assert stored["decision"] == "argmax of the class-weighted posterior"
    assert Calibration.from_dict(stored) == calibration


def test_an_ensemble_calibrates_each_member_before_the_mean(tmp_path: Path, imbalanced, weighted) -> None:
    """Check that a class-weighted ensemble's probabilities match the class rates too, each member corrected with
    its own biases (a mixture of probabilities, not of class-weighted posteriors)."""
    data = imbalanced
    members = [_member(weighted[0], 2.0), _member(weighted[2], 1.0)]
    calibration = fit_calibration(members, data)
    assert calibration.biases[0] != calibration.biases[1]
    folder = export_ensemble(
        tmp_path / "ens", members=members, preprocessing=data.preprocessing, metadata={}, calibration=calibration
    )
    assert _gap(load_model(folder), data) < 0.01
    with pytest.raises(ExportError, match=r"one list of biases per network \(2\)\. Got 3 offsets and 1 lists"):
        export_ensemble(
            tmp_path / "bad",
            members=members,
            preprocessing=data.preprocessing,
            metadata={},
            calibration=calibration.member(0),
        )


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"class_weight": "balanced", "train_class_counts": [3, 1]}, r"must hold class_weight, train_class_counts"),
        (
            {"class_weight": "balanced", "train_class_counts": [3, 1], "log_offsets": [0.1], "biases": [[0, 0]]},
            r"log_offsets and biases must be finite numbers, one per class \(2\)",
        ),
    ],
)
def test_a_malformed_calibration_is_refused(entry: dict, match: str) -> None:
    """Check that a calibration entry that cannot be applied is an ExportError naming what is wrong."""
    with pytest.raises(ExportError, match=match):
        Calibration.from_dict(entry)


def test_a_class_without_training_rows_has_no_correction() -> None:
    """Check that a class absent from training, whose weight is undefined, is refused by name."""
    with pytest.raises(ExportError, match=r"Classes \[2\] have no training row"):
        class_weight_offsets(np.array([0, 0, 1]), 3)
