"""`[data] encoder = "package.module:function"`: raw inputs to vectors, once, cached (issue #24).

The function takes a batch of the file's input rows as they were read (the NPZ's `X` rows, or a DataFrame
of a CSV/Parquet file's input columns: image paths, texts, numbers) and returns a 2-D array of numbers,
one row per input row. It runs once in batches, with a progress bar, and its output is cached under a
fingerprint of the file's bytes, the encoder's name and its module's source: every worker, resume and
export of the study reads the cache instead of encoding again. Nothing is downloaded: the function loads
whatever model it uses from disk. The trained network (and so the export) takes the encoded vectors.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from archsearch.trainers._errors import DataError

__all__ = ["ENCODER_RULE", "check_encoder", "encode_inputs"]

ENCODER_RULE = 'a "package.module:function" name of a function from input rows to a 2-D array of numbers'
_NAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
BATCH_ROWS = 256  # rows per call of the encoder


def check_encoder(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise DataError(f"The 'encoder' parameter of [data] must be {ENCODER_RULE}. Got {value!r} instead.")
    return value


def _load(name: str) -> tuple[Callable[[Any], Any], bytes]:
    """The function `name` names, and its module's source (for the fingerprint; b"" when not readable)."""
    module_name, function_name = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise DataError(f"[data] encoder {name!r}: cannot import {module_name!r} ({e}).") from e
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(f"[data] encoder {name!r}: {module_name!r} has no function {function_name!r}.")
    try:
        source = inspect.getsource(module).encode()
    except (OSError, TypeError):
        source = b""
    return function, source


def _cache_folder() -> Path | None:
    folder = os.environ.get("ARCHSEARCH_CACHE_DIR")
    if folder == "":
        return None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "archsearch")
    return Path(folder) / "encoded"


def encode_inputs(name: str, path: str, rows: Any, *, progress: bool = True) -> np.ndarray:
    """The encoder's vectors of `rows` (read from the file `path`), from the cache when it holds them.

    Raises:
        DataError: The encoder cannot be imported, fails, or returns something other than one row of
            numbers per input row.
    """
    function, source = _load(name)
    digest = hashlib.sha256(Path(path).read_bytes() + name.encode() + source).hexdigest()[:32]
    folder = _cache_folder()
    cached = None if folder is None else folder / f"{digest}.npy"
    if cached is not None and cached.is_file():
        return np.load(cached, allow_pickle=False)
    vectors = _run(function, name, rows, progress)
    if cached is not None:
        folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=folder, suffix=".npy.tmp", delete=False)
        with handle:
            np.save(handle, vectors)
        os.replace(handle.name, cached)  # atomic: workers may encode at once
    return vectors


def _run(function: Callable[[Any], Any], name: str, rows: Any, progress: bool) -> np.ndarray:
    from tqdm import tqdm  # Optuna's dependency

    n = len(rows)
    parts = []
    for start in tqdm(range(0, n, BATCH_ROWS), desc=f"encoding with {name}", disable=not progress, leave=False):
        batch = (
            rows.iloc[start : start + BATCH_ROWS]
            if isinstance(rows, pd.DataFrame)
            else rows[start : start + BATCH_ROWS]
        )
        try:
            out = np.asarray(function(batch), dtype=np.float32)
        except Exception as e:  # the user's code: any failure is reported with its name
            raise DataError(f"[data] encoder {name!r} failed on rows {start} to {start + len(batch) - 1}: {e!r}") from e
        if out.ndim != 2 or len(out) != len(batch):
            raise DataError(
                f"[data] encoder {name!r} must return a 2-D array with one row per input row; got shape "
                f"{out.shape} for {len(batch)} rows."
            )
        parts.append(out)
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
