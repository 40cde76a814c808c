"""Reading a study's quality and size objectives, whether it optimises one value or several.

A study made with `[study] objectives = ["accuracy", "params"]` is an Optuna multi-objective study: each
trial has `values` (quality first, then the size measures) and `trial.value`, `study.direction` and
`study.best_trial` raise. Every reader that wants "the best trial" or "the quality" asks here, so single-
and multi-objective studies read alike, and a trial over `[study] max_latency_ms` (`keys.INFEASIBLE`) is
never the best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from archsearch.storage import keys

__all__ = [
    "SIZE_KEYS",
    "SIZE_OBJECTIVES",
    "best_quality_trial",
    "front_trials",
    "is_feasible",
    "maximizes",
    "quality_trials",
    "quality_value",
    "size_objectives",
    "size_value",
]

# The size measures a study may minimise beside its quality metric, and the trial attribute holding each.
SIZE_KEYS = {"params": keys.SIZE_PARAMS, "flops": keys.SIZE_FLOPS, "latency_ms": keys.LATENCY_MS}
SIZE_OBJECTIVES = tuple(SIZE_KEYS)


def quality_value(trial: FrozenTrial) -> float | None:
    """The trial's validation metric (its first objective); None unless it completed."""
    values = trial.values
    return None if not values else float(values[0])


def maximizes(study: optuna.Study) -> bool:
    """Whether a higher quality is better (the direction of the study's first objective)."""
    return study.directions[0] == StudyDirection.MAXIMIZE


def is_feasible(trial: FrozenTrial) -> bool:
    """False for a trial over `[study] max_latency_ms` (marked `keys.INFEASIBLE` when it completed)."""
    return keys.INFEASIBLE not in trial.user_attrs


def size_objectives(study: optuna.Study) -> tuple[str, ...]:
    """The size measures the study minimises beside its quality (empty for a single-objective study, such as
    the companion study of a sensitivity analysis, which copies a multi-objective parent's config)."""
    if len(study.directions) == 1:
        return ()
    stored = study.user_attrs.get(keys.CONFIG, {}).get("study", {}).get("objectives") or ()
    return tuple(stored[1:])


def size_value(trial: FrozenTrial, name: str) -> float | None:
    """The trial's size measure `name` (one of SIZE_OBJECTIVES), None where it was not measured."""
    value = trial.user_attrs.get(SIZE_KEYS[name])
    return None if value is None else float(value)


def quality_trials(study: optuna.Study, *, feasible_only: bool = True) -> list[FrozenTrial]:
    """Complete trials with a finite quality, best first (ties: lower number first)."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (v := quality_value(t)) is not None and math.isfinite(v) and (is_feasible(t) or not feasible_only)
    ]
    sign = -1.0 if maximizes(study) else 1.0
    return sorted(trials, key=lambda t: (sign * quality_value(t), t.number))


def best_quality_trial(study: optuna.Study) -> FrozenTrial:
    """The feasible complete trial of best quality: `study.best_trial` for any number of objectives.

    Raises:
        ValueError: No feasible trial completed (as `study.best_trial` does).
    """
    if len(study.directions) == 1:
        # One query (the storage's best) instead of every trial: workers ask this every few seconds.
        best = study.best_trial
        if is_feasible(best):
            return best
    trials = quality_trials(study)
    if not trials:
        raise ValueError("No feasible trial is completed yet.")
    return trials[0]


def front_trials(trials: Sequence[FrozenTrial], maximize: bool, sizes: Sequence[str]) -> list[FrozenTrial]:
    """The Pareto front of `trials` on quality and the `sizes` measures (each minimised), smallest first.

    A trial lacking a size measure is left out; a trial equal to another on every measure is kept once
    (the lower number).
    """
    points = []
    for t in trials:
        q = quality_value(t)
        measures = [size_value(t, name) for name in sizes]
        if q is None or any(m is None for m in measures):
            continue
        points.append((t, (-q if maximize else q, *measures)))
    front = []
    for t, p in points:
        dominated = any(
            all(a <= b for a, b in zip(o, p)) and (o != p or u.number < t.number) for u, o in points if u is not t
        )
        if not dominated:
            front.append((t, p))
    return [t for t, p in sorted(front, key=lambda tp: (tp[1][1:], tp[1][0]))]
