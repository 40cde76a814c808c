"""Where the CLI takes the storage URL from: the command line, a file, or the environment.

A password on the command line is visible to every user of the machine through `ps`, so the URL may
instead come from a file (`--storage-file`) or the environment (`ARCHSEARCH_STORAGE`,
`ARCHSEARCH_STORAGE_FILE`). The first one set wins, in the order: --storage, --storage-file,
ARCHSEARCH_STORAGE, ARCHSEARCH_STORAGE_FILE; `archsearch search` then falls back on the config's
[study] storage.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Mapping

__all__ = ["STORAGE_ENV", "STORAGE_FILE_ENV", "add_storage_arguments", "resolve_storage"]

STORAGE_ENV = "ARCHSEARCH_STORAGE"
STORAGE_FILE_ENV = "ARCHSEARCH_STORAGE_FILE"


def add_storage_arguments(parser: argparse.ArgumentParser, help: str = "storage URL") -> None:
    """Add --storage and --storage-file; `resolve_storage` turns them (or the environment) into one URL."""
    parser.add_argument(
        "--storage", help=f"{help} (or --storage-file, or ${STORAGE_ENV} / ${STORAGE_FILE_ENV}, kept out of `ps`)"
    )
    parser.add_argument("--storage-file", help="file holding the storage URL on its first line")
    parser.set_defaults(storage_required=True)


def _read_url_file(path: str, source: str) -> str:
    from archsearch.storage import StorageError  # here: the parser that imports this module stays light

    try:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise StorageError(
            f"The {source} parameter must name a readable file holding a storage URL. Got {path!r} instead ({reason})."
        ) from e
    if not lines or not lines[0].strip():
        raise StorageError(
            f"The {source} parameter must name a file holding a storage URL on its first line. Got {path!r} instead (empty)."
        )
    return lines[0].strip()


def resolve_storage(
    storage: str | None, storage_file: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The storage URL from the first source that is set, or None when none is.

    Example:
        >>> resolve_storage(None, None, {"ARCHSEARCH_STORAGE": "sqlite:///runs.db"})
        'sqlite:///runs.db'
    """
    environ = os.environ if environ is None else environ
    if storage is not None:
        return storage
    if storage_file is not None:
        return _read_url_file(storage_file, "'--storage-file'")
    if environ.get(STORAGE_ENV):
        return environ[STORAGE_ENV]
    if environ.get(STORAGE_FILE_ENV):
        return _read_url_file(environ[STORAGE_FILE_ENV], f"{STORAGE_FILE_ENV!r} environment")
    return None
