"""Export a trial's network as a folder that loads without archsearch (torch.export) or with it."""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FixedTrial, TrialState

import archsearch
from archsearch.config import SearchConfig
from archsearch.pool import train_settings
from archsearch.spaces import Architecture
from archsearch.storage import default_artifact_dir, keys, download_weights, make_storage, open_artifact_store, open_study
from archsearch.trainers import ExportError
from archsearch.trainers.data import PreparedData, Preprocessing, load_data

__all__ = ["ExportError", "export_best", "load_model"]


def _pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    if number is None:
        try:
            best = study.best_trial
        except ValueError as e:
            raise ExportError(f"Study {study.study_name!r} has no completed trial to export yet.") from e
        # Among trials that tie the best, the smallest network is the knee and the better export.
        tied = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value == best.value]
        smallest = min(tied, key=lambda t: (t.user_attrs.get(keys.N_PARAMS, math.inf), t.number))
        if smallest.number != best.number:
            print(
                f"[archsearch] {len(tied)} trials tie for the best value ({best.value:.4f}): exporting the "
                f"smallest, trial {smallest.number} ({smallest.user_attrs[keys.N_PARAMS]:,} parameters); "
                f"pass --trial {best.number} for the other.",
                file=sys.stderr,
            )
        return smallest
    trials = study.get_trials(deepcopy=False)
    matching = [t for t in trials if t.number == number]
    if not matching:
        raise ExportError(
            f"The 'trial' parameter must be a trial number of study {study.study_name!r} (0 to {len(trials) - 1}). "
            f"Got {number} instead."
        )
    trial = matching[0]
    if trial.state != TrialState.COMPLETE:
        reason = trial.user_attrs.get("pruned_reason") or trial.user_attrs.get("fail_reason") or ""
        raise ExportError(
            f"Trial {number} of study {study.study_name!r} is {trial.state.name}"
            + (f" ({reason})" if reason else "")
            + "; only COMPLETE trials can be exported. Leave out --trial to export the best one."
        )
    return trial


def _retrain(
    config: SearchConfig, trial: optuna.trial.FrozenTrial, metric: str, stored_preprocessing: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    from archsearch.trainers import train_mlp

    data = load_data(config.data)
    if data.preprocessing.to_dict() != stored_preprocessing:
        raise ExportError(
            f"The data of study {config.study.name!r} changed since the search (its preprocessing statistics differ), "
            "so a retrained network would not match them. Export without --retrain, or search again."
        )
    candidate = config.space.sample(FixedTrial(trial.params, trial.number))
    # Train on train + validation for the epoch count that early stopping chose; the preprocessing
    # statistics stay those of the training split, so the stored preprocessing remains valid.
    merged: PreparedData = dataclasses.replace(
        data,
        x_train=np.concatenate([data.x_train, data.x_val]),
        y_train=np.concatenate([data.y_train, data.y_val]),
    )
    settings = train_settings(
        config,
        metric,
        candidate.hyperparameters.to_dict(),
        seed=int(trial.user_attrs.get("seed", 0)),
        epochs=max(int(trial.user_attrs.get("best_epoch") or config.train.epochs), 1),
        patience=None,
        # The validation rows are training rows now: choosing the "best" epoch on them would be fitting to them.
        keep_last=True,
    )
    arch = candidate.architecture
    result = train_mlp(
        arch.widths,
        arch.dropouts,
        arch.activation,
        merged,
        settings,
        embedding=arch.embedding,
        embedding_dim=arch.embedding_dim,
    )
    if result.status != "completed":
        raise ExportError(f"Retraining trial {trial.number} did not complete: {result.reason}.")
    # Only the test split is still unseen; train and validation metrics would be measured on training rows.
    return result.state_dict, {k: v for k, v in result.metrics.items() if k.startswith("test_")}


def export_best(
    storage: str,
    study_name: str,
    out: str | Path,
    *,
    trial: int | None = None,
    retrain: bool = False,
    artifacts: str | Path | None = None,
) -> Path:
    """Write `architecture.json`, `model.pt` and `model.pt2` for the best (or a given) completed trial.

    Args:
        storage: The study's storage URL.
        study_name: The study's name.
        out: Folder to write (created; existing files in it are overwritten).
        trial: Trial number; default: the best trial, the smallest network among trials that tie for best.
        retrain: Train the architecture again on train + validation with the trial's hyperparameters.
        artifacts: Folder of the trials' weights, when the study's config does not say where it is.

    Returns:
        The export folder.

    Example:
        >>> export_best("sqlite:///archsearch.db", "digits", "digits-model")
        >>> model = archsearch.load_model("digits-model")
    """
    from archsearch.trainers import export_model
    from archsearch.trainers import WeightsError, load_weights, weights_mismatch

    study = open_study(make_storage(storage, must_exist=True), study_name, url=storage)
    if keys.CONFIG not in study.user_attrs:
        raise ExportError(f"Study {study_name!r} was not created by archsearch (it has no {keys.CONFIG!r} attribute).")
    config = SearchConfig.from_stored(study.user_attrs[keys.CONFIG])
    metric = study.user_attrs["metric"]
    chosen = _pick_trial(study, trial)
    preprocessing = Preprocessing.from_dict(study.user_attrs["preprocessing"])
    metrics = {k: v for k, v in chosen.user_attrs.items() if k.split("_", 1)[0] in ("train", "val", "test") and k != "train_seconds"}
    if retrain:
        state_dict, retrained_metrics = _retrain(config, chosen, metric, study.user_attrs["preprocessing"])
        metrics = {**metrics, **{f"retrained_{k}": v for k, v in retrained_metrics.items()}}
    else:
        if keys.WEIGHTS not in chosen.user_attrs:
            raise ExportError(f"Trial {chosen.number} has no stored weights; export it with --retrain.")
        artifact_dir = Path(artifacts or config.study.artifacts or default_artifact_dir(storage))
        store = open_artifact_store(artifact_dir)
        with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
            try:
                weights_path = download_weights(store, chosen.user_attrs[keys.WEIGHTS], scratch)
            except FileNotFoundError as e:
                raise ExportError(
                    f"The weights of trial {chosen.number} are not in {str(artifact_dir)!r} (removed by keep_best_k, "
                    "or the artifacts folder is elsewhere: pass --artifacts DIR). Export with --retrain to train it again."
                ) from e
            try:
                state_dict = load_weights(weights_path)
            except WeightsError as e:
                raise ExportError(f"The stored weights of trial {chosen.number} cannot be read: {e}. Export it with --retrain.") from e
        n_outputs = 1 if preprocessing.classes is None else len(preprocessing.classes)
        mismatch = weights_mismatch(state_dict, len(preprocessing.mean), chosen.user_attrs["widths"], n_outputs)
        if mismatch is not None:
            raise ExportError(
                f"The stored weights of trial {chosen.number} do not fit study {study_name!r}: {mismatch}. The trial "
                "was trained on data other than the study's (the data changed between runs); export another trial "
                "with --trial N."
            )
    # Norm layers hold weights of their own; replaying the trial's params says which it had.
    normalization = config.space.sample(FixedTrial(chosen.params, chosen.number)).hyperparameters.normalization
    metadata = {
        "study": study_name,
        "trial": chosen.number,
        "metric": metric,
        "value": chosen.value,
        "metrics": metrics,
        "params": chosen.params,
        "retrained": retrain,
        "archsearch_version": archsearch.__version__,
    }
    # Trials stored before embeddings existed have no embedding attributes: Architecture reads them as none.
    architecture = Architecture.from_attrs(chosen.user_attrs)
    return export_model(
        out,
        widths=architecture.widths,
        dropouts=architecture.dropouts,
        activation=architecture.activation,
        embedding=architecture.embedding,
        embedding_dim=architecture.embedding_dim,
        state_dict=state_dict,
        preprocessing=preprocessing,
        metadata=metadata,
        normalization=normalization,
    )


def load_model(path: str | Path):
    """Load an exported folder as a predictor of raw rows (labels, probabilities or values)."""
    from archsearch.trainers import load_model as _load

    return _load(path)
