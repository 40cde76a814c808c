"""Tests of ensemble export: one torch.export program averaging its members, for classification and regression."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.spaces import NetSpec
from archsearch.trainers import (
    ExportError,
    Member,
    build_mlp,
    ensemble_test_metrics,
    export_ensemble,
    export_model,
    load_model,
    split_predictions,
)
from archsearch.trainers.data import DataSpec, PreparedData, load_data
from archsearch.trainers.metrics import classification_metrics, regression_metrics

ARCHITECTURES = [([16], [0.1], "relu"), ([], [], "relu"), ([8, 4], [0.0, 0.0], "tanh")]


def _members(data: PreparedData) -> list[Member]:
    members = []
    for seed, (widths, dropouts, activation) in enumerate(ARCHITECTURES):
        mlp = build_mlp(
            data.n_features, widths, dropouts, activation, data.n_outputs, generator=torch.Generator().manual_seed(seed)
        )
        members.append(Member(NetSpec(widths, dropouts, activation), mlp.state_dict(), record={"seed": seed}))
    return members


def _program_output(folder: Path, encoded: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.export.load(folder / "model.pt2").module()(encoded)


@pytest.mark.parametrize("dataset", ["wine", "diabetes"])
def test_ensemble_program_averages_the_members_programs(dataset: str, tmp_path: Path) -> None:
    """Check that model.pt2 gives the mean probability (classification) or mean value (regression) of the single programs."""
    data = load_data(DataSpec(dataset=dataset))
    members = _members(data)
    folder = export_ensemble(
        tmp_path / "ensemble", members=members, preprocessing=data.preprocessing, metadata={"k": 3}
    )
    encoded = torch.from_numpy(data.preprocessing.encode(data.raw_test))
    singles = []
    for i, member in enumerate(members):
        single = export_model(
            tmp_path / f"m{i}",
            net=member.net,
            state_dict=member.state_dict,
            preprocessing=data.preprocessing,
            metadata={},
        )
        singles.append(_program_output(single, encoded))
    out = _program_output(folder, encoded)
    if data.task == "classification":
        expected = torch.stack([torch.softmax(s, dim=1) for s in singles]).mean(dim=0)
        torch.testing.assert_close(torch.exp(out), expected, atol=1e-6, rtol=1e-5)
    else:
        torch.testing.assert_close(out, torch.stack(singles).mean(dim=0), atol=1e-4, rtol=1e-5)
    architecture = json.loads((folder / "architecture.json").read_text())
    assert architecture["kind"] == "ensemble" and [m["seed"] for m in architecture["members"]] == [0, 1, 2]
    assert "state_dict" not in architecture["members"][0]


@pytest.mark.parametrize("dataset", ["wine", "diabetes"])
def test_load_model_and_test_metrics_of_an_ensemble(dataset: str, tmp_path: Path) -> None:
    """Check that load_model predicts with the ensemble and ensemble_test_metrics scores exactly those predictions."""
    data = load_data(DataSpec(dataset=dataset))
    members = _members(data)
    folder = export_ensemble(tmp_path / "e", members=members, preprocessing=data.preprocessing, metadata={})
    model = load_model(folder)
    metrics = ensemble_test_metrics(members, data)
    if data.task == "classification":
        proba = model.predict_proba(data.raw_test)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        expected = classification_metrics(data.y_test, proba)
    else:
        y_test = data.y_test * data.preprocessing.target_scale + data.preprocessing.target_mean
        expected = regression_metrics(y_test, model.predict(data.raw_test))
    assert metrics == pytest.approx({f"test_{k}": v for k, v in expected.items()})


def test_export_ensemble_refuses_no_members(tmp_path: Path) -> None:
    """Check that an ensemble without members is refused, naming the parameter and the count."""
    data = load_data(DataSpec(dataset="wine"))
    with pytest.raises(
        ExportError, match=r"The 'members' parameter of export_ensemble must hold at least one member\. Got 0 instead\."
    ):
        export_ensemble(tmp_path / "e", members=[], preprocessing=data.preprocessing, metadata={})


def test_load_model_refuses_a_malformed_ensemble(tmp_path: Path) -> None:
    """Check that an ensemble folder whose member lacks its widths, or whose weights do not fit, is an ExportError."""
    data = load_data(DataSpec(dataset="wine"))
    folder = export_ensemble(tmp_path / "e", members=_members(data), preprocessing=data.preprocessing, metadata={})
    path = folder / "architecture.json"
    architecture = json.loads(path.read_text())
    del architecture["members"][1]["widths"]
    path.write_text(json.dumps(architecture))
    with pytest.raises(
        ExportError, match=r"does not describe a valid ensemble: every one of its members needs the keys"
    ):
        load_model(folder)
    architecture["members"][1].update(widths=[5], dropouts=[0.0])
    path.write_text(json.dumps(architecture))
    with pytest.raises(ExportError, match=r"model\.pt' does not hold the weights architecture\.json describes"):
        load_model(folder)


@pytest.mark.parametrize("dataset", ["wine", "diabetes"])
def test_weighted_ensemble_program_is_the_weighted_mean_and_loads_back(dataset: str, tmp_path: Path) -> None:
    """Check that member weights (normalized) weight the mean probability or value, in the program, in
    load_model and in ensemble_test_metrics alike, and that architecture.json keeps them."""
    data = load_data(DataSpec(dataset=dataset))
    members = [dataclasses.replace(m, weight=w) for m, w in zip(_members(data), (3, 1, 0.5 * 2))]
    folder = export_ensemble(tmp_path / "e", members=members, preprocessing=data.preprocessing, metadata={})
    encoded = torch.from_numpy(data.preprocessing.encode(data.raw_test))
    singles = [
        _program_output(
            export_ensemble(tmp_path / f"m{i}", members=[m], preprocessing=data.preprocessing, metadata={}), encoded
        )
        for i, m in enumerate(members)
    ]
    weights = torch.tensor([0.6, 0.2, 0.2])
    out = _program_output(folder, encoded)
    if data.task == "classification":
        expected = (torch.stack([torch.exp(s) for s in singles]) * weights[:, None, None]).sum(dim=0)
        torch.testing.assert_close(torch.exp(out), expected, atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(load_model(folder).predict_proba(data.raw_test), expected.numpy(), atol=1e-5)
    else:
        expected = (torch.stack(singles) * weights[:, None]).sum(dim=0)
        torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-5)
        np.testing.assert_allclose(load_model(folder).predict(data.raw_test), expected.numpy(), rtol=1e-5, atol=1e-3)
    stored = json.loads((folder / "architecture.json").read_text())["members"]
    assert [m["weight"] for m in stored] == pytest.approx([0.6, 0.2, 0.2])
    unweighted = ensemble_test_metrics([dataclasses.replace(m, weight=None) for m in members], data)
    assert ensemble_test_metrics(members, data) != unweighted


@pytest.mark.parametrize(
    "weights", [(1.0, None, 1.0), (1.0, 0.0, 1.0), (1.0, -2.0, 1.0), (1.0, float("nan"), 1.0), (1.0, True, 1.0)]
)
def test_export_ensemble_refuses_bad_weights(tmp_path: Path, weights: tuple) -> None:
    """Check that a weight on only some members, or one that is not a finite number > 0, is refused by name."""
    data = load_data(DataSpec(dataset="wine"))
    members = [dataclasses.replace(m, weight=w) for m, w in zip(_members(data), weights)]
    with pytest.raises(
        ExportError,
        match=r"The 'weight' of ensemble member 1 must be a finite number > 0, on every member or on none\. Got",
    ):
        export_ensemble(tmp_path / "e", members=members, preprocessing=data.preprocessing, metadata={})
    assert not (tmp_path / "e").exists()  # refused before anything was written


def test_load_model_refuses_an_ensemble_with_a_bad_weight(tmp_path: Path) -> None:
    """Check that a hand-edited weight in architecture.json is refused, naming the file and the member."""
    data = load_data(DataSpec(dataset="wine"))
    folder = export_ensemble(tmp_path / "e", members=_members(data), preprocessing=data.preprocessing, metadata={})
    path = folder / "architecture.json"
    architecture = json.loads(path.read_text())
    architecture["members"][2]["weight"] = -1
    path.write_text(json.dumps(architecture))
    with pytest.raises(ExportError, match=r"does not describe a valid ensemble: The 'weight' of ensemble member 2"):
        load_model(folder)


@pytest.mark.parametrize("dataset", ["wine", "diabetes"])
def test_split_predictions_are_what_the_exported_members_predict(dataset: str, tmp_path: Path) -> None:
    """Check that split_predictions gives each member's probabilities or target-unit values on a split."""
    data = load_data(DataSpec(dataset=dataset))
    members = _members(data)
    predictions = split_predictions(members, data, "test")
    assert len(predictions) == len(members)
    for i, (member, predicted) in enumerate(zip(members, predictions)):
        model = load_model(
            export_ensemble(tmp_path / f"m{i}", members=[member], preprocessing=data.preprocessing, metadata={})
        )
        if data.task == "classification":
            np.testing.assert_allclose(predicted, model.predict_proba(data.raw_test), atol=1e-5)
        else:
            np.testing.assert_allclose(predicted, model.predict(data.raw_test), rtol=1e-5, atol=1e-3)


def test_an_ensemble_folder_without_weights_loads_with_equal_weights(tmp_path: Path) -> None:
    """Check that a folder written before member weights existed (no `weight` keys) still loads, as the plain mean."""
    data = load_data(DataSpec(dataset="wine"))
    members = _members(data)
    folder = export_ensemble(tmp_path / "e", members=members, preprocessing=data.preprocessing, metadata={})
    path = folder / "architecture.json"
    architecture = json.loads(path.read_text())
    for member in architecture["members"]:
        del member["weight"]
    path.write_text(json.dumps(architecture))
    expected = np.mean([p for p in split_predictions(members, data, "test")], axis=0)
    np.testing.assert_allclose(load_model(folder).predict_proba(data.raw_test), expected, atol=1e-5)


def test_member_weights_take_numpy_numbers() -> None:
    """Check that numpy scalars are weights like floats (they come out of numpy arithmetic), normalized to sum 1."""
    from archsearch.trainers import member_weights

    assert member_weights([{"weight": np.float32(3)}, {"weight": np.int64(1)}]) == pytest.approx([0.75, 0.25])
    assert member_weights([{}, {}, {}]) == pytest.approx([1 / 3] * 3)
