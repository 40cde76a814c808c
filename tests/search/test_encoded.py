"""Tests of the `[data] encoder`'s vectors in the study's artifact store, and of the export bundling a program
encoder (issue #24)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from archsearch.encoded import artifact_folder, fetch_encoded
from archsearch.storage import keys
from archsearch.trainers.data import encoded_file

from .conftest import small_config

# Real searches: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def _images(folder: Path) -> str:
    """Digits as (rows, 1, 8, 8) images: raw rows only the encoder reads."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = folder / "images.npz"
    np.savez(path, X=(digits.images / 16).astype(np.float32)[:, None], y=digits.target)
    return str(path)


def _program(folder: Path) -> str:
    """A small frozen network, images to 12 values, saved with torch.export: a stand-in for a backbone on disk."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 12), torch.nn.Tanh()
    ).eval()
    program = torch.export.export(
        net, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)
    )
    path = folder / "encoder.pt2"
    torch.export.save(program, path)
    return str(path)


@pytest.fixture(scope="module")
def encoded_search(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> tuple:
    """A search of 3 short trials on digits images through a program encoder."""
    from archsearch.controller import run_search

    folder = tmp_path_factory.mktemp("encoded-search")
    monkeypatch_module.setenv("ARCHSEARCH_CACHE_DIR", str(folder / "cache"))
    config = small_config(
        folder,
        study={"n_trials": 3},
        data={"dataset": None, "path": _images(folder), "encoder": _program(folder)},
        train={"epochs": 4, "patience": 2},
    )
    return config, run_search(config)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.timeout(300)
def test_the_vectors_are_a_study_artifact(encoded_search) -> None:
    """Check that the study records encoder and fingerprint, and its artifact holds the cached vectors."""
    config, study = encoded_search
    stored = study.user_attrs[keys.ENCODER]
    digest, cached = encoded_file(config.data.encoder, config.data.path)
    assert stored["name"] == config.data.encoder and stored["fingerprint"] == digest
    artifact = artifact_folder(config, config.study.storage) / stored["artifact_id"]
    np.testing.assert_array_equal(np.load(artifact), np.load(cached))


@pytest.mark.timeout(300)
def test_another_machine_reads_the_stored_vectors(encoded_search, tmp_path, monkeypatch) -> None:
    """Check that a process whose cache is empty gets the study's vectors from the artifact store, and that one
    whose encoder or data differ gets nothing."""
    config, study = encoded_search
    _, before = encoded_file(config.data.encoder, config.data.path)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "elsewhere"))
    _, cached = encoded_file(config.data.encoder, config.data.path)
    assert not cached.is_file()
    assert fetch_encoded(study, config.data, artifact_folder(config, config.study.storage))
    np.testing.assert_array_equal(np.load(cached), np.load(before))
    # Stored vectors of other data are never read as these.
    cached.unlink()
    other = optuna.create_study()
    other.set_user_attr(keys.ENCODER, {**study.user_attrs[keys.ENCODER], "fingerprint": "0" * 32})
    assert not fetch_encoded(other, config.data, artifact_folder(config, config.study.storage))
    assert not cached.is_file()


@pytest.mark.timeout(300)
def test_a_resume_on_another_machine_does_not_encode_again(encoded_search, tmp_path, monkeypatch) -> None:
    """Check that resuming the study with an empty local cache reads the stored vectors, never the encoder."""
    from archsearch.controller import open_search_study
    from archsearch.trainers import _encoder

    config, study = encoded_search
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "elsewhere"))

    def never(*args, **kwargs):
        raise AssertionError("the resume encoded the rows again")

    monkeypatch.setattr(_encoder, "_run", never)
    opened = open_search_study(config)
    assert opened.study.user_attrs[keys.ENCODER] == study.user_attrs[keys.ENCODER]
    assert opened.data.n_features == 12


# Runs with nothing but torch and numpy: the exported programs must not need archsearch.
STANDALONE = """
import sys, numpy as np, torch
folder, rows = sys.argv[1], np.load(sys.argv[2])
pipeline = torch.export.load(folder + "/pipeline.pt2").module()
encoder = torch.export.load(folder + "/encoder.pt2").module()
head = torch.export.load(folder + "/model.pt2").module()
raw = torch.from_numpy(rows["X"])
with torch.no_grad():
    np.savez(sys.argv[3], pipeline=pipeline(raw).numpy(), chained=head(encoder(raw)).numpy())
assert "archsearch" not in sys.modules
"""


@pytest.mark.timeout(600)
def test_the_export_bundles_a_program_encoder(encoded_search, tmp_path) -> None:
    """Check that the export ships the encoder and a pipeline from raw inputs whose output, read without
    archsearch, equals encoder then network, and that load_model's predict_raw agrees."""
    import json
    import subprocess
    import sys

    from archsearch.export import describe_export, export_best, load_model

    config, study = encoded_search
    out = export_best(config.study.storage, config.study.name, tmp_path / "model", refit=False)
    assert {p.name for p in out.iterdir()} >= {"model.pt2", "encoder.pt2", "pipeline.pt2"}
    metadata = json.loads((out / "architecture.json").read_text())["metadata"]
    assert metadata["encoder"] == {
        "name": config.data.encoder,
        "fingerprint": study.user_attrs[keys.ENCODER]["fingerprint"],
        "bundled": True,
    }
    subprocess.run(
        [sys.executable, "-c", STANDALONE, str(out), config.data.path, str(tmp_path / "out.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outputs = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(outputs["pipeline"], outputs["chained"], rtol=1e-5, atol=1e-6)
    model, images = load_model(out), np.load(config.data.path)["X"]
    np.testing.assert_array_equal(model.predict_raw(images), model.predict(model.encode(images)))
    assert (model.predict_raw(images) == np.load(config.data.path)["y"]).mean() > 0.5
    assert "pipeline.pt2 takes raw inputs" in describe_export(out)


FUNCTION = '''
import numpy as np

def letters(rows):
    """Counts of a, b, c in each text: a stand-in for a sentence encoder loaded from disk."""
    return np.array([[t.count("a"), t.count("b"), t.count("c")] for t in rows["text"]], dtype=float)
'''


@pytest.mark.timeout(300)
def test_an_export_names_a_function_encoder_it_cannot_bundle(tmp_path, monkeypatch) -> None:
    """Check that a function encoder's export records its name and fingerprint, bundles nothing, and says
    that the model takes the encoded vectors."""
    import json

    import pandas as pd

    from archsearch.controller import run_search
    from archsearch.export import describe_export, export_best, load_model

    (tmp_path / "letters_encoder.py").write_text(FUNCTION)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    texts = ["".join(rng.choice(list("abc"), 8, p=np.roll([0.6, 0.2, 0.2], k))) for k in labels]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "texts.csv", index=False)
    data = {
        "dataset": None,
        "path": str(tmp_path / "texts.csv"),
        "target": "label",
        "encoder": "letters_encoder:letters",
    }
    config = small_config(tmp_path, study={"n_trials": 2}, data=data, train={"epochs": 3, "patience": 2})
    study = run_search(config)
    out = export_best(config.study.storage, config.study.name, tmp_path / "model", refit=False)
    assert not (out / "encoder.pt2").exists() and not (out / "pipeline.pt2").exists()
    metadata = json.loads((out / "architecture.json").read_text())["metadata"]
    fingerprint = study.user_attrs[keys.ENCODER]["fingerprint"]
    assert metadata["encoder"] == {"name": "letters_encoder:letters", "fingerprint": fingerprint, "bundled": False}
    assert f"takes the vectors of the encoder 'letters_encoder:letters' (fingerprint {fingerprint})" in describe_export(
        out
    )
    with pytest.raises(ValueError, match="This model bundles no encoder: predict takes the vectors"):
        load_model(out).encode(pd.read_csv(tmp_path / "texts.csv")[["text"]])
