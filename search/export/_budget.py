"""`archsearch export --max-params / --max-flops / --max-latency-ms`: the best network that fits a budget.

A trial's size is what the search stored (`keys.SIZE_PARAMS`, `SIZE_FLOPS`, `LATENCY_MS`); an ensemble's is
the sum over its members (the shipped program runs every one of them), so the greedy ensemble adds only
members that keep the sum within the budget, and the export's metadata says what it counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from archsearch.storage import keys
from archsearch.trainers import ExportError

__all__ = ["ExportBudget", "size_metadata"]

# Each budget: its option, the stored attribute, the unit in words.
_MEASURES = {
    "max_params": ("--max-params", keys.SIZE_PARAMS, "parameters"),
    "max_flops": ("--max-flops", keys.SIZE_FLOPS, "FLOPs per row"),
    "max_latency_ms": ("--max-latency-ms", keys.LATENCY_MS, "ms at batch 1"),
}


@dataclass(frozen=True)
class ExportBudget:
    """Upper bounds on what an export ships, summed over its members; None: no bound on that measure."""

    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name, (option, _, unit) in _MEASURES.items():
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if value is not None and (not is_number or value <= 0):
                raise ExportError(
                    f"The {option} option of export must be a number of {unit} > 0. Got {value!r} instead."
                )

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in _MEASURES)

    def totals(self, trials: Sequence[FrozenTrial]) -> dict[str, float | None]:
        """Each measure summed over `trials` (one per member; a trial shipped twice counts twice); None where
        a trial lacks it (stored before sizes were)."""
        out: dict[str, float | None] = {}
        for name, (_, key, _) in _MEASURES.items():
            values = [t.user_attrs.get(key) for t in trials]
            out[name] = None if any(v is None for v in values) else float(sum(values))
        return out

    def why_over(self, trials: Sequence[FrozenTrial]) -> str | None:
        """Why the members `trials` together break the budget; None when they meet it."""
        totals = self.totals(trials)
        for name, (option, _, unit) in _MEASURES.items():
            limit = getattr(self, name)
            if limit is None:
                continue
            total = totals[name]
            if total is None:
                return f"a member has no stored {unit} (a trial from before sizes were stored) to check {option}"
            if total > limit:
                return f"{total:,.4g} {unit} > {option} {limit:,}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _MEASURES if getattr(self, name) is not None}

    def describe(self) -> str:
        return ", ".join(f"{_MEASURES[name][0]} {value:,}" for name, value in self.to_dict().items())


def size_metadata(trials: Sequence[FrozenTrial], budget: ExportBudget | None) -> dict[str, Any]:
    """The export's `size`: each measure summed over all members, their count, and the budget it met."""
    totals = ExportBudget().totals(trials)
    out: dict[str, Any] = {
        "members": len(trials),
        "params": None if totals["max_params"] is None else int(totals["max_params"]),
        "flops": None if totals["max_flops"] is None else int(totals["max_flops"]),
        "latency_ms": totals["max_latency_ms"],
    }
    if budget is not None and budget.active:
        out["budget"] = budget.to_dict()
    return out
