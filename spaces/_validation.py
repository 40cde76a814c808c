"""Checks shared by the space and candidate dataclasses, with one error format everywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from archsearch.base import ArchsearchError, is_finite_real, is_int, is_sequence
from archsearch.base import check_keys as base_check_keys


class InvalidSpaceError(ArchsearchError, ValueError):
    """A search space, candidate or parameter value that breaks a documented rule."""


def error(owner: str, name: str, rule: str, value: Any) -> InvalidSpaceError:
    """Build the scikit-learn style error: ``The 'name' parameter of Owner must be RULE. Got V instead.``"""
    return InvalidSpaceError(f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead.")


def check_int(owner: str, name: str, value: Any, *, low: int) -> int:
    if not (is_int(value) and value >= low):
        raise error(owner, name, f"an int >= {low}", value)
    return int(value)


def check_float(owner: str, name: str, value: Any, rule: str, ok: Callable[[float], bool]) -> float:
    if not (is_finite_real(value) and ok(float(value))):
        raise error(owner, name, rule, value)
    return float(value)


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise error(owner, name, "a bool", value)
    return value


def check_name(owner: str, name: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise error(owner, name, f"one of {listing(valid)}", value)
    return value


def check_int_range(owner: str, name: str, value: Any, *, low: int, high: int) -> tuple[int, int]:
    """Return ``value`` as an ``(low, high)`` tuple of ints within the given bounds."""
    rule = f"a pair of ints (low, high) with {low} <= low <= high <= {high}"
    if not (is_sequence(value) and len(value) == 2 and all(is_int(v) for v in value)):
        raise error(owner, name, rule, value)
    if not low <= value[0] <= value[1] <= high:
        raise error(owner, name, rule, value)
    return int(value[0]), int(value[1])


def check_float_range(
    owner: str, name: str, value: Any, bounds: str, ok: Callable[[float, float], bool]
) -> tuple[float, float]:
    """Return ``value`` as a ``(low, high)`` tuple of finite floats accepted by ``ok(low, high)``."""
    rule = f"a pair of floats (low, high) with {bounds}"
    if not (is_sequence(value) and len(value) == 2 and all(is_finite_real(v) for v in value)):
        raise error(owner, name, rule, value)
    low, high = float(value[0]), float(value[1])
    if not ok(low, high):
        raise error(owner, name, rule, value)
    return low, high


def check_choices(owner: str, name: str, value: Any, rule: str, ok: Callable[[Any], bool]) -> tuple[Any, ...]:
    """Return ``value`` as a non-empty tuple of distinct items, each accepted by ``ok``."""
    rule = f"a non-empty list of distinct {rule}"
    if not (is_sequence(value) and value and all(ok(v) for v in value)):
        raise error(owner, name, rule, value)
    if len(set(value)) != len(value):
        raise error(owner, name, rule, value)
    return tuple(value)


def check_keys(
    where: str, data: Mapping[str, Any], valid: tuple[str, ...], *, error: type[Exception] = InvalidSpaceError
) -> None:
    """`archsearch.base.check_keys` with the spaces' error class by default."""
    base_check_keys(where, data, valid, error)


def listing(valid: tuple[Any, ...]) -> str:
    """Format valid choices for a message: ``{'adam', 'sgd'}``."""
    return "{" + ", ".join(repr(v) for v in valid) + "}"
