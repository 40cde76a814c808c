"""The networks an export ships (`Member`s): the rows they train on, their stored or trained weights."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from archsearch.config import SearchConfig
from archsearch.export._plan import ExportPlan
from archsearch.export._refit import refit_cooldown, train_member
from archsearch.pool import refit_epochs
from archsearch.spaces import NetSpec
from archsearch.storage import (
    default_artifact_dir,
    download_weights,
    keys,
    open_artifact_store,
    quality_value,
    stored_value,
)
from archsearch.trainers import ExportError
from archsearch.trainers.data import PreparedData, Preprocessing, load_data, load_folds, load_refit_data

__all__ = ["artifact_dir", "calibration_for", "clamped", "member_of", "search_data", "stored_weights", "train_members"]


def artifact_dir(plan: ExportPlan) -> Path:
    """Where the search stored its weights: --artifacts, else the study's [study] artifacts, else the default."""
    return Path(plan.artifacts or plan.config.study.artifacts or default_artifact_dir(plan.storage))


def search_data(config: SearchConfig, stored_preprocessing: dict[str, Any], *, refit: bool) -> PreparedData:
    """The rows a member trains on: train + validation (refit), or those the search trained it on."""
    data = load_data(config.data)
    if data.preprocessing.to_dict() != stored_preprocessing:
        raise ExportError(
            f"The data of study {config.study.name!r} changed since the search (its preprocessing statistics differ), "
            "so networks trained now would not match its trials. Export with --no-refit, or search again."
        )
    if refit:
        return load_refit_data(config.data)
    # With folds every stored network is its trial's first-fold model, trained on that fold's rows.
    return load_folds(config.data)[0] if config.data.folds else data


def clamped(data: PreparedData, clamp: bool) -> PreparedData:
    """`data` whose preprocessing clamps regression predictions to the range of its training targets.

    The exported program then never predicts beyond the targets its network trained on (RealMLP clamps
    the same way); the greedy selection's validation predictions are clamped as the shipped ones will be.
    """
    preprocessing = data.preprocessing
    if not clamp or preprocessing.task != "regression":
        return data
    y = np.asarray(data.y_train, dtype=np.float64) * preprocessing.target_scale + preprocessing.target_mean
    clamping = dataclasses.replace(preprocessing, target_range=(float(y.min()), float(y.max())))
    return dataclasses.replace(data, preprocessing=clamping)


def class_weighted(plan: ExportPlan) -> bool:
    """Whether the search trained with class weights: its probabilities then need the calibration."""
    task = plan.study.user_attrs[keys.TASK]
    return task == "classification" and plan.config.train.resolved_class_weight(plan.metric) == "balanced"


def calibration_for(plan: ExportPlan, data: PreparedData, members: list[Any]) -> Any:
    """The correction of class-weighted members' probabilities to the class frequencies of `data`'s training
    rows, with each member's biases fitted on those rows (None when the search trained without class weights)."""
    from archsearch.trainers import fit_calibration

    if data.task != "classification" or not class_weighted(plan):
        return None
    return fit_calibration(members, data)


def stored_weights(plan: ExportPlan, trial: FrozenTrial) -> dict:
    """The weights the search stored for `trial`, checked against the study's architecture."""
    from archsearch.trainers import WeightsError, load_weights, weights_mismatch

    if keys.WEIGHTS not in trial.user_attrs:
        raise ExportError(f"Trial {trial.number} has no stored weights; export it without --no-refit.")
    folder = artifact_dir(plan)
    if not folder.is_dir():  # opening the store would create it empty
        raise ExportError(
            f"The weights of trial {trial.number} are not in {str(folder)!r}, which does not exist (the "
            "artifacts folder is elsewhere: pass --artifacts DIR). Export without --no-refit to train it again."
        )
    store = open_artifact_store(folder)
    with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
        try:
            path = download_weights(store, trial.user_attrs[keys.WEIGHTS], scratch)
        except FileNotFoundError as e:
            raise ExportError(
                f"The weights of trial {trial.number} are not in {str(folder)!r} (removed by keep_best_k, "
                "or the artifacts folder is elsewhere: pass --artifacts DIR). Export without --no-refit to train it again."
            ) from e
        try:
            state_dict = load_weights(path)
        except WeightsError as e:
            raise ExportError(
                f"The stored weights of trial {trial.number} cannot be read: {e}. Export without --no-refit to train it again."
            ) from e
    preprocessing = Preprocessing.from_dict(stored_value(plan.study.user_attrs, keys.PREPROCESSING))
    n_outputs = 1 if preprocessing.classes is None else len(preprocessing.classes)
    net = NetSpec.from_trial(trial.user_attrs, trial.params)
    n_inputs = len(preprocessing.mean)
    if plan.config.data.folds:
        # The stored network is the first fold's, whose encoding is narrower when a category is missing from its rows.
        n_inputs = load_folds(plan.config.data)[0].n_features
    if net.embedding == "none":  # an embedding's own weights have shapes of its own; the rest is checked
        mismatch = weights_mismatch(state_dict, n_inputs, net.widths, n_outputs)
        if mismatch is not None:
            raise ExportError(
                f"The stored weights of trial {trial.number} do not fit study {plan.study.study_name!r}: {mismatch}. "
                "The trial was trained on data other than the study's (the data changed between runs); export another "
                "trial with --trial N."
            )
    return state_dict


def train_members(
    plan: ExportPlan, members: list[tuple[FrozenTrial, int]], data: PreparedData | None, *, refit: bool, n_fit: int
) -> list[Any]:
    """Each (trial, seed) member with its weights: refit, stored, or trained like the search.

    Args:
        n_fit: Rows each network of the search trained on (`fit_rows`).
    """
    trained = []
    for trial, seed in members:
        epochs = None
        if refit:
            epochs = refit_epochs(
                trial.user_attrs.get(keys.BEST_EPOCH), n_fit, len(data.y_train), fallback=plan.config.train.epochs
            )
        if not refit and seed == int(trial.user_attrs.get(keys.SEED, 0)):
            state_dict = stored_weights(plan, trial)
        else:
            result = train_member(plan.config, plan.metric, trial, data, seed=seed, epochs=epochs)
            if result.status != "completed":
                raise ExportError(f"Training trial {trial.number} with seed {seed} did not complete: {result.reason}.")
            state_dict = result.state_dict
        trained.append(member_of(plan.config, trial, seed, epochs, state_dict))
    return trained


def member_of(config: SearchConfig, trial: FrozenTrial, seed: int, epochs: int | None, state_dict: dict) -> Any:
    """The `archsearch.trainers.Member` of one trained network, with what `architecture.json` records of it."""
    from archsearch.trainers import Member

    hyperparameters = config.space.replay(trial.params, trial.number).hyperparameters
    record = {
        "trial": trial.number,
        "seed": seed,
        "value": quality_value(trial),
        "epochs": epochs,
        "cooldown": refit_cooldown(hyperparameters.lr_schedule) if epochs is not None else 0.0,
    }
    return Member(NetSpec.from_trial(trial.user_attrs, trial.params), state_dict, record=record)
