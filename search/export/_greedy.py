"""The default export's members: the chosen trial plus the stored trials greedy ensemble selection adds."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

from optuna.trial import TrialState

from archsearch.export._members import (
    artifact_dir,
    calibration_for,
    clamped,
    member_of,
    search_data,
    stored_weights,
    train_members,
)
from archsearch.export._plan import ExportPlan
from archsearch.export._selection import greedy_selection
from archsearch.pool import fit_rows
from archsearch.storage import is_feasible, keys, maximizes, quality_value, stored_value
from archsearch.trainers import DataError, ExportError
from archsearch.trainers.data import PreparedData, load_refit_data

__all__ = ["GREEDY_CANDIDATES", "GreedyChoice", "select_greedy"]

GREEDY_CANDIDATES = 50  # best stored trials a greedy ensemble chooses among (each costs one validation pass)


@dataclasses.dataclass(frozen=True)
class GreedyChoice:
    """What greedy selection chose: the weighted members (empty when the chosen trial ships alone), the data
    whose test split measures them, and what the selection saw (or why it was skipped), for the metadata."""

    members: list[Any]
    data: PreparedData | None
    info: dict[str, Any]


def select_greedy(plan: ExportPlan) -> GreedyChoice:
    """The chosen trial plus the stored trials that greedy ensemble selection adds on the validation split.

    The chosen trial comes first and is refit when `plan.refit` (on train + validation rows, with the
    preprocessing fitted on the training split as the stored members' was, so that all read one input).

    Raises:
        ExportError, DataError: The search's data cannot be read as it was, and `plan.greedy_required`
            (the caller asked for the greedy ensemble); otherwise the selection is skipped and says why.
    """
    # When the greedy ensemble is the study's default rather than the caller's request, what cannot run is
    # skipped: the export ships what it would without it (a --no-refit export needs no data here) and says why.
    try:
        data = clamped(
            search_data(plan.config, stored_value(plan.study.user_attrs, keys.PREPROCESSING), refit=False), plan.clamp
        )
    except DataError as e:
        if plan.greedy_required:
            raise
        return GreedyChoice([], None, {"skipped": f"the search's data cannot be read here ({e})"})
    except ExportError:
        if plan.greedy_required:
            raise
        return GreedyChoice([], None, {"skipped": "the search's data changed since the search"})
    stored = _candidates(plan, data)
    if isinstance(stored, GreedyChoice):
        return stored
    members, predictions, unreadable = stored
    return _select(plan, data, members, predictions, unreadable)


def _candidates(plan: ExportPlan, data: PreparedData) -> tuple[list[Any], list[Any], list[int]] | GreedyChoice:
    """The chosen trial and the best other stored trials, as members with their validation predictions, and the
    trials whose stored weights could not be read (a warning names them)."""
    from archsearch.trainers import split_predictions

    chosen, study = plan.chosen, plan.study
    maximize = maximizes(study)
    dropped = set(stored_value(study.user_attrs, keys.DROPPED_WEIGHTS, []))  # removed by keep_best_k, knowingly
    others = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.number != chosen.number
            and quality_value(t) is not None
            and is_feasible(t)
            and plan.budget.why_over([t]) is None  # alone within --max-params etc., else never a member
            and keys.WEIGHTS in t.user_attrs
            and t.user_attrs[keys.WEIGHTS] not in dropped
        ),
        key=lambda t: (-quality_value(t) if maximize else quality_value(t), t.number),
    )
    candidates = [chosen, *others][:GREEDY_CANDIDATES]
    members, predictions, unreadable = [], [], []
    for trial in candidates:
        try:
            state_dict = stored_weights(plan, trial)
        except ExportError as e:
            if trial is not chosen:
                unreadable.append(trial.number)  # missing, corrupt, or from other data: said below
                continue
            return _unusable_chosen(plan, e)
        member = member_of(plan.config, trial, int(trial.user_attrs.get(keys.SEED, 0)), None, state_dict)
        members.append(member)
        # One network built at a time: a wide space's 50 candidates need not all be in memory as modules.
        # Scored as the ensemble ships: each member calibrated (its biases fitted on the training split, so the
        # validation rows that choose stay unseen), deciding by the class-weighted argmax.
        calibration = calibration_for(plan, data, [member])
        (prediction,) = split_predictions([member], data, "val", calibration)
        predictions.append(prediction)
    if unreadable:
        trials = ("trial " if len(unreadable) == 1 else "trials ") + ", ".join(map(str, unreadable))
        warnings.warn(
            f"The greedy ensemble left out {len(unreadable)} of {len(candidates)} candidate trials whose stored weights "
            f"cannot be read: {trials} (missing from {str(artifact_dir(plan))!r}, or corrupt).",
            UserWarning,
            stacklevel=4,
        )
    return members, predictions, unreadable


def _unusable_chosen(plan: ExportPlan, error: ExportError) -> GreedyChoice:
    chosen = plan.chosen.number
    detail = str(error).replace(" Export without --no-refit to train it again.", "")
    if plan.greedy_required:
        # A refit cannot stand in for them here: selection compares the networks the search trained.
        raise ExportError(
            f"The greedy ensemble starts from trial {chosen}'s stored weights, which cannot be used: "
            f"{detail} Export with --no-greedy-ensemble to refit it alone."
        ) from error
    return GreedyChoice([], None, {"skipped": f"trial {chosen} has no readable stored weights: {detail.rstrip('.')}"})


def _within_budget(
    plan: ExportPlan, members: list[Any], predictions: list[Any], y_val: Any, metric: str, offsets: Any
) -> tuple[list[int], float]:
    """Greedy selection whose distinct members together meet the export's budget: while they do not, the
    largest member picked besides the chosen trial leaves the candidates and the selection runs again."""
    trials = {t.number: t for t in plan.study.get_trials(deepcopy=False)}
    allowed = list(range(len(members)))
    while True:
        counts, value = greedy_selection([predictions[i] for i in allowed], y_val, metric, log_offsets=offsets)
        picked = [i for i, count in zip(allowed, counts) if count]
        over = plan.budget.active and plan.budget.why_over([trials[members[i].record["trial"]] for i in picked])
        if not over or picked == [0]:
            full = [0] * len(members)
            for i, count in zip(allowed, counts):
                full[i] = count
            return full, value
        size = {i: trials[members[i].record["trial"]].user_attrs.get(keys.SIZE_PARAMS, 0) for i in picked}
        allowed.remove(max((i for i in picked if i != 0), key=lambda i: (size[i], i)))


def _select(
    plan: ExportPlan, data: PreparedData, members: list[Any], predictions: list[Any], unreadable: list[int]
) -> GreedyChoice:
    """Greedy selection over the candidates; the chosen member refit when the plan says so."""
    chosen, metric, preprocessing = plan.chosen, plan.metric, data.preprocessing
    y_val = (
        data.y_val
        if preprocessing.classes is not None
        else data.y_val * preprocessing.target_scale + preprocessing.target_mean
    )
    calibration = calibration_for(plan, data, members[:1])
    offsets = None if calibration is None else calibration.log_offsets  # every candidate's: the same rows
    counts, value = _within_budget(plan, members, predictions, y_val, metric, offsets)
    if not math.isfinite(value):  # e.g. r2 of a constant validation target: nothing to choose by
        return GreedyChoice([], None, {"skipped": f"the validation {metric} of trial {chosen.number} is not finite"})
    alone = chosen.user_attrs.get(f"val_{metric}", quality_value(chosen))
    if calibration is not None:  # the trial's stored value is of its uncorrected output
        alone = greedy_selection(predictions[:1], y_val, metric, rounds=1, log_offsets=offsets)[1]
    info = {
        "candidates": len(members),
        **({"unreadable_trials": unreadable} if unreadable else {}),
        "picks": sum(counts),  # weights are counts / picks
        "n_val_rows": len(data.y_val),
        f"val_{metric}": value,
        f"best_val_{metric}": alone,
    }
    picked = [(member, count) for member, count in zip(members, counts) if count]
    if len(picked) == 1:
        return GreedyChoice([], None, info)
    if plan.refit:
        data = load_refit_data(plan.config.data, fit_preprocessing_on="train")
        n_fit = fit_rows(plan.study.user_attrs[keys.DATA], None)
        (first,) = train_members(plan, [(chosen, picked[0][0].record["seed"])], data, refit=True, n_fit=n_fit)
        picked[0] = (first, picked[0][1])
        data = clamped(data, plan.clamp)
    weighted = [dataclasses.replace(member, weight=count / sum(counts)) for member, count in picked]
    return GreedyChoice(weighted, data, info)
