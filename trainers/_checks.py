"""The trainers' validation helpers, once for the package (spaces/ holds the same rules for search/ and itself)."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any


def is_int(value: Any) -> bool:
    # bool is an int subclass, but `epochs = true` is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A number that is not a bool; finiteness is each rule's own business (some allow inf, none allow NaN)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_keys(
    where: str, data: Mapping[str, Any], valid: list[str] | tuple[str, ...], error: type[ValueError]
) -> None:
    """Reject unknown keys, so a typo fails instead of silently using a default."""
    for key in data:
        if key not in valid:
            raise error(f"Unknown key {key!r} in {where}; valid keys are: {', '.join(valid)}.")
