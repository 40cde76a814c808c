"""Prototypes: what a class (or a regression value) looks like to the network, by gradient ascent on the input.

The ascent maximizes the class's log-probability (regression: minus the absolute distance to the value, in
standard deviations of the training predictions) less a proximity penalty, `PENALTY` times the mean squared
distance, in training standard deviations, of the numeric features from the class's training mean; numeric
features stay inside the training range (`RelaxedRow`), one-hot groups are relaxed and projected back to one
category, after which the numeric features ascend again with those categories fixed. It starts from the
class's training mean and from its most confident training rows, and keeps the start whose projected
prototype the network is most confident of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.trainers.explain._inputs import ColumnSpace
from archsearch.trainers.explain._relaxed import RelaxedRow

__all__ = ["PENALTY", "prototype"]

PENALTY = 0.05
STEPS = 150
LEARNING_RATE = 0.1
_CONFIDENT_STARTS = 2


def _starts(space: ColumnSpace, scores: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The starting rows: the mean of `members` (relaxed one-hot blocks are the category frequencies) and the
    member rows with the highest `scores`."""
    rows = space.train[members]
    best = members[np.argsort(-scores[members])[:_CONFIDENT_STARTS]]
    return np.vstack([rows.mean(axis=0, keepdims=True), space.train[best]])


def _ascend(objective: Callable[[torch.Tensor], torch.Tensor], relaxed: RelaxedRow, steps: int) -> None:
    optimizer = torch.optim.Adam(relaxed.parameters(), lr=LEARNING_RATE)
    for _ in range(steps):
        optimizer.zero_grad()
        (-objective(relaxed.rows()).sum()).backward()
        optimizer.step()


def prototype(
    module: nn.Module,
    space: ColumnSpace,
    *,
    target_class: int | None = None,
    target_value: float | None = None,
    steps: int = STEPS,
    penalty: float = PENALTY,
) -> dict[str, Any]:
    """The prototype of class `target_class` (classification) or of the prediction `target_value` (regression).

    Returns:
        JSON-safe: the prototype in user units, the network's confidence in the class (or its prediction), the
        nearest training row (its index, distance in training standard deviations, values and label), and the
        rule of the penalty.
    """
    regression = target_class is None
    with torch.no_grad():
        outputs = module(torch.as_tensor(space.train, dtype=torch.float32)).double()
    if regression:
        scores = -((outputs.numpy() - target_value) ** 2)
        members = np.argsort(-scores)[: max(1, len(scores) // 10)]  # rows predicted near the value
    else:
        scores = torch.log_softmax(outputs, dim=1)[:, target_class].numpy()
        members = np.flatnonzero(space.train_labels == target_class)
        if not len(members):  # a class no training row has: start from every row
            members = np.arange(len(space.train))
    centre = torch.as_tensor(space.train[members].mean(axis=0))
    numeric = torch.as_tensor(space.numeric)
    spread = torch.as_tensor(space.spread())[numeric]
    target_scale = (float(np.std(outputs.numpy())) or 1.0) if regression else 1.0

    def objective(x: torch.Tensor) -> torch.Tensor:
        out = module(x.float()).double()
        # Regression: an absolute error, whose pull does not fade near the value as a squared one's would.
        fit = -((out - target_value).abs() / target_scale) if regression else torch.log_softmax(out, 1)[:, target_class]
        distance = (((x[:, numeric] - centre[numeric]) / spread) ** 2).mean(dim=1) if len(numeric) else 0.0
        return fit - penalty * distance

    relaxed = RelaxedRow(space, _starts(space, scores, members))
    _ascend(objective, relaxed, steps)
    # The categories chosen, the numeric columns ascend again: the projection moved the output.
    numeric_columns = [c for c in range(len(space.columns)) if not space.is_categorical(c)]
    relaxed = RelaxedRow(space, relaxed.projected(), numeric_columns)
    _ascend(objective, relaxed, steps // 2)
    candidates = relaxed.projected()
    with torch.no_grad():
        out = module(torch.as_tensor(candidates, dtype=torch.float32)).double()
    if regression:
        values = out.numpy()
        pick = int(np.argmin(np.abs(values - target_value)))
        found = {"target_value": float(target_value), "prediction": float(values[pick])}
    else:
        confidence = torch.softmax(out, dim=1)[:, target_class].numpy()
        pick = int(np.argmax(confidence))
        found = {"confidence": float(confidence[pick])}
    row = candidates[pick]
    low, high = space.low_high()
    distances = space.distances(row[None, :])[0]
    nearest = int(np.argmin(distances))
    return found | {
        "row": space.in_user_units(row),
        "inside_training_range": bool(np.all((row >= low - 1e-9) & (row <= high + 1e-9))),
        "nearest_training_row": {
            "index": nearest,
            "distance_sd": float(distances[nearest]),
            "row": space.in_user_units(space.train[nearest]),
            **({} if space.train_labels is None else {"label_index": int(space.train_labels[nearest])}),
        },
        "penalty": f"{penalty:g} x mean squared distance of the numeric columns from the "
        + ("training rows predicted nearest the value" if regression else "class's training mean")
        + ", in training standard deviations",
        "steps": steps,
    }
