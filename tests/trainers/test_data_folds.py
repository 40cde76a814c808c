"""Tests of the fold and refit splits of archsearch.trainers.data: which rows each part holds, and its preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from archsearch.trainers.data import DataError, DataSpec, PreparedData, load_data, load_folds, load_refit_data


def _ids(x: np.ndarray, data: PreparedData) -> set[int]:
    """The `id` column (encoded feature 0) of standardized rows, back in its original units."""
    return {
        int(round(v)) for v in x[:, 0].astype(np.float64) * data.preprocessing.scale[0] + data.preprocessing.mean[0]
    }


@pytest.fixture
def id_rows(tmp_path: Path) -> str:
    """A CSV whose first column names each row, 3 classes of unequal size."""
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"id": np.arange(n), "f": rng.normal(size=n), "target": ["a"] * 50 + ["b"] * 30 + ["c"] * 10})
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_load_folds_partition_train_and_val_and_never_touch_the_test_rows(id_rows: str) -> None:
    """Check that the k validation parts split train + val rows exactly, each fold trains on the rest, and no test row is in a fold."""
    # keep_ids: the row identifier is kept as a feature here, to tell which rows each split holds.
    spec = DataSpec(dataset=None, path=id_rows, folds=4, keep_ids=True)
    split = load_data(spec)
    pool, test = _ids(split.x_train, split) | _ids(split.x_val, split), _ids(split.x_test, split)
    folds = load_folds(spec)
    assert len(folds) == 4
    val_parts = [_ids(fold.x_val, fold) for fold in folds]
    assert sum(len(part) for part in val_parts) == len(pool) and set().union(*val_parts) == pool
    for fold, part in zip(folds, val_parts):
        train = _ids(fold.x_train, fold)
        assert train == pool - part and len(fold.x_train) == len(train)
        # The test split is load_data's, and it is in neither part of any fold.
        assert _ids(fold.x_test, fold) == test and not (train | part) & test
    assert max(map(len, val_parts)) - min(map(len, val_parts)) <= 1


def test_load_folds_stratify_and_fit_preprocessing_on_each_folds_training_rows(id_rows: str) -> None:
    """Check that every class is dealt evenly over the folds and each fold standardizes with its own training rows."""
    folds = load_folds(DataSpec(dataset=None, path=id_rows, folds=3))
    counts = np.array([np.bincount(fold.y_val, minlength=3) for fold in folds])  # (folds, classes)
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()
    for fold in folds:
        # Standardized with its own training rows' statistics: mean 0 and std 1 there.
        np.testing.assert_allclose(fold.x_train.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(fold.x_train.std(axis=0), 1.0, atol=1e-4)
    assert len({fold.preprocessing.mean for fold in folds}) == 3


def test_load_folds_are_seeded(id_rows: str) -> None:
    """Check that the same spec gives the same folds, and another seed other ones."""
    first = [_ids(f.x_val, f) for f in load_folds(DataSpec(dataset=None, path=id_rows, folds=3, seed=1))]
    again = [_ids(f.x_val, f) for f in load_folds(DataSpec(dataset=None, path=id_rows, folds=3, seed=1))]
    other = [_ids(f.x_val, f) for f in load_folds(DataSpec(dataset=None, path=id_rows, folds=3, seed=2))]
    assert first == again and first != other


def test_load_refit_data_trains_on_train_and_val_rows(id_rows: str) -> None:
    """Check that the refit data trains on every train and validation row with statistics of those rows, test untouched."""
    spec = DataSpec(dataset=None, path=id_rows)
    split, refit = load_data(spec), load_refit_data(spec)
    assert _ids(refit.x_train, refit) == _ids(split.x_train, split) | _ids(split.x_val, split)
    assert len(refit.x_train) == len(split.x_train) + len(split.x_val)
    assert _ids(refit.x_test, refit) == _ids(split.x_test, split)
    np.testing.assert_allclose(refit.x_train.mean(axis=0), 0.0, atol=1e-5)


def test_load_refit_data_can_keep_the_search_s_preprocessing(id_rows: str) -> None:
    """Check that fit_preprocessing_on="train" trains on train + val rows with the training split's statistics
    (the search's preprocessing, which a greedy ensemble's stored members read), and that a bad value is refused."""
    spec = DataSpec(dataset=None, path=id_rows)
    split, refit = load_data(spec), load_refit_data(spec, fit_preprocessing_on="train")
    assert refit.preprocessing == split.preprocessing
    assert _ids(refit.x_train, refit) == _ids(split.x_train, split) | _ids(split.x_val, split)
    np.testing.assert_allclose(np.sort(refit.x_train, axis=0), np.sort(np.vstack([split.x_train, split.x_val]), axis=0))
    with pytest.raises(
        DataError,
        match=r"The 'fit_preprocessing_on' parameter of load_refit_data must be 'train\+val' or 'train'\. Got 'val' instead\.",
    ):
        load_refit_data(spec, fit_preprocessing_on="val")


@pytest.mark.parametrize("folds", [1, 0, -2, 2.5, True, "3"])
def test_data_spec_rejects_bad_folds(folds: object) -> None:
    """Check that folds must be an int >= 2 (or None)."""
    with pytest.raises(
        DataError, match=r"The 'folds' parameter of \[data\] must be an int in the range \[2, inf\) or None"
    ):
        DataSpec(dataset="wine", folds=folds)


def test_load_folds_refuses_more_folds_than_rows(id_rows: str) -> None:
    """Check that k beyond the number of train + validation rows is an error naming that number, and None is refused."""
    with pytest.raises(
        DataError,
        match=r"The 'folds' parameter of \[data\] must be at most the number of train \+ validation rows \(81\)\. Got 82 instead\.",
    ):
        load_folds(DataSpec(dataset=None, path=id_rows, folds=82))
    with pytest.raises(
        DataError,
        match=r"The 'folds' parameter of \[data\] must be an int in the range \[2, inf\) for load_folds\. Got None instead\.",
    ):
        load_folds(DataSpec(dataset=None, path=id_rows))


def test_data_spec_folds_round_trip() -> None:
    """Check that folds survives to_dict/from_dict and is left out when None (old configs stay equal)."""
    spec = DataSpec(dataset="wine", folds=5)
    assert DataSpec.from_dict(spec.to_dict()) == spec
    assert "folds" not in DataSpec(dataset="wine").to_dict()
