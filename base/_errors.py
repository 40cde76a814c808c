"""The one base of the errors archsearch raises for situations its user can fix.

Every package's errors derive from `ArchsearchError` (`ConfigError`, `InvalidSpaceError`, `DataError`,
`ExportError`, `StorageError`, ...), each also from the built-in class it always was (`ValueError` or
`RuntimeError`), so code that caught those still does. The command line catches `ArchsearchError` once,
prints its message as one line (storage passwords masked) and exits 2; anything else is a bug and shows
its traceback.

Example:
    >>> from archsearch.base import ArchsearchError
    >>> from archsearch.config import ConfigError
    >>> issubclass(ConfigError, ArchsearchError) and issubclass(ConfigError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["ArchsearchError"]


class ArchsearchError(Exception):
    """A situation the user can fix: the message names the parameter, the rule, the value and the fix."""
