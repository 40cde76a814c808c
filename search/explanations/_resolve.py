"""What `explain` works on: the model folder (given, or the study's best trial exported without refit), the
study's data (its held-out test rows, its training rows for ranges), and the user's column and class names."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.base import ArchsearchError, closest, some
from archsearch.storage import keys
from archsearch.trainers.data import PreparedData

__all__ = ["ExplainError", "Subject", "class_index", "column_indices", "model_folder", "subject"]


class ExplainError(ArchsearchError, ValueError):
    """Bad input to `explain`: an unknown column or class, a row outside the data's schema, no data to explain on."""


@contextlib.contextmanager
def model_folder(model: str | Path | None, storage: str | None, study: str | None) -> Iterator[Path]:
    """The exported folder `model`, or the study's best trial exported with its stored weights into a temporary
    folder (no refit: nothing trains), removed afterwards."""
    if model is not None:
        yield Path(model)
        return
    if storage is None or study is None:
        raise ExplainError("explain needs a model folder (--model) or a study (--storage and --study) to explain.")
    from archsearch.export import export_best

    with tempfile.TemporaryDirectory(prefix="archsearch-explain-") as folder:
        yield export_best(storage, study, folder, refit=False, greedy_ensemble=False, ensemble_seeds=1)


def open_archsearch_study(storage: str, name: str) -> Any:
    from archsearch.storage import make_storage, open_study

    study = open_study(make_storage(storage, must_exist=True), name, url=storage)
    if keys.CONFIG not in study.user_attrs:
        raise ExplainError(f"Study {name!r} was not created by archsearch (it has no {keys.CONFIG!r} attribute).")
    return study


def study_data(storage: str | None, study_name: str | None) -> PreparedData:
    """The study's data, read as its config says (the split is seeded: the same held-out test rows)."""
    from archsearch.config import SearchConfig
    from archsearch.encoded import artifact_folder, fetch_encoded
    from archsearch.trainers.data import load_data

    if storage is None or study_name is None:
        raise ExplainError(
            "explain needs the study's data for its test rows: give --storage (and --study when the model folder "
            "does not name its study), or pass `data` to archsearch.explain."
        )
    study = open_archsearch_study(storage, study_name)
    config = SearchConfig.from_stored(study.user_attrs[keys.CONFIG])
    fetch_encoded(study, config.data, artifact_folder(config, storage))  # the encoder's vectors the study trained on
    return load_data(config.data)


@dataclass(frozen=True)
class Subject:
    """The model and the rows to explain it on, in its encoded input space."""

    predictor: Any
    space: Any
    encoded: np.ndarray  # the rows to explain (n, n_encoded)
    targets: np.ndarray  # their class indices in the model's class order, or targets in the target's units
    raw: Any  # the same rows as the user gave them
    metric: str
    study: str | None


def _class_positions(model_classes: Sequence[Any], data_classes: Sequence[Any], labels: np.ndarray) -> np.ndarray:
    """Data class indices -> the model's class indices (the same labels, compared as text)."""
    position = {str(c): i for i, c in enumerate(model_classes)}
    unknown = [c for c in data_classes if str(c) not in position]
    if unknown:
        raise ExplainError(f"The data has classes the model does not know: {some(unknown)}.")
    mapping = np.array([position[str(c)] for c in data_classes])
    return mapping[np.asarray(labels, dtype=np.int64)]


def subject(predictor: Any, data: PreparedData, metric: str, study: str | None, max_rows: int | None) -> Subject:
    """The model's subject: `data`'s held-out test rows (the first `max_rows`), and its train + validation rows
    as the training rows whose ranges prototypes and counterfactuals keep to."""
    from archsearch.trainers.explain import ColumnSpace, unscaled

    model_pre, data_pre = predictor.preprocessing, data.preprocessing
    if tuple(model_pre.encoded_names) != tuple(data_pre.encoded_names):
        raise ExplainError(
            "The data's columns differ from those the model was trained on "
            f"(model: {some(model_pre.columns)}; data: {some(data_pre.columns)})."
        )
    train = unscaled(data_pre, np.vstack([data.x_train, data.x_val]))
    y_train = np.concatenate([data.y_train, data.y_val])
    n = len(data.y_test) if max_rows is None else min(max_rows, len(data.y_test))
    raw = data.raw_test[:n]
    encoded = model_pre.encode(raw).astype(np.float64)
    if model_pre.classes is None:
        targets = np.asarray(data.y_test[:n], dtype=np.float64) * data_pre.target_scale + data_pre.target_mean
        labels = None
    else:
        targets = _class_positions(model_pre.classes, data_pre.classes, data.y_test[:n])
        labels = _class_positions(model_pre.classes, data_pre.classes, y_train)
    return Subject(predictor, ColumnSpace.of(model_pre, train, labels), encoded, targets, raw, metric, study)


def column_indices(columns: Sequence[str], names: Sequence[str] | None, option: str = "--allow-change") -> list[int]:
    """Positions of `names` among the data's `columns` (all of them when None)."""
    if names is None:
        return list(range(len(columns)))
    indices = []
    for name in names:
        if name not in columns:
            hint = closest(name, columns)
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ExplainError(f"{option} names {name!r}, not a column of the data ({some(columns)}).{suggestion}")
        indices.append(columns.index(name))
    return indices


def class_index(classes: Sequence[Any] | None, name: Any, option: str = "--target-class") -> int | None:
    """The model's index of the class labelled `name` (compared as text); None when `name` is None."""
    if name is None:
        return None
    if classes is None:
        raise ExplainError(f"{option} applies to classification models; this one is a regression model.")
    texts = [str(c) for c in classes]
    if str(name) not in texts:
        raise ExplainError(f"{option} names class {name!r}, which does not exist; the classes are {some(texts)}.")
    return texts.index(str(name))
