"""Export a trial's network, or an ensemble, as a folder that loads without archsearch (torch.export) or with it."""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

import archsearch
from archsearch._ensemble_selection import greedy_selection
from archsearch._refit import refit_cooldown, train_member
from archsearch.config import SearchConfig
from archsearch.pool import fit_rows, refit_epochs
from archsearch.spaces import Architecture
from archsearch.storage import (
    default_artifact_dir,
    download_weights,
    keys,
    make_storage,
    open_artifact_store,
    open_study,
)
from archsearch.trainers import Calibration, DataError, ExportError
from archsearch.trainers.data import PreparedData, Preprocessing, load_data, load_folds, load_refit_data

__all__ = ["ExportError", "describe_export", "export_best", "load_model"]

GREEDY_CANDIDATES = 50  # best stored trials a greedy ensemble chooses among (each costs one validation pass)


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
        reason = trial.user_attrs.get(keys.PRUNED_REASON) or trial.user_attrs.get(keys.FAIL_REASON) or ""
        raise ExportError(
            f"Trial {number} of study {study.study_name!r} is {trial.state.name}"
            + (f" ({reason})" if reason else "")
            + "; only COMPLETE trials can be exported. Leave out --trial to export the best one."
        )
    return trial


def _best_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if k > len(completed):
        raise ExportError(
            f"The 'ensemble' parameter of export_best must be at most the number of completed trials of study "
            f"{study.study_name!r} ({len(completed)}). Got {k} instead. Use a smaller --ensemble, or --ensemble-seeds K "
            "for K seeds of the best trial."
        )
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(completed, key=lambda t: (-t.value if maximize else t.value, t.number))[:k]


def _check_sizes(ensemble: int | None, ensemble_seeds: int | None, trial: int | None) -> None:
    # ensemble_seeds = 1 is one network: it overrides a study's [export] ensemble_seeds.
    for name, value, least in (("ensemble", ensemble, 2), ("ensemble_seeds", ensemble_seeds, 1)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise ExportError(
                f"The {name!r} parameter of export_best must be an int >= {least} (members). Got {value!r} instead."
            )
    if ensemble is not None and ensemble_seeds is not None:
        raise ExportError(
            "The 'ensemble' and 'ensemble_seeds' parameters of export_best exclude each other: one ensembles the best "
            f"trials, the other seeds of one trial. Got ensemble={ensemble} and ensemble_seeds={ensemble_seeds} instead."
        )
    if ensemble is not None and trial is not None:
        raise ExportError(
            f"The 'trial' parameter of export_best must be None with 'ensemble' (it takes the {ensemble} best trials). "
            f"Got {trial} instead; use --ensemble-seeds for seeds of trial {trial}."
        )


def _search_data(config: SearchConfig, stored_preprocessing: dict[str, Any], *, refit: bool) -> PreparedData:
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


def _clamped(data: PreparedData, clamp: bool) -> PreparedData:
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


def _calibration(
    config: SearchConfig, metric: str, data: PreparedData, members: list[dict[str, Any]]
) -> Calibration | None:
    """The correction of class-weighted members' probabilities to the class frequencies of `data`'s training
    rows, with each member's biases fitted on those rows (none when the search trained without class weights)."""
    from archsearch.trainers import fit_calibration

    if data.task != "classification" or config.train.resolved_class_weight(metric) != "balanced":
        return None
    return fit_calibration([{k: v for k, v in m.items() if k != "weight"} for m in members], data)


def _stored_weights(
    config: SearchConfig,
    storage: str,
    trial: optuna.trial.FrozenTrial,
    artifacts: str | Path | None,
    study: optuna.Study,
) -> dict:
    """The weights the search stored for `trial`, checked against the study's architecture."""
    from archsearch.trainers import WeightsError, load_weights, weights_mismatch

    if keys.WEIGHTS not in trial.user_attrs:
        raise ExportError(f"Trial {trial.number} has no stored weights; export it without --no-refit.")
    artifact_dir = Path(artifacts or config.study.artifacts or default_artifact_dir(storage))
    store = open_artifact_store(artifact_dir)
    with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
        try:
            path = download_weights(store, trial.user_attrs[keys.WEIGHTS], scratch)
        except FileNotFoundError as e:
            raise ExportError(
                f"The weights of trial {trial.number} are not in {str(artifact_dir)!r} (removed by keep_best_k, "
                "or the artifacts folder is elsewhere: pass --artifacts DIR). Export without --no-refit to train it again."
            ) from e
        try:
            state_dict = load_weights(path)
        except WeightsError as e:
            raise ExportError(
                f"The stored weights of trial {trial.number} cannot be read: {e}. Export without --no-refit to train it again."
            ) from e
    preprocessing = Preprocessing.from_dict(study.user_attrs[keys.PREPROCESSING])
    n_outputs = 1 if preprocessing.classes is None else len(preprocessing.classes)
    architecture = Architecture.from_attrs(trial.user_attrs)
    if architecture.embedding == "none":  # an embedding's own weights have shapes of its own; the rest is checked
        mismatch = weights_mismatch(state_dict, len(preprocessing.mean), trial.user_attrs[keys.WIDTHS], n_outputs)
        if mismatch is not None:
            raise ExportError(
                f"The stored weights of trial {trial.number} do not fit study {study.study_name!r}: {mismatch}. The trial "
                "was trained on data other than the study's (the data changed between runs); export another trial "
                "with --trial N."
            )
    return state_dict


def _train_members(
    config: SearchConfig,
    metric: str,
    members: list[tuple[optuna.trial.FrozenTrial, int]],
    data: PreparedData | None,
    *,
    refit: bool,
    n_fit: int,
    storage: str,
    artifacts: str | Path | None,
    study: optuna.Study,
) -> list[dict[str, Any]]:
    """Each (trial, seed) member's description and weights: refit, stored, or trained like the search.

    Args:
        n_fit: Rows each network of the search trained on (`fit_rows`).
    """
    trained = []
    for trial, seed in members:
        epochs = None
        if refit:
            epochs = refit_epochs(
                trial.user_attrs.get(keys.BEST_EPOCH), n_fit, len(data.y_train), fallback=config.train.epochs
            )
        if not refit and seed == int(trial.user_attrs.get(keys.SEED, 0)):
            state_dict = _stored_weights(config, storage, trial, artifacts, study)
        else:
            result = train_member(config, metric, trial, data, seed=seed, epochs=epochs)
            if result.status != "completed":
                raise ExportError(f"Training trial {trial.number} with seed {seed} did not complete: {result.reason}.")
            state_dict = result.state_dict
        trained.append(_member(config, trial, seed, epochs, state_dict))
    return trained


def _member(
    config: SearchConfig, trial: optuna.trial.FrozenTrial, seed: int, epochs: int | None, state_dict: dict
) -> dict[str, Any]:
    """What `export_ensemble` takes for one member (and `export_model` for one network)."""
    # Trials stored before embeddings and norm layers existed lack them: Architecture and the replayed
    # params read them as none.
    arch = Architecture.from_attrs(trial.user_attrs)
    hyperparameters = config.space.replay(trial.params, trial.number).hyperparameters
    return {
        "trial": trial.number,
        "seed": seed,
        "value": trial.value,
        "epochs": epochs,
        "cooldown": refit_cooldown(hyperparameters.lr_schedule) if epochs is not None else 0.0,
        "widths": list(arch.widths),
        "dropouts": list(arch.dropouts),
        "activation": arch.activation,
        "normalization": hyperparameters.normalization,
        "embedding": arch.embedding,
        "embedding_dim": arch.embedding_dim,
        "state_dict": state_dict,
    }


def _greedy_ensemble(
    config: SearchConfig,
    metric: str,
    study: optuna.Study,
    chosen: optuna.trial.FrozenTrial,
    *,
    refit: bool,
    clamp: bool,
    storage: str,
    artifacts: str | Path | None,
    required: bool,
) -> tuple[list[dict[str, Any]], PreparedData | None, dict[str, Any]]:
    """The chosen trial plus the stored trials that greedy ensemble selection adds on the validation split.

    Returns:
        (members, data, info): the members with their `weight`s, the chosen one first and refit when
        `refit` (on train + validation rows, with the preprocessing fitted on the training split as the
        stored members' was, so that all read one input); the data whose test split measures them; and
        what the selection saw, for the export's metadata. With nothing added, `members` is empty.

    Raises:
        ExportError, DataError: The search's data cannot be read as it was, and `required` (the caller
            asked for the greedy ensemble); otherwise the selection is skipped and the info says why.
    """
    from archsearch.trainers import split_predictions

    # When the greedy ensemble is the study's default rather than the caller's request, what cannot run is
    # skipped: the export ships what it would without it (a --no-refit export needs no data here) and says why.
    try:
        data = _clamped(_search_data(config, study.user_attrs[keys.PREPROCESSING], refit=False), clamp)
    except DataError as e:
        if required:
            raise
        return [], None, {"skipped": f"the search's data cannot be read here ({e})"}
    except ExportError:
        if required:
            raise
        return [], None, {"skipped": "the search's data changed since the search"}
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    others = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.number != chosen.number and t.value is not None and keys.WEIGHTS in t.user_attrs
        ),
        key=lambda t: (-t.value if maximize else t.value, t.number),
    )
    stored, predictions = [], []
    for trial in [chosen, *others][:GREEDY_CANDIDATES]:
        try:
            state_dict = _stored_weights(config, storage, trial, artifacts, study)
        except ExportError as e:
            if trial is not chosen:
                continue  # removed by keep_best_k, or from other data: not a candidate
            if required:
                # A refit cannot stand in for them here: selection compares the networks the search trained.
                detail = str(e).replace(" Export without --no-refit to train it again.", "")
                raise ExportError(
                    f"The greedy ensemble starts from trial {chosen.number}'s stored weights, which cannot be used: "
                    f"{detail} Export with --no-greedy-ensemble to refit it alone."
                ) from e
            return [], None, {"skipped": f"trial {chosen.number} has no readable stored weights"}
        member = _member(config, trial, int(trial.user_attrs.get(keys.SEED, 0)), None, state_dict)
        stored.append(member)
        # One network built at a time: a wide space's 50 candidates need not all be in memory as modules.
        # Scored as the ensemble ships: each member calibrated (its biases fitted on the training split, so the
        # validation rows that choose stay unseen), deciding by the class-weighted argmax.
        calibration = _calibration(config, metric, data, [member])
        (prediction,) = split_predictions([member], data, "val", calibration)
        predictions.append(prediction)
    preprocessing = data.preprocessing
    y_val = (
        data.y_val
        if preprocessing.classes is not None
        else data.y_val * preprocessing.target_scale + preprocessing.target_mean
    )
    offsets = None if calibration is None else calibration.log_offsets  # every candidate's: the same rows
    counts, value = greedy_selection(predictions, y_val, metric, log_offsets=offsets)
    if not math.isfinite(value):  # e.g. r2 of a constant validation target: nothing to choose by
        return [], None, {"skipped": f"the validation {metric} of trial {chosen.number} is not finite"}
    alone = chosen.user_attrs.get(f"val_{metric}", chosen.value)
    if calibration is not None:  # the trial's stored value is of its uncorrected output
        alone = greedy_selection(predictions[:1], y_val, metric, rounds=1, log_offsets=offsets)[1]
    info = {
        "candidates": len(stored),
        "picks": sum(counts),  # weights are counts / picks
        "n_val_rows": len(data.y_val),
        f"val_{metric}": value,
        f"best_val_{metric}": alone,
    }
    picked = [(member, count) for member, count in zip(stored, counts) if count]
    if len(picked) == 1:
        return [], None, info
    if refit:
        refit_data = load_refit_data(config.data, fit_preprocessing_on="train")
        n_fit = fit_rows(study.user_attrs[keys.DATA], None)
        (first,) = _train_members(
            config,
            metric,
            [(chosen, picked[0][0]["seed"])],
            refit_data,
            refit=True,
            n_fit=n_fit,
            storage=storage,
            artifacts=artifacts,
            study=study,
        )
        picked[0] = (first, picked[0][1])
        data = _clamped(refit_data, clamp)
    return [member | {"weight": count / sum(counts)} for member, count in picked], data, info


def export_best(
    storage: str,
    study_name: str,
    out: str | Path,
    *,
    trial: int | None = None,
    refit: bool = True,
    ensemble: int | None = None,
    ensemble_seeds: int | None = None,
    greedy_ensemble: bool | None = None,
    clamp: bool | None = None,
    artifacts: str | Path | None = None,
    retrain: bool | None = None,
) -> Path:
    """Write `architecture.json`, `model.pt` and `model.pt2` for the best (or a given) completed trial.

    By default the chosen architecture is trained again ("refit") on train + validation rows with its
    trial's hyperparameters and seed, for the epochs early stopping chose; the test split stays unseen,
    and the test metrics in `architecture.json` are the shipped model's. `architecture.json` says which
    rows the shipped model saw (`metadata.training_rows`). A study searched with class weights ships
    probabilities of the data's class frequencies and the class-weighted decision (its `calibration`,
    `archsearch.trainers.fit_calibration`).

    Args:
        storage: The study's storage URL.
        study_name: The study's name.
        out: Folder to write (created; existing files in it are overwritten).
        trial: Trial number; default: the best trial, the smallest network among trials that tie for best.
        refit: Train on train + validation rows; False ships the weights the search stored for the trial.
        ensemble: Ship the mean prediction of this many best trials (>= 2) as one program.
        ensemble_seeds: Ship the mean prediction of this many seeds of the chosen trial; the first is the
            trial's own seed. Default: the study's `[export] ensemble_seeds` (1, one network, unless set).
        greedy_ensemble: Add to the best trial (refit or not, as `refit` says) the stored networks of other
            complete trials that greedy ensemble selection picks on the validation split, weighted by how
            often it picked them; they ship as the search trained them, so this trains nothing more. When
            nothing improves the best trial's validation metric, the best trial ships alone. Default: the
            study's `[export] greedy_ensemble`, which `trial`, `ensemble` and `ensemble_seeds` > 1 turn off.
        clamp: Regression: clamp the shipped predictions to the range of the targets the model trained on
            (recorded as `preprocessing.target_range`). Default: the study's `[export] clamp` (true). A
            `--no-refit` export of a single network without the search's data on this machine cannot clamp.
        artifacts: Folder of the trials' weights, when the study's config does not say where it is.
        retrain: Deprecated alias of `refit`.

    Returns:
        The export folder.

    Example:
        >>> export_best("sqlite:///archsearch.db", "digits", "digits-model", ensemble=5)  # doctest: +SKIP
        >>> model = archsearch.load_model("digits-model")  # doctest: +SKIP
    """
    from archsearch.trainers import ensemble_test_metrics, export_ensemble, export_model

    if retrain is not None:
        warnings.warn(
            "export_best's 'retrain' is deprecated; it means 'refit', which is now on by default.",
            DeprecationWarning,
            stacklevel=2,
        )
        refit = retrain
    _check_sizes(ensemble, ensemble_seeds, trial)
    _check_greedy(greedy_ensemble, ensemble, ensemble_seeds, trial)
    if clamp is not None and not isinstance(clamp, bool):
        raise ExportError(f"The 'clamp' parameter of export_best must be True, False or None. Got {clamp!r} instead.")
    greedy_required = bool(greedy_ensemble)
    study = open_study(make_storage(storage, must_exist=True), study_name, url=storage)
    if keys.CONFIG not in study.user_attrs:
        raise ExportError(f"Study {study_name!r} was not created by archsearch (it has no {keys.CONFIG!r} attribute).")
    config = SearchConfig.from_stored(study.user_attrs[keys.CONFIG])
    if clamp is None:
        clamp = config.export.clamp
    if greedy_ensemble is None:  # the study's default, unless the call asks for other members
        greedy_ensemble = (
            config.export.greedy_ensemble and trial is None and ensemble is None and (ensemble_seeds or 1) == 1
        )
    skipped = None
    if greedy_ensemble and config.data.folds is not None:
        if greedy_required:
            raise ExportError(
                f"The 'greedy_ensemble' parameter of export_best must be False for study {study_name!r}: it searched "
                f"with [data] folds = {config.data.folds}, so its stored networks trained on different rows and have "
                "no common validation split to choose on. Got True instead."
            )
        greedy_ensemble = False
        skipped = {"skipped": f"the study searched with [data] folds = {config.data.folds}", "members": 1}
    if greedy_ensemble:
        ensemble_seeds = 1  # one kind of ensemble at a time: a greedy one that keeps the best alone ships one network
    elif ensemble is None and ensemble_seeds is None:
        ensemble_seeds = config.export.ensemble_seeds  # the study's [export] default (1: one network)
    metric = study.user_attrs[keys.METRIC]
    if ensemble is not None:
        chosen_trials = _best_trials(study, ensemble)
        members = [(t, int(t.user_attrs.get(keys.SEED, 0))) for t in chosen_trials]
    else:
        chosen_trials = [_pick_trial(study, trial)]
        seed = int(chosen_trials[0].user_attrs.get(keys.SEED, 0))
        members = [(chosen_trials[0], seed + i) for i in range(ensemble_seeds or 1)]
    chosen = chosen_trials[0]
    selection = skipped
    if greedy_ensemble:
        greedy, test_data, selection = _greedy_ensemble(
            config,
            metric,
            study,
            chosen,
            refit=refit,
            clamp=clamp,
            storage=storage,
            artifacts=artifacts,
            required=greedy_required,
        )
        if greedy:
            metadata = _metadata(study_name, chosen, metric, refit)
            calibration = _calibration(config, metric, test_data, greedy)
            return _export_greedy(out, metadata, greedy, test_data, selection, calibration)
    sizes = study.user_attrs[keys.DATA]
    # A plain --no-refit export needs no data (it may not be on this machine); everything else trains or measures,
    # and class weights need the training rows' class frequencies, which the probabilities are corrected to.
    class_weighted = (
        study.user_attrs[keys.TASK] == "classification" and config.train.resolved_class_weight(metric) == "balanced"
    )
    needs_data = refit or len(members) > 1 or config.data.folds is not None or class_weighted
    data = _search_data(config, study.user_attrs[keys.PREPROCESSING], refit=refit) if needs_data else None
    n_fit = fit_rows(sizes, config.data.folds)
    trained = _train_members(
        config, metric, members, data, refit=refit, n_fit=n_fit, storage=storage, artifacts=artifacts, study=study
    )
    calibration = None
    if data is None:
        single = {k: v for k, v in chosen.user_attrs.items() if k.startswith("test_")}
        training_rows = {"splits": "train", "n_rows": int(sizes["n_train"]), "n_test_rows": int(sizes["n_test"])}
    else:
        data = _clamped(data, clamp)  # what ships clamps to the targets it trained on; training never sees it
        calibration = _calibration(config, metric, data, trained)
        single = ensemble_test_metrics(trained[:1], data, None if calibration is None else calibration.member(0))
        splits = (
            "train + validation"
            if refit
            else f"fold 1 of {config.data.folds} training rows"
            if config.data.folds
            else "train"
        )
        training_rows = {"splits": splits, "n_rows": len(data.y_train), "n_test_rows": len(data.y_test)}
    metadata = _metadata(study_name, chosen, metric, refit) | {"training_rows": training_rows, "test_metrics": single}
    if selection is not None:  # greedy selection ran (or was skipped, and says why) and kept the best trial alone
        metadata["greedy_ensemble"] = selection | {"members": 1}
    preprocessing = (
        data.preprocessing if data is not None else Preprocessing.from_dict(study.user_attrs[keys.PREPROCESSING])
    )
    if len(trained) == 1:
        member = trained[0]
        metadata["refit_epochs"] = member["epochs"]
        metadata["refit_lr_cooldown"] = member["cooldown"]  # the last fraction of the refit's steps, lr falling to 0
        return export_model(
            out,
            widths=member["widths"],
            dropouts=member["dropouts"],
            activation=member["activation"],
            state_dict=member["state_dict"],
            preprocessing=preprocessing,
            metadata=metadata,
            normalization=member["normalization"],
            embedding=member["embedding"],
            embedding_dim=member["embedding_dim"],
            calibration=calibration,
        )
    metadata["ensemble"] = {"of": "trials" if ensemble is not None else "seeds", "size": len(trained)}
    metadata["single_test_metrics"] = single
    metadata["test_metrics"] = ensemble_test_metrics(trained, data, calibration)
    return export_ensemble(
        out, members=trained, preprocessing=preprocessing, metadata=metadata, calibration=calibration
    )


def _metadata(study_name: str, chosen: optuna.trial.FrozenTrial, metric: str, refit: bool) -> dict[str, Any]:
    """What every export's `architecture.json` says about the study and the chosen trial."""
    return {
        "study": study_name,
        "trial": chosen.number,
        "metric": metric,
        "value": chosen.value,
        "metrics": {
            k: v
            for k, v in chosen.user_attrs.items()
            if k.split("_", 1)[0] in ("train", "val", "test") and k != "train_seconds"
        },
        "params": chosen.params,
        "refit": refit,
        "archsearch_version": archsearch.__version__,
    }


def _export_greedy(
    out: str | Path,
    metadata: dict[str, Any],
    members: list[dict[str, Any]],
    data: PreparedData,
    selection: dict[str, Any],
    calibration: Calibration | None,
) -> Path:
    """Write the greedy ensemble that `_greedy_ensemble` chose, with what it saw and its test metrics."""
    from archsearch.trainers import ensemble_test_metrics, export_ensemble

    n_others = len(members) - 1
    others = (
        "train (the other member, as the search trained it)"
        if n_others == 1
        else f"train (the other {n_others} members, as the search trained them)"
    )
    splits = f"train + validation (trial {metadata['trial']}, refit); {others}" if metadata["refit"] else "train"
    metadata = metadata | {
        "training_rows": {"splits": splits, "n_rows": len(data.y_train), "n_test_rows": len(data.y_test)},
        "ensemble": {
            "of": "trials chosen greedily",
            "size": len(members),
            "trials": [m["trial"] for m in members],
            "weights": [round(m["weight"], 6) for m in members],
        },
        "greedy_ensemble": selection | {"members": len(members)},
        "single_test_metrics": ensemble_test_metrics(
            [{k: v for k, v in members[0].items() if k != "weight"}],
            data,
            None if calibration is None else calibration.member(0),
        ),
        "test_metrics": ensemble_test_metrics(members, data, calibration),
    }
    return export_ensemble(
        out, members=members, preprocessing=data.preprocessing, metadata=metadata, calibration=calibration
    )


def _check_greedy(
    greedy_ensemble: bool | None, ensemble: int | None, ensemble_seeds: int | None, trial: int | None
) -> None:
    if greedy_ensemble is not None and not isinstance(greedy_ensemble, bool):
        raise ExportError(
            f"The 'greedy_ensemble' parameter of export_best must be True, False or None. Got {greedy_ensemble!r} instead."
        )
    if not greedy_ensemble:
        return
    for name, value, allowed in (
        ("trial", trial, None),
        ("ensemble", ensemble, None),
        ("ensemble_seeds", ensemble_seeds, (None, 1)),
    ):
        if value is not None and (allowed is None or value not in allowed):
            raise ExportError(
                f"The {name!r} parameter of export_best must be {'None' if allowed is None else 'None or 1'} with "
                f"greedy_ensemble=True (the greedy ensemble starts from the best trial and picks its own members). "
                f"Got {value!r} instead."
            )


def describe_export(folder: str | Path) -> str:
    """What the export CLI prints: the shipped model, the rows it saw, and its test metric (single vs ensemble)."""
    model = load_model(folder)
    architecture = model.architecture
    meta = architecture["metadata"]
    metric, rows = meta["metric"], meta["training_rows"]
    ensemble = meta.get("ensemble")
    what = f"trial {meta['trial']}" if ensemble is None else f"an ensemble of {ensemble['size']} {ensemble['of']}"
    greedy = meta.get("greedy_ensemble")
    held_out = f"the {rows['n_test_rows']:,} test rows were held out."
    if greedy is not None and ensemble is not None:  # its splits say which member saw which rows
        trained_on = f"Trained on {rows['n_rows']:,} rows: {rows['splits']}; {held_out}"
    else:
        how = "refit" if meta["refit"] else "the search's weights"
        trained_on = f"Trained on {rows['n_rows']:,} rows ({rows['splits']}, {how}); {held_out}"
    lines = [
        f"Exported {what} to {folder}: architecture.json, model.pt (state dict), model.pt2 (torch.export program)",
        trained_on,
    ]
    if greedy is not None and "skipped" in greedy:
        lines.append(f"Greedy ensemble selection skipped: {greedy['skipped']}.")
    elif greedy is not None:
        val = f"val_{metric}"
        lines.append(
            f"Greedy ensemble selection over {greedy['candidates']} stored trials kept {greedy['members']} "
            f"(validation {metric} {greedy[val]:.4f}, trial {meta['trial']} alone {greedy['best_' + val]:.4f}; "
            f"n = {greedy['n_val_rows']:,} validation rows, which chose the members and so flatter them)."
        )
    target_range = architecture["preprocessing"].get("target_range")
    if target_range is not None:
        lines.append(
            f"Predictions are clamped to [{target_range[0]:.6g}, {target_range[1]:.6g}], the range of the "
            f"{rows['n_rows']:,} training targets."
        )
    if model.calibration is not None:
        lines.append(model.calibration.describe())
    key = f"test_{metric}"
    if ensemble is None:
        lines.append(f"Test {metric} {meta['test_metrics'][key]:.4f} (n = {rows['n_test_rows']:,} test rows)")
    else:
        lines.append(
            f"Test {metric}: best single {meta['single_test_metrics'][key]:.4f}, ensemble of {ensemble['size']} "
            f"{meta['test_metrics'][key]:.4f} (n = {rows['n_test_rows']:,} test rows)"
        )
    return "\n".join(lines)


def load_model(path: str | Path):
    """Load an exported folder as a predictor of raw rows (labels, probabilities or values)."""
    from archsearch.trainers import load_model as _load

    return _load(path)
