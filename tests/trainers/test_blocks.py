"""Tests of named feature blocks (issue #24): [data] blocks, Parquet list columns, training and export on blocks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from archsearch.spaces import NetSpec
from archsearch.trainers import TrainSettings, export_model, load_model, train_mlp
from archsearch.trainers.data import DataError, DataSpec, Preprocessing, load_data


def _two_backbones(tmp_path, rows: int = 300) -> str:
    """10 + 6 features; only the second block predicts the 3 labels."""
    rng = np.random.default_rng(0)
    y = np.arange(rows) % 3
    x = rng.normal(size=(rows, 16)).astype(np.float32)
    x[:, 10:13] += 3.0 * np.eye(3, dtype=np.float32)[y]
    path = tmp_path / "two.npz"
    np.savez(path, X=x, y=y)
    return str(path)


def _spec(path: str, **kwargs) -> DataSpec:
    return DataSpec(dataset=None, path=path, **kwargs)


def test_blocks_by_range_and_prefix_resolve_to_feature_ranges(tmp_path):
    """Check that a range and a prefix both resolve, and the preprocessing's dict keeps them."""
    data = load_data(_spec(_two_backbones(tmp_path), blocks={"a": [0, 10], "b": "x1"}))
    blocks = data.preprocessing.blocks
    assert blocks["a"] == ((0, 10),)
    assert blocks["b"] == ((1, 2), (10, 16))  # x1, x10 .. x15
    assert Preprocessing.from_dict(json.loads(json.dumps(data.preprocessing.to_dict()))).blocks == blocks
    assert data.preprocessing.block_indices(["a"]) == list(range(10))


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ({"a": [5, 2]}, r"'blocks' parameter of \[data\] must be"),
        ({"a b": [0, 2]}, r"'blocks' parameter of \[data\] must be"),
        ({"a": [0, 2, 3]}, r"'blocks' parameter of \[data\] must be"),
        ({"a": ""}, r"'blocks' parameter of \[data\] must be"),
    ],
)
def test_invalid_blocks_name_the_data_section(blocks, message):
    """Check that malformed blocks are refused at construction, naming [data] blocks."""
    with pytest.raises(DataError, match=message):
        DataSpec(dataset=None, path="v.npz", blocks=blocks)


def test_blocks_beyond_the_columns_or_matching_none_are_refused(tmp_path):
    """Check the errors of a range past the last column and of a prefix that names no column."""
    path = _two_backbones(tmp_path)
    with pytest.raises(DataError, match=r"block 'a' = \[0, 20\] reaches past the 16 input columns"):
        load_data(_spec(path, blocks={"a": [0, 20]}))
    with pytest.raises(DataError, match=r"block 'a' takes the columns named 'vgg'..., but .* has none"):
        load_data(_spec(path, blocks={"a": "vgg"}))


def test_a_parquet_list_column_is_a_block(tmp_path):
    """Check that fixed-size list columns expand to one column per value, each column a block."""
    rng = np.random.default_rng(1)
    rows = 60
    frame = pd.DataFrame(
        {
            "vgg": list(rng.normal(size=(rows, 4))),
            "clip": list(rng.normal(size=(rows, 3))),
            "label": np.arange(rows) % 2,
        }
    )
    path = tmp_path / "vectors.parquet"
    frame.to_parquet(path)
    data = load_data(_spec(str(path), target="label"))
    assert data.preprocessing.columns[:2] == ("vgg[0]", "vgg[1]") and data.n_features == 7
    assert data.preprocessing.blocks == {"vgg": ((0, 4),), "clip": ((4, 7),)}


def test_a_parquet_column_of_ragged_lists_is_refused(tmp_path):
    """Check that lists of different lengths are an error naming the column."""
    frame = pd.DataFrame({"vgg": [[1.0, 2.0], [1.0], [3.0, 4.0]] * 4, "label": [0, 1, 0] * 4})
    path = tmp_path / "ragged.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"Column 'vgg' .* not all lists of numbers of one length"):
        load_data(_spec(str(path), target="label"))


def test_an_npy_file_is_refused_with_how_to_save_an_npz():
    """Check that a .npy path says to save X and y together."""
    with pytest.raises(DataError, match=r"np.savez\(path, X=X, y=y\)"):
        DataSpec(dataset=None, path="features.npy")


@pytest.mark.parametrize("embedding", ["none", "pl"])
def test_a_network_on_one_block_trains_and_exports_taking_the_full_vector(tmp_path, embedding):
    """Check that a network on block b reads only it, and the exported predictor takes all 16 columns."""
    data = load_data(_spec(_two_backbones(tmp_path), blocks={"a": [0, 10], "b": [10, 16]}))
    net = NetSpec((16,), (0.0,), "relu", embedding=embedding, embedding_dim=4, blocks=("b",))
    result = train_mlp(net, data, TrainSettings(epochs=30, lr=1e-2, seed=0))
    assert result.metrics["val_accuracy"] > 0.9
    # Parameters of the first layer: 6 inputs (or 6 x 4 embedded values), not 16.
    first = 6 if embedding == "none" else 6 * 4
    assert result.n_params == net.n_params(6, 3, n_numeric=6) and first * 16 + 16 <= result.n_params
    folder = export_model(
        tmp_path / "m", net=net, state_dict=result.state_dict, preprocessing=data.preprocessing, metadata={}
    )
    architecture = json.loads((folder / "architecture.json").read_text())
    assert architecture["blocks"] == ["b"]
    assert architecture["input_features"] == [f"x{j}" for j in range(10, 16)]
    predictor = load_model(folder)
    full = np.asarray(data.raw_test)
    assert full.shape[1] == 16
    assert (predictor.predict(full) == data.preprocessing.decode_labels(data.y_test)).mean() >= 0.8
    # Changing the unread block changes nothing.
    shuffled = full.copy()
    shuffled[:, :10] = 0.0
    np.testing.assert_allclose(predictor.predict_proba(shuffled), predictor.predict_proba(full), atol=1e-6)


def test_a_one_vs_rest_head_trains_and_exports_normalised_probabilities(tmp_path):
    """Check the one-vs-rest head: it learns, its stored probabilities sum to 1, and the export agrees."""
    data = load_data(_spec(_two_backbones(tmp_path)))
    net = NetSpec((16,), (0.0,), "relu", head="one_vs_rest")
    result = train_mlp(net, data, TrainSettings(epochs=30, lr=1e-2, seed=0, label_smoothing=0.1))
    assert result.status == "completed" and result.metrics["val_accuracy"] > 0.8
    assert net.to_dict()["head"] == "one_vs_rest"
    folder = export_model(
        tmp_path / "m", net=net, state_dict=result.state_dict, preprocessing=data.preprocessing, metadata={}
    )
    assert json.loads((folder / "architecture.json").read_text())["head"] == "one_vs_rest"
    proba = load_model(folder).predict_proba(np.asarray(data.raw_test))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba.argmax(axis=1) == data.y_test).mean() > 0.8


def test_a_one_vs_rest_head_is_refused_for_regression(tmp_path):
    """Check that train_mlp refuses a one-vs-rest head on a regression target."""
    rng = np.random.default_rng(0)
    path = tmp_path / "r.npz"
    np.savez(path, X=rng.normal(size=(50, 3)), y=rng.normal(size=50))
    data = load_data(_spec(str(path)))
    with pytest.raises(ValueError, match="'one_vs_rest' head is for classification"):
        train_mlp(NetSpec((4,), (0.0,), "relu", head="one_vs_rest"), data, TrainSettings(epochs=1, metric="rmse"))
