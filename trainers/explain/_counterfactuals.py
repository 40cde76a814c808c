"""Counterfactuals: the smallest change to one row, over the columns the user allows, that flips the model's
decision (or moves a regression prediction by a given amount).

"Smallest" is the fewest changed columns first, then the smallest change in training standard deviations (a
category swapped counts 1). One column at a time is searched exhaustively (a grid over the training range, then
bisection towards the row's value; every other category); then pairs of columns (a coarser grid over the pairs
of the 20 columns that move the output most alone, each numeric change then bisected back); when no pair does
it, a gradient search moves every allowed column at once (penalized by its L1 distance) and the changes that
are not needed are undone one by one. The found row is then checked by a forward pass of the exported program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.trainers.explain._inputs import ColumnSpace
from archsearch.trainers.explain._relaxed import RelaxedRow

__all__ = ["counterfactual"]

GRID = 48
PAIR_GRID = 12  # values per numeric column when two columns change together
PAIR_COLUMNS = 20  # the columns that move the output most alone, whose pairs are searched
_BISECTIONS = 20
_STEPS = 300
_L1 = 0.02

Success = Callable[[np.ndarray], np.ndarray]  # model outputs (m, ...) -> reached (m,) bool


def _cost(space: ColumnSpace, before: np.ndarray, after: np.ndarray) -> float:
    """The change in training standard deviations over numeric columns, plus 1 per category swapped."""
    spread = space.spread()
    numeric = space.numeric
    cost = float(np.abs((after[numeric] - before[numeric]) / spread[numeric]).sum())
    for column in range(len(space.columns)):
        if space.is_categorical(column):
            features = space.features_of(column)
            cost += float(not np.array_equal(before[features], after[features]))
    return cost


def _single_column(
    run: Callable[[np.ndarray], np.ndarray], space: ColumnSpace, row: np.ndarray, allowed: list[int], reached: Success
) -> np.ndarray | None:
    """The cheapest row that differs from `row` in one allowed column and reaches the goal, or None."""
    low, high = space.low_high()
    best, best_cost = None, np.inf
    for column in allowed:
        features = space.features_of(column)
        if space.is_categorical(column):
            candidates = np.repeat(row[None, :], len(features), axis=0)
            candidates[:, features] = np.eye(len(features))
        else:
            j = features[0]
            candidates = np.repeat(row[None, :], GRID, axis=0)
            candidates[:, j] = np.linspace(low[j], high[j], GRID)
        hits = candidates[reached(run(candidates))]
        if not len(hits):
            continue
        costs = [_cost(space, row, hit) for hit in hits]
        hit = hits[int(np.argmin(costs))]
        if not space.is_categorical(column):
            hit = _bisect(run, row, hit, reached)
        cost = _cost(space, row, hit)
        if 0 < cost < best_cost:
            best, best_cost = hit, cost
    return best


def _column_values(space: ColumnSpace, column: int, n: int) -> np.ndarray:
    """The values a column's features may take in a grid search: each category, or n values over the range."""
    features = space.features_of(column)
    if space.is_categorical(column):
        return np.eye(len(features))
    low, high = space.low_high()
    return np.linspace(low[features[0]], high[features[0]], n)[:, None]


def _two_columns(
    run: Callable[[np.ndarray], np.ndarray],
    space: ColumnSpace,
    row: np.ndarray,
    allowed: list[int],
    reached: Success,
    score: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray | None:
    """The cheapest row that differs from `row` in two allowed columns and reaches the goal, or None; the pairs
    are those of the `PAIR_COLUMNS` columns whose values alone move `score` (the margin) most towards the goal."""
    base = float(score(run(row[None, :]))[0])

    def gain(column: int) -> float:
        candidates = np.repeat(row[None, :], len(_column_values(space, column, GRID)), axis=0)
        candidates[:, space.features_of(column)] = _column_values(space, column, GRID)
        return float(score(run(candidates)).max()) - base

    ranked = sorted(allowed, key=gain, reverse=True)[:PAIR_COLUMNS]
    best, best_cost = None, np.inf
    for i, a in enumerate(ranked):
        for b in ranked[i + 1 :]:
            values_a, values_b = _column_values(space, a, PAIR_GRID), _column_values(space, b, PAIR_GRID)
            candidates = np.repeat(row[None, :], len(values_a) * len(values_b), axis=0)
            candidates[:, space.features_of(a)] = np.repeat(values_a, len(values_b), axis=0)
            candidates[:, space.features_of(b)] = np.tile(values_b, (len(values_a), 1))
            hits = candidates[reached(run(candidates))]
            if not len(hits):
                continue
            hit = _shrink(run, space, row, hits[int(np.argmin([_cost(space, row, h) for h in hits]))], (a, b), reached)
            cost = _cost(space, row, hit)
            if 0 < cost < best_cost:
                best, best_cost = hit, cost
    return best


def _shrink(
    run: Callable[[np.ndarray], np.ndarray],
    space: ColumnSpace,
    row: np.ndarray,
    hit: np.ndarray,
    columns: tuple[int, ...],
    reached: Success,
) -> np.ndarray:
    """`hit` with each numeric column of `columns` in turn moved back towards `row`'s value while the goal holds."""
    for column in columns:
        if space.is_categorical(column):
            continue
        start = hit.copy()
        start[space.features_of(column)] = row[space.features_of(column)]
        hit = _bisect(run, start, hit, reached)
    return hit


def _bisect(run: Callable[[np.ndarray], np.ndarray], row: np.ndarray, hit: np.ndarray, reached: Success) -> np.ndarray:
    """The point on the segment from `row` to `hit` nearest `row` that still reaches the goal (bisection)."""
    inside, outside = 1.0, 0.0
    for _ in range(_BISECTIONS):
        middle = 0.5 * (inside + outside)
        if reached(run((row + middle * (hit - row))[None, :]))[0]:
            inside = middle
        else:
            outside = middle
    return row + inside * (hit - row)


def _gradient_search(
    module: nn.Module,
    space: ColumnSpace,
    row: np.ndarray,
    allowed: list[int],
    margin: Callable[[torch.Tensor], torch.Tensor],
    reached: Success,
) -> np.ndarray | None:
    """Every allowed column moved at once by gradient steps on a hinge of `margin` plus an L1 penalty."""
    relaxed = RelaxedRow(space, row[None, :], allowed)
    spread = torch.as_tensor(space.spread())
    origin = torch.as_tensor(row)[None, :]
    optimizer = torch.optim.Adam(relaxed.parameters(), lr=0.05)
    for step in range(_STEPS):
        optimizer.zero_grad()
        x = relaxed.rows()
        loss = torch.relu(0.5 - margin(module(x.float()).double())).sum() + _L1 * (((x - origin) / spread).abs()).sum()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            projected = relaxed.projected()
            with torch.no_grad():
                if reached(module(torch.as_tensor(projected, dtype=torch.float32)).double().numpy())[0]:
                    return projected[0]
    return None


def _undo_unneeded(
    run: Callable[[np.ndarray], np.ndarray], space: ColumnSpace, row: np.ndarray, found: np.ndarray, reached: Success
) -> np.ndarray:
    """`found` with each changed column put back to `row`'s value, smallest change first, while the goal holds."""
    spread = space.spread()
    changed = [
        c for c in range(len(space.columns)) if not np.allclose(row[space.features_of(c)], found[space.features_of(c)])
    ]
    changed.sort(key=lambda c: float(np.abs((found - row)[space.features_of(c)] / spread[space.features_of(c)]).sum()))
    for column in changed:
        trial = found.copy()
        trial[space.features_of(column)] = row[space.features_of(column)]
        if reached(run(trial[None, :]))[0]:
            found = trial
    return found


def counterfactual(
    module: nn.Module,
    program: nn.Module | None,
    space: ColumnSpace,
    row: np.ndarray,
    allowed: list[int],
    *,
    reached: Success,
    margin: Callable[[torch.Tensor], torch.Tensor],
) -> dict[str, Any]:
    """The smallest change of encoded `row` over the `allowed` columns whose output satisfies `reached`.

    Args:
        module: The model (encoded rows in, the exported program's outputs out), differentiable.
        program: The exported program (`torch.export`) that checks the result; None: `module` checks it.
        reached: Whether outputs (m, ...) reach the goal, per row.
        margin: A differentiable measure of outputs that is > 0 where the goal is reached.

    Returns:
        JSON-safe: found, verified (by the program's forward pass), the changes in user units, their count and
        cost in training standard deviations, and the searched row after the change.
    """

    def run(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(rows, dtype=torch.float32)).double().numpy()

    def score(outputs: np.ndarray) -> np.ndarray:
        return margin(torch.as_tensor(outputs)).numpy()

    found, how = _single_column(run, space, row, allowed, reached), "one column"
    if found is None:
        found, how = _two_columns(run, space, row, allowed, reached, score), "two columns"
    if found is None:
        found, how = _gradient_search(module, space, row, allowed, margin, reached), "gradient search"
        if found is not None:
            found = _undo_unneeded(run, space, row, found, reached)
    if found is None:
        return {"found": False, "verified": False, "search": "one column, two, then gradient search", "changes": {}}
    checker = program if program is not None else module
    with torch.no_grad():
        verified = bool(reached(checker(torch.as_tensor(found[None, :], dtype=torch.float32)).double().numpy())[0])
    changes = space.changes(row, found)
    return {
        "found": True,
        "verified": verified,
        "search": how,
        "changes": changes,
        "n_changed": len(changes),
        "cost_sd": _cost(space, row, found),
        "row": space.in_user_units(found),
        "encoded": found,
    }
