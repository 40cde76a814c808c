"""Tests for input scaling: `DataSpec.scaling`, `Preprocessing.standardize` and its torch twin `InputScaling`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from archsearch.trainers._scaling import InputScaling
from archsearch.trainers.data import CLIP, DataError, DataSpec, Preprocessing, load_data


def _table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Skewed, heavy-tailed, discrete and categorical columns, and a label unrelated to the split."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "skewed": rng.exponential(2.0, n),
            "heavy": rng.standard_t(1.5, n) * 10.0,
            "steps": rng.integers(0, 3, n),  # three values: many tied quantiles
            "city": rng.choice(["paris", "oslo", "lima"], n),
            "label": np.array(["cat", "dog"])[np.arange(n) % 2],
        }
    )


def _load(tmp_path, frame: pd.DataFrame, scaling: str, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return load_data(DataSpec(dataset=None, path=str(path), target="label", scaling=scaling))


@pytest.mark.parametrize("scaling", ["standard", "robust", "quantile"])
def test_scaling_is_fitted_on_training_rows_only(tmp_path, scaling: str) -> None:
    """Check that changing validation and test rows leaves the fitted scaling statistics unchanged."""
    frame = _table()
    data = _load(tmp_path, frame, scaling)
    # The split depends on the labels and the seed only, so the same rows stay out of training.
    held_out = frame["skewed"].isin(data.raw_test["skewed"])
    assert held_out.sum() == len(data.raw_test)
    changed = frame.copy()
    changed.loc[held_out, ["skewed", "heavy"]] = 1e6
    again = _load(tmp_path, changed, scaling, name="changed.csv")
    assert again.preprocessing == data.preprocessing
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_robust_scaling_centres_on_the_median_and_clips(tmp_path) -> None:
    """Check that robust scaling uses the median and IQR / 1.349 and clips the heavy tail at +-CLIP."""
    data = _load(tmp_path, _table(), "robust")
    prep = data.preprocessing
    assert (prep.scaling, prep.clip) == ("robust", CLIP)
    x = data.x_train[:, prep.encoded_names.index("heavy")]
    # Half the training rows lie on each side of the median, and the t(1.5) tail reaches the bound.
    assert abs(float(np.median(x))) < 1e-6
    assert np.abs(x).max() == CLIP
    q25, q75 = np.quantile(x[np.abs(x) < CLIP], [0.25, 0.75])
    assert q75 - q25 == pytest.approx(1.349, rel=0.05)
    # One-hot columns keep their 0/1 values.
    one_hot = list(prep.one_hot_features)
    assert set(np.unique(data.x_train[:, one_hot])) == {0.0, 1.0}


def test_quantile_scaling_makes_training_columns_standard_normal(tmp_path) -> None:
    """Check that quantile scaling maps a skewed training column to about N(0, 1), keeping its order."""
    data = _load(tmp_path, _table(n=2000), "quantile")
    prep = data.preprocessing
    skewed = prep.encoded_names.index("skewed")
    x = data.x_train[:, skewed]
    # The extreme training rows land on the clip bound, which widens the spread slightly beyond 1.
    assert abs(float(x.mean())) < 0.02 and 0.98 < float(x.std()) < 1.06
    assert abs(float(np.median(x))) < 0.02 and x.max() == CLIP
    raw = data.raw_test["skewed"].to_numpy()
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(data.x_test[order, skewed]) >= 0)
    # Tied values get the middle of their probabilities: three equally likely steps give about -0.97, 0, 0.97.
    steps = np.unique(data.x_train[:, prep.encoded_names.index("steps")])
    np.testing.assert_allclose(steps, [-0.97, 0.0, 0.97], atol=0.08)
    assert set(np.unique(data.x_train[:, list(prep.one_hot_features)])) == {0.0, 1.0}


@pytest.mark.parametrize("scaling", ["standard", "robust", "quantile"])
def test_input_scaling_in_torch_equals_standardize(tmp_path, scaling: str) -> None:
    """Check that the exported program's scaling reproduces numpy's within 1e-5, beyond the training range too."""
    data = _load(tmp_path, _table(), scaling)
    prep = data.preprocessing
    encoded = prep.encode(data.raw_test)
    beyond = encoded.copy()
    beyond[:, prep.numeric_features] *= 50.0  # far outside every training quantile and the clip bound
    ties = np.repeat(encoded[:1], len(prep.quantiles[0]) if prep.quantiles else 1, axis=0)
    for j in prep.numeric_features if prep.quantiles else ():
        ties[:, j] = prep.quantiles[j]  # exactly on the (often tied) quantiles
    for rows in (encoded, beyond, ties):
        expected = prep.standardize(rows)
        with torch.inference_mode():
            got = InputScaling(prep)(torch.from_numpy(rows)).numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-6)  # standard: float32, values to 130


@pytest.mark.parametrize("scaling", ["robust", "quantile"])
def test_preprocessing_dict_round_trips_the_scaling(tmp_path, scaling: str) -> None:
    """Check that to_dict/from_dict keep the scaling, its clip and its quantiles through JSON."""
    prep = _load(tmp_path, _table(), scaling).preprocessing
    stored = json.loads(json.dumps(prep.to_dict()))
    assert stored["scaling"] == scaling and stored["clip"] == CLIP
    assert Preprocessing.from_dict(stored) == prep


def test_standard_preprocessing_dict_reads_as_before_scaling_existed(tmp_path) -> None:
    """Check that a standard dict has no scaling keys, and a dict without them (an old study) is standard."""
    prep = _load(tmp_path, _table(), "standard").preprocessing
    stored = prep.to_dict()
    assert not {"scaling", "clip", "quantiles"} & set(stored)
    assert Preprocessing.from_dict(stored).scaling == "standard"


def test_data_spec_scaling_is_stored_only_when_not_standard() -> None:
    """Check that DataSpec.to_dict leaves out the default scaling (old stored configs compare equal) and keeps others."""
    assert "scaling" not in DataSpec().to_dict()
    spec = DataSpec(scaling="quantile")
    assert spec.to_dict()["scaling"] == "quantile"
    assert DataSpec.from_dict(spec.to_dict()) == spec


def test_data_spec_rejects_an_unknown_scaling() -> None:
    """Check that DataSpec names the scaling parameter, its choices and the value."""
    rule = r"The 'scaling' parameter of \[data\] must be one of 'standard', 'robust', 'quantile'"
    with pytest.raises(DataError, match=rule + r". Got 'minmax' instead."):
        DataSpec(scaling="minmax")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"scaling": "log"}, r"The 'scaling' parameter of Preprocessing must be one of .*Got 'log' instead"),
        ({"clip": 3.0}, r"The 'clip' parameter of Preprocessing must be None for standard scaling.*Got 3.0"),
        ({"scaling": "robust"}, r"The 'clip' parameter .*else a float > 0. Got None instead"),
        ({"scaling": "robust", "clip": -1.0}, r"The 'clip' parameter .*Got -1.0 instead"),
        (
            {"scaling": "quantile", "clip": 5.0},
            r"The 'quantiles' parameter of Preprocessing must be one list per encoded feature \(2\).*Got \[\] instead",
        ),
        (
            {"scaling": "quantile", "clip": 5.0, "quantiles": ((0.0, 1.0), (0.5,))},
            r"'quantiles'.*Got \[2, 1\] instead",
        ),
        (
            {"quantiles": ((0.0, 1.0), (0.0, 1.0))},
            r"'quantiles' parameter .*empty unless scaling is 'quantile'.*Got \[2, 2\] instead",
        ),
    ],
)
def test_preprocessing_rejects_inconsistent_scaling(changes: dict, match: str) -> None:
    """Check that Preprocessing names the field, the rule and the value of an inconsistent scaling."""
    base = Preprocessing("classification", ("a", "b"), {}, ("a", "b"), (0.0, 0.0), (1.0, 1.0), {}, (0, 1))
    with pytest.raises(DataError, match=match):
        dataclasses.replace(base, **changes)
