"""Refuse to add trials to a study whose data changed: resumes, joining workers and pool workers alike.

A study stores a fingerprint of its data (`data_fingerprint`: a hash of the rows with their rows,
columns and classes) when it is created. A study created before fingerprints existed has none; its
`data` sizes and `preprocessing` columns and classes are compared instead, and the controller stores the
fingerprint of the data it sees at that first resume, so from then on values are compared too.
"""

from __future__ import annotations

from typing import Any

import optuna

from archsearch.config import ConfigError
from archsearch.storage import keys, mask_url, stored_value
from archsearch.trainers.data import PreparedData, fingerprint_changes

__all__ = ["check_same_data", "record_fingerprint"]


def _stored_fingerprint(study: optuna.Study) -> dict[str, Any] | None:
    attrs = study.user_attrs
    if keys.FINGERPRINT in attrs:
        return attrs[keys.FINGERPRINT]
    sizes, preprocessing = attrs.get(keys.DATA), stored_value(attrs, keys.PREPROCESSING)
    if not sizes or not preprocessing:
        return None
    rows = sum(int(sizes.get(key, 0)) for key in ("n_train", "n_val", "n_test"))
    return {"sha256": None, "rows": rows, "columns": preprocessing["columns"], "classes": preprocessing.get("classes")}


def check_same_data(study: optuna.Study, data: PreparedData, url: str) -> None:
    """Raise ConfigError naming what changed (rows, columns, classes, values) when `data` is not the study's data."""
    stored = _stored_fingerprint(study)
    if stored is None or data.fingerprint is None:
        return
    changes = fingerprint_changes(stored, data.fingerprint)
    if changes:
        raise ConfigError(
            f"The data of study {study.study_name!r} in {mask_url(url)!r} changed since the study was created: "
            f"{'; '.join(changes)}. New trials would not be comparable with the stored ones (and their networks would "
            "not fit the study's outputs); restore the data, or start a new study with another [study] name (or --study NAME)."
        )


def record_fingerprint(study: optuna.Study, data: PreparedData) -> None:
    """Store the fingerprint of `data` unless the study holds one (new studies, and older ones at their first resume)."""
    if keys.FINGERPRINT not in study.user_attrs and data.fingerprint is not None:
        study.set_user_attr(keys.FINGERPRINT, data.fingerprint)
