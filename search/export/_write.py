"""Writing what an `ExportPlan` ships: one network, an ensemble of trials or seeds, or a greedy ensemble."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

import archsearch
from archsearch.export._budget import size_metadata
from archsearch.export._greedy import GreedyChoice
from archsearch.export._members import calibration_for, clamped, class_weighted, search_data, train_members
from archsearch.export._plan import ExportPlan
from archsearch.pool import fit_rows
from archsearch.storage import keys, quality_value, stored_value
from archsearch.trainers.data import Preprocessing, is_program

__all__ = ["write_greedy", "write_members"]


def write_members(plan: ExportPlan, out: str | Path, greedy: GreedyChoice | None) -> Path:
    """Train (or read) the plan's members and write them: one network, or their ensemble.

    Args:
        greedy: Greedy selection's outcome when it ran (or was skipped) and kept the chosen trial alone.
    """
    from archsearch.trainers import ensemble_test_metrics, export_ensemble, export_model

    config, study, refit = plan.config, plan.study, plan.refit
    sizes = study.user_attrs[keys.DATA]
    # A plain --no-refit export needs no data (it may not be on this machine); everything else trains or measures,
    # and class weights need the training rows' class frequencies, which the probabilities are corrected to.
    needs_data = refit or len(plan.members) > 1 or config.data.folds is not None or class_weighted(plan)
    data = search_data(config, stored_value(study.user_attrs, keys.PREPROCESSING), refit=refit) if needs_data else None
    n_fit = fit_rows(sizes, config.data.folds)
    trained = train_members(plan, list(plan.members), data, refit=refit, n_fit=n_fit)
    calibration = None
    if data is None:
        single = {k: v for k, v in plan.chosen.user_attrs.items() if k.startswith("test_")}
        training_rows = {"splits": "train", "n_rows": int(sizes["n_train"]), "n_test_rows": int(sizes["n_test"])}
        preprocessing = Preprocessing.from_dict(stored_value(study.user_attrs, keys.PREPROCESSING))
    else:
        data = clamped(data, plan.clamp)  # what ships clamps to the targets it trained on; training never sees it
        calibration = calibration_for(plan, data, trained)
        single = ensemble_test_metrics(trained[:1], data, None if calibration is None else calibration.member(0))
        splits = (
            "train + validation"
            if refit
            else f"fold 1 of {config.data.folds} training rows"
            if config.data.folds
            else "train"
        )
        training_rows = {"splits": splits, "n_rows": len(data.y_train), "n_test_rows": len(data.y_test)}
        preprocessing = data.preprocessing
    metadata = _metadata(plan) | {"training_rows": training_rows, "test_metrics": single}
    metadata["size"] = size_metadata([t for t, _ in plan.members], plan.budget)
    selection = plan.skipped if greedy is None else greedy.info
    if selection is not None:  # greedy selection ran (or was skipped, and says why) and kept the best trial alone
        metadata["greedy_ensemble"] = selection | {"members": 1}
    if len(trained) == 1:
        (member,) = trained
        metadata["refit_epochs"] = member.record["epochs"]
        metadata["refit_lr_cooldown"] = member.record["cooldown"]  # the last fraction of the refit's steps, lr to 0
        return export_model(
            out,
            net=member.net,
            state_dict=member.state_dict,
            preprocessing=preprocessing,
            metadata=metadata,
            calibration=calibration,
            encoder=_bundled(plan),
        )
    metadata["ensemble"] = {"of": plan.ensemble_of, "size": len(trained)}
    metadata["single_test_metrics"] = single
    metadata["test_metrics"] = ensemble_test_metrics(trained, data, calibration)
    return export_ensemble(
        out,
        members=trained,
        preprocessing=preprocessing,
        metadata=metadata,
        calibration=calibration,
        encoder=_bundled(plan),
    )


def write_greedy(plan: ExportPlan, out: str | Path, greedy: GreedyChoice) -> Path:
    """Write the greedy ensemble that `select_greedy` chose, with what it saw and its test metrics."""
    from archsearch.trainers import ensemble_test_metrics, export_ensemble

    members, data = greedy.members, greedy.data
    calibration = calibration_for(plan, data, members)
    n_others = len(members) - 1
    others = (
        "train (the other member, as the search trained it)"
        if n_others == 1
        else f"train (the other {n_others} members, as the search trained them)"
    )
    splits = f"train + validation (trial {plan.chosen.number}, refit); {others}" if plan.refit else "train"
    metadata = _metadata(plan) | {
        "training_rows": {"splits": splits, "n_rows": len(data.y_train), "n_test_rows": len(data.y_test)},
        "ensemble": {
            "of": "trials chosen greedily",
            "size": len(members),
            "trials": [m.record["trial"] for m in members],
            "weights": [round(m.weight, 6) for m in members],
        },
        "greedy_ensemble": greedy.info | {"members": len(members)},
        "single_test_metrics": ensemble_test_metrics(
            [dataclasses.replace(members[0], weight=None)], data, None if calibration is None else calibration.member(0)
        ),
        "test_metrics": ensemble_test_metrics(members, data, calibration),
    }
    trials = {t.number: t for t in plan.study.get_trials(deepcopy=False)}
    metadata["size"] = size_metadata([trials[m.record["trial"]] for m in members], plan.budget)
    return export_ensemble(
        out,
        members=members,
        preprocessing=data.preprocessing,
        metadata=metadata,
        calibration=calibration,
        encoder=_bundled(plan),
    )


def _bundled(plan: ExportPlan) -> str | None:
    """The program encoder the export bundles: the study's `[data] encoder` when it is a program file."""
    encoder = plan.config.data.encoder
    return encoder if encoder is not None and is_program(encoder) else None


def _encoder_metadata(plan: ExportPlan) -> dict[str, Any]:
    """`metadata.encoder`: the encoder whose vectors model.pt2 takes, its fingerprint, and whether it ships."""
    encoder = plan.config.data.encoder
    if encoder is None:
        return {}
    # None when the study stored no vectors (its searches ran with the local cache turned off).
    fingerprint = (plan.study.user_attrs.get(keys.ENCODER) or {}).get("fingerprint")
    return {"encoder": {"name": encoder, "fingerprint": fingerprint, "bundled": _bundled(plan) is not None}}


def _metadata(plan: ExportPlan) -> dict[str, Any]:
    """What every export's `architecture.json` says about the study and the chosen trial."""
    chosen: FrozenTrial = plan.chosen
    return _encoder_metadata(plan) | {
        "study": plan.study.study_name,
        "trial": chosen.number,
        "metric": plan.metric,
        "value": quality_value(chosen),
        "metrics": {
            k: v
            for k, v in chosen.user_attrs.items()
            if k.split("_", 1)[0] in ("train", "val", "test") and k != keys.TRAIN_SECONDS
        },
        "params": chosen.params,
        "refit": plan.refit,
        "archsearch_version": archsearch.__version__,
    }
