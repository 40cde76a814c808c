"""One number style for sentences and tables: decimals, separators, signs, p-values and counts."""

from __future__ import annotations

import math

import pytest

from archsearch.stats import format_number, format_p, plural


@pytest.mark.parametrize(
    ("value", "signed", "expected"),
    [
        (0.98333333, False, "0.9833"),
        (8185.0, False, "8,185.0000"),
        (-0.00001, False, "0.0000"),
        (-0.00004, True, "0.0000"),
        (-0.0232, True, "-0.0232"),
        (0.15000000000000002, True, "+0.1500"),
        (math.nan, False, "n/a"),
        (None, True, "n/a"),
    ],
)
def test_format_number_writes_four_decimals_without_negative_zero(
    value: float | None, signed: bool, expected: str
) -> None:
    """Check that values get 4 decimals and separators, and that a value rounding to zero has no sign."""
    assert format_number(value, signed=signed) == expected


def test_format_p_never_writes_scientific_notation() -> None:
    """Check that tiny p-values read "< 0.0001" and others get 4 decimals."""
    assert [format_p(p) for p in (3.701e-17, 0.00004, 0.0001, 0.0625, 1.0)] == [
        "< 0.0001",
        "< 0.0001",
        "0.0001",
        "0.0625",
        "1.0000",
    ]


def test_plural_agrees_with_the_count() -> None:
    """Check that one takes the singular and other counts the plural, with thousands separators."""
    assert [plural(n, "trial") for n in (0, 1, 2, 1234)] == ["0 trials", "1 trial", "2 trials", "1,234 trials"]
    assert plural(3, "neighbour of it", "neighbours of it") == "3 neighbours of it"
