"""The trainers' validation helpers, once for the package (spaces/ holds the same rules for search/ and itself)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_keys(
    where: str, data: Mapping[str, Any], valid: list[str] | tuple[str, ...], error: type[ValueError]
) -> None:
    """Reject unknown keys, so a typo fails instead of silently using a default."""
    for key in data:
        if key not in valid:
            raise error(f"Unknown key {key!r} in {where}; valid keys are: {', '.join(valid)}.")
