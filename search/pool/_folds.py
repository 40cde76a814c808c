"""k-fold cross-validation of one candidate: the trial's value is the mean over folds of train + validation.

The folds train one after another, each with the study's early stopping on its own validation part.
After fold i the trial reports the running mean of the i completed folds at step i, so the study's pruner
compares a trial with the others on the same folds (the fold assignment is seeded, hence equal across
trials) and can stop it at any fold boundary. Epochs inside a fold are not reported: a step is a fold.
The test split is in no fold (`load_folds`), so a trial's `test_<m>` is the mean over its folds' models
of a metric on rows that none of them saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from archsearch.spaces import NetSpec
from archsearch.storage import keys
from archsearch.trainers.data import PreparedData

__all__ = ["FoldsResult", "train_folds"]


@dataclass
class FoldsResult:
    """What training every fold produced; the fields a trial records mean what `TrainResult`'s do.

    `best_value` and `metrics` are means over the folds; `best_epoch` is the mean best epoch, rounded
    (what a refit on all train + validation rows trains for); `state_dict` is the first fold's model.
    """

    status: Literal["completed", "pruned", "diverged"]
    reason: str | None
    epochs_run: int  # over all folds
    best_epoch: int | None
    best_value: float | None
    metrics: dict[str, float]
    train_seconds: float
    device: str
    state_dict: Any
    fold_values: list[float]
    fold_best_epochs: list[int]

    def fold_attrs(self) -> dict[str, list]:
        """The per-fold values and best epochs, as trial user attributes."""
        return {keys.FOLD_VALUES: self.fold_values, keys.FOLD_BEST_EPOCHS: self.fold_best_epochs}


def train_folds(
    net: NetSpec,
    folds: Sequence[PreparedData],
    settings: Any,
    report: Callable[[int, float], bool | str] | None = None,
    epoch_report: Callable[[int, float], bool | str] | None = None,
) -> FoldsResult:
    """Train the candidate on each fold in turn; `report(fold, running_mean)` after each fold may stop it.

    Args:
        net: The architecture (`archsearch.spaces.NetSpec`), the same for every fold.
        folds: From `load_folds`, at least two.
        settings: The trainer's `TrainSettings`, used unchanged for every fold.
        report: Called after fold i (from 1) with the mean of the validation values of folds 1..i;
            a True answer before the last fold stops the run with status "pruned" (a string answer
            likewise, with that string as the reason).
        epoch_report: `train_mlp`'s report for every epoch of every fold (e.g. the search's time check).
    """
    from archsearch.trainers import train_mlp

    results = []
    status, reason = "completed", None
    for index, fold in enumerate(folds, start=1):
        result = train_mlp(net, fold, settings, epoch_report)
        if result.status != "completed":
            status, reason = result.status, f"fold {index} of {len(folds)}: {result.reason}"
            break
        results.append(result)
        running = float(np.mean([r.best_value for r in results]))
        # A run that finished every fold is complete: its mean is worth keeping even when it is poor.
        stop = report(index, running) if report is not None else False
        if stop and index < len(folds):
            status = "pruned"
            reason = stop if isinstance(stop, str) else f"pruned by the pruner after fold {index} of {len(folds)}"
            break
    keys = results[0].metrics.keys() if results else ()
    return FoldsResult(
        status=status,
        reason=reason,
        epochs_run=sum(r.epochs_run for r in results),
        best_epoch=round(float(np.mean([r.best_epoch for r in results]))) if results else None,
        best_value=float(np.mean([r.best_value for r in results])) if results else None,
        metrics={key: float(np.mean([r.metrics[key] for r in results])) for key in keys},
        train_seconds=sum(r.train_seconds for r in results),
        device=results[0].device if results else str(settings.device),
        state_dict=results[0].state_dict if results else None,
        fold_values=[float(r.best_value) for r in results],
        fold_best_epochs=[int(r.best_epoch) for r in results],
    )
