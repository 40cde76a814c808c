"""What `archsearch explain` asks of an exported model: attributions per column, their stability over the
ensemble's members, prototypes and counterfactuals, as JSON-safe dicts (no torch types)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.trainers import PROGRAM_FILE, ExportError, Predictor, decision_scores
from archsearch.trainers.explain._attributions import (
    IG_STEPS,
    PERMUTATION_REPEATS,
    integrated_gradients,
    metric_of,
    permutation_drops,
    rank_agreement,
)
from archsearch.trainers.explain._counterfactuals import counterfactual
from archsearch.trainers.explain._inputs import ColumnSpace
from archsearch.trainers.explain._prototypes import prototype
from archsearch.trainers.explain._relaxed import one_thread

__all__ = ["BASELINE_RULE", "attributions", "counterfactual_of", "load_program", "members_of", "prototype_of"]

BASELINE_RULE = (
    "the training rows' mean: numeric columns at their training mean, categorical columns at their categories' "
    "training frequencies"
)


def members_of(predictor: Predictor) -> list[nn.Module]:
    """The networks of the model, as the export deploys each one (one for a single network)."""
    module = predictor._module
    return list(module.members) if predictor.architecture.get("kind") == "ensemble" else [module]


def load_program(folder: str | Path) -> nn.Module:
    """The exported folder's `model.pt2` program, as a module, for the forward passes that check results."""
    path = Path(folder) / PROGRAM_FILE
    if not path.is_file():
        raise ExportError(f"'{path}' is missing; explain checks its results with the exported program.")
    return torch.export.load(path).module()


def _by_column(columns: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {column: float(value) for column, value in zip(columns, values)}


def _importance(ig: np.ndarray, chosen: np.ndarray | None) -> np.ndarray:
    """Mean |attribution| per column: of each row's chosen class (classification), or of the prediction."""
    per_row = ig[0] if chosen is None else ig[chosen, np.arange(ig.shape[1])]  # (n, n_columns)
    return np.abs(per_row).mean(axis=0)


def attributions(
    predictor: Predictor,
    space: ColumnSpace,
    encoded: np.ndarray,
    targets: np.ndarray,
    metric: str,
    *,
    steps: int = IG_STEPS,
    repeats: int = PERMUTATION_REPEATS,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Integrated Gradients and permutation importance of the model on `encoded` rows, per user column, and the
    rank agreement of each over the ensemble's members and between the two methods.

    Args:
        targets: The rows' class indices, or their targets in the target's units (regression).
    """
    classes = predictor.classes
    n_classes = None if classes is None else len(classes)
    columns, groups, n_columns = space.columns, space.groups, len(space.columns)
    baseline = space.baseline()
    measure = metric_of(metric, targets, predictor.calibration, classes is None)
    members = members_of(predictor)
    with torch.no_grad():
        outputs = predictor._module(torch.as_tensor(encoded, dtype=torch.float32)).double().numpy()
    chosen = None if classes is None else decision_scores(outputs, predictor.calibration).argmax(axis=1)
    progress(f"Integrated Gradients on {len(encoded)} rows, {steps} steps, {n_classes or 1} output(s)")
    ig = integrated_gradients(predictor._module, encoded, baseline, groups, n_columns, n_classes=n_classes, steps=steps)
    progress(f"permutation importance: {n_columns} columns x {repeats} repeats")
    value, drops = permutation_drops(
        predictor._module, encoded, groups, n_columns, metric, measure, repeats=repeats, seed=seed
    )
    importance = _importance(ig, chosen)
    result: dict[str, Any] = {
        "n_rows": len(encoded),
        "integrated_gradients": {
            "baseline": BASELINE_RULE,
            "baseline_row": space.in_user_units(baseline),
            "steps": steps,
            "output": "the prediction" if classes is None else "the log-probability of each class",
            "importance": _by_column(columns, importance),
            "importance_rule": "mean |attribution| over the rows"
            + ("" if classes is None else ", of each row's predicted class"),
        },
        "permutation": {
            "metric": metric,
            "value": value,
            "repeats": repeats,
            "drop": _by_column(columns, drops.mean(axis=0)),
            "drop_sd": _by_column(columns, drops.std(axis=0, ddof=1) if repeats > 1 else np.zeros(n_columns)),
        },
        "ig_vs_permutation": rank_agreement([importance, drops.mean(axis=0)]).to_dict(),
    }
    if classes is not None:
        result["integrated_gradients"]["per_class"] = {
            str(label): _by_column(columns, ig[k].mean(axis=0)) for k, label in enumerate(classes)
        }
    if len(members) > 1:
        progress(f"stability over the {len(members)} ensemble members")
        result["members"] = _member_stability(
            members, space, encoded, baseline, chosen, n_classes, metric, measure, steps, seed
        )
    return result


def _member_stability(
    members: list[nn.Module],
    space: ColumnSpace,
    encoded: np.ndarray,
    baseline: np.ndarray,
    chosen: np.ndarray | None,
    n_classes: int | None,
    metric: str,
    measure: Callable[[np.ndarray], float],
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """Each member's importances (of the ensemble's decision) and their rank agreement across members."""
    columns, n_columns = space.columns, len(space.columns)
    ig_importances, drops = [], []
    for member in members:
        ig = integrated_gradients(member, encoded, baseline, space.groups, n_columns, n_classes=n_classes, steps=steps)
        ig_importances.append(_importance(ig, chosen))
        drops.append(
            permutation_drops(member, encoded, space.groups, n_columns, metric, measure, repeats=1, seed=seed)[1][0]
        )
    ranks = np.array([np.argsort(np.argsort(-v)) + 1 for v in ig_importances])  # (members, n_columns), 1 = top
    return {
        "n": len(members),
        "integrated_gradients": rank_agreement(ig_importances).to_dict(),
        "permutation": rank_agreement(drops).to_dict(),
        "ig_rank_range": {c: [int(ranks[:, i].min()), int(ranks[:, i].max())] for i, c in enumerate(columns)},
    }


def prototype_of(predictor: Predictor, space: ColumnSpace, **target: Any) -> dict[str, Any]:
    """`prototype` of the model (keyword `target_class` or `target_value`)."""
    with one_thread():
        return prototype(predictor._module, space, **target)


def counterfactual_of(
    predictor: Predictor,
    program: nn.Module | None,
    space: ColumnSpace,
    row: np.ndarray,
    allowed: list[int],
    *,
    target_class: int | None = None,
    delta: float | None = None,
) -> dict[str, Any]:
    """The counterfactual of encoded `row`: to `target_class` (default: any class but its own), or for a
    regression to a prediction moved by `delta` (at least that far, in its direction)."""
    module = predictor._module
    with torch.no_grad():
        start = module(torch.as_tensor(row[None, :], dtype=torch.float32)).double().numpy()
    if predictor.classes is None:
        goal = float(start[0]) + float(delta)
        sign = 1.0 if delta >= 0 else -1.0
        with one_thread():
            result = counterfactual(
                module,
                program,
                space,
                row,
                allowed,
                reached=lambda out: sign * (np.asarray(out).reshape(-1) - goal) >= 0,
                margin=lambda out: sign * (out.reshape(-1) - goal) / (abs(delta) or 1.0),
            )
        return result | {"prediction": float(start[0]), "goal": goal}
    offsets = torch.zeros(len(predictor.classes), dtype=torch.float64)
    if predictor.calibration is not None:
        offsets = torch.as_tensor(predictor.calibration.log_offsets, dtype=torch.float64)
    own = int(decision_scores(start, predictor.calibration).argmax(axis=1)[0])

    def reached(out: np.ndarray) -> np.ndarray:
        decided = decision_scores(np.asarray(out), predictor.calibration).argmax(axis=1)
        return decided != own if target_class is None else decided == target_class

    def margin(out: torch.Tensor) -> torch.Tensor:
        scores = out - offsets
        goal = own if target_class is None else target_class
        rest = scores.masked_fill(torch.arange(scores.shape[1]) == goal, -torch.inf).max(1).values
        return rest - scores[:, own] if target_class is None else scores[:, goal] - rest

    with one_thread():
        result = counterfactual(module, program, space, row, allowed, reached=reached, margin=margin)
    if result["found"]:
        with torch.no_grad():
            after = module(torch.as_tensor(result["encoded"][None, :], dtype=torch.float32)).double().numpy()
        result["to_class"] = str(
            predictor.classes[int(decision_scores(after, predictor.calibration).argmax(axis=1)[0])]
        )
    return result | {"from_class": str(predictor.classes[own])}
