"""The user's columns in the network's input space: which encoded features make each column, the baseline,
the training range and rows, and rows to and from the user's units.

Attributions, prototypes and counterfactuals all work on the *encoded* matrix (`Preprocessing.encode`: numeric
columns as they are, categorical columns one-hot), the input of the exported program; they are summed or read
back per original column through `groups`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from archsearch.trainers import DataError
from archsearch.trainers.data import Preprocessing

__all__ = ["ColumnSpace", "unscaled"]


def unscaled(preprocessing: Preprocessing, standardized: np.ndarray) -> np.ndarray:
    """Encoded rows back from the model input `standardized` (the inverse of `Preprocessing.standardize`;
    values that robust or quantile scaling clipped come back at the clip)."""
    x = np.asarray(standardized, dtype=np.float64) * np.asarray(preprocessing.scale) + np.asarray(preprocessing.mean)
    if preprocessing.scaling == "quantile":
        numeric = preprocessing.numeric_features
        if numeric:
            references = np.linspace(0.0, 1.0, len(preprocessing.quantiles[numeric[0]]))
            for j in numeric:
                x[:, j] = np.interp(ndtr(standardized[:, j]), references, preprocessing.quantiles[j])
    return x


@dataclass(frozen=True)
class ColumnSpace:
    """The encoded features of each user column, and what the training rows say about them.

    Attributes:
        preprocessing: The exported model's preprocessing.
        groups: Per encoded feature, the index of its user column (Captum's `feature_mask`).
        train: The training rows, encoded (n, n_encoded), for ranges, the nearest row and distances.
        train_labels: Their class indices (classification) or None.
    """

    preprocessing: Preprocessing
    groups: np.ndarray
    train: np.ndarray
    train_labels: np.ndarray | None

    @classmethod
    def of(cls, preprocessing: Preprocessing, train: np.ndarray, labels: np.ndarray | None = None) -> ColumnSpace:
        groups = []
        for index, column in enumerate(preprocessing.columns):
            groups += [index] * (len(preprocessing.categorical[column]) if column in preprocessing.categorical else 1)
        train = np.asarray(train, dtype=np.float64)
        if train.ndim != 2 or train.shape[1] != len(groups):
            raise DataError(f"The training rows must be encoded as (n, {len(groups)}); got shape {train.shape}.")
        return cls(preprocessing, np.asarray(groups), train, None if labels is None else np.asarray(labels))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.preprocessing.columns

    @property
    def numeric(self) -> np.ndarray:
        """Indices of the numeric encoded features."""
        return np.asarray(self.preprocessing.numeric_features, dtype=np.int64)

    def features_of(self, column: int) -> np.ndarray:
        """The encoded features of user column `column` (one, or its one-hot block)."""
        return np.flatnonzero(self.groups == column)

    def is_categorical(self, column: int) -> bool:
        return self.columns[column] in self.preprocessing.categorical

    def baseline(self) -> np.ndarray:
        """Integrated Gradients' baseline: the training rows' mean, i.e. every numeric column at its training mean and
        every categorical column's one-hot block at its categories' training frequencies.

        Not "no category" (all one-hot features 0, the standardized input's zero): from there a categorical column
        whose categories all act alike still gets the whole effect of having a category: on teacher data such an inert
        column ranked in IG's top 3 while permutation importance left it out (BENCHMARKS.md section 12).
        """
        return self.train.mean(axis=0)

    def low_high(self) -> tuple[np.ndarray, np.ndarray]:
        """Per encoded feature the training rows' minimum and maximum (0 and 1 for one-hot features)."""
        return self.train.min(axis=0), self.train.max(axis=0)

    def spread(self) -> np.ndarray:
        """Per encoded feature the training rows' standard deviation (1 where it is 0): the unit of distances."""
        std = self.train.std(axis=0)
        return np.where(std > 0, std, 1.0)

    def distances(self, rows: np.ndarray) -> np.ndarray:
        """Euclidean distances (m, n_train) in training standard deviations (a one-hot difference counts 1 per
        category flipped), from encoded `rows` (m, n_encoded) to every training row."""
        scale = self.spread()
        scale[list(self.preprocessing.one_hot_features)] = 1.0
        a, b = np.asarray(rows) / scale, self.train / scale
        squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(squared, 0.0))

    def in_user_units(self, row: np.ndarray) -> dict[str, Any]:
        """An encoded row as {column: value}: numbers, and for a categorical column its category (None when
        the one-hot block is all zeros)."""
        values: dict[str, Any] = {}
        for index, column in enumerate(self.columns):
            features = self.features_of(index)
            if self.is_categorical(index):
                block = row[features]
                values[column] = (
                    self.preprocessing.categorical[column][int(block.argmax())] if block.max() > 0 else None
                )
            else:
                values[column] = float(row[features[0]])
        return values

    def encode_row(self, row: Mapping[str, Any]) -> np.ndarray:
        """One row given in user units, checked against the schema, as its encoded row (n_encoded,).

        Raises:
            DataError: The row names a column the data does not have, lacks one, or gives a categorical
                column a category training never saw.
        """
        if not isinstance(row, Mapping):
            raise DataError(f"The row must be a mapping of column to value. Got {type(row).__name__} instead.")
        unknown = [c for c in row if c not in self.columns]
        if unknown:
            raise DataError(
                f"The row has columns that are not in the data's schema: {', '.join(map(repr, unknown))} "
                f"(columns: {', '.join(map(repr, self.columns))})."
            )
        missing = [c for c in self.columns if c not in row]
        if missing:
            raise DataError(f"The row lacks the columns {', '.join(map(repr, missing))} of the data's schema.")
        for column, categories in self.preprocessing.categorical.items():
            if str(row[column]) not in categories:
                raise DataError(
                    f"The row's {column!r} is {row[column]!r}, not one of the categories training saw: "
                    f"{', '.join(map(repr, categories))}."
                )
        frame = pd.DataFrame([{c: row[c] for c in self.columns}])
        return self.preprocessing.encode(frame)[0].astype(np.float64)

    def changes(self, before: np.ndarray, after: np.ndarray) -> dict[str, dict[str, Any]]:
        """{column: {"from", "to"}} in user units for the columns whose encoded features differ."""
        old, new = self.in_user_units(before), self.in_user_units(after)
        changed = {}
        for index, column in enumerate(self.columns):
            features = self.features_of(index)
            if not np.allclose(before[features], after[features], rtol=0.0, atol=1e-9):
                changed[column] = {"from": old[column], "to": new[column]}
        return changed
