"""What an export ships, decided before anything trains: the `ExportPlan` of `export_best`'s arguments.

Every argument check, the study's `[export]` defaults and the choice of trials and seeds happen here, so a
bad request fails before a network is trained or a file is written.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.config import SearchConfig
from archsearch.export._budget import ExportBudget
from archsearch.storage import keys, make_storage, open_study, quality_trials, quality_value
from archsearch.trainers import ExportError

__all__ = ["ExportPlan", "plan_export"]


@dataclass(frozen=True)
class ExportPlan:
    """One export, resolved.

    Attributes:
        storage: The study's storage URL.
        study: The study, opened.
        config: Its stored search config.
        metric: Its metric.
        members: (trial, seed) of each network to ship, the chosen trial first.
        ensemble_of: "trials" (`ensemble`) or "seeds" (`ensemble_seeds`) when several members ship; None for one.
        refit: Train the members on train + validation rows.
        clamp: Clamp a regression's predictions to its training targets.
        greedy: Try greedy ensemble selection around the chosen trial.
        greedy_required: The caller asked for it: what keeps it from running is an error, not a skip.
        skipped: Why the study's default greedy ensemble does not run, for the metadata; None otherwise.
        artifacts: Folder of the trials' weights, when the study's config does not say where it is.
        budget: What the members together may weigh (`archsearch export --max-params`, ...).
    """

    storage: str
    study: optuna.Study
    config: SearchConfig
    metric: str
    members: tuple[tuple[FrozenTrial, int], ...]
    ensemble_of: str | None
    refit: bool
    clamp: bool
    greedy: bool
    greedy_required: bool
    skipped: dict[str, Any] | None
    artifacts: str | Path | None
    budget: ExportBudget = ExportBudget()  # --max-params etc.: bounds on the members' summed size

    @property
    def chosen(self) -> FrozenTrial:
        """The trial the export is named after: the best one, or the one asked for."""
        return self.members[0][0]


def plan_export(
    storage: str,
    study_name: str,
    out: str | Path,
    *,
    trial: int | None,
    refit: bool,
    ensemble: int | None,
    ensemble_seeds: int | None,
    greedy_ensemble: bool | None,
    clamp: bool | None,
    artifacts: str | Path | None,
    budget: ExportBudget | None = None,
) -> ExportPlan:
    """Check `export_best`'s arguments, open the study and decide what ships (see `export_best`)."""
    _check_sizes(ensemble, ensemble_seeds, trial)
    _check_greedy(greedy_ensemble, ensemble, ensemble_seeds, trial)
    if clamp is not None and not isinstance(clamp, bool):
        raise ExportError(f"The 'clamp' parameter of export_best must be True, False or None. Got {clamp!r} instead.")
    _check_paths(out, artifacts)
    study = open_study(make_storage(storage, must_exist=True), study_name, url=storage)
    if keys.CONFIG not in study.user_attrs:
        raise ExportError(f"Study {study_name!r} was not created by archsearch (it has no {keys.CONFIG!r} attribute).")
    config = SearchConfig.from_stored(study.user_attrs[keys.CONFIG])
    greedy, skipped = _resolve_greedy(config, study_name, greedy_ensemble, trial, ensemble, ensemble_seeds)
    if greedy:
        ensemble_seeds = 1  # one kind of ensemble at a time: a greedy one that keeps the best alone ships one network
    elif ensemble is None and ensemble_seeds is None:
        ensemble_seeds = config.export.ensemble_seeds  # the study's [export] default (1: one network)
    budget = budget or ExportBudget()
    if ensemble is not None:
        members = tuple((t, int(t.user_attrs.get(keys.SEED, 0))) for t in _best_trials(study, ensemble, budget))
    else:
        chosen = _pick_trial(study, trial, budget)
        seed = int(chosen.user_attrs.get(keys.SEED, 0))
        members = tuple((chosen, seed + i) for i in range(ensemble_seeds or 1))
    if budget.active and (why := budget.why_over([t for t, _ in members])):
        raise ExportError(
            f"The export's {len(members)} members (an ensemble counts every member) are over its budget: {why}. "
            "Ask for fewer members (--ensemble-seeds, --ensemble) or a larger budget."
        )
    return ExportPlan(
        storage=storage,
        study=study,
        config=config,
        metric=study.user_attrs[keys.METRIC],
        members=members,
        ensemble_of=None if len(members) == 1 else "trials" if ensemble is not None else "seeds",
        refit=refit,
        clamp=config.export.clamp if clamp is None else clamp,
        greedy=greedy,
        greedy_required=bool(greedy_ensemble),
        skipped=skipped,
        artifacts=artifacts,
        budget=budget,
    )


def _resolve_greedy(
    config: SearchConfig,
    study_name: str,
    greedy_ensemble: bool | None,
    trial: int | None,
    ensemble: int | None,
    ensemble_seeds: int | None,
) -> tuple[bool, dict[str, Any] | None]:
    """Whether greedy selection runs, and why the study's default does not when [data] folds rule it out."""
    greedy = greedy_ensemble
    if greedy is None:  # the study's default, unless the call asks for other members
        greedy = config.export.greedy_ensemble and trial is None and ensemble is None and (ensemble_seeds or 1) == 1
    if not greedy or config.data.folds is None:
        return greedy, None
    if greedy_ensemble:
        raise ExportError(
            f"The 'greedy_ensemble' parameter of export_best must be False for study {study_name!r}: it searched "
            f"with [data] folds = {config.data.folds}, so its stored networks trained on different rows and have "
            "no common validation split to choose on. Got True instead."
        )
    return False, {"skipped": f"the study searched with [data] folds = {config.data.folds}", "members": 1}


def _pick_trial(study: optuna.Study, number: int | None, budget: ExportBudget = ExportBudget()) -> FrozenTrial:
    if number is None:
        return _best_smallest(study, budget)
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


def _best_smallest(study: optuna.Study, budget: ExportBudget) -> FrozenTrial:
    """The best trial (within the budget); among trials that tie for the best value, the smallest network."""
    fitting = _within(study, budget)
    if not fitting:
        raise ExportError(f"Study {study.study_name!r} has no completed trial to export yet.")
    best = fitting[0]
    tied = [t for t in fitting if quality_value(t) == quality_value(best)]
    smallest = min(tied, key=lambda t: (t.user_attrs.get(keys.N_PARAMS, math.inf), t.number))
    if smallest.number != best.number:
        print(
            f"[archsearch] {len(tied)} trials tie for the best value ({quality_value(best):.4f}): exporting the "
            f"smallest, trial {smallest.number} ({smallest.user_attrs[keys.N_PARAMS]:,} parameters); "
            f"pass --trial {best.number} for the other.",
            file=sys.stderr,
        )
    return smallest


def _within(study: optuna.Study, budget: ExportBudget) -> list[FrozenTrial]:
    """The feasible complete trials, best first, each within the budget on its own."""
    completed = quality_trials(study)
    if not budget.active or not completed:
        return completed
    fitting = [t for t in completed if budget.why_over([t]) is None]
    if not fitting:
        smallest = min(completed, key=lambda t: (t.user_attrs.get(keys.SIZE_PARAMS, math.inf), t.number))
        raise ExportError(
            f"No completed trial of study {study.study_name!r} meets the export's budget ({budget.describe()}): "
            f"the smallest, trial {smallest.number}, has {budget.why_over([smallest])}."
        )
    return fitting


def _best_trials(study: optuna.Study, k: int, budget: ExportBudget) -> list[FrozenTrial]:
    completed = _within(study, budget)
    if k > len(completed):
        raise ExportError(
            f"The 'ensemble' parameter of export_best must be at most the number of completed trials of study "
            f"{study.study_name!r} ({len(completed)}). Got {k} instead. Use a smaller --ensemble, or --ensemble-seeds K "
            "for K seeds of the best trial."
        )
    return completed[:k]


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


def _check_paths(out: str | Path, artifacts: str | Path | None) -> None:
    """Refuse, before any work, an --out that is a file and an --artifacts folder that is not there (a typo)."""
    if Path(out).exists() and not Path(out).is_dir():
        raise ExportError(
            "The 'out' parameter of export_best (--out) must be a folder to write (created when missing). "
            f"Got {str(out)!r} instead, which is a file."
        )
    if artifacts is not None and not Path(artifacts).is_dir():
        what = "is a file" if Path(artifacts).exists() else "does not exist"
        raise ExportError(
            "The 'artifacts' parameter of export_best (--artifacts) must be the folder the search stored its weights "
            f"in. Got {str(artifacts)!r} instead, which {what}."
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
