"""Tests of task "auto" on wide vector files (issue #24): integer class codes with many classes are classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from archsearch.trainers.data import AUTO_MIN_ROWS_PER_CLASS, DataSpec, load_data


def _npz(tmp_path, x: np.ndarray, y: np.ndarray, name: str = "vectors.npz") -> str:
    path = tmp_path / name
    np.savez(path, X=x, y=y)
    return str(path)


def _spec(path: str, **kwargs) -> DataSpec:
    return DataSpec(dataset=None, path=path, **kwargs)


def test_forty_integer_labels_in_four_thousand_rows_are_classes(tmp_path):
    """Check that a 4,000 x 50 NPZ with labels 0-39 is inferred as 40-class classification, and the line says so."""
    rng = np.random.default_rng(0)
    y = np.arange(4000) % 40
    data = load_data(_spec(_npz(tmp_path, rng.normal(size=(4000, 50)).astype(np.float32), y)))
    assert data.task == "classification" and data.n_outputs == 40
    assert data.task_line == (
        "Task: classification of target 'y', inferred from 40 distinct integers 0..39, 100.0 rows each "
        "(classes: consecutive from 0 or 1, >= 10 rows per value on average, >= 3 of each); "
        '[data] task = "regression" overrides it.'
    )


def test_a_continuous_target_is_regression_and_the_line_says_how_to_override(tmp_path):
    """Check that a target with fractions is inferred as regression, with the override in the line."""
    rng = np.random.default_rng(1)
    data = load_data(_spec(_npz(tmp_path, rng.normal(size=(200, 5)), rng.normal(size=200))))
    assert data.task == "regression"
    assert data.task_line == (
        "Task: regression of target 'y', inferred from numbers with fractions; "
        '[data] task = "classification" overrides it.'
    )


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (np.arange(4000) % 40 + 1, "classification"),  # codes from 1
        (np.arange(4000) % 40 + 5, "regression"),  # not codes: starts at 5
        (np.repeat(np.arange(0, 80, 2), 100), "regression"),  # not consecutive
        (np.arange(40 * (AUTO_MIN_ROWS_PER_CLASS - 1)) % 40, "regression"),  # too few rows per value
        (np.r_[np.arange(3990) % 39, [39, 39]], "regression"),  # one value seen twice: a tail, not a class
        (np.arange(300) % 20, "classification"),  # at most 20 values: classes as before
    ],
)
def test_the_class_code_rule(tmp_path, y, expected):
    """Check each condition of the class-code rule on its own."""
    x = np.random.default_rng(2).normal(size=(len(y), 3))
    assert load_data(_spec(_npz(tmp_path, x, y))).task == expected


def test_an_explicit_task_is_named_as_set(tmp_path):
    """Check that task = "regression" wins over the rule, and the line says it was set."""
    y = np.arange(4000) % 40
    data = load_data(_spec(_npz(tmp_path, np.zeros((4000, 2)) + y[:, None], y), task="regression"))
    assert data.task == "regression"
    assert data.task_line == "Task: regression of target 'y' (set by [data] task)."


def test_a_builtin_dataset_names_its_own_task():
    """Check that a built-in dataset's line names the dataset."""
    data = load_data(DataSpec(dataset="wine"))
    assert data.task_line.startswith(
        "Task: classification of target 'target', inferred from the task of dataset 'wine'"
    )


def test_a_csv_label_column_uses_the_same_rule(tmp_path):
    """Check the rule on a CSV integer column (not only NPZ)."""
    frame = pd.DataFrame({"a": np.arange(1000.0) % 7, "label": np.arange(1000) % 25})
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    assert load_data(_spec(str(path), target="label")).task == "classification"
