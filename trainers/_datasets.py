"""Raw rows for `data.py`: built-in datasets, the synthetic `teacher` task, user files (CSV, Parquet, NPZ),
input checks, the choice of task and the train/val/test split. No torch.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from archsearch.base import closest, some
from archsearch.trainers._blocks import BLOCK_NAME
from archsearch.trainers._errors import DataError

if TYPE_CHECKING:
    from archsearch.trainers.data import DataSpec, TeacherSpec

AUTO_MAX_CLASSES = 20  # task "auto": an integral target with at most this many distinct values is classes
# Task "auto" with more distinct integral values: still classes when they look like class codes (consecutive
# from 0 or 1, as a label encoder writes them) with at least this many rows per value on average and
# MIN_SPLIT_ROWS of every value. AutoGluon asks for about 10 to 20 rows per value (a unique ratio of 5 to
# 10%); a count or an age rarely passes, its tail holding values seen once or twice (issue #24: 40 classes
# in 4,000 rows were searched as a regression).
AUTO_MIN_ROWS_PER_CLASS = 10
FLOAT32_MAX = float(np.finfo(np.float32).max)  # tensors are float32: larger values would turn infinite


def _error(message: str) -> DataError:
    return DataError(message)


class BuiltinData(NamedTuple):
    x: np.ndarray  # (rows, features) float64
    y: np.ndarray  # (rows,) int64 class labels or float64 targets
    columns: tuple[str, ...]
    task: str


_SKLEARN_LOADERS = {
    "digits": ("load_digits", "classification", "8x8 images of handwritten digits 0-9 (scikit-learn)."),
    "breast_cancer": ("load_breast_cancer", "classification", "Wisconsin breast cancer diagnosis (scikit-learn)."),
    "wine": ("load_wine", "classification", "Chemical analysis of wines from three cultivars (scikit-learn)."),
    "diabetes": ("load_diabetes", "regression", "Diabetes disease progression after one year (scikit-learn)."),
}

TEACHER_DESCRIPTION = (
    "Synthetic: Gaussian inputs labelled by a random tanh MLP teacher with known hidden widths, "
    "plus label noise (sizes from [data.teacher])."
)


def describe_builtin(name: str) -> str:
    return TEACHER_DESCRIPTION if name == "teacher" else _SKLEARN_LOADERS[name][2]


def load_builtin(name: str, teacher: TeacherSpec) -> BuiltinData:
    """Load a built-in dataset by name; `teacher` sizes the synthetic `teacher` task."""
    if name == "teacher":
        x, y = make_teacher(teacher)
        return BuiltinData(x, y, tuple(f"x{i}" for i in range(teacher.features)), "classification")

    task = _SKLEARN_LOADERS[name][1]
    cache = _cache_path(name)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                return BuiltinData(stored["x"], stored["y"], tuple(str(c) for c in stored["columns"]), task)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is read again from scikit-learn and rewritten
    import sklearn.datasets  # lazy: importing scikit-learn (and SciPy) takes 2 to 3 s of every worker's start

    bunch = getattr(sklearn.datasets, _SKLEARN_LOADERS[name][0])()
    y = bunch.target.astype(np.int64 if task == "classification" else np.float64)
    data = BuiltinData(bunch.data.astype(np.float64), y, tuple(str(c) for c in bunch.feature_names), task)
    if cache is not None:
        _write_cache(cache, data)
    return data


def _cache_path(name: str) -> Path | None:
    """Where a built-in scikit-learn dataset is kept as plain arrays, per scikit-learn version; None: no cache.

    Each worker process loads the study's data; reading these arrays spares it importing scikit-learn.
    ARCHSEARCH_CACHE_DIR moves the cache (default: $XDG_CACHE_HOME/archsearch, else ~/.cache/archsearch);
    setting it to an empty string turns it off.
    """
    folder = os.environ.get("ARCHSEARCH_CACHE_DIR")
    if folder == "":
        return None
    if folder is None:
        folder = os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "archsearch"
        )
    try:
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(folder) / f"{name}-sklearn-{version}.npz"


def _write_cache(path: Path, data: BuiltinData) -> None:
    """Write atomically (workers may load at once); a cache that cannot be written is only skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False)
    except OSError:
        return
    try:
        with handle:
            np.savez(handle, x=data.x, y=data.y, columns=np.array(data.columns, dtype=str))
        os.replace(handle.name, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)


def make_teacher(spec: TeacherSpec) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X ~ N(0, 1) and labels from a random tanh MLP with hidden widths `spec.widths`.

    Each hidden pre-activation is scaled to unit variance over the rows, so tanh is neither saturated nor
    close to linear at any depth. Per-class output biases are then tuned until every class holds roughly
    1/classes of the rows (within 20% of that share when there are enough rows), and finally a `noise`
    fraction of rows get a uniformly random class, which may coincide with the teacher's. The teacher's
    weights, the inputs and the noise come from separate streams of `spec.seed`.
    """
    weight_rng, x_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(3))
    x = x_rng.standard_normal((spec.rows, spec.features))  # (rows, features)

    hidden = x
    for width in spec.widths:
        pre = hidden @ weight_rng.standard_normal((hidden.shape[1], width))  # (rows, width)
        hidden = np.tanh(pre / _unit_scale(pre))
    logits = hidden @ weight_rng.standard_normal((hidden.shape[1], spec.classes))  # (rows, classes)
    logits = (logits - logits.mean(axis=0)) / _unit_scale(logits)

    labels = (logits + _balancing_bias(logits)).argmax(axis=1)
    noisy = noise_rng.random(spec.rows) < spec.noise
    labels[noisy] = noise_rng.integers(spec.classes, size=int(noisy.sum()))
    return x, labels.astype(np.int64)


def _unit_scale(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return np.where(std > 0, std, 1.0)


def _balancing_bias(logits: np.ndarray, *, max_steps: int = 200) -> np.ndarray:
    """Per-class biases that make the argmax classes roughly equally frequent."""
    rows, classes = logits.shape
    fair = 1.0 / classes
    bias = np.zeros(classes)
    step = 0.1  # larger steps oscillate when many classes compete for few hidden directions
    for _ in range(max_steps):
        share = np.bincount((logits + bias).argmax(axis=1), minlength=classes) / rows
        if np.all(np.abs(share - fair) <= 0.2 * fair):
            break
        bias += step * (fair - share) / fair
        step *= 0.99
    return bias


class Source(NamedTuple):
    """Raw rows before any encoding, with the names that messages use."""

    name: str  # PreparedData.name: the dataset name or the file's name
    where: str  # how messages refer to the source, e.g. "'runs.csv'" or "dataset 'wine'"
    target: str  # how messages refer to the target
    inputs: pd.DataFrame  # input columns only, column names as str
    y: pd.Series
    raw: Any  # what PreparedData.raw_test slices: the input DataFrame, or the original X array
    task: str | None  # the natural task of a built-in dataset, which "auto" resolves to
    dropped: dict[str, str] = {}  # file columns left out of `inputs`, with why (see `left_out`)
    task_why: str = ""  # why the task is what it is, set by `resolve_target`'s caller (see `task_line`)
    blocks: tuple = ()  # named feature blocks, (name, range or prefix) pairs: a Parquet file's list columns


def read_source(spec: DataSpec) -> Source:
    """Read the built-in dataset or the file that `spec` names, and separate inputs from the target."""
    if spec.dataset is not None:
        data = load_builtin(spec.dataset, spec.teacher)
        inputs = pd.DataFrame(data.x, columns=list(data.columns))
        where = f"dataset {spec.dataset!r}"
        return Source(spec.dataset, where, "target", inputs, pd.Series(data.y), data.x, data.task)

    path = spec.path
    if os.path.isdir(path):
        raise _error(f"Data file {path!r} is a directory, not a file; check `path` in [data].")
    if not os.path.isfile(path):
        raise _error(f"Data file {path!r} does not exist; check `path` in [data].")
    suffix = os.path.splitext(path)[1].lower()
    kind = {".csv": "CSV", ".npz": "NPZ"}.get(suffix, "Parquet")
    try:
        if suffix == ".npz":
            arrays = _read_npz(path)
        else:
            table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, NotImplementedError, EOFError, zipfile.BadZipFile) as e:
        raise _error(f"Could not read {path!r} as {kind}: {e}") from e
    if suffix == ".npz":
        return _npz_source(path, arrays, encoded=spec.encoder is not None)

    if suffix == ".csv":
        _reject_duplicate_header(path)
    table.columns = [str(column) for column in table.columns]
    table, listed = _expand_list_columns(table, path, spec.target)
    if spec.target not in table.columns:
        guess = closest(spec.target, table.columns)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise _error(
            f"Target column {spec.target!r} not found in {path!r}; {hint}It has {len(table.columns):,} columns: "
            f"{some(table.columns)}. Set `target` in [data]."
        )
    inputs = table.drop(columns=[spec.target])
    dropped = left_out(inputs, spec, path)
    inputs = inputs.drop(columns=list(dropped))
    if inputs.shape[1] == 0:
        left = ""
        if dropped:
            by_rule = any(why != DROP_REASON for why in dropped.values())
            ids = " (set keep_ids = true in [data] to train on row identifiers)" if by_rule else ""
            columns = "1 column is" if len(dropped) == 1 else f"{len(dropped):,} columns are"
            left = f": {columns} left out ({some(list(dropped))}){ids}"
        raise _error(f"{path!r} has no input columns left besides the target {spec.target!r}{left}.")
    blocks = tuple((name, prefix) for name, prefix in listed if any(c.startswith(prefix) for c in inputs.columns))
    name = os.path.basename(path)
    return Source(name, repr(path), spec.target, inputs, table[spec.target], inputs, None, dropped, blocks=blocks)


def _expand_list_columns(table: pd.DataFrame, path: str, target: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """A Parquet column of fixed-size lists of numbers (an embedding per row) as one column per value,
    `name[0]`, `name[1]`, ...; and its block, (name, "name[").

    Raises:
        DataError: The lists differ in length, hold missing rows, or hold something other than numbers.
    """
    parts, blocks = [], []
    for column in table.columns:
        series = table[column]
        first = series.iloc[0] if len(series) else None
        if column == target or series.dtype != object or not isinstance(first, (list, tuple, np.ndarray)):
            parts.append(series.to_frame())
            continue
        try:
            values = np.stack([np.asarray(v, dtype=np.float64) for v in series])  # (rows, size)
        except (ValueError, TypeError) as e:
            raise _error(
                f"Column {column!r} in {path!r} holds lists, read as a vector per row, but they are not all "
                f"lists of numbers of one length ({e}); pad or fix them."
            ) from e
        if values.ndim != 2:
            raise _error(f"Column {column!r} in {path!r} must hold flat lists of numbers; got shape {values.shape}.")
        names = [f"{column}[{i}]" for i in range(values.shape[1])]
        parts.append(pd.DataFrame(values, columns=names, index=table.index))
        blocks.append((column, f"{column}["))
    return (pd.concat(parts, axis=1) if blocks else table), blocks


# Names that mark a column of row numbers or keys (compared case-insensitively): R's write.csv writes
# `rownames`, pandas' to_csv `Unnamed: 0`; a model that trains on them learns the file's order, not the data.
ID_NAMES = ("id", "index", "rownames", "row_id", "unnamed: 0")
DROP_REASON = "[data] drop"  # why a column named by `[data] drop` is left out; the others are row identifiers
_BY_NAME, _BY_VALUES = "named like a row identifier", "unique integers in row order"


def left_out(inputs: pd.DataFrame, spec: DataSpec, path: str) -> dict[str, str]:
    """The input columns not to train on, each with why: `[data] drop`, then (unless `keep_ids`) row identifiers.

    A row identifier is a column named like one (`ID_NAMES`), or integers that are all distinct and strictly
    increasing or decreasing down the file, as a row number or a key assigned in order is.
    """
    for name in spec.drop:
        if name == spec.target:
            raise _error(f"[data] drop names the target {name!r}; set another `target` in [data] or keep it.")
        if name not in inputs.columns:
            guess = closest(name, list(inputs.columns))
            hint = f"; did you mean {guess!r}?" if guess else f" (it has {some(list(inputs.columns))})."
            raise _error(f"[data] drop names {name!r}, which is not a column of {path!r}{hint}")
    dropped = {name: DROP_REASON for name in spec.drop}
    if spec.keep_ids:
        return dropped
    for column in inputs.columns:
        if column in dropped:
            continue
        if column.strip().casefold() in ID_NAMES:
            dropped[column] = _BY_NAME
        elif _counts_rows(inputs[column]):
            dropped[column] = _BY_VALUES
    # In the file's order, so the message lists them as the user sees them.
    return {column: dropped[column] for column in inputs.columns if column in dropped}


def _counts_rows(series: pd.Series) -> bool:
    """Whether a column holds distinct integers in strictly increasing or decreasing order (at least 3 rows)."""
    if len(series) < 3 or not is_numeric(series) or series.isna().any():
        return False
    values = series.to_numpy(dtype=np.float64)
    steps = np.diff(values)
    return bool(np.all(values == np.round(values)) and (np.all(steps > 0) or np.all(steps < 0)))


def _reject_duplicate_header(path: str) -> None:
    """pandas renames a repeated CSV column `a` to `a.1`; a model trained on such data would mislabel its inputs."""
    header = [str(name) for name in pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise _error(
            f"{path!r} has duplicate column names: {', '.join(map(repr, repeated))}; every column needs its own name."
        )


def _read_npz(path: str) -> dict[str, np.ndarray]:
    # Opening the file here closes it also when numpy fails on a corrupt archive.
    with open(path, "rb") as file:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("the file holds a single .npy array, not an archive of named arrays")
        with loaded:
            return {key: loaded[key] for key in loaded.files}


def _npz_blocks(path: str, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple]:
    """The inputs of an NPZ file and its feature blocks: 'X' alone, or arrays 'X_<name>' (e.g. X_vgg, X_xception:
    one frozen backbone's vectors each) side by side in the file's order, each a block named <name>."""
    parts = {key[2:]: a for key, a in arrays.items() if key.startswith("X_") and len(key) > 2}
    if "X" in arrays and parts:
        raise _error(
            f"{path!r} has both 'X' and {', '.join(repr('X_' + n) for n in parts)}; keep either one 'X' array or "
            "one 'X_<block>' array per feature block."
        )
    if not parts:
        return arrays["X"], ()
    for name, a in parts.items():
        if not BLOCK_NAME.match(name):
            raise _error(
                f"Array 'X_{name}' in {path!r}: {name!r} is not a block name (a letter or '_' first, then letters, digits, '_', '.', '-')."
            )
        if a.ndim != 2 or len(a) != len(next(iter(parts.values()))):
            shapes = ", ".join(f"'X_{n}' {b.shape}" for n, b in parts.items())
            raise _error(f"Arrays 'X_<block>' in {path!r} must be 2-D with the same rows; got {shapes}.")
    blocks, start = [], 0
    for name, a in parts.items():
        blocks.append((name, (start, start + a.shape[1])))
        start += a.shape[1]
    return np.concatenate(list(parts.values()), axis=1), tuple(blocks)


def _npz_source(path: str, arrays: dict[str, np.ndarray], *, encoded: bool = False) -> Source:
    """The NPZ's rows; with an encoder, `X` may have more dimensions (images), which only the encoder reads."""
    has_inputs = "X" in arrays or any(key.startswith("X_") and len(key) > 2 for key in arrays)
    missing = [key for key, ok in (("X", has_inputs), ("y", "y" in arrays)) if not ok]
    if missing:
        raise _error(
            f"{path!r} has no array {missing[0]!r}; an NPZ file needs arrays 'X' (rows, features) or one "
            f"'X_<block>' per feature block, and 'y' (rows,). It has: {', '.join(map(repr, arrays)) or 'no arrays'}."
        )
    (x, blocks), y = _npz_blocks(path, arrays), arrays["y"]
    if x.ndim != 2 and not (encoded and x.ndim > 2):
        rule = "at least 2-D (rows, ...) with an encoder" if encoded else "2-D (rows, features)"
        raise _error(f"Array 'X' in {path!r} must be {rule}; got shape {x.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _error(f"Array 'y' in {path!r} must be 1-D (rows,); got shape {y.shape}.")
    if len(x) != len(y):
        raise _error(f"Arrays 'X' and 'y' in {path!r} differ in length: X has {len(x)} rows, y has {len(y)}.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise _error(f"Array 'X' in {path!r} must be numeric; got dtype {x.dtype}.")
    # Images have no columns: the encoder's vectors replace these inputs before anything reads them.
    flat = x if x.ndim == 2 else np.zeros((len(x), 0))
    inputs = pd.DataFrame(flat.astype(np.float64), columns=[f"x{i}" for i in range(flat.shape[1])])
    return Source(os.path.basename(path), repr(path), "y", inputs, pd.Series(y), x, None, blocks=blocks)


def check_inputs(inputs: pd.DataFrame, where: str, impute: str) -> None:
    """Reject date columns, numeric columns with stray text, infinite values, and NaN unless imputing."""
    numeric, missing_categories = {}, {}
    for column in inputs.columns:
        series = inputs[column]
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            raise _error(
                f"Column {column!r} in {where} holds dates or durations ({series.dtype}); convert it to numbers "
                "(e.g. a timestamp) or to strings."
            )
        if is_numeric(series):
            numeric[column] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        text = series[parsed.isna() & series.notna()]
        if len(text) and parsed.notna().sum() > len(text):
            examples = ", ".join(repr(v) for v in text.unique()[:3])
            raise _error(
                f"Column {column!r} in {where} is mostly numbers but holds non-numeric values such as {examples}; "
                'fix them, or leave those cells empty (missing) and set impute = "mean" or "median".'
            )
        missing_categories[column] = int(series.isna().sum())
    check_finite(numeric, where, allow_nan=impute != "none", missing_categories=missing_categories)


MIN_SPLIT_ROWS = 3  # one row in each of the train, validation and test splits


def _check_split_rows(n: int, where: str) -> None:
    if n < MIN_SPLIT_ROWS:
        rows = "1 row" if n == 1 else f"{n} rows"
        raise _error(f"{where} has {rows}; a train/val/test split needs at least {MIN_SPLIT_ROWS} (one in each).")


def resolve_target(source: Source, task: str) -> tuple[str, np.ndarray, tuple[Any, ...] | None, str]:
    """The task, y (int64 class indices, or float64 targets), the class labels in index order, and why that
    task (words for `task_line`)."""
    y, where, name = source.y, source.where, source.target
    # Before the classes: one row is too few rows, not "a single class".
    _check_split_rows(len(y), where)
    missing = int(y.isna().sum())
    if missing:
        raise _error(f"Target {name!r} in {where} has {missing} missing values; drop those rows or fill them.")
    numeric = is_numeric(y)
    values = y.to_numpy(dtype=np.float64) if numeric else None
    if numeric and not np.all(np.isfinite(values)):
        raise _error(f"Target {name!r} in {where} has {int(np.isinf(values).sum())} infinite values.")
    if numeric and np.any(np.abs(values) > FLOAT32_MAX):
        raise _error(
            f"Target {name!r} in {where} has {int((np.abs(values) > FLOAT32_MAX).sum())} values beyond float32's range "
            f"(|value| > {FLOAT32_MAX:.3g}); training runs in float32, so rescale it."
        )
    integral = numeric and bool(np.all(values == np.round(values)))
    if task == "auto":
        task, why = source.task or _infer_task(values, numeric, integral), _why_task(source, values, numeric, integral)
    else:
        why = "set by [data] task"

    if task == "regression":
        if not numeric:
            raise _error(
                f"Target {name!r} in {where} is not numeric (e.g. {json_safe(y.iloc[0])!r}), so it cannot be a "
                'regression target; set task = "classification" or convert it to numbers.'
            )
        return task, values, None, why
    if numeric and not integral:
        example = values[values != np.round(values)][0]
        raise _error(
            f"Target {name!r} in {where} has non-integral values (e.g. {example!r}); classification needs discrete "
            'labels. Set task = "regression", or encode the labels as integers or strings.'
        )
    if numeric:
        labels = values.astype(np.int64)
    elif pd.api.types.is_bool_dtype(y):
        labels = y.to_numpy(dtype=bool)
    else:
        labels = np.array([str(v) for v in y], dtype=object)
    classes, indices = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise _error(
            f"Target {name!r} in {where} has a single class ({json_safe(classes[0])!r}); classification needs "
            "at least 2."
        )
    return task, indices.astype(np.int64), tuple(json_safe(c) for c in classes), why


def _infer_task(values: np.ndarray | None, numeric: bool, integral: bool) -> str:
    """Task "auto" for a file's target: see AUTO_MAX_CLASSES and AUTO_MIN_ROWS_PER_CLASS."""
    if not numeric:
        return "classification"
    if not integral:
        return "regression"
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= AUTO_MAX_CLASSES:
        return "classification"
    codes = distinct[0] in (0, 1) and distinct[-1] - distinct[0] == len(distinct) - 1
    enough = len(values) >= AUTO_MIN_ROWS_PER_CLASS * len(distinct) and counts.min() >= MIN_SPLIT_ROWS
    return "classification" if codes and enough else "regression"


def _why_task(source: Source, values: np.ndarray | None, numeric: bool, integral: bool) -> str:
    """Why task "auto" chose what it did, in words for `task_line`."""
    if source.task is not None:
        return f"the task of {source.where}"
    if not numeric:
        return "labels that are not numbers"
    if not integral:
        return "numbers with fractions"
    distinct = np.unique(values)
    k, n = len(distinct), len(values)
    span = f"{k:,} distinct integers {int(distinct[0])}..{int(distinct[-1])}, {n / k:,.1f} rows each"
    if k <= AUTO_MAX_CLASSES:
        return f"{span} (classes: at most {AUTO_MAX_CLASSES} values)"
    rule = f"classes: consecutive from 0 or 1, >= {AUTO_MIN_ROWS_PER_CLASS} rows per value on average, >= {MIN_SPLIT_ROWS} of each"
    return f"{span} ({rule})"


def task_line(task: str, why: str, target: str) -> str:
    """The line a search starts with: the task, why, and how to set the other one.

    >>> print(task_line("classification", "set by [data] task", "y"))
    Task: classification of target 'y' (set by [data] task).
    """
    if why == "set by [data] task":
        return f"Task: {task} of target {target!r} ({why})."
    other = "regression" if task == "classification" else "classification"
    return f'Task: {task} of target {target!r}, inferred from {why}; [data] task = "{other}" overrides it.'


def split_indices(
    y: np.ndarray | None, n: int, classes: tuple[Any, ...] | None, spec: DataSpec, source: Source
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/val/test row indices; with class indices `y`, every class lands in every split."""
    if y is not None:
        counts = np.bincount(y, minlength=len(classes))
        rare = [f"{classes[c]!r} ({counts[c]})" for c in range(len(classes)) if counts[c] < 3]
        if rare:
            listed = ", ".join(rare[:10]) + (f" and {len(rare) - 10} more" if len(rare) > 10 else "")
            raise _error(
                f"Target {source.target!r} in {source.where} has classes with fewer than 3 rows: {listed}. "
                "A stratified train/val/test split needs at least 3 rows of every class (one in each split); "
                "add rows or merge rare classes."
            )
        groups = [np.flatnonzero(y == c) for c in range(len(classes))]
    else:
        _check_split_rows(n, source.where)
        groups = [np.arange(n)]
    rng = np.random.default_rng(spec.seed)
    train, val, test = [], [], []
    for group in groups:
        group = rng.permutation(group)
        n_val, n_test = _split_sizes(len(group), spec.val_fraction, spec.test_fraction)
        test.append(group[:n_test])
        val.append(group[n_test : n_test + n_val])
        train.append(group[n_test + n_val :])
    # Shuffle across classes so no split is ordered by class.
    return tuple(rng.permutation(np.concatenate(part)) for part in (train, val, test))


def _split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Rows for val and test out of n >= 3, each at least 1, leaving at least 1 for training."""
    n_val, n_test = max(1, round(n * val_fraction)), max(1, round(n * test_fraction))
    while n - n_val - n_test < 1:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_values(series: pd.Series, column: str) -> np.ndarray:
    """A column as float64 (NaN where missing); non-numeric strings are an error."""
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(series, errors="coerce")
    text = series[parsed.isna() & series.notna()]
    if len(text):
        examples = ", ".join(repr(v) for v in text.unique()[:3])
        raise _error(f"Column {column!r} must be numeric but holds non-numeric values such as {examples}.")
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def check_finite(
    numeric: Mapping[str, np.ndarray],
    where: str,
    *,
    allow_nan: bool,
    missing_categories: Mapping[str, int] | None = None,
) -> None:
    """Raise a DataError naming each column with infinite values, or with missing values unless `allow_nan`."""
    infinite = {column: int(np.isinf(values).sum()) for column, values in numeric.items()}
    if any(infinite.values()):
        raise _error(
            f"Infinite values in {where}: {_counts(infinite)}. Replace them; impute fills only missing (NaN) values."
        )
    with np.errstate(invalid="ignore"):
        huge = {column: int((np.abs(values) > FLOAT32_MAX).sum()) for column, values in numeric.items()}
    if any(huge.values()):
        raise _error(
            f"Values beyond float32's range (|value| > {FLOAT32_MAX:.3g}) in {where}: {_counts(huge)}. Training runs "
            "in float32, where they become infinite; rescale those columns (e.g. take a logarithm)."
        )
    if allow_nan:
        return
    missing = {column: int(np.isnan(values).sum()) for column, values in numeric.items()}
    missing.update(missing_categories or {})
    if any(missing.values()):
        raise _error(
            f'Missing values (NaN) in {where}: {_counts(missing)}. Set impute = "mean" or "median" in [data] '
            "to fill numeric columns from training statistics (a missing category then "
            "encodes as all zeros), or clean the data."
        )


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{column!r} ({count})" for column, count in counts.items() if count)


def json_safe(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
