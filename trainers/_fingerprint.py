"""A fingerprint of a dataset, so that a study can tell when the data under it changed.

The fingerprint hashes the raw rows as read (inputs and target, with the column names), not the
standardized float32 splits: the raw values hash the same on every machine and numpy version, where
the arithmetic of standardization may differ in the last bit. Rows, columns and classes are kept beside
the hash, so that a change can be described and not just detected.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

import pandas as pd

__all__ = ["data_fingerprint", "fingerprint_changes"]


def data_fingerprint(inputs: pd.DataFrame, target: pd.Series, classes: Sequence[Any] | None) -> dict[str, Any]:
    """A JSON-able dict: `sha256` of the rows and column names, `rows`, `columns` and `classes` (None for regression)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c) for c in inputs.columns], str(target.name)]).encode())
    digest.update(pd.util.hash_pandas_object(inputs, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(target, index=False).to_numpy().tobytes())
    return {
        "sha256": digest.hexdigest(),
        "rows": int(len(inputs)),
        "columns": [str(c) for c in inputs.columns],
        "classes": None if classes is None else list(classes),
    }


def _shown(items: Sequence[Any], limit: int = 8) -> str:
    text = ", ".join(repr(item) for item in items[:limit])
    return f"[{text}{', ...' if len(items) > limit else ''}]"


def fingerprint_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (empty when they match).

    A `stored` fingerprint without `sha256` (rebuilt from an older study's sizes) compares rows, columns
    and classes only.

    Example:
        >>> old = {"sha256": "a", "rows": 1797, "columns": ["x"], "classes": [0, 1, 2]}
        >>> fingerprint_changes(old, {"sha256": "b", "rows": 100, "columns": ["x"], "classes": [0, 1]})
        ['rows 1797 -> 100', 'classes [0, 1, 2] -> [0, 1]']
    """
    changes = []
    if stored["rows"] != current["rows"]:
        changes.append(f"rows {stored['rows']} -> {current['rows']}")
    old_columns, new_columns = list(stored["columns"]), list(current["columns"])
    removed = [c for c in old_columns if c not in new_columns]
    added = [c for c in new_columns if c not in old_columns]
    if removed or added:
        parts = ([f"removed {_shown(removed)}"] if removed else []) + ([f"added {_shown(added)}"] if added else [])
        changes.append("columns " + ", ".join(parts))
    elif old_columns != new_columns:
        changes.append("column order")
    old_classes, new_classes = stored.get("classes"), current.get("classes")
    if old_classes != new_classes:
        changes.append(
            f"classes {_shown(old_classes) if old_classes is not None else 'none (regression)'} -> "
            f"{_shown(new_classes) if new_classes is not None else 'none (regression)'}"
        )
    if not changes and stored.get("sha256") is not None and stored["sha256"] != current["sha256"]:
        changes.append("values (same rows, columns and classes)")
    return changes
