"""`[data] encoder`: raw inputs to vectors, once, cached (issue #24).

The encoder is either a function, `"package.module:function"`, or a program file: a `torch.export` program
(`.pt2`, `torch.export.save`) or a TorchScript module (`.pt`/`.ts`, `torch.jit.save`). A function takes a batch
of the file's input rows as they were read (the NPZ's `X` rows, or a DataFrame of a CSV/Parquet file's input
columns: image paths, texts, numbers) and returns a 2-D array of numbers, one row per input row. A program
takes the batch as a float32 tensor (the NPZ's `X` rows, or the columns' values) and returns a
(batch, features) tensor. It runs once in batches, with a progress bar, and its output is cached under a
fingerprint of the data file's bytes and the encoder (a function's name and its module's source, a program's
bytes): every worker, resume and export of the study reads the cache instead of encoding again. The search
also keeps the vectors in the study's artifact store under that fingerprint (`archsearch.encoded`), for
workers on other machines. Nothing is downloaded: the encoder loads whatever model it uses from disk. The
trained network takes the encoded vectors; an export bundles a program encoder in front of it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from archsearch.trainers._errors import DataError

__all__ = [
    "ENCODER_RULE",
    "PROGRAM_SUFFIXES",
    "check_encoder",
    "encode_inputs",
    "encoded_file",
    "is_program",
    "load_program",
    "run_program",
]

PROGRAM_SUFFIXES = {".pt2": "torch.export", ".pt": "TorchScript", ".ts": "TorchScript"}
ENCODER_RULE = (
    'a "package.module:function" name of a function from input rows to a 2-D array of numbers, or the path of '
    "an existing torch.export (.pt2) or TorchScript (.pt, .ts) program file"
)
_NAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
BATCH_ROWS = 256  # rows per call of the encoder


def is_program(name: str) -> bool:
    """Whether the encoder `name` is a program file (else a function's name)."""
    return not _NAME.match(name)


def check_encoder(value: Any) -> str | None:
    if value is None:
        return None
    invalid = f"The 'encoder' parameter of [data] must be {ENCODER_RULE}. Got {value!r} instead"
    if not isinstance(value, str) or (is_program(value) and Path(value).suffix.lower() not in PROGRAM_SUFFIXES):
        raise DataError(f"{invalid}.")
    if is_program(value) and not Path(value).is_file():
        raise DataError(f"{invalid}, which {'is a folder' if Path(value).exists() else 'does not exist'}.")
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


def load_program(path: str | Path) -> Any:
    """The torch module of a program encoder, on CPU, in eval mode.

    Raises:
        DataError: The file is not a program of the kind its suffix says.
    """
    import torch

    kind = PROGRAM_SUFFIXES[Path(path).suffix.lower()]
    try:
        if kind == "torch.export":
            return torch.export.load(str(path)).module()
        with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; the user chose the format, not us
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:  # torch raises many kinds for a file that is not its format
        raise DataError(f"[data] encoder {str(path)!r}: cannot load it as a {kind} program ({e}).") from e


def run_program(module: Any, batch: Any) -> np.ndarray:
    """A program encoder's output for a batch of rows (an array, or a DataFrame of numbers), as float32 goes in."""
    import torch

    values = batch.to_numpy(dtype=np.float32) if isinstance(batch, pd.DataFrame) else batch
    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))).numpy()


def _program_function(path: str) -> Callable[[Any], Any]:
    """The program at `path` as an encoder function: a batch of rows as float32 in, its output as an array."""
    module = load_program(path)
    return lambda batch: run_program(module, batch)


def _identity(name: str) -> bytes:
    """What the fingerprint knows the encoder by: a program's bytes, a function's name and module source."""
    if is_program(name):
        return Path(name).read_bytes()
    return name.encode() + _load(name)[1]


def _cache_folder() -> Path | None:
    folder = os.environ.get("ARCHSEARCH_CACHE_DIR")
    if folder == "":
        return None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "archsearch")
    return Path(folder) / "encoded"


def encoded_file(name: str, path: str) -> tuple[str, Path | None]:
    """The fingerprint of the data file `path` encoded by `name`, and the cache file of its vectors (None when
    ARCHSEARCH_CACHE_DIR is empty: no cache). The file may not exist yet."""
    digest = hashlib.sha256(Path(path).read_bytes() + _identity(name)).hexdigest()[:32]
    folder = _cache_folder()
    return digest, None if folder is None else folder / f"{digest}.npy"


def encode_inputs(name: str, path: str, rows: Any, *, progress: bool = True) -> np.ndarray:
    """The encoder's vectors of `rows` (read from the file `path`), from the cache when it holds them.

    Raises:
        DataError: The encoder cannot be imported or loaded, fails, or returns something other than one row of
            numbers per input row.
    """
    _, cached = encoded_file(name, path)
    if cached is not None and cached.is_file():
        return np.load(cached, allow_pickle=False)
    function = _program_function(name) if is_program(name) else _load(name)[0]
    vectors = _run(function, name, rows, progress)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npy.tmp", delete=False)
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
