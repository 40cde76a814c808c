"""Tests of data fingerprints: stable for the same rows, and changes described in words."""

from __future__ import annotations

import pandas as pd
import pytest

from archsearch.trainers.data import DataSpec, data_fingerprint, fingerprint_changes, load_data


def test_load_data_fingerprint_is_stable_and_tells_classes() -> None:
    """Check that loading the same data twice gives the same fingerprint, with rows, columns and classes."""
    first, second = load_data(DataSpec(dataset="wine")).fingerprint, load_data(DataSpec(dataset="wine")).fingerprint
    assert first == second
    assert (first["rows"], len(first["columns"]), first["classes"]) == (178, 13, [0, 1, 2])


def test_data_fingerprint_changes_with_any_value() -> None:
    """Check that one changed cell changes the hash but not rows, columns or classes."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    target = pd.Series([0, 1, 0], name="y")
    before = data_fingerprint(frame, target, [0, 1])
    frame.loc[1, "a"] = 2.5
    after = data_fingerprint(frame, target, [0, 1])
    assert fingerprint_changes(before, after) == ["values (same rows, columns and classes)"]


@pytest.mark.parametrize(
    ("current", "changes"),
    [
        ({"rows": 100}, ["rows 178 -> 100"]),
        ({"columns": ["a", "c"]}, ["columns removed ['b'], added ['c']"]),
        ({"columns": ["b", "a"]}, ["column order"]),
        ({"classes": None}, ["classes [0, 1] -> none (regression)"]),
        ({}, []),
    ],
)
def test_fingerprint_changes_describe_what_differs(current: dict, changes: list[str]) -> None:
    """Check that rows, columns, column order and classes are each named, and equal fingerprints match."""
    stored = {"sha256": "h", "rows": 178, "columns": ["a", "b"], "classes": [0, 1]}
    assert fingerprint_changes(stored, {**stored, "sha256": "other" if current else "h", **current}) == changes
