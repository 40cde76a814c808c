"""One number style for every sentence and table: 4 decimals, thousands separators, counts with their noun.

Never ``-0.0000`` (a value that rounds to zero is written without a sign), never ``1 trials``, never
``3.701e-17`` (p-values below 0.0001 are written ``< 0.0001``).
"""

from __future__ import annotations

import math

__all__ = ["format_duration", "format_number", "format_p", "plural"]


def format_number(value: float | None, decimals: int = 4, *, signed: bool = False) -> str:
    """Write a metric value or difference with ``decimals`` decimals and thousands separators.

    Args:
        value: The number; None or NaN is written ``"n/a"``.
        decimals: Digits after the point.
        signed: Write ``+`` before positive values (differences).

    Example:
        >>> format_number(1234.56789), format_number(-0.00001, signed=True), format_number(0.0232, signed=True)
        ('1,234.5679', '0.0000', '+0.0232')
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:{'+' if signed else ''},.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        # A value that rounds to zero has no sign to show.
        return f"{0:.{decimals}f}"
    return text


def format_p(p: float | None) -> str:
    """Write a p-value with 4 decimals, or ``"< 0.0001"`` below that.

    Example:
        >>> format_p(0.04567), format_p(3.701e-17), format_p(float("nan"))
        ('0.0457', '< 0.0001', 'n/a')
    """
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.0001" if p < 0.00005 else f"{p:.4f}"


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """Write a count with its noun, singular for one: ``1 trial``, ``1,024 trials``.

    Example:
        >>> plural(1, "trial"), plural(1024, "seed"), plural(2, "change", "changes")
        ('1 trial', '1,024 seeds', '2 changes')
    """
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


def format_duration(seconds: float) -> str:
    """A duration as a person reads it; ``"?"`` when unknown.

    >>> format_duration(42), format_duration(185), format_duration(3720), format_duration(float("nan"))
    ('42s', '3m 05s', '1h 02m', '?')
    """
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
