"""Storage URLs: validation, password masking and where artifacts live beside a database.

Masking parses rather than pattern-matches wherever it can: a string that is a URL is rendered by
SQLAlchemy's URL object with its password hidden, whatever characters the password holds. Text that
merely contains a URL (a driver's exception message, a traceback) cannot be parsed that way, so every
password of a URL this process has parsed is remembered and masked wherever it appears in such text,
raw and percent-encoded; a pattern catches the passwords of URLs this process never saw.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from archsearch.base import ArchsearchError

SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")
MASK = "***"

__all__ = [
    "StorageError",
    "SUPPORTED_BACKENDS",
    "mask_url",
    "remember_password",
    "backend_of",
    "sqlite_path",
    "default_artifact_dir",
]


class StorageError(ArchsearchError, ValueError):
    """A storage URL or study that cannot be used; the message says why and how to fix it."""


_PASSWORD_IN_URL = re.compile(r"""(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^\s'"]*)(?P<tail>@)""")

# password=... in a URL's query string or a key=value connection string.
_PASSWORD_PARAMETER = re.compile(r"""(?P<head>\b(?:password|passwd|pwd)=)(?P<password>[^&\s'"]+)""", re.IGNORECASE)
_PASSWORD_KEYS = ("password", "passwd", "pwd")

# A known password this short also occurs in ordinary words; it is masked only where it sits in a URL.
_MIN_FREE_TEXT_PASSWORD = 4

_known_passwords: set[str] = set()


def _parse(text: str) -> URL | None:
    if "://" not in text:
        return None
    try:
        return make_url(text)
    except (ArgumentError, ValueError):
        return None


def _url_passwords(url: URL) -> list[str]:
    passwords = [url.password] if url.password else []
    for key, value in url.query.items():
        if key.lower() in _PASSWORD_KEYS:
            passwords += [value] if isinstance(value, str) else list(value)
    return [p for p in passwords if p]


def remember_password(url: str) -> None:
    """Remember the password(s) of `url`, so that `mask_url` hides them in any text, not just in this URL."""
    parsed = _parse(url)
    if parsed is not None:
        _known_passwords.update(_url_passwords(parsed))


def _forms(password: str) -> set[str]:
    """The ways a password shows up in messages: as typed, percent-encoded, and as SQLAlchemy renders it."""
    rendered = URL.create("x", username="u", password=password, host="h").render_as_string(hide_password=False)
    as_rendered = rendered[len("x://u:") : rendered.rindex("@")]
    return {password, quote(password, safe=""), quote_plus(password, safe=""), as_rendered} - {""}


def _mask_known(text: str) -> str:
    for password in sorted(_known_passwords, key=len, reverse=True):
        for form in sorted(_forms(password), key=len, reverse=True):
            if len(form) >= _MIN_FREE_TEXT_PASSWORD:
                text = text.replace(form, MASK)
            else:
                text = text.replace(f":{form}@", f":{MASK}@")
                text = re.sub(
                    rf"(?i)\b((?:{'|'.join(_PASSWORD_KEYS)})=){re.escape(form)}(?=[&\s'\"]|$)", rf"\g<1>{MASK}", text
                )
    return text


def mask_url(text: str) -> str:
    """Replace every storage password in `text` with '***' (for logs, errors, status lines and stored configs).

    A `text` that is one URL is parsed, so any password is hidden whole; in other text, passwords of URLs
    this process has seen (`remember_password`, called by `backend_of`) are hidden wherever they appear.

    >>> mask_url("postgresql://bob:s3cret@db:5432/optuna")
    'postgresql://bob:***@db:5432/optuna'
    >>> mask_url("postgresql://bob@db/optuna?password=s3cret&sslmode=require")
    'postgresql://bob@db/optuna?password=***&sslmode=require'
    """
    parsed = _parse(text) if text == text.strip() else None
    if parsed is not None and (parsed.password or _url_passwords(parsed)):
        remember_password(text)
        query = {k: (MASK if k.lower() in _PASSWORD_KEYS else v) for k, v in parsed.query.items()}
        rendered = parsed.set(query={}).render_as_string(hide_password=True)
        if query:
            # Rendered by hand: SQLAlchemy would percent-encode the mask.
            rendered += "?" + "&".join(
                f"{quote_plus(k)}={v if v == MASK else quote_plus(v)}"
                for k, values in query.items()
                for v in ([values] if isinstance(values, str) else values)
            )
        return rendered
    text = _mask_known(text)
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
    return _PASSWORD_PARAMETER.sub(lambda m: m.group("head") + MASK, text)


def backend_of(url: str) -> str:
    """The database family of a SQLAlchemy URL ('sqlite', 'postgresql', 'mysql')."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise StorageError(
            f"The 'storage' parameter must be a SQLAlchemy database URL such as 'sqlite:///archsearch.db' "
            f"or 'postgresql+psycopg://user@host/db' (characters such as @ : / % in a password percent-encoded: "
            f"%40 %3A %2F %25). Got {mask_url(url)!r} instead."
        ) from e
    remember_password(url)
    backend = parsed.get_backend_name()
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
