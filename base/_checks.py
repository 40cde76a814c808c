"""The type tests every validation of archsearch starts from, once for all packages."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = ["is_finite_real", "is_int", "is_real", "is_sequence"]


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
