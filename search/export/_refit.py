"""Training the networks that `export` ships: a refit on train + validation rows, or another seed of a trial.

A refit trains the trial's architecture and hyperparameters on every row but the test split, for a fixed
number of epochs (there is no validation split left to stop on): the epochs early stopping chose in the
search (`best_epoch`, with [data] folds the mean over folds), kept as they are. With more rows each epoch
has more optimizer steps, so the step count grows with the data. The alternative, the same number of
steps (fewer epochs over the larger set), measured worse or no better; see README, "Export".
"""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna

from archsearch.config import SearchConfig
from archsearch.pool import train_settings
from archsearch.spaces import NetSpec
from archsearch.trainers.data import PreparedData

__all__ = ["REFIT_COOLDOWN", "refit_cooldown", "train_member"]

# A refit keeps its last epoch (no validation split is left to pick one), so a constant learning rate
# would ship a noisy point of its trajectory; the refit of such a trial lets its lr fall linearly to 0 over
# this last fraction of its steps. Schedules that already end at 0 (cosine, onecycle) are left as they are.
# Measured: benchmarks/refit_cooldown.py, BENCHMARKS.md section 6 (better than a constant lr on 16 of 20
# table-seed pairs; diamonds -7.4% RMSE, computers -4.4%, phoneme +1.1 points).
REFIT_COOLDOWN = 0.2


def refit_cooldown(lr_schedule: str) -> float:
    """The `cooldown` a refit of a trial with this `lr_schedule` trains with (see REFIT_COOLDOWN).

    >>> refit_cooldown("constant"), refit_cooldown("cosine")
    (0.2, 0.0)
    """
    return REFIT_COOLDOWN if lr_schedule == "constant" else 0.0


def train_member(
    config: SearchConfig,
    metric: str,
    trial: optuna.trial.FrozenTrial,
    data: PreparedData,
    *,
    seed: int,
    epochs: int | None,
) -> Any:
    """Train the trial's architecture with its hyperparameters on `data`; returns the `TrainResult`.

    Args:
        seed: The training seed (the trial's own seed reproduces the trial on CPU).
        epochs: A refit: exactly this many epochs, keeping the last (the validation rows are training
            rows then). None: the search's own training, early stopping on `data`'s validation split.
    """
    from archsearch.trainers import train_mlp

    # The architecture as the trial stored it; the training hyperparameters replayed from its params.
    hyperparameters = config.space.replay(trial.params, trial.number).hyperparameters
    overrides: dict[str, Any] = {} if epochs is None else {"epochs": epochs, "patience": None, "keep_last": True}
    settings = train_settings(config, metric, hyperparameters.to_dict(), seed=seed, **overrides)
    if epochs is not None:
        settings = dataclasses.replace(settings, cooldown=refit_cooldown(settings.lr_schedule))
    return train_mlp(NetSpec.from_trial(trial.user_attrs, trial.params), data, settings)
