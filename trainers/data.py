"""Datasets, preprocessing and splits for archsearch (numpy/pandas/scikit-learn only, no torch).

`load_data(DataSpec(...))` reads a built-in dataset or a user file (CSV, Parquet, NPZ), checks it, splits it
into train/val/test (stratified for classification, seeded) and scales the inputs with statistics of the
training split only (`scaling`: standard, robust or quantile). The fitted `Preprocessing` travels with
exported models: it re-encodes raw rows and maps class indices back to the original labels.

Scaling is a study-level data option, not a per-trial search parameter: a worker prepares the data once and
every trial trains on the same arrays, which is what makes trials comparable and the stored `preprocessing`
valid for every exported trial. To compare scalings, run one study per scaling.

When `task = "auto"`, a target is classification when it holds strings, booleans or categories, or numbers
that are all integral with at most 20 distinct values (`AUTO_MAX_CLASSES`), or more integral values that look
like class codes: consecutive from 0 or 1, at least 10 rows per value on average (`AUTO_MIN_ROWS_PER_CLASS`)
and 3 of each. Any other numeric target is regression. `PreparedData.task_line` says which rule decided;
set `task` explicitly to override.

Example:
    >>> data = load_data(DataSpec(dataset="wine"))
    >>> data.x_train.shape[1], data.n_outputs
    (13, 3)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtri

from archsearch.base import check_keys, is_int, is_real
from archsearch.trainers import _datasets
from archsearch.trainers._blocks import block_indices, check_blocks, resolve_blocks
from archsearch.trainers._datasets import (
    AUTO_MAX_CLASSES,
    AUTO_MIN_ROWS_PER_CLASS,
    DROP_REASON,
    check_finite,
    is_numeric,
    json_safe,
    numeric_values,
)
from archsearch.trainers._encoder import check_encoder, encode_inputs, encoded_file, is_program
from archsearch.trainers._errors import DataError
from archsearch.trainers._fingerprint import data_fingerprint, fingerprint_changes

Task = Literal["classification", "regression"]

BUILTIN_DATASETS = ("digits", "breast_cancer", "wine", "diabetes", "teacher")
FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".npz")
SCALINGS = ("standard", "robust", "quantile")
# Robust and quantile inputs are clipped to +-5: a normal value lies beyond 5 with probability 6e-7, so
# ordinary rows are untouched while an outlier (robust scaling keeps its distance, say 50 IQRs) can no longer
# dominate the first layer, and the quantile transform's tails (norm.ppf of 0 or 1) stay finite.
CLIP = 5.0
# Training quantiles kept per numeric feature for "quantile": every percentile. More buys nothing an MLP sees,
# and they are stored in the study (up to about 1 kB per feature; MySQL's TEXT attribute column holds 64 kB).
N_QUANTILES = 101
_NORMAL_IQR = 1.3489795003921634  # interquartile range of the unit normal, 2 * norm.ppf(0.75)

__all__ = [
    "AUTO_MAX_CLASSES",
    "AUTO_MIN_ROWS_PER_CLASS",
    "BUILTIN_DATASETS",
    "DROP_REASON",
    "MAX_SEED",
    "DataError",
    "DataSpec",
    "PreparedData",
    "Preprocessing",
    "SCALINGS",
    "TeacherSpec",
    "data_fingerprint",
    "describe_datasets",
    "encoded_file",
    "fingerprint_changes",
    "is_program",
    "load_data",
    "load_folds",
    "load_refit_data",
]

MAX_SEED = 2**32 - 1
# Errors name the config sections the user writes, not the classes that hold them.
_DATA, _TEACHER = "[data]", "[data.teacher]"


def _invalid(owner: str, name: str, rule: str, value: Any) -> DataError:
    return DataError(f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead.")


def _positive(value: Any) -> bool:
    return is_real(value) and 0 < value < float("inf")


def _check_keys(data: Any, cls: type, section: str) -> None:
    if not isinstance(data, Mapping):
        raise DataError(f"[{section}] must be a table of keys; got {type(data).__name__} {data!r}.")
    check_keys(f"[{section}]", data, [f.name for f in dataclasses.fields(cls)], DataError)


# Upper bounds of the teacher's counts: far past a useful synthetic task, short of exhausting memory.
_TEACHER_LIMITS = {"widths": 65_536, "rows": 1_000_000, "features": 10_000, "classes": 1_000}


@dataclass(frozen=True)
class TeacherSpec:
    """The synthetic `teacher` task: labels from a random MLP of known hidden widths.

    `widths` may be empty, which gives a linear teacher. See `_datasets.make_teacher` for the construction.
    """

    widths: tuple[int, ...] = (32, 16)
    rows: int = 3000
    features: int = 20
    classes: int = 4
    noise: float = 0.05  # fraction of labels replaced by a uniformly random class
    seed: int = 0

    def __post_init__(self) -> None:
        widths = self.widths
        width_rule = f"a sequence of ints in the range [1, {_TEACHER_LIMITS['widths']:,}]"
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
            raise _invalid(_TEACHER, "widths", width_rule, widths)
        widths = tuple(widths)
        if not all(is_int(w) and 1 <= w <= _TEACHER_LIMITS["widths"] for w in widths):
            raise _invalid(_TEACHER, "widths", width_rule, list(widths))
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))  # TOML gives a list
        for name, low in (("rows", 1), ("features", 1), ("classes", 2)):
            value, high = getattr(self, name), _TEACHER_LIMITS[name]
            if not is_int(value) or not low <= value <= high:
                raise _invalid(_TEACHER, name, f"an int in the range [{low}, {high:,}]", value)
        if not is_real(self.noise) or not 0 <= self.noise <= 1:
            raise _invalid(_TEACHER, "noise", "a float in the range [0, 1]", self.noise)
        if not is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise _invalid(_TEACHER, "seed", f"an int in the range [0, {MAX_SEED}]", self.seed)


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and how it is split. Validated at construction.

    Exactly one of `dataset` and `path` is set: to read a file, pass `dataset=None` (`from_dict` does that
    when the table has a `path` and no `dataset`). A CSV or Parquet file's columns named in `drop` are not
    trained on, nor, unless `keep_ids`, those that look like row identifiers (`_datasets.left_out`).
    """

    dataset: str | None = "digits"  # a name from BUILTIN_DATASETS, or None when `path` is given
    path: str | None = None  # .csv, .parquet/.pq or .npz
    target: str = "target"  # target column for CSV/Parquet
    task: Literal["auto", "classification", "regression"] = "auto"
    val_fraction: float = 0.2
    # 10%, not 20%: export refits on every other row, and 90% of them beat 80% in BENCHMARKS section 6.
    test_fraction: float = 0.1
    seed: int = 0
    impute: Literal["none", "mean", "median"] = "none"
    scaling: Literal["standard", "robust", "quantile"] = "standard"  # see Preprocessing
    folds: int | None = None  # k-fold cross-validation over train + val rows; None: the one validation split
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    drop: tuple[str, ...] = ()  # input columns of a CSV/Parquet file not to train on
    # False: columns that look like row identifiers (see `_datasets.row_identifiers`) are left out too.
    keep_ids: bool = False
    # Named feature blocks, {name: [start, end) column range or column-name prefix} (see `_blocks.py`);
    # held as (name, value) pairs. A Parquet list column is a block without being named here.
    blocks: tuple[tuple[str, Any], ...] = ()
    # "package.module:function", or a torch.export/TorchScript program file, mapping the file's raw input rows to
    # vectors, run once and cached (`_encoder.py`).
    encoder: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", check_blocks(self.blocks))
        check_encoder(self.encoder)
        if self.encoder is not None and self.path is None:
            raise _invalid(
                _DATA, "encoder", "None with a built-in dataset (it encodes the rows of a file)", self.encoder
            )
        if isinstance(self.path, os.PathLike):
            object.__setattr__(self, "path", os.fspath(self.path))
        if self.path is not None:
            if self.dataset is not None:
                raise _invalid(
                    _DATA, "dataset", "None when 'path' is given (exactly one of dataset/path)", self.dataset
                )
            if isinstance(self.path, str) and self.path.lower().endswith(".npy"):
                rule = "a .csv, .parquet, .pq or .npz file; an .npy file holds one array: save inputs and labels together with np.savez(path, X=X, y=y)"
                raise _invalid(_DATA, "path", rule, self.path)
            if not isinstance(self.path, str) or not self.path.lower().endswith(FILE_SUFFIXES):
                raise _invalid(_DATA, "path", "a file path ending in .csv, .parquet, .pq or .npz", self.path)
        elif self.dataset not in BUILTIN_DATASETS:
            names = ", ".join(repr(n) for n in BUILTIN_DATASETS)
            raise _invalid(_DATA, "dataset", f"one of {names} (or None with a 'path')", self.dataset)
        if not isinstance(self.target, str) or not self.target:
            raise _invalid(_DATA, "target", "a non-empty column name", self.target)
        _check_choice("task", self.task, ("auto", "classification", "regression"))
        _check_choice("impute", self.impute, ("none", "mean", "median"))
        _check_choice("scaling", self.scaling, SCALINGS)
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not is_real(value) or not 0 < value < 1:
                raise _invalid(_DATA, name, "a float in the range (0, 1)", value)
        if self.val_fraction + self.test_fraction >= 1:  # named by the test split, the one that is held out
            rule = f"below 1 - val_fraction = {1 - self.val_fraction:g} (val_fraction + test_fraction < 1)"
            raise _invalid(_DATA, "test_fraction", rule, self.test_fraction)
        if not is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise _invalid(_DATA, "seed", f"an int in the range [0, {MAX_SEED}]", self.seed)
        if self.folds is not None and (not is_int(self.folds) or self.folds < 2):
            raise _invalid(_DATA, "folds", "an int in the range [2, inf) or None (no cross-validation)", self.folds)
        if not isinstance(self.teacher, TeacherSpec):
            raise _invalid(_DATA, "teacher", "a [data.teacher] table", self.teacher)
        names = self.drop
        if not isinstance(names, (list, tuple)) or not all(isinstance(c, str) and c for c in names):
            raise _invalid(_DATA, "drop", "a list of distinct column names", names)
        if len(set(names)) != len(names):
            raise _invalid(_DATA, "drop", "a list of distinct column names", list(names))
        object.__setattr__(self, "drop", tuple(names))  # TOML gives a list
        if self.drop and (self.path is None or self.path.lower().endswith(".npz")):
            rule = "empty with a built-in dataset or an NPZ file (it names columns of a CSV or Parquet file)"
            raise _invalid(_DATA, "drop", rule, list(self.drop))
        if not isinstance(self.keep_ids, bool):
            raise _invalid(_DATA, "keep_ids", "true or false", self.keep_ids)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        """Build from a [data] table; unknown keys are rejected and a nested `teacher` table becomes a TeacherSpec.

        Example:
            >>> DataSpec.from_dict({"path": "runs.csv", "target": "label"}).dataset is None
            True
        """
        _check_keys(data, cls, "data")
        values = dict(data)
        if "path" in values and values["path"] is not None and "dataset" not in values:
            values["dataset"] = None
        if "teacher" in values:
            if values.get("dataset", "digits") != "teacher":
                raise DataError(
                    f'[data.teacher] is only used with dataset = "teacher"; got dataset = {values.get("dataset")!r}. '
                    'Remove [data.teacher] or set dataset = "teacher".'
                )
            _check_keys(values["teacher"], TeacherSpec, "data.teacher")
            values["teacher"] = TeacherSpec(**values["teacher"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-safe dict that `from_dict` inverts.

        Keys whose value is None are left out (TOML has no null), and so is `teacher` unless dataset is "teacher".
        So is `scaling = "standard"`: stored configs of studies made before scaling existed must still compare
        equal to today's default when a study is resumed.
        """
        values = dataclasses.asdict(self)
        if self.dataset == "teacher":
            values["teacher"]["widths"] = list(self.teacher.widths)
        else:
            del values["teacher"]
        if self.scaling == "standard":
            del values["scaling"]
        # `drop` only when set, like `scaling`; `keep_ids` always, because a stored config without it predates
        # the row-identifier rule and reads as keep_ids = true (search/config.py, _LEGACY_VALUES).
        values["drop"] = list(self.drop)
        if not self.drop:
            del values["drop"]
        # Only when set, so stored configs made before blocks existed compare equal on resume.
        values["blocks"] = {name: where if isinstance(where, str) else list(where) for name, where in self.blocks}
        if not self.blocks:
            del values["blocks"]
        return {key: value for key, value in values.items() if value is not None}


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _invalid(_DATA, name, "one of " + ", ".join(repr(c) for c in choices), value)


@dataclass(frozen=True)
class Preprocessing:
    """Everything needed to turn raw rows into the model's input, and outputs back into labels.

    `encode` gives the *unscaled* encoded matrix (numeric columns as float, categorical columns one-hot);
    `standardize` turns it into the model input, by `scaling` (all statistics from the training split only):

    - "standard": `(encode(x) - mean) / scale`, mean and standard deviation.
    - "robust": the same with `mean` the median and `scale` the interquartile range / 1.349 (the IQR of a
      unit normal, so normal data scales as with "standard"), then clipped to `[-clip, clip]`.
    - "quantile": each numeric column mapped through its training quantiles (`quantiles`, at evenly spaced
      probabilities, linear interpolation) to a probability, then to a standard normal value, clipped.

    One-hot columns are never scaled (mean 0, scale 1, no quantiles). A categorical value unseen in training,
    or missing, encodes as all zeros; a missing numeric value takes its `fill_values` entry when there is one.
    """

    task: Task
    columns: tuple[str, ...]  # original input columns, in order
    categorical: dict[str, tuple[str, ...]]  # column -> categories, in one-hot order
    encoded_names: tuple[str, ...]  # one name per encoded feature
    mean: tuple[float, ...]  # per encoded feature, from the training split only
    scale: tuple[float, ...]  # per encoded feature (1.0 where the std is 0, and for one-hot columns)
    fill_values: dict[str, float]  # numeric column -> imputed value ({} when impute = "none")
    classes: tuple[Any, ...] | None  # original labels in class-index order (classification)
    target_mean: float = 0.0  # regression: the model predicts (y - target_mean) / target_scale
    target_scale: float = 1.0
    scaling: str = "standard"  # one of SCALINGS
    clip: float | None = None  # robust and quantile: the model input is clipped to [-clip, clip]
    quantiles: tuple[tuple[float, ...], ...] = ()  # quantile: per encoded feature, () for one-hot columns
    # Regression, set by export for the shipped model: the range of the targets it trained on, which its
    # predictions are clamped to (as RealMLP does), so that a row beyond the training data cannot send a
    # prediction far outside every target seen. None (trials, old exports): no clamp.
    target_range: tuple[float, float] | None = None
    # Named feature blocks: name -> [start, end) ranges of encoded features ({} without blocks; `_blocks.py`).
    blocks: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_range is not None:
            low_high = tuple(self.target_range) if isinstance(self.target_range, (list, tuple)) else ()
            if (
                self.task != "regression"
                or len(low_high) != 2
                or not all(is_real(v) and math.isfinite(v) for v in low_high)
                or low_high[0] > low_high[1]
            ):
                rule = "None, or a regression's (low, high) of finite floats with low <= high"
                raise _invalid("Preprocessing", "target_range", rule, self.target_range)
            object.__setattr__(self, "target_range", (float(low_high[0]), float(low_high[1])))
        if self.scaling not in SCALINGS:
            raise _invalid("Preprocessing", "scaling", "one of " + ", ".join(map(repr, SCALINGS)), self.scaling)
        if (self.clip is None) != (self.scaling == "standard") or (self.clip is not None and not _positive(self.clip)):
            raise _invalid("Preprocessing", "clip", "None for standard scaling, else a float > 0", self.clip)
        if self.scaling == "quantile":
            numeric = set(self.numeric_features)
            lengths = [len(q) for q in self.quantiles]
            if (
                len(lengths) != len(self.encoded_names)
                or any((n < 2) if j in numeric else (n > 0) for j, n in enumerate(lengths))
                or len({n for n in lengths if n}) > 1
            ):
                rule = (
                    f"one list per encoded feature ({len(self.encoded_names)}), of one length >= 2 for the numeric "
                    "features and empty for the one-hot ones (list lengths shown)"
                )
                raise _invalid("Preprocessing", "quantiles", rule, lengths)
        elif self.quantiles:
            lengths = [len(q) for q in self.quantiles]
            raise _invalid(
                "Preprocessing", "quantiles", "empty unless scaling is 'quantile' (list lengths shown)", lengths
            )

    @property
    def one_hot_features(self) -> tuple[int, ...]:
        """Indices of the encoded features that are one-hot columns of a categorical input."""
        found: list[int] = []
        start = 0
        for column in self.columns:
            width = len(self.categorical[column]) if column in self.categorical else 1
            if column in self.categorical:
                found.extend(range(start, start + width))
            start += width
        return tuple(found)

    @property
    def numeric_features(self) -> tuple[int, ...]:
        """Indices of the encoded features that are numeric input columns (the rest are one-hot)."""
        one_hot = set(self.one_hot_features)
        return tuple(j for j in range(len(self.encoded_names)) if j not in one_hot)

    def encode(self, rows: Any) -> np.ndarray:
        """Encode raw rows (DataFrame with the original columns, or a 2-D array) to float32 (n, n_encoded).

        Raises:
            DataError: A column is missing, a numeric column holds non-numeric values, or a numeric value is
                infinite or missing without a fill value.
        """
        frame = self._as_frame(rows)
        encoded = np.zeros((len(frame), len(self.encoded_names)), dtype=np.float32)  # (n, n_encoded)
        numeric = {}
        start = 0
        for column in self.columns:
            if column in self.categorical:
                categories = self.categorical[column]
                encoded[:, start : start + len(categories)] = _one_hot(frame[column], categories)
                start += len(categories)
            else:
                values = numeric_values(frame[column], column)
                if column in self.fill_values:
                    values = np.where(np.isnan(values), self.fill_values[column], values)
                numeric[column] = values
                encoded[:, start] = values
                start += 1
        check_finite(numeric, "the rows to encode", allow_nan=False)
        return encoded

    def standardize(self, encoded: np.ndarray) -> np.ndarray:
        """The model input as float32: `encoded` scaled by `scaling` (see the class docstring)."""
        encoded = np.asarray(encoded, dtype=np.float64)
        if encoded.ndim != 2 or encoded.shape[1] != len(self.mean):
            raise DataError(f"standardize expects shape (n, {len(self.mean)}); got {encoded.shape}.")
        scaled = (encoded - np.asarray(self.mean)) / np.asarray(self.scale)  # (n, n_encoded)
        if self.scaling == "quantile" and self.numeric_features:
            references = np.linspace(0.0, 1.0, len(self.quantiles[self.numeric_features[0]]))
            for j in self.numeric_features:
                scaled[:, j] = ndtri(_quantile_ranks(encoded[:, j], np.asarray(self.quantiles[j]), references))
        if self.clip is not None:
            scaled = np.clip(scaled, -self.clip, self.clip)
        return np.ascontiguousarray(scaled, dtype=np.float32)

    def decode_labels(self, class_indices: np.ndarray) -> np.ndarray:
        """Class indices -> original labels."""
        if self.classes is None:
            raise DataError("decode_labels needs a classification Preprocessing; this one is for regression.")
        indices = np.asarray(class_indices)
        if indices.size and (
            not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0 or indices.max() >= len(self.classes)
        ):
            raise DataError(f"Class indices must be ints in the range [0, {len(self.classes) - 1}].")
        return np.asarray(self.classes)[indices]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict (class labels made JSON-safe); `from_dict` inverts it."""
        return {
            "task": self.task,
            "columns": list(self.columns),
            "categorical": {column: list(cats) for column, cats in self.categorical.items()},
            "encoded_names": list(self.encoded_names),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "fill_values": {column: float(v) for column, v in self.fill_values.items()},
            "classes": None if self.classes is None else [json_safe(c) for c in self.classes],
            "target_mean": float(self.target_mean),
            "target_scale": float(self.target_scale),
            # Left out for "standard", so a study's stored dict reads as before scaling existed.
            **(
                {}
                if self.scaling == "standard"
                else {"scaling": self.scaling, "clip": self.clip, "quantiles": [list(q) for q in self.quantiles]}
            ),
            # Left out when unset, so a study's stored dict, and old exports, read as before it existed.
            **({} if self.target_range is None else {"target_range": list(self.target_range)}),
            **(
                {"blocks": {name: [list(r) for r in ranges] for name, ranges in self.blocks.items()}}
                if self.blocks
                else {}
            ),
        }

    def block_indices(self, names: Sequence[str]) -> list[int]:
        """The encoded-feature indices a network on these blocks reads (all features for no names)."""
        return block_indices(self.blocks, names) if names else list(range(len(self.encoded_names)))

    def input_counts(self, names: Sequence[str]) -> tuple[int, int]:
        """How many encoded features a network on these blocks reads, and how many of those are numeric: the
        input width its size is counted at (`archsearch.spaces.net_size`), not the data's whole width."""
        read = self.block_indices(names)
        return len(read), len(set(read).intersection(self.numeric_features))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Rebuild from `to_dict` output (after a JSON round trip too); a dict without `scaling` is "standard"."""
        _check_keys(data, cls, "preprocessing")
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise DataError(f"Preprocessing dict is missing keys: {', '.join(missing)}.")
        classes = data["classes"]
        return cls(
            task=data["task"],
            columns=tuple(data["columns"]),
            categorical={column: tuple(cats) for column, cats in data["categorical"].items()},
            encoded_names=tuple(data["encoded_names"]),
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            fill_values={column: float(v) for column, v in data["fill_values"].items()},
            classes=None if classes is None else tuple(classes),
            target_mean=float(data.get("target_mean", 0.0)),
            target_scale=float(data.get("target_scale", 1.0)),
            scaling=data.get("scaling", "standard"),
            clip=None if data.get("clip") is None else float(data["clip"]),
            quantiles=tuple(tuple(float(v) for v in q) for q in data.get("quantiles", ())),
            target_range=None if data.get("target_range") is None else tuple(data["target_range"]),
            blocks={name: tuple(tuple(r) for r in ranges) for name, ranges in data.get("blocks", {}).items()},
        )

    def _as_frame(self, rows: Any) -> pd.DataFrame:
        if isinstance(rows, pd.DataFrame):
            missing = [c for c in self.columns if c not in rows.columns]
            if missing:
                raise DataError(
                    f"The rows to encode are missing columns: {', '.join(map(repr, missing))} "
                    f"(expected: {', '.join(map(repr, self.columns))})."
                )
            return rows
        array = np.asarray(rows)
        if array.ndim != 2 or array.shape[1] != len(self.columns):
            raise DataError(
                f"The rows to encode must be a DataFrame or a 2-D array with {len(self.columns)} columns in "
                f"`columns` order; got an array of shape {array.shape}."
            )
        return pd.DataFrame(array, columns=list(self.columns))


@dataclass(frozen=True)
class PreparedData:
    """Standardized float32 splits ready for training; y are int64 class indices or float32 scaled targets."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing
    raw_test: Any = None  # the test split's raw rows (DataFrame or array) before encoding, for export checks
    fingerprint: dict[str, Any] | None = None  # `data_fingerprint` of the rows read: hash, rows, columns, classes
    # Columns of the file not trained on, with why: "[data] drop", or a row identifier (`keep_ids` keeps those).
    dropped: dict[str, str] = field(default_factory=dict)
    # The line a search starts with: the task, why (inferred or set), and how to override it.
    task_line: str = ""

    @property
    def task(self) -> Task:
        return self.preprocessing.task

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of classes for classification, 1 for regression."""
        classes = self.preprocessing.classes
        return len(classes) if classes is not None else 1


def load_data(spec: DataSpec) -> PreparedData:
    """Load, validate, encode, split (stratified for classification, seeded) and standardize.

    Example:
        >>> data = load_data(DataSpec(dataset=None, path="runs.csv", target="label", impute="median"))  # doctest: +SKIP
        >>> data.preprocessing.decode_labels(data.y_test[:3])  # doctest: +SKIP
        array(['cat', 'dog', 'cat'], dtype=object)

    Raises:
        DataError: The file cannot be read, or the data cannot be used as it is; the message names the
            file, the column and what to change.
    """
    source, task, y, classes, (train, val, test) = _split_source(spec)
    return _prepare(source, task, y, classes, spec.impute, spec.scaling, train, val, test)


def load_refit_data(
    spec: DataSpec, *, fit_preprocessing_on: Literal["train+val", "train"] = "train+val"
) -> PreparedData:
    """The data for refitting a chosen network: train + validation rows to train on, test rows untouched.

    By default the preprocessing is fitted on train + validation rows, so every row but the test split
    shapes the model. `fit_preprocessing_on="train"` fits it on the training split only, as the search
    did: a refit network then reads the same inputs as the search's stored networks, so they can share
    one preprocessing in an ensemble. `x_val` holds the validation rows again (they are training rows
    now): the trainer measures them each epoch, but a refit keeps its last epoch and reports only test metrics.
    """
    if fit_preprocessing_on not in ("train+val", "train"):
        raise _invalid("load_refit_data", "fit_preprocessing_on", "'train+val' or 'train'", fit_preprocessing_on)
    source, task, y, classes, (train, val, test) = _split_source(spec)
    pool = np.concatenate([train, val])
    fit = pool if fit_preprocessing_on == "train+val" else train
    return _prepare(source, task, y, classes, spec.impute, spec.scaling, pool, val, test, fit=fit)


def load_folds(spec: DataSpec) -> list[PreparedData]:
    """The `spec.folds` folds of k-fold cross-validation over train + validation rows.

    Fold i validates on the i-th of k disjoint parts of the train + validation rows (stratified for
    classification, seeded) and trains on the others, with preprocessing fitted on its own training rows.
    Every fold's test split is the test split of `load_data`, which no fold trains or validates on.

    Raises:
        DataError: `spec.folds` is None or exceeds the number of train + validation rows.
    """
    if spec.folds is None:
        raise _invalid(_DATA, "folds", "an int in the range [2, inf) for load_folds", spec.folds)
    source, task, y, classes, (train, val, test) = _split_source(spec)
    pool = np.concatenate([train, val])
    if spec.folds > len(pool):
        raise _invalid(_DATA, "folds", f"at most the number of train + validation rows ({len(pool)})", spec.folds)
    parts = _fold_parts(pool, y[pool] if task == "classification" else None, spec.folds, spec.seed)
    return [
        _prepare(
            source, task, y, classes, spec.impute, spec.scaling, np.concatenate(parts[:i] + parts[i + 1 :]), part, test
        )
        for i, part in enumerate(parts)
    ]


def _fold_parts(pool: np.ndarray, labels: np.ndarray | None, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint parts of `pool` whose sizes differ by at most one; with labels, each class is dealt evenly."""
    # Its own stream: the fold assignment must not move when the train/val/test split code draws more.
    rng = np.random.default_rng([seed, k])
    order = rng.permutation(len(pool))
    if labels is not None:
        order = order[np.argsort(labels[order], kind="stable")]  # shuffled within each class, classes in a row
    # Dealing the rows round-robin spreads every class over the folds like cards.
    return [np.sort(pool[order[i::k]]) for i in range(k)]


def _split_source(
    spec: DataSpec,
) -> tuple[_datasets.Source, Task, np.ndarray, tuple[Any, ...] | None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read and check the source, resolve the target, and split its rows into train/val/test indices."""
    source = _datasets.read_source(spec)
    if spec.encoder is not None:
        vectors = encode_inputs(spec.encoder, spec.path, source.raw)
        names = [f"e{j}" for j in range(vectors.shape[1])]
        # The network, and so the export, reads the vectors; a list column's block named raw columns.
        source = source._replace(inputs=pd.DataFrame(vectors, columns=names), raw=vectors, blocks=())
    if len(source.inputs) == 0:
        raise DataError(f"{source.where} has no rows.")
    _datasets.check_inputs(source.inputs, source.where, spec.impute)
    task, y, classes, why = _datasets.resolve_target(source, spec.task)
    # The blocks [data] names first, then those of the file's list columns, unless [data] names them too.
    named = {name for name, _ in spec.blocks}
    listed = tuple((name, where) for name, where in source.blocks if name not in named)
    source = source._replace(task_why=why, blocks=spec.blocks + listed)
    indices = _datasets.split_indices(y if task == "classification" else None, len(y), classes, spec, source)
    return source, task, y, classes, indices


def _prepare(
    source: _datasets.Source,
    task: Task,
    y: np.ndarray,
    classes: tuple[Any, ...] | None,
    impute: str,
    scaling: str,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    *,
    fit: np.ndarray | None = None,
) -> PreparedData:
    """Fit the preprocessing on the `fit` rows (default: the `train` rows) and encode, standardize and
    slice the three row sets."""
    fit = train if fit is None else fit
    preprocessing = _fit_preprocessing(source.inputs.iloc[fit], y[fit], task, classes, impute, source.where, scaling)
    if source.blocks:
        columns = preprocessing.columns
        widths = [len(preprocessing.categorical[c]) if c in preprocessing.categorical else 1 for c in columns]
        resolved = resolve_blocks(source.blocks, columns, widths, source.where)
        preprocessing = dataclasses.replace(preprocessing, blocks=resolved)
    if task == "regression":
        y = ((y - preprocessing.target_mean) / preprocessing.target_scale).astype(np.float32)

    def inputs(index: np.ndarray) -> np.ndarray:
        return preprocessing.standardize(preprocessing.encode(source.inputs.iloc[index]))

    raw = source.raw
    raw_test = raw.iloc[test].reset_index(drop=True) if isinstance(raw, pd.DataFrame) else raw[test]
    return PreparedData(
        name=source.name,
        x_train=inputs(train),
        y_train=y[train],
        x_val=inputs(val),
        y_val=y[val],
        x_test=inputs(test),
        y_test=y[test],
        preprocessing=preprocessing,
        raw_test=raw_test,
        fingerprint=data_fingerprint(source.inputs, source.y, classes),
        dropped=dict(source.dropped),
        task_line=_datasets.task_line(task, source.task_why, source.target) if source.task_why else "",
    )


def describe_datasets() -> list[dict[str, Any]]:
    """One dict per built-in dataset: name, task, rows, features, classes, description.

    The `teacher` row describes the default TeacherSpec; `classes` is None for regression.
    """
    described = []
    for name in BUILTIN_DATASETS:
        data = _datasets.load_builtin(name, TeacherSpec())
        described.append(
            {
                "name": name,
                "task": data.task,
                "rows": int(data.x.shape[0]),
                "features": int(data.x.shape[1]),
                "classes": len(np.unique(data.y)) if data.task == "classification" else None,
                "description": _datasets.describe_builtin(name),
            }
        )
    return described


def _fit_preprocessing(
    train: pd.DataFrame,
    y_train: np.ndarray,
    task: Task,
    classes: tuple[Any, ...] | None,
    impute: str,
    where: str,
    scaling: str = "standard",
) -> Preprocessing:
    """Learn categories, fill values, the input scaling and the target's scale from the training split."""
    categorical: dict[str, tuple[str, ...]] = {}
    fill_values: dict[str, float] = {}
    names: list[str] = []
    one_hot: list[bool] = []  # per encoded feature
    for column in train.columns:
        series = train[column]
        if is_numeric(series):
            names.append(column)
            one_hot.append(False)
            if impute != "none":
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                present = values[~np.isnan(values)]
                if present.size == 0:
                    raise DataError(
                        f"Column {column!r} in {where} has no values in the training split, so impute cannot "
                        "fill it; drop the column."
                    )
                fill_values[column] = float(np.mean(present) if impute == "mean" else np.median(present))
        else:
            categorical[column] = tuple(sorted({str(v) for v in series.dropna()}))
            names.extend(f"{column}={category}" for category in categorical[column])
            one_hot.extend(True for _ in categorical[column])
    width = len(names)
    draft = Preprocessing(
        task, tuple(train.columns), categorical, tuple(names), (0.0,) * width, (1.0,) * width, fill_values, classes
    )
    encoded = draft.encode(train).astype(np.float64)  # (n_train, n_encoded)
    mean, std = encoded.mean(axis=0), encoded.std(axis=0)
    # Roundoff leaves a tiny nonzero std on constant columns; dividing by it would amplify noise.
    constant = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    one_hot = np.array(one_hot, dtype=bool)
    mean = np.where(one_hot, 0.0, mean)
    scale = np.where(one_hot | constant, 1.0, std)
    fitted: dict[str, Any] = {}
    if scaling == "robust":
        q25, median, q75 = np.quantile(encoded, [0.25, 0.5, 0.75], axis=0)
        iqr_scale = (q75 - q25) / _NORMAL_IQR
        # A column that is mostly one value has a zero IQR but still varies: its std keeps it finite.
        spread = np.where(iqr_scale > 1e-12 * np.maximum(1.0, np.abs(median)), iqr_scale, std)
        mean = np.where(one_hot, 0.0, median)
        scale = np.where(one_hot | constant, 1.0, spread)
        fitted = {"scaling": scaling, "clip": CLIP}
    elif scaling == "quantile":
        references = np.linspace(0.0, 1.0, min(N_QUANTILES, max(len(encoded), 2)))
        quantiles = np.quantile(encoded, references, axis=0).T  # (n_encoded, n_quantiles)
        # 7 significant digits (float32's, as the model input) halve the size of the stored study attribute.
        rounded = tuple(() if one_hot[j] else tuple(float(f"{v:.7g}") for v in quantiles[j]) for j in range(width))
        mean, scale = np.zeros(width), np.ones(width)
        fitted = {"scaling": scaling, "clip": CLIP, "quantiles": rounded}
    target = {}
    if task == "regression":
        target_scale = float(y_train.std())
        target = {"target_mean": float(y_train.mean()), "target_scale": target_scale if target_scale > 0 else 1.0}
    return dataclasses.replace(draft, mean=tuple(map(float, mean)), scale=tuple(map(float, scale)), **target, **fitted)


def _quantile_ranks(values: np.ndarray, quantiles: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Each value's place in the training distribution, in [0, 1], by linear interpolation between quantiles.

    A value equal to several tied quantiles gets the middle of their probabilities (as scikit-learn's
    QuantileTransformer does): interpolating from the left and from the right, then averaging. `_scaling.py`
    repeats this arithmetic in torch, for the exported program.
    """
    left = _interpolate(values, quantiles, references, "left")
    right = _interpolate(values, quantiles, references, "right")
    return 0.5 * (left + right)


def _interpolate(values: np.ndarray, quantiles: np.ndarray, references: np.ndarray, side: str) -> np.ndarray:
    i = np.clip(np.searchsorted(quantiles, values, side=side), 1, len(quantiles) - 1)
    low, high = quantiles[i - 1], quantiles[i]
    gap = high - low
    # Between tied quantiles the ramp is a step: up once a value passes them (left) or reaches them (right).
    step = values > low if side == "left" else values >= high
    t = np.where(gap > 0, (values - low) / np.where(gap > 0, gap, 1.0), step)
    return references[i - 1] + np.clip(t, 0.0, 1.0) * (references[i] - references[i - 1])


def _one_hot(series: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """(n, len(categories)) 0/1 matrix; missing and unseen values are all zeros."""
    codes = np.full(len(series), -1)
    values = series.to_numpy(dtype=object)
    present = ~pd.isna(values)
    codes[present] = pd.Index(categories, dtype=object).get_indexer([str(v) for v in values[present]])
    one_hot = np.zeros((len(series), len(categories)), dtype=np.float32)
    rows = np.flatnonzero(codes >= 0)
    one_hot[rows, codes[rows]] = 1.0
    return one_hot
