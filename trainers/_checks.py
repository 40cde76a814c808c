"""The trainers' validation helpers, once for the package (spaces/ holds the same rules for search/ and itself)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

MAX_LISTED = 5  # names a message lists before "and N more": a line, not a screen of every column


def is_int(value: Any) -> bool:
    # bool is an int subclass, but `epochs = true` is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A number that is not a bool; finiteness is each rule's own business (some allow inf, none allow NaN)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_keys(
    where: str, data: Mapping[str, Any], valid: list[str] | tuple[str, ...], error: type[ValueError]
) -> None:
    """Reject unknown keys, so a typo fails instead of silently using a default; name the key meant when one is close."""
    for key in data:
        if key not in valid:
            guess = closest(key, valid)
            hint = f"did you mean {guess!r}?" if guess else f"valid keys are: {', '.join(valid)}."
            raise error(f"Unknown key {key!r} in {where}; {hint}")


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
    """The first few names, quoted, then how many more: ``'a', 'b', 'c', 'd', 'e' and 82 more``."""
    listed = ", ".join(repr(name) for name in names[:MAX_LISTED])
    return listed + (f" and {len(names) - MAX_LISTED:,} more" if len(names) > MAX_LISTED else "")
