"""The checks every validation of archsearch starts from, once for all packages: types, unknown keys, and the
name a typo most likely meant."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

__all__ = ["MAX_LISTED", "check_keys", "closest", "is_finite_real", "is_int", "is_real", "is_sequence", "some"]


def is_int(value: Any) -> bool:
    """An integer that is not a bool: bool is an int subclass, but `epochs = true` is a mistake, not 1.

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A number that is not a bool; finiteness is each rule's own business (some allow inf, none allow NaN)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_finite_real(value: Any) -> bool:
    """A finite number that is not a bool: what every range of a search space or config is made of.

    >>> is_finite_real(0.5), is_finite_real(float("inf")), is_finite_real(False)
    (True, False, False)
    """
    return is_real(value) and math.isfinite(value)


def is_sequence(value: Any) -> bool:
    """A list or tuple: a string is a sequence of characters, and ("relu") instead of ("relu",) must not pass as
    four choices."""
    return isinstance(value, (list, tuple))


MAX_LISTED = 5  # names a message lists before "and N more": a line, not a screen of every column


def closest(name: str, choices: Sequence[str]) -> str | None:
    """The choice `name` most likely meant: the same name in another case, else the closest spelling; None if none is close.

    >>> closest("purchase", ["rownames", "Purchase"]), closest("widht", ["width", "layers"]), closest("zzz", ["a"])
    ('Purchase', 'width', None)
    """
    folded = {choice.casefold(): choice for choice in reversed(list(choices))}
    if name.casefold() in folded:
        return folded[name.casefold()]
    matches = difflib.get_close_matches(name.casefold(), list(folded), n=1)
    return folded[matches[0]] if matches else None


def some(names: Sequence[Any]) -> str:
    """The first few names, quoted, then how many more: ``'a', 'b', 'c', 'd', 'e' and 82 more``.

    >>> some(["a", "b"])
    "'a', 'b'"
    """
    listed = ", ".join(repr(name) for name in names[:MAX_LISTED])
    return listed + (f" and {len(names) - MAX_LISTED:,} more" if len(names) > MAX_LISTED else "")


def check_keys(where: str, data: Mapping[str, Any], valid: Sequence[str], error: type[Exception]) -> None:
    """Reject unknown keys, so a typo such as ``widht`` fails instead of silently using a default.

    The one unknown-key rule of every config section and stored record; `error` is the caller's error class. A
    key close to a valid one is answered with that one (``did you mean 'width'?``), else with the valid keys.
    """
    if not isinstance(data, Mapping):
        raise error(f"{where} must be a mapping of keys to values. Got {data!r} instead.")
    for key in data:
        if key not in valid:
            guess = closest(key, valid)
            hint = f"did you mean {guess!r}?" if guess else f"valid keys are: {', '.join(valid)}."
            raise error(f"Unknown key {key!r} in {where}; {hint}")
