"""Storage URLs: validation, password masking and where artifacts live beside a database."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")

__all__ = ["StorageError", "SUPPORTED_BACKENDS", "mask_url", "backend_of", "sqlite_path", "default_artifact_dir"]


class StorageError(ValueError):
    """A storage URL or study that cannot be used; the message says why and how to fix it."""


_PASSWORD_IN_URL = re.compile(r"""(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^\s'"]*)(?P<tail>@)""")


# password=... in a URL's query string or a key=value connection string.
_PASSWORD_PARAMETER = re.compile(r"""(?P<head>\b(?:password|passwd|pwd)=)(?P<password>[^&\s'"]+)""", re.IGNORECASE)


def mask_url(text: str) -> str:
    """Replace the password of every URL in `text` with '***' (for logs, errors and status lines).

    >>> mask_url("postgresql://bob:s3cret@db:5432/optuna")
    'postgresql://bob:***@db:5432/optuna'
    >>> mask_url("postgresql://bob@db/optuna?password=s3cret&sslmode=require")
    'postgresql://bob@db/optuna?password=***&sslmode=require'
    """
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***" + m.group("tail"), text)
    return _PASSWORD_PARAMETER.sub(lambda m: m.group("head") + "***", text)


def backend_of(url: str) -> str:
    """The database family of a SQLAlchemy URL ('sqlite', 'postgresql', 'mysql')."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as e:
        raise StorageError(
            f"The 'storage' parameter must be a SQLAlchemy database URL such as 'sqlite:///archsearch.db' "
            f"or 'postgresql+psycopg://user@host/db'. Got {mask_url(url)!r} instead."
        ) from e
    if backend == "mariadb":
        backend = "mysql"
    if backend not in SUPPORTED_BACKENDS:
        raise StorageError(
            f"The 'storage' parameter must use one of the backends {', '.join(SUPPORTED_BACKENDS)}. "
            f"Got {mask_url(url)!r} instead."
        )
    return backend


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for in-memory or other backends)."""
    if backend_of(url) != "sqlite":
        return None
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def default_artifact_dir(url: str) -> Path:
    """Artifacts live beside a SQLite file (`<db stem>_artifacts/`), else in ./archsearch_artifacts."""
    path = sqlite_path(url)
    if path is None:
        return Path("archsearch_artifacts")
    return path.parent / f"{path.stem}_artifacts"
