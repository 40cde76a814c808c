"""The local pool's data, prepared once and shared with its worker processes through memory-mapped files.

A worker that loads the data itself holds its own copy of every split, and its peak memory also holds what
reading, encoding and scaling took on the way (issue #24: a 2,000-wide matrix per worker). The pool writes
the controller's prepared float32 splits instead, once, as .npy files into a temporary folder of its own,
and each local worker maps them: the pages are read once into the page cache and every worker reads
the same ones. The folder goes when the pool ends, whether normally, on an error or on Ctrl-C. Workers that
`archsearch worker` starts (on this machine or another) load the data themselves, as before.

The splits are mapped copy-on-write (`mmap_mode="c"`), not read-only: `torch.as_tensor` warns on an array
that is not writable (PyTorch has no read-only tensors), and it wraps a writable one without a copy. The
trainer never writes to its inputs, so no page is ever copied, and a write would stay in that process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from archsearch.trainers.data import PreparedData, Preprocessing

__all__ = ["load_shared", "shared_data", "write_shared"]

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
FOLDER_PREFIX = "archsearch-data-"
_DESCRIPTION = "data.json"  # everything of PreparedData but the arrays (and the raw test rows, which trials never read)


@contextlib.contextmanager
def shared_data(data: PreparedData | None) -> Iterator[str | None]:
    """A temporary folder holding `data` for `load_shared`, removed when the block ends; None for no data.

    Example:
        >>> with shared_data(load_data(DataSpec(dataset="wine"))) as folder:  # doctest: +SKIP
        ...     load_shared(folder).x_train.shape
        (106, 13)
    """
    if data is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix=FOLDER_PREFIX)  # readable by this user only
    try:
        write_shared(data, Path(folder))
        yield folder
    finally:
        # Workers still mapping the files keep their pages: a removed file lives until its last mapping goes.
        shutil.rmtree(folder, ignore_errors=True)


def write_shared(data: PreparedData, folder: Path) -> None:
    """Write `data`'s splits as .npy files and the rest of it as JSON into `folder`."""
    for split in SPLITS:
        np.save(folder / f"{split}.npy", getattr(data, split), allow_pickle=False)
    description = {
        "name": data.name,
        "preprocessing": data.preprocessing.to_dict(),
        "fingerprint": data.fingerprint,
        "dropped": data.dropped,
        "task_line": data.task_line,
    }
    (folder / _DESCRIPTION).write_text(json.dumps(description), encoding="utf-8")


def load_shared(folder: str | Path) -> PreparedData:
    """The data `write_shared` put in `folder`, its splits memory-mapped copy-on-write (see the module docstring)."""
    folder = Path(folder)
    splits = {split: np.load(folder / f"{split}.npy", mmap_mode="c", allow_pickle=False) for split in SPLITS}
    description = json.loads((folder / _DESCRIPTION).read_text(encoding="utf-8"))
    return PreparedData(
        name=description["name"],
        **splits,
        preprocessing=Preprocessing.from_dict(description["preprocessing"]),
        fingerprint=description["fingerprint"],
        dropped=description["dropped"],
        task_line=description["task_line"],
    )
