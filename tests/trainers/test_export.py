"""Tests for archsearch.trainers._export: the model folder, its torch-only program and load_model."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification, make_regression

from archsearch.spaces import NetSpec
from archsearch.trainers import (
    DataError,
    ExportError,
    TrainResult,
    TrainSettings,
    build_mlp,
    export_model,
    load_model,
    train_mlp,
)
from archsearch.trainers._embedding import build_embedding
from archsearch.trainers.data import DataSpec, PreparedData, Preprocessing, load_data
from archsearch.trainers.metrics import regression_metrics

from .conftest import standardized

WIDTHS, DROPOUTS, ACTIVATION = [16, 8], [0.5, 0.0], "relu"  # dropout > 0, to show it is off once exported


def _prepared(task: str) -> PreparedData:
    """A 60/20/20 split of a tiny problem, standardized with training statistics."""
    if task == "classification":
        x, y = make_classification(
            n_samples=200, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
        )
        return standardized(x, y, ("cat", "dog", "eel"), names=("a", "b", "c", "d"))
    x, y = make_regression(n_samples=200, n_features=4, noise=1.0, random_state=0)
    return standardized(x, 500.0 + 20.0 * y, None, names=("a", "b", "c", "d"))


def _export(folder: Path, task: str) -> tuple[PreparedData, TrainResult]:
    data = _prepared(task)
    metric = "accuracy" if task == "classification" else "rmse"
    result = train_mlp(
        NetSpec(WIDTHS, DROPOUTS, ACTIVATION), data, TrainSettings(metric=metric, batch_size=32, epochs=3)
    )
    metadata = {"trial": 4, "study": "unit", f"val_{metric}": result.metrics[f"val_{metric}"]}
    _write(folder, result, data.preprocessing, metadata)
    return data, result


def _write(folder: Path, result: TrainResult, preprocessing: Preprocessing, metadata: dict | None = None) -> None:
    """Export the WIDTHS network that `result` trained, with `preprocessing`."""
    export_model(
        folder,
        net=NetSpec(WIDTHS, DROPOUTS, ACTIVATION),
        state_dict=result.state_dict,
        preprocessing=preprocessing,
        metadata=metadata or {},
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_exported_program_matches_load_model_in_a_fresh_process(tmp_path: Path, task: str) -> None:
    """Check that model.pt2 runs with torch alone and reproduces load_model's predictions."""
    data, result = _export(tmp_path / "model", task)
    predictor = load_model(tmp_path / "model")
    encoded = data.preprocessing.encode(data.raw_test)  # (40, 4), unstandardized
    np.save(tmp_path / "encoded.npy", encoded)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import torch

        program = torch.export.load({str(tmp_path / "model" / "model.pt2")!r}).module()
        x = torch.from_numpy(np.load({str(tmp_path / "encoded.npy")!r}))
        out = program(x)
        assert torch.equal(out, program(x)), "two calls differ: dropout is active"
        assert torch.allclose(program(x[:1]), out[:1], atol=1e-6), "batch size 1 differs"
        np.save({str(tmp_path / "out.npy")!r}, out.detach().numpy())
        assert "archsearch" not in sys.modules
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    out = np.load(tmp_path / "out.npy")
    if task == "classification":
        # The program returns logits; load_model turns the same numbers into probabilities and labels.
        proba = torch.softmax(torch.from_numpy(out), dim=1).numpy()
        np.testing.assert_allclose(proba, predictor.predict_proba(data.raw_test), atol=1e-6)
        assert list(predictor.predict(data.raw_test)) == [predictor.classes[i] for i in out.argmax(axis=1)]
    else:
        # Regression output is already in the target's units, as is predict's.
        assert out.shape == (40,)
        np.testing.assert_allclose(out, predictor.predict(data.raw_test), rtol=1e-6)
        # ... and scores as the trainer measured it with the same weights.
        prep = data.preprocessing
        y_test = data.y_test * prep.target_scale + prep.target_mean
        assert regression_metrics(y_test, out)["rmse"] == pytest.approx(result.metrics["test_rmse"], rel=1e-5)


def test_architecture_json_records_the_model(tmp_path: Path) -> None:
    """Check that architecture.json holds the architecture, preprocessing and the given metadata."""
    data, _ = _export(tmp_path, "classification")
    architecture = json.loads((tmp_path / "architecture.json").read_text())
    assert architecture["widths"] == WIDTHS and architecture["dropouts"] == DROPOUTS
    assert architecture["activation"] == ACTIVATION
    assert (architecture["n_inputs"], architecture["n_outputs"], architecture["task"]) == (4, 3, "classification")
    assert architecture["preprocessing"] == data.preprocessing.to_dict()
    assert architecture["metadata"]["trial"] == 4 and "val_accuracy" in architecture["metadata"]
    assert {p.name for p in tmp_path.iterdir()} == {"architecture.json", "model.pt", "model.pt2"}


def test_predictor_takes_a_dataframe_and_returns_original_labels(tmp_path: Path) -> None:
    """Check that predict accepts the original columns as a DataFrame and gives the original labels."""
    data, _ = _export(tmp_path, "classification")
    predictor = load_model(tmp_path)
    frame = pd.DataFrame(data.raw_test, columns=list(data.preprocessing.columns))
    labels = predictor.predict(frame)
    assert list(labels) == list(predictor.predict(data.raw_test))
    assert set(labels) <= {"cat", "dog", "eel"}
    assert predictor.classes == ("cat", "dog", "eel")
    assert predictor.predict_proba(frame).shape == (40, 3)


def test_predict_proba_is_refused_for_regression(tmp_path: Path) -> None:
    """Check that predict_proba on a regression model points to predict."""
    data, _ = _export(tmp_path, "regression")
    with pytest.raises(ValueError, match="predict_proba applies to classification models.*use predict"):
        load_model(tmp_path).predict_proba(data.raw_test)


def test_export_rejects_metadata_that_is_not_json(tmp_path: Path) -> None:
    """Check that metadata json cannot store is refused before any file is written."""
    data = _prepared("regression")
    state_dict = train_mlp(NetSpec([], [], "relu"), data, TrainSettings(metric="rmse", epochs=1)).state_dict
    with pytest.raises(ExportError, match="metadata must be JSON-serializable"):
        export_model(
            tmp_path / "m",
            net=NetSpec([], [], "relu"),
            state_dict=state_dict,
            preprocessing=data.preprocessing,
            metadata={"when": object()},
        )
    assert not (tmp_path / "m").exists()


def test_load_model_reports_a_missing_folder_or_file(tmp_path: Path) -> None:
    """Check that a missing folder, architecture.json or model.pt is named in the error."""
    with pytest.raises(ExportError, match="No model folder at .*nowhere"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="architecture.json' is missing"):
        load_model(tmp_path)
    (tmp_path / "architecture.json").write_text("{}")
    with pytest.raises(ExportError, match="model.pt' is missing"):
        load_model(tmp_path)


def test_load_model_reports_a_malformed_architecture(tmp_path: Path) -> None:
    """Check that invalid JSON, missing keys and bad values each give a clear ExportError."""
    _export(tmp_path, "classification")
    path = tmp_path / "architecture.json"
    architecture = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ExportError, match="architecture.json' is not valid JSON"):
        load_model(tmp_path)
    path.write_text(json.dumps({k: v for k, v in architecture.items() if k != "widths"}))
    with pytest.raises(ExportError, match=r"lacks the keys \['widths'\]"):
        load_model(tmp_path)
    path.write_text(json.dumps(architecture | {"activation": "swish"}))
    with pytest.raises(ExportError, match="does not describe a valid model.*'activation'"):
        load_model(tmp_path)
    path.write_text(json.dumps(architecture | {"widths": [32, 8]}))
    with pytest.raises(ExportError, match="model.pt' does not hold the weights architecture.json describes"):
        load_model(tmp_path)


def test_load_model_of_weights_with_python_objects_never_suggests_weights_only_false(tmp_path: Path) -> None:
    """Check that a model.pt holding a Python object is refused without torch's hint to retry with
    weights_only=False: archsearch must never suggest running code from a weights file."""
    import datetime

    _export(tmp_path, "classification")
    torch.save({"when": datetime.datetime(2026, 1, 1)}, tmp_path / "model.pt")
    with pytest.raises(ExportError, match=r"model\.pt' does not hold the weights architecture\.json describes") as info:
        load_model(tmp_path)
    assert "weights_only" not in str(info.value) and "datetime.datetime" in str(info.value)


def _mixed(tmp_path: Path, scaling: str) -> PreparedData:
    """Skewed numeric, discrete and categorical columns, scaled by `scaling`."""
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame(
        {
            "skewed": rng.exponential(2.0, n),
            "steps": rng.integers(0, 3, n),
            "city": rng.choice(["paris", "oslo", "lima"], n),
        }
    )
    frame["label"] = np.where(frame["skewed"] + frame["steps"] > 2.5, "yes", "no")
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    return load_data(DataSpec(dataset=None, path=str(tmp_path / "mixed.csv"), target="label", scaling=scaling))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scaling", ["standard", "robust", "quantile"])
@pytest.mark.parametrize("embedding", ["none", "periodic", "pl"])
def test_exported_program_equals_the_trained_network(tmp_path: Path, scaling: str, embedding: str) -> None:
    """Check that model.pt2 and load_model give the trained network's outputs on held-out rows, within 1e-5."""
    data = _mixed(tmp_path, scaling)
    settings = TrainSettings(epochs=2, batch_size=32)
    result = train_mlp(NetSpec([8], [0.0], "relu", embedding=embedding, embedding_dim=4), data, settings)
    export_model(
        tmp_path / "model",
        net=NetSpec([8], [0.0], "relu", embedding=embedding, embedding_dim=4),
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={},
    )
    # In archsearch: the trained weights applied to the test rows as load_data scaled them (numpy).
    prep = data.preprocessing
    embedder = build_embedding(embedding, 4, data.n_features, prep.numeric_features)
    network = build_mlp(data.n_features, [8], [0.0], "relu", data.n_outputs, embedding=embedder)
    network.load_state_dict(result.state_dict)
    with torch.inference_mode():
        expected = network.eval()(torch.from_numpy(data.x_test)).numpy()
    # Out of archsearch: the program scales the encoded rows itself (torch), with the embedding inside.
    program = torch.export.load(tmp_path / "model" / "model.pt2").module()
    with torch.inference_mode():
        out = program(torch.from_numpy(prep.encode(data.raw_test))).numpy()
    assert np.abs(out - expected).max() <= 1e-5
    proba = torch.softmax(torch.from_numpy(expected), dim=1).numpy()
    np.testing.assert_allclose(load_model(tmp_path / "model").predict_proba(data.raw_test), proba, atol=1e-5)
    assert json.loads((tmp_path / "model" / "architecture.json").read_text())["embedding"] == embedding


def test_architecture_json_without_embedding_keys_still_loads(tmp_path: Path) -> None:
    """Check that an architecture.json written before embeddings existed loads as a network without one."""
    data, _ = _export(tmp_path, "classification")
    predictor = load_model(tmp_path)
    path = tmp_path / "architecture.json"
    architecture = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in architecture.items() if k not in ("embedding", "embedding_dim")}))
    np.testing.assert_array_equal(
        load_model(tmp_path).predict_proba(data.raw_test), predictor.predict_proba(data.raw_test)
    )


def test_load_model_reports_an_invalid_embedding(tmp_path: Path) -> None:
    """Check that an unknown embedding in architecture.json is a clear ExportError."""
    _export(tmp_path, "classification")
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"embedding": "fourier"}))
    with pytest.raises(ExportError, match=r"does not describe a valid model.*'embedding'.*Got 'fourier'"):
        load_model(tmp_path)


@pytest.mark.timeout(120)
def test_a_regression_export_clamps_to_its_target_range_in_and_out_of_archsearch(tmp_path: Path) -> None:
    """Check that a target_range clamps load_model's and the plain program's predictions, and only beyond it."""
    data = _prepared("regression")
    result = train_mlp(
        NetSpec(WIDTHS, DROPOUTS, ACTIVATION), data, TrainSettings(metric="rmse", batch_size=32, epochs=3)
    )
    prep = data.preprocessing
    free_folder, clamped_folder = tmp_path / "free", tmp_path / "clamped"
    raw = pd.DataFrame(data.raw_test, columns=prep.columns)
    far = pd.concat([raw, raw * 50.0, raw * -50.0], ignore_index=True)  # rows far beyond the training inputs
    _write(free_folder, result, prep)
    free = load_model(free_folder).predict(far)
    low, high = np.quantile(free[:40], [0.2, 0.8])  # a range that the test rows themselves cross
    _write(clamped_folder, result, dataclasses.replace(prep, target_range=(float(low), float(high))))
    clamped = load_model(clamped_folder).predict(far)
    np.testing.assert_allclose(clamped, np.clip(free, low, high), rtol=1e-6)
    assert (free < low).any() and (free > high).any()  # the clamp was exercised on both sides
    stored = json.loads((clamped_folder / "architecture.json").read_text())["preprocessing"]
    assert stored["target_range"] == pytest.approx([low, high])
    assert "target_range" not in json.loads((free_folder / "architecture.json").read_text())["preprocessing"]
    program = torch.export.load(str(clamped_folder / "model.pt2")).module()
    out = program(torch.from_numpy(prep.encode(far).astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(out, clamped, rtol=1e-6)


@pytest.mark.parametrize(
    ("task", "target_range", "shown"),
    [
        ("regression", (2.0, 1.0), r"\(2\.0, 1\.0\)"),
        ("regression", (0.0, float("inf")), r"\(0\.0, inf\)"),
        ("regression", (1.0,), r"\(1\.0,\)"),
        ("regression", "0-1", r"'0-1'"),
        ("classification", (0.0, 1.0), r"\(0\.0, 1\.0\)"),
    ],
)
def test_preprocessing_rejects_a_bad_target_range(task: str, target_range: object, shown: str) -> None:
    """Check that target_range names its rule and the value: a regression's finite (low, high), low <= high."""
    prep = _prepared(task).preprocessing
    with pytest.raises(
        DataError,
        match=r"The 'target_range' parameter of Preprocessing must be None, or a regression's \(low, high\) of "
        rf"finite floats with low <= high\. Got {shown} instead\.",
    ):
        dataclasses.replace(prep, target_range=target_range)
    # It survives the round trip through the dict stored in architecture.json, and is left out when None.
    fine = dataclasses.replace(_prepared("regression").preprocessing, target_range=[1, 2])
    assert Preprocessing.from_dict(json.loads(json.dumps(fine.to_dict()))).target_range == (1.0, 2.0)
