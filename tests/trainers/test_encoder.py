"""Tests of `[data] encoder`: raw rows to vectors once, cached by fingerprint (issue #24)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from archsearch.trainers import ExportError
from archsearch.trainers.data import DataError, DataSpec, load_data

ENCODER = textwrap.dedent(
    '''
    import numpy as np

    CALLS = []

    def letters(rows):
        """Counts of a, b, c in each text: a stand-in for a sentence encoder loaded from disk."""
        CALLS.append(len(rows))
        return np.array([[t.count("a"), t.count("b"), t.count("c")] for t in rows["text"]], dtype=float)

    def wrong_shape(rows):
        return np.zeros(3)
    '''
)


@pytest.fixture
def encoder_module(tmp_path, monkeypatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "toy_encoder.py").write_text(ENCODER)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    import importlib

    import toy_encoder

    return importlib.reload(toy_encoder)


def _texts(tmp_path) -> str:
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    texts = ["".join(rng.choice(list("abc"), 6, p=np.roll([0.6, 0.2, 0.2], k))) for k in labels]
    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return str(path)


def test_an_encoder_turns_texts_into_vectors_once(tmp_path, encoder_module):
    """Check that the encoder's vectors are the inputs, in batches, and a second load reads the cache."""
    spec = DataSpec(dataset=None, path=_texts(tmp_path), target="label", encoder="toy_encoder:letters")
    data = load_data(spec)
    assert data.n_features == 3 and data.preprocessing.columns == ("e0", "e1", "e2")
    assert encoder_module.CALLS == [256, 44]
    load_data(spec)
    assert encoder_module.CALLS == [256, 44]  # cached: not called again
    assert list((tmp_path / "cache" / "encoded").glob("*.npy"))
    assert spec.to_dict()["encoder"] == "toy_encoder:letters"


@pytest.mark.parametrize(
    ("encoder", "message"),
    [
        ("toy_encoder", r"'encoder' parameter of \[data\] must be"),
        ("missing_module_xyz:f", r"cannot import 'missing_module_xyz'"),
        ("toy_encoder:nothing", r"has no function 'nothing'"),
        ("toy_encoder:wrong_shape", r"must return a 2-D array with one row per input row"),
    ],
)
def test_encoder_errors_name_the_encoder(tmp_path, encoder_module, encoder, message):
    """Check each way an encoder can be wrong gives an error naming it."""
    with pytest.raises(DataError, match=message):
        load_data(DataSpec(dataset=None, path=_texts(tmp_path), target="label", encoder=encoder))


def test_an_encoder_needs_a_file():
    """Check that an encoder with a built-in dataset is refused."""
    with pytest.raises(DataError, match=r"'encoder' parameter of \[data\] must be None with a built-in dataset"):
        DataSpec(dataset="wine", encoder="toy_encoder:letters")


def _digits_npz(tmp_path) -> str:
    """Digits as 8x8 images: raw rows a program encoder flattens."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "images.npz"
    np.savez(path, X=digits.images[:300].astype(np.float32)[:, None], y=digits.target[:300])
    return str(path)


def _save_program(tmp_path, suffix: str, n_out: int = 4) -> str:
    """A tiny frozen network from (batch, 1, 8, 8) images to `n_out` values, saved as a program file."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, n_out), torch.nn.Tanh()).eval()
    path = tmp_path / f"encoder{suffix}"
    if suffix == ".pt2":
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(net, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)
    else:
        torch.jit.save(torch.jit.script(net), path)
    return str(path)


@pytest.mark.parametrize("suffix", [".pt2", ".pt", ".ts"])
def test_a_program_encoder_turns_images_into_vectors(tmp_path, monkeypatch, suffix):
    """Check that a torch.export or TorchScript program's outputs are the inputs, cached under its bytes."""
    import torch

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    program = _save_program(tmp_path, suffix)
    data = load_data(DataSpec(dataset=None, path=_digits_npz(tmp_path), encoder=program))
    assert data.n_features == 4
    loaded = torch.export.load(program).module() if suffix == ".pt2" else torch.jit.load(program)
    images = np.load(tmp_path / "images.npz")["X"]
    expected = loaded(torch.from_numpy(images)).detach().numpy()
    # The vectors the network reads are the program's outputs (before scaling, which encode leaves alone).
    cached = np.load(next((tmp_path / "cache" / "encoded").glob("*.npy")))
    np.testing.assert_array_equal(cached, expected)


def test_a_program_of_the_wrong_shape_is_refused(tmp_path, monkeypatch):
    """Check that a program returning one value per row (1-D) gets an error naming the encoder."""
    import torch

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "sums.pt"
    torch.jit.save(torch.jit.script(torch.nn.Flatten(0)), path)  # (batch, 1, 8, 8) -> (batch * 64,)
    with pytest.raises(DataError, match=r"encoder '.*sums.pt' must return a 2-D array with one row per input row"):
        load_data(DataSpec(dataset=None, path=_digits_npz(tmp_path), encoder=str(path)))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "missing.pt2",
            r"'encoder' parameter of \[data\] must be .* program file. Got '.*missing.pt2' instead, which does not exist",
        ),
        (
            "encoder.onnx",
            r"'encoder' parameter of \[data\] must be .*\(.pt2\) or TorchScript \(.pt, .ts\).* Got '.*encoder.onnx' instead\.$",
        ),
        ("folder.pt", r"Got '.*folder.pt' instead, which is a folder"),
    ],
)
def test_a_program_encoder_is_checked_at_construction(tmp_path, name, message):
    """Check that a missing program file, a folder or an unknown extension is refused when the spec is built."""
    (tmp_path / "encoder.onnx").write_bytes(b"onnx")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(DataError, match=message):
        DataSpec(dataset=None, path="images.npz", encoder=str(tmp_path / name))


def test_a_file_that_is_no_program_is_refused(tmp_path, monkeypatch):
    """Check that a .pt2 file torch cannot load gets an error naming the encoder and its kind."""
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "noise.pt2").write_bytes(b"not a program")
    with pytest.raises(DataError, match=r"encoder '.*noise.pt2': cannot load it as a torch.export program"):
        load_data(DataSpec(dataset=None, path=_digits_npz(tmp_path), encoder=str(tmp_path / "noise.pt2")))


# Runs with nothing but torch and numpy: a bundled TorchScript encoder and its pipeline need no archsearch.
STANDALONE = """
import sys, numpy as np, torch
folder, raw = sys.argv[1], torch.from_numpy(np.load(sys.argv[2])["X"])
pipeline, encoder = torch.jit.load(folder + "/pipeline.pt"), torch.jit.load(folder + "/encoder.pt")
head = torch.export.load(folder + "/model.pt2").module()
with torch.no_grad():
    np.savez(sys.argv[3], pipeline=pipeline(raw).numpy(), chained=head(encoder(raw)).numpy())
assert "archsearch" not in sys.modules
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_export_bundles_a_torchscript_encoder(tmp_path, monkeypatch):
    """Check that export_model ships a TorchScript encoder and a pipeline from raw images whose output, read
    without archsearch, equals encoder then network, and that load_model's predict_raw agrees."""
    import subprocess
    import sys

    from archsearch.spaces import NetSpec
    from archsearch.trainers import TrainSettings, export_model, load_model, train_mlp

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    images, program = _digits_npz(tmp_path), _save_program(tmp_path, ".ts")
    data = load_data(DataSpec(dataset=None, path=images, encoder=program))
    net = NetSpec([8], [0.0], "relu")
    result = train_mlp(net, data, TrainSettings(epochs=2, batch_size=32))
    folder = export_model(
        tmp_path / "model",
        net=net,
        state_dict=result.state_dict,
        preprocessing=data.preprocessing,
        metadata={},
        encoder=program,
    )
    out = tmp_path / "out.npz"
    subprocess.run([sys.executable, "-c", STANDALONE, str(folder), images, str(out)], check=True, timeout=120)
    np.testing.assert_allclose(np.load(out)["pipeline"], np.load(out)["chained"], rtol=1e-5, atol=1e-6)
    model, raw = load_model(folder), np.load(images)["X"]
    np.testing.assert_array_equal(model.predict_raw(raw), model.predict(model.encode(raw)))
    # A folder whose bundled encoder is damaged is refused, naming it.
    (folder / "encoder.pt").write_bytes(b"damaged")
    with pytest.raises(ExportError, match=r"its bundled encoder does not load: .*encoder.pt"):
        load_model(folder)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_ensemble_export_bundles_a_torch_export_encoder(tmp_path, monkeypatch):
    """Check that an ensemble's pipeline.pt2 equals its encoder.pt2 then its model.pt2, for any batch size."""
    import torch

    from archsearch.spaces import NetSpec
    from archsearch.trainers import Member, TrainSettings, export_ensemble, train_mlp

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    images, program = _digits_npz(tmp_path), _save_program(tmp_path, ".pt2")
    data = load_data(DataSpec(dataset=None, path=images, encoder=program))
    nets = [NetSpec([8], [0.0], "relu"), NetSpec([], [], "relu")]
    members = [Member(net, train_mlp(net, data, TrainSettings(epochs=2, batch_size=32)).state_dict) for net in nets]
    folder = export_ensemble(
        tmp_path / "model", members=members, preprocessing=data.preprocessing, metadata={}, encoder=program
    )
    pipeline, encoder, head = (
        torch.export.load(folder / f).module() for f in ("pipeline.pt2", "encoder.pt2", "model.pt2")
    )
    raw = torch.from_numpy(np.load(images)["X"][:37])  # an odd batch: the pipeline's batch size is not fixed
    with torch.no_grad():
        torch.testing.assert_close(pipeline(raw), head(encoder(raw)))
