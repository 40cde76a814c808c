"""The sensitivity analysis: choose centres, queue their neighbours' runs, train them, compare seed by seed."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

import archsearch
from archsearch.base import ArchsearchError, is_int
from archsearch.config import SearchConfig
from archsearch.encoded import artifact_folder, fetch_encoded
from archsearch.pool import (
    WorkerSlot,
    WorkerStudy,
    check_same_data,
    plan_slots,
    run_slots,
    use_worker_sampler,
    worker_storage,
)
from archsearch.sensitivity._jobs import (
    SENSITIVITY,
    Centre,
    companion_name,
    live_job_count,
    pending_jobs,
    plan_jobs,
)
from archsearch.sensitivity._result import SensitivityResult, compare_centre, summarize
from archsearch.spaces import Neighbour, NetSpec, across_sizes_neighbours, neighbourhood, pick_centres
from archsearch.stats import can_reach_significance, check_margin, fewest_seeds, metric_resolution, smallest_possible_p
from archsearch.storage import (
    FINISHED_STATES,
    best_quality_trial,
    keys,
    make_storage,
    name_metric,
    open_study,
    quality_value,
    set_study_user_attrs,
    stored_value,
)
from archsearch.trainers.data import PreparedData, Preprocessing, load_data

__all__ = ["DEFAULT_STEPS", "SensitivityError", "run_sensitivity"]

DEFAULT_STEPS = (1, 2, 0.1, 0.25, 0.5)


class SensitivityError(ArchsearchError, ValueError):
    """An analysis that cannot start as asked; the message names the rule, the value and the fix."""


def run_sensitivity(
    storage_url: str,
    study_name: str,
    *,
    trial: int | None = None,
    centers: int | None = None,
    repeats: int | None = None,
    steps: Sequence[float] = DEFAULT_STEPS,
    workers: int | None = 1,
    alpha: float = 0.05,
    margin: float | None = None,
    quiet: bool = True,
    stream: TextIO | None = None,
) -> SensitivityResult:
    """Train the neighbours of a trial (or of several) with paired seeds and say which changes matter.

    The best trial, trial ``trial``, or ``centers`` trials spread over the sizes of the study's small and
    good networks are the centres. A linear centre (0 hidden layers) is compared with one hidden layer at
    the narrowest, the geometric middle and the widest width of the search space, to answer "would a
    hidden layer help?". Each centre and each of its neighbours is trained with seeds
    ``0 .. repeats - 1`` and the centre's hyperparameters; the runs are trials of the companion study
    ``<study_name>.sensitivity`` in the same storage, trained by the worker pool, and an interrupted
    analysis resumes: finished, queued and running runs are never trained again. Figures and the
    summary are saved in the companion study for optuna-dashboard.

    Args:
        storage_url: Storage URL of the searched study.
        study_name: The study created by `archsearch search`.
        trial: Centre trial number (default: the best trial); it must be completed.
        centers: Choose this many centres with `archsearch.spaces.pick_centres` and compare each with
            its +-1 neuron, +- the largest fractional step, and -1/+1 layer neighbours.
        repeats: Seeds per architecture, >= 2; a warning says when too few can reach significance.
            Default: 8, or more when a centre has so many neighbours that Holm's correction needs more.
        steps: Width changes besides +-1 neuron: fractions in (0, 1) of a layer's width, or whole
            neuron counts.
        workers: Worker processes; 1 trains in this process, None places one per GPU or CPU core.
        alpha: Family-wise error rate of the neighbours of one centre (Holm's correction).
        margin: Equivalence margin in metric units, > 0: a neighbour whose mean difference is shown to
            lie within ``± margin`` is ``equivalent``. Default: each centre's seed-to-seed sd.
        quiet: Print no progress lines.
        stream: Where progress goes (default: stderr).

    Returns:
        The effects, noise floors and summary; ``result.report()`` draws the figures.

    Raises:
        SensitivityError: An argument is invalid, or the trial cannot be a centre.
        StorageError: The study does not exist in the storage.
        SearchError: Runs kept failing; the message names the last error.

    Example:
        >>> from archsearch.sensitivity import run_sensitivity
        >>> result = run_sensitivity("sqlite:///archsearch.db", "digits", repeats=10)  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
        >>> result.report().write_html("digits-sensitivity.html")  # doctest: +SKIP
    """
    steps = _check_arguments(trial, centers, repeats, steps, alpha)
    margin = _checked_margin(margin)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(storage_url, must_exist=True)
    parent = open_study(storage, study_name, url=storage_url)
    plan = _plan(parent, trial, centers, repeats, steps, alpha)
    for note in plan.notes:
        warnings.warn(note, UserWarning, stacklevel=2)

    planned = {job[keys.JOB_ID] for job in plan.jobs}
    companion, training, reused = _queue(storage, storage_url, parent, plan, planned, workers)
    if training is not None:
        total = companion.user_attrs[keys.SENSITIVITY_JOBS]
        _train_jobs(companion, training, total, quiet, stream or sys.stderr)

    runs = _first_finished_runs(companion.get_trials(deepcopy=False))
    result = _result(parent, companion, plan, runs, _run_counts(runs, planned, reused), alpha=alpha, margin=margin)
    result.summary = summarize(result)
    # Stored, so the search's report can quote the paired-seed verdicts (e.g. linear model or hidden layers).
    set_study_user_attrs(companion, {keys.SENSITIVITY_RESULT: result.to_dict()})
    result.report().push_to_dashboard(companion, preface=companion_preface(study_name))
    return result


def _queue(
    storage: Any, storage_url: str, parent: optuna.Study, plan: _Plan, planned: set[str], workers: int | None
) -> tuple[optuna.Study, Any, set[str]]:
    """Queue the runs not yet finished in the companion study; return it, what trains them (None: nothing
    left to train) and the planned runs an earlier analysis finished."""
    # Everything that can refuse the analysis is checked before anything is written: a refusal for edited
    # data used to leave the companion study with its runs queued, and the next analysis trained them.
    existing = _existing_companion(storage, parent)
    reused = _finished_jobs(existing.get_trials(deepcopy=False)) & planned if existing is not None else set()
    training = _prepare_training(storage_url, parent, plan.config, workers) if len(reused) < len(planned) else None

    companion = _open_companion(storage, parent)
    for job in pending_jobs(plan.jobs, companion.get_trials(deepcopy=False)):
        companion.enqueue_trial(params={}, user_attrs=job)
    companion.set_user_attr(keys.SENSITIVITY_JOBS, live_job_count(companion.get_trials(deepcopy=False)))
    return companion, training, reused


def _checked_margin(margin: float | None) -> float | None:
    """The equivalence margin given, checked; None (each centre's seed-to-seed sd) stays None."""
    if margin is None:
        return None
    try:
        return check_margin("run_sensitivity", margin)
    except ValueError as e:
        raise SensitivityError(f"{e} Pass --margin with a positive number, or leave it out.") from e


@dataclass(frozen=True)
class _Plan:
    """What an analysis trains: its centres and their neighbours, the seeds, and the runs as jobs."""

    config: SearchConfig
    sizes: dict[str, Any]
    centres: list[Any]
    steps: list[float]
    seeds: list[int]
    jobs: list[dict[str, Any]]
    notes: list[str]


def _plan(
    parent: optuna.Study,
    trial: int | None,
    centers: int | None,
    repeats: int | None,
    steps: Sequence[float],
    alpha: float,
) -> _Plan:
    """Choose the centres, the seeds (``repeats`` or enough for Holm's correction) and the jobs to run."""
    config = _parent_config(parent)
    sizes = parent.user_attrs[keys.DATA]
    inputs = _Inputs(sizes["n_features"], _stored_preprocessing(parent))
    centres = _choose_centres(parent, config, trial, centers, steps, inputs, sizes["n_outputs"])
    seeds = list(range(default_repeats(centres, alpha) if repeats is None else repeats))
    jobs = plan_jobs(centres, seeds, sizes["n_outputs"])
    notes = _significance_warnings(centres, len(seeds), alpha)
    return _Plan(config, sizes, centres, list(steps), seeds, jobs, notes)


def _result(
    parent: optuna.Study,
    companion: optuna.Study,
    plan: _Plan,
    runs: dict[str, FrozenTrial],
    counts: dict[str, int],
    *,
    alpha: float,
    margin: float | None,
) -> SensitivityResult:
    """Compare each centre with its neighbours over the finished runs."""
    sizes, config = plan.sizes, plan.config
    direction = parent.directions[0].name.lower()  # the quality's, in a multi-objective study too
    # An accuracy moves in steps of one validation row (with folds, the mean over folds in steps of one of all
    # train + validation rows); no equivalence margin goes below that step.
    rows = sizes["n_val"] if config.data.folds is None else sizes["n_train"] + sizes["n_val"]
    resolution = metric_resolution(parent.user_attrs[keys.METRIC], rows)
    results = [
        compare_centre(c, plan.seeds, runs, direction, alpha, sizes["n_outputs"], margin, resolution=resolution)
        for c in plan.centres
    ]
    return SensitivityResult(
        study_name=parent.study_name,
        companion_study=companion.study_name,
        metric=parent.user_attrs[keys.METRIC],
        direction=direction,
        alpha=alpha,
        margin=margin,
        seeds=plan.seeds,
        steps=plan.steps,
        centres=results,
        warnings=plan.notes,
        summary="",
        **counts,
    )


def _run_counts(runs: dict[str, FrozenTrial], planned: set[str], reused: set[str]) -> dict[str, int]:
    """The result's runs_* counts: planned, trained now, reused from before, diverged and missing."""
    finished = set(runs) & planned
    return {
        "runs_planned": len(planned),
        "runs_trained": len(finished - reused),
        "runs_reused": len(reused),
        "runs_diverged": sum(runs[j].state == TrialState.PRUNED for j in finished),
        "runs_missing": len(planned - finished),
    }


def _check_arguments(
    trial: int | None, centers: int | None, repeats: int | None, steps: Sequence[float], alpha: float
) -> tuple[float, ...]:
    owner = "run_sensitivity"
    if trial is not None and centers is not None:
        raise SensitivityError(
            f"Pass either 'trial' or 'centers' to {owner}, not both (--trial N or --centers K). "
            f"Got trial={trial!r} and centers={centers!r}."
        )
    if trial is not None and not (is_int(trial) and trial >= 0):
        raise SensitivityError(f"The 'trial' parameter of {owner} must be an int >= 0. Got {trial!r} instead.")
    if centers is not None and not (is_int(centers) and centers >= 1):
        raise SensitivityError(f"The 'centers' parameter of {owner} must be an int >= 1. Got {centers!r} instead.")
    if repeats is not None and not (is_int(repeats) and repeats >= 2):
        raise SensitivityError(
            f"The 'repeats' parameter of {owner} must be an int >= 2 (seeds per architecture; a paired "
            f"comparison needs 2 or more). Got {repeats!r} instead."
        )
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not all(_is_step(s) for s in steps):
        raise SensitivityError(
            f"The 'steps' parameter of {owner} must be a list of width changes, each a fraction in (0, 1) or "
            f"a whole number of neurons >= 1, e.g. 1,2,0.1,0.25,0.5. Got {steps!r} instead."
        )
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise SensitivityError(f"The 'alpha' parameter of {owner} must be a float in (0, 1). Got {alpha!r} instead.")
    return tuple(steps)


def _is_step(step: object) -> bool:
    return (
        isinstance(step, (int, float))
        and not isinstance(step, bool)
        and math.isfinite(step)
        and step > 0
        and (step < 1 or float(step).is_integer())
    )


def _parent_config(parent: optuna.Study) -> SearchConfig:
    name = parent.study_name
    if parent.user_attrs.get(keys.KIND) == keys.SENSITIVITY_KIND:
        raise SensitivityError(
            f"Study {name!r} holds the runs of a sensitivity analysis; pass the study it analysed, "
            f"{parent.user_attrs.get(keys.PARENT_STUDY)!r}."
        )
    if keys.CONFIG not in parent.user_attrs:
        raise SensitivityError(
            f"Study {name!r} has no archsearch config; analyse a study created by `archsearch search CONFIG`."
        )
    return SearchConfig.from_stored(parent.user_attrs[keys.CONFIG])


def _choose_centres(
    parent: optuna.Study,
    config: SearchConfig,
    trial: int | None,
    centers: int | None,
    steps: tuple[float, ...],
    inputs: _Inputs,
    n_outputs: int,
) -> list[Centre]:
    name = parent.study_name
    completed = [
        t for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if keys.WIDTHS in t.user_attrs
    ]
    if not completed:
        raise SensitivityError(
            f"Study {name!r} has no completed trial to analyse; run `archsearch search` until one completes."
        )
    best = best_quality_trial(parent).number
    if centers is not None:
        # A linear trial has no width to change or layer to copy, so it cannot be a centre.
        candidates = [t for t in completed if t.user_attrs[keys.WIDTHS]]
        if not candidates:
            raise SensitivityError(
                f"Every completed trial of study {name!r} is a linear model; there is no centre to perturb."
            )
        points = [(int(t.user_attrs[keys.N_PARAMS]), float(quality_value(t))) for t in candidates]
        chosen = [candidates[i] for i in pick_centres(points, centers, parent.directions[0].name.lower())]
        fractions = [s for s in steps if s < 1]
        step = max(fractions) if fractions else max(steps, default=1)
        return [
            _centre(config, t, inputs, lambda net, n_inputs, _: across_sizes_neighbours(net, n_inputs, n_outputs, step))
            for t in chosen
        ]
    if trial is None:
        trial = best
    trials = parent.get_trials(deepcopy=False)
    if trial >= len(trials):
        raise SensitivityError(
            f"The 'trial' parameter of run_sensitivity must be a trial of study {name!r} (0 to {len(trials) - 1}). "
            f"Got {trial} instead."
        )
    frozen = trials[trial]
    if frozen.state != TrialState.COMPLETE or keys.WIDTHS not in frozen.user_attrs:
        raise SensitivityError(
            f"The 'trial' parameter of run_sensitivity must be a completed trial; trial {trial} of study {name!r} "
            f"is {frozen.state.name}. Pass a completed trial (the best is trial {best}), or leave --trial out."
        )
    hidden_widths = _hidden_layer_widths(config)

    def neighbours(net: NetSpec, n_inputs: int, n_numeric: int | None) -> list[Neighbour]:
        return neighbourhood(net, n_inputs, n_outputs, steps, hidden_widths=hidden_widths, n_numeric=n_numeric)

    return [_centre(config, frozen, inputs, neighbours)]


def _hidden_layer_widths(config: SearchConfig) -> tuple[int, ...]:
    """The narrowest, the geometric middle and the widest width of the space: one hidden layer's candidates."""
    low, high = config.space.width
    return tuple(sorted({low, round(math.sqrt(low * high)), high}))


def _architecture(trial: FrozenTrial) -> NetSpec:
    # With its norm layer and input embedding, if any: the neighbours keep them, so only their size differs.
    return NetSpec.from_trial(trial.user_attrs, trial.params)


def _stored_preprocessing(parent: optuna.Study) -> Preprocessing | None:
    stored = stored_value(parent.user_attrs, keys.PREPROCESSING)
    return None if stored is None else Preprocessing.from_dict(stored)


@dataclass(frozen=True)
class _Inputs:
    """The parent's data as parameter counts need it: its width, and its preprocessing (None in a study without
    one), which names the features of each block and which of them are numeric."""

    n_features: int
    preprocessing: Preprocessing | None

    def read_by(self, net: NetSpec) -> tuple[int, int | None]:
        """The features `net` reads (its blocks' width) and how many are numeric (None: all of them)."""
        if self.preprocessing is None:
            return self.n_features, None
        return self.preprocessing.input_counts(net.blocks)


def _centre(
    config: SearchConfig,
    trial: FrozenTrial,
    inputs: _Inputs,
    neighbours: Callable[[NetSpec, int, int | None], list[Neighbour]],
) -> Centre:
    """The centre of `trial`: its `neighbours(architecture, n_inputs, n_numeric)`, counted at its blocks' width."""
    architecture = _architecture(trial)
    n_inputs, n_numeric = inputs.read_by(architecture)
    # Replaying the trial's params through its space gives the hyperparameters exactly as it trained.
    candidate = config.space.replay(trial.params)
    return Centre(
        trial.number,
        architecture,
        candidate.hyperparameters,
        tuple(neighbours(architecture, n_inputs, n_numeric)),
        n_inputs,
        n_numeric,
    )


def default_repeats(centres: list[Centre], alpha: float = 0.05) -> int:
    """At least 8 seeds, and enough for Holm's correction over the most neighbours a centre has to be passable."""
    most_tests = max((len(centre.neighbours) - 1 for centre in centres), default=0)
    return max(8, fewest_seeds(most_tests, alpha)) if most_tests else 8


def _significance_warnings(centres: list[Centre], repeats: int, alpha: float) -> list[str]:
    by_tests: dict[int, list[int]] = {}
    for centre in centres:
        by_tests.setdefault(len(centre.neighbours) - 1, []).append(centre.trial)
    notes = []
    for n_tests, trials in sorted(by_tests.items()):
        if n_tests == 0 or can_reach_significance(repeats, n_tests, alpha):
            continue
        around = f"trial {trials[0]}" if len(trials) == 1 else "trials " + ", ".join(map(str, trials))
        # The least that can work, said before training; the advice after it (one figure) is never below it.
        notes.append(
            f"With {repeats} seeds no neighbour of {around} can be called better or worse: Holm's correction "
            f"over {n_tests} neighbours asks for p < {alpha / n_tests:.2g}, and the smallest p-value of "
            f"{repeats} paired runs is {smallest_possible_p(repeats):.2g}. That takes at least "
            f"{fewest_seeds(n_tests, alpha)} seeds (--repeats)."
        )
    return notes


def companion_preface(study_name: str) -> str:
    """The first lines of the companion study's note: what its trials are."""
    return (
        f"## What this study holds\n\nThe training runs of `archsearch sensitivity` on study '{study_name}'. Each "
        "trial is one architecture, the centre (a trial of that study) or a neighbour (one change to it: a layer "
        "wider, narrower, removed or added), trained with one seed; its user attributes name the change and the "
        "params record its seed, depth and parameter count. The runs are compared in pairs by seed, so the "
        'dashboard\'s "best trial" here is only the luckiest run, not a recommendation: read the verdicts below.'
    )


def _existing_companion(storage: optuna.storages.BaseStorage, parent: optuna.Study) -> optuna.Study | None:
    """The study of the runs if there is one (nothing is created); refused when another study has its name."""
    name = companion_name(parent.study_name)
    try:
        companion = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    attrs = companion.user_attrs
    ours = (
        attrs.get(keys.KIND) == keys.SENSITIVITY_KIND
        and attrs.get(keys.PARENT_STUDY, parent.study_name) == parent.study_name
    )
    if not ours and (attrs or companion.get_trials(deepcopy=False)):
        raise SensitivityError(
            f"Study {name!r} already exists and does not hold the sensitivity runs of {parent.study_name!r}; "
            f"rename it or delete it (`optuna delete-study --study-name {name}`) first."
        )
    return companion


def _open_companion(storage: optuna.storages.BaseStorage, parent: optuna.Study) -> optuna.Study:
    """Create (or reopen) the study of the runs, marked so that workers train its enqueued jobs."""
    name = companion_name(parent.study_name)
    companion = optuna.create_study(
        study_name=name, storage=storage, direction=parent.directions[0], load_if_exists=True
    )
    if keys.CONFIG not in companion.user_attrs:
        name_metric(companion, parent.user_attrs[keys.METRIC])
        copied = {
            keys.VERSION: archsearch.__version__,
            keys.KIND: keys.SENSITIVITY_KIND,
            keys.PARENT_STUDY: parent.study_name,
        }
        # With the fingerprint, workers refuse data that differs from what the parent's trials trained on.
        for key in (keys.METRIC, keys.TASK, keys.DATA, keys.PREPROCESSING, keys.FINGERPRINT):
            if key in parent.user_attrs:
                copied[key] = stored_value(parent.user_attrs, key)  # joined, when the parent's was split
        # In one transaction with the rest, as by the controller: CONFIG marks a study that workers may join.
        set_study_user_attrs(companion, {**copied, keys.CONFIG: parent.user_attrs[keys.CONFIG]})
    return companion


def _finished_jobs(trials: Sequence[FrozenTrial]) -> set[str]:
    return {t.user_attrs[keys.JOB_ID] for t in trials if t.state in FINISHED_STATES and keys.JOB_ID in t.user_attrs}


def _first_finished_runs(trials: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The finished run of each job; of two (two workers retried one failed job at once), the first."""
    runs: dict[str, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state in FINISHED_STATES and keys.JOB_ID in t.user_attrs:
            runs.setdefault(t.user_attrs[keys.JOB_ID], t)
    return runs


@dataclass(frozen=True)
class _Training:
    """Where the runs will train, checked before the analysis writes anything."""

    config: SearchConfig  # the parent's, with the storage URL this machine reaches it by
    slots: list[WorkerSlot]
    data: PreparedData  # the parent's data as read here; in-process runs train on it


def _prepare_training(url: str, parent: optuna.Study, config: SearchConfig, workers: int | None) -> _Training:
    """Place the workers and read the data, refusing data that changed since the parent's trials trained on it.

    Raises:
        ConfigError: The workers cannot be placed, or the data changed (named as for a resumed search).
        DataError: The data cannot be read here.
    """
    # The URL given here is how this machine reaches the database; the stored one may name another host.
    config = config.replace(storage=url)
    slots = plan_slots(config, workers, None, 1)
    fetch_encoded(parent, config.data, artifact_folder(config, url))  # the encoder's vectors the parent trained on
    data = load_data(config.data)
    check_same_data(parent, data, url)
    return _Training(config, slots, data)


def _train_jobs(companion: optuna.Study, training: _Training, total: int, quiet: bool, stream: TextIO) -> None:
    """Train the queued jobs in this process (one worker) or in the worker pool, as a search's trials.

    In this process the worker trains through the study handed down, on a storage with heartbeats opened
    once here (it was opened again from the URL for the worker's config, then for its heartbeats).
    """
    opened = None
    if len(training.slots) == 1:
        storage = worker_storage(training.config.study.storage, training.config)
        study = optuna.load_study(study_name=companion.study_name, storage=storage)
        use_worker_sampler(study, training.config)
        opened = WorkerStudy(training.config, storage, study)
    run_slots(
        training.config,
        companion,
        training.slots,
        in_process=True,
        data=training.data,
        total=total,
        quiet=quiet,
        stream=stream,
        kind=SENSITIVITY,
        opened=opened,
    )
