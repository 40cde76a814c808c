"""Tests of `[data] encoder`: raw rows to vectors once, cached by fingerprint (issue #24)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

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
