"""The sensitivity analysis: choose centres, queue their neighbours' runs, train them, compare seed by seed."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

import archsearch
from archsearch._sensitivity_jobs import (
    JOB_ID_ATTR, JOBS_ATTR, KIND, KIND_ATTR, Centre, companion_name, job_id, live_job_count, pending_jobs, plan_jobs,
)  # fmt: skip
from archsearch.config import CONFIG_ATTR, SearchConfig
from archsearch.dashboards._paired import (
    PairedEffect, can_reach_significance, compare_to_centre, minimum_detectable_difference, noise_floor,
    paired_differences, smallest_possible_p,
)  # fmt: skip
from archsearch.spaces import Architecture, Neighbour, across_sizes_neighbours, neighbourhood, pick_centres
from archsearch.storage import FINISHED_STATES, make_storage, open_study

if TYPE_CHECKING:
    from archsearch.dashboards._report import Report

__all__ = ["DEFAULT_STEPS", "CentreResult", "NeighbourResult", "SensitivityError", "SensitivityResult", "run_sensitivity"]

DEFAULT_STEPS = (1, 2, 0.1, 0.25, 0.5)
_STEP_LABEL = re.compile(r"\(([+-][^)]*)\)$")  # "(+1)", "(-50%)" at the end of a width change
_GROUPS = {
    "centre": "centre", "remove_layer": "-1 layer", "add_layer": "+1 layer", "linear": "linear model",
    "uniform": "uniform widths", "no_dropout": "no dropout",
}  # fmt: skip


class SensitivityError(ValueError):
    """An analysis that cannot start as asked; the message names the rule, the value and the fix."""


@dataclass(frozen=True)
class NeighbourResult:
    """One neighbour of a centre and how it compares with the centre, seed by seed.

    Attributes:
        kind: One of `archsearch.spaces.NEIGHBOUR_KINDS`.
        change: What changed, in words: ``"layer 0: 64 -> 65 (+1)"``.
        group: The change without its layer, to compare centres: ``"+1 neuron"``, ``"-50%"``, ``"-1 layer"``.
        key: `archsearch.spaces.architecture_key` of the neighbour.
        layer: Layer resized, removed or copied; None for whole-network changes.
        widths: Hidden widths of the neighbour.
        dropouts: Dropout of each hidden layer.
        delta_units: Hidden units minus the centre's.
        n_params: Trainable parameters.
        delta_params: Parameters minus the centre's.
        values: Best validation metric of each finished run, by seed.
        diverged: Runs that diverged; they are left out of the comparison.
        effect: Paired comparison with the centre; None when no seed finished for both.
    """

    kind: str
    change: str
    group: str
    key: str
    layer: int | None
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    delta_units: int
    n_params: int
    delta_params: int
    values: dict[int, float]
    diverged: int
    effect: PairedEffect | None


@dataclass(frozen=True)
class CentreResult:
    """A centre trial, its seed-to-seed noise and its neighbours.

    Attributes:
        trial: Trial number in the searched study.
        widths: Hidden widths of the centre.
        dropouts: Dropout of each hidden layer.
        activation: Activation of the hidden layers.
        n_params: Trainable parameters.
        hyperparameters: ``lr``, ``weight_decay``, ``batch_size``, ``optimizer`` every run of this centre used.
        values: Best validation metric of the centre's runs, by seed.
        diverged: Centre runs that diverged.
        noise_floor: Seed-to-seed standard deviation of ``values``; NaN with fewer than 2 runs.
        minimum_detectable_difference: Smallest mean difference found with 80% power at this number of
            seeds, at Holm's strictest level ``alpha / n_tests``, with the median seed-to-seed spread of the
            neighbours' paired differences; NaN when no neighbour has 2 paired runs.
        n_tests: Neighbours compared together (Holm's family).
        can_reach_significance: Whether this many seeds can make any neighbour significant at all.
        neighbours: The neighbours, in the order of `archsearch.spaces.neighbourhood`.
    """

    trial: int
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    activation: str
    n_params: int
    hyperparameters: dict[str, Any]
    values: dict[int, float]
    diverged: int
    noise_floor: float
    minimum_detectable_difference: float
    n_tests: int
    can_reach_significance: bool
    neighbours: tuple[NeighbourResult, ...]

    @property
    def mean(self) -> float:
        """Mean of ``values``; NaN when no run finished."""
        return statistics.fmean(self.values.values()) if self.values else math.nan


@dataclass
class SensitivityResult:
    """What `run_sensitivity` found: per centre, its noise floor and each neighbour's paired effect.

    Attributes:
        study_name: The searched study.
        companion_study: The study holding the runs (``<study_name>.sensitivity``).
        metric: The validation metric compared.
        direction: ``"maximize"`` or ``"minimize"``.
        alpha: Family-wise error rate per centre.
        seeds: Training seeds of every architecture.
        steps: Width steps besides +-1 neuron.
        centres: One result per centre, by increasing size when several.
        runs_planned: Runs this analysis needs (architectures x seeds).
        runs_trained: Of those, runs trained by this call.
        runs_reused: Runs that an earlier call had finished.
        runs_diverged: Finished runs that diverged.
        runs_missing: Planned runs without a finished trial (their runs failed); rerun to retry them.
        warnings: Sentences about what this analysis cannot show.
        summary: The findings in words (Markdown headings and bullets).
    """

    study_name: str
    companion_study: str
    metric: str
    direction: str
    alpha: float
    seeds: list[int]
    steps: list[float]
    centres: list[CentreResult]
    runs_planned: int
    runs_trained: int
    runs_reused: int
    runs_diverged: int
    runs_missing: int
    warnings: list[str]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (NaN becomes None, seeds become string keys)."""
        return _json_safe({
            "study": self.study_name,
            "companion_study": self.companion_study,
            "metric": self.metric,
            "direction": self.direction,
            "alpha": self.alpha,
            "seeds": self.seeds,
            "steps": self.steps,
            "runs": {
                "planned": self.runs_planned, "trained": self.runs_trained, "reused": self.runs_reused,
                "diverged": self.runs_diverged, "missing": self.runs_missing,
            },
            "warnings": self.warnings,
            "summary": self.summary,
            "centres": [_centre_dict(c) for c in self.centres],
        })  # fmt: skip

    def to_json(self, indent: int | None = 2) -> str:
        """Return `to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> str:
        """Return the effects as a plain-text table, one block per centre, for the terminal."""
        return _table(self)

    def report(self) -> Report:
        """Build the figures (forest plot, width curves, effects across centre sizes) and the summary."""
        from archsearch.dashboards._sensitivity import build_sensitivity_report

        return build_sensitivity_report(self.to_dict())


def run_sensitivity(
    storage_url: str,
    study_name: str,
    *,
    trial: int | None = None,
    centers: int | None = None,
    repeats: int = 8,
    steps: Sequence[float] = DEFAULT_STEPS,
    workers: int | None = 1,
    alpha: float = 0.05,
    quiet: bool = True,
    stream: TextIO | None = None,
) -> SensitivityResult:
    """Train the neighbours of a trial (or of several) with paired seeds and say which changes matter.

    The best trial, trial ``trial``, or ``centers`` trials spread over the sizes of the study's small and
    good networks are the centres. Each centre and each of its neighbours is trained with seeds
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
        steps: Width changes besides +-1 neuron: fractions in (0, 1) of a layer's width, or whole
            neuron counts.
        workers: Worker processes; 1 trains in this process, None places one per GPU or CPU core.
        alpha: Family-wise error rate of the neighbours of one centre (Holm's correction).
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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(storage_url)
    parent = open_study(storage, study_name, url=storage_url)
    config = _parent_config(parent)
    direction = parent.direction.name.lower()
    sizes = parent.user_attrs["data"]
    n_inputs, n_outputs = sizes["n_features"], sizes["n_outputs"]
    centres = _choose_centres(parent, config, trial, centers, steps, n_inputs, n_outputs)
    seeds = list(range(repeats))
    jobs = plan_jobs(centres, seeds, n_inputs, n_outputs)
    notes = _significance_warnings(centres, repeats, alpha)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)

    companion = _open_companion(storage, parent)
    planned = {job[JOB_ID_ATTR] for job in jobs}
    reused = _finished_jobs(companion.get_trials(deepcopy=False)) & planned
    for job in pending_jobs(jobs, companion.get_trials(deepcopy=False)):
        companion.enqueue_trial(params={}, user_attrs=job)
    total = live_job_count(companion.get_trials(deepcopy=False))
    companion.set_user_attr(JOBS_ATTR, total)
    if len(reused) < len(planned):
        _train_jobs(storage_url, companion, config, total, workers, quiet, stream or sys.stderr)

    trials = companion.get_trials(deepcopy=False)
    runs = _first_finished_runs(trials)
    finished = set(runs) & planned
    results = [_compare(c, seeds, runs, direction, alpha, n_inputs, n_outputs) for c in centres]
    result = SensitivityResult(
        study_name=study_name,
        companion_study=companion.study_name,
        metric=parent.user_attrs["metric"],
        direction=direction,
        alpha=alpha,
        seeds=seeds,
        steps=list(steps),
        centres=results,
        runs_planned=len(planned),
        runs_trained=len(finished - reused),
        runs_reused=len(reused),
        runs_diverged=sum(runs[j].state == TrialState.PRUNED for j in finished),
        runs_missing=len(planned - finished),
        warnings=notes,
        summary="",
    )
    result.summary = _summary(result)
    result.report().push_to_dashboard(companion)
    return result


def _check_arguments(
    trial: int | None, centers: int | None, repeats: int, steps: Sequence[float], alpha: float
) -> tuple[float, ...]:
    owner = "run_sensitivity"
    if trial is not None and centers is not None:
        raise SensitivityError(
            f"Pass either 'trial' or 'centers' to {owner}, not both (--trial N or --centers K). "
            f"Got trial={trial!r} and centers={centers!r}."
        )
    if trial is not None and not (_is_int(trial) and trial >= 0):
        raise SensitivityError(f"The 'trial' parameter of {owner} must be an int >= 0. Got {trial!r} instead.")
    if centers is not None and not (_is_int(centers) and centers >= 1):
        raise SensitivityError(f"The 'centers' parameter of {owner} must be an int >= 1. Got {centers!r} instead.")
    if not (_is_int(repeats) and repeats >= 2):
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_step(step: object) -> bool:
    return (
        isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step) and step > 0
        and (step < 1 or float(step).is_integer())
    )  # fmt: skip


def _parent_config(parent: optuna.Study) -> SearchConfig:
    name = parent.study_name
    if parent.user_attrs.get(KIND_ATTR) == KIND:
        raise SensitivityError(
            f"Study {name!r} holds the runs of a sensitivity analysis; pass the study it analysed, "
            f"{parent.user_attrs.get('parent_study')!r}."
        )
    if CONFIG_ATTR not in parent.user_attrs:
        raise SensitivityError(
            f"Study {name!r} has no archsearch config; analyse a study created by `archsearch search CONFIG`."
        )
    return SearchConfig.from_dict(parent.user_attrs[CONFIG_ATTR])


def _choose_centres(
    parent: optuna.Study,
    config: SearchConfig,
    trial: int | None,
    centers: int | None,
    steps: tuple[float, ...],
    n_inputs: int,
    n_outputs: int,
) -> list[Centre]:
    name = parent.study_name
    completed = [t for t in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "widths" in t.user_attrs]
    if not completed:
        raise SensitivityError(f"Study {name!r} has no completed trial to analyse; run `archsearch search` until one completes.")
    best = parent.best_trial.number
    if centers is not None:
        # A linear trial has no width to change or layer to copy, so it cannot be a centre.
        candidates = [t for t in completed if t.user_attrs["widths"]]
        if not candidates:
            raise SensitivityError(f"Every completed trial of study {name!r} is a linear model; there is no centre to perturb.")
        points = [(int(t.user_attrs["n_params"]), float(t.value)) for t in candidates]
        chosen = [candidates[i] for i in pick_centres(points, centers, parent.direction.name.lower())]
        fractions = [s for s in steps if s < 1]
        step = max(fractions) if fractions else max(steps, default=1)
        return [_centre(config, t, across_sizes_neighbours(_architecture(t), n_inputs, n_outputs, step)) for t in chosen]
    if trial is None:
        trial = best
    trials = parent.get_trials(deepcopy=False)
    if trial >= len(trials):
        raise SensitivityError(
            f"The 'trial' parameter of run_sensitivity must be a trial of study {name!r} (0 to {len(trials) - 1}). "
            f"Got {trial} instead."
        )
    frozen = trials[trial]
    if frozen.state != TrialState.COMPLETE or "widths" not in frozen.user_attrs:
        raise SensitivityError(
            f"The 'trial' parameter of run_sensitivity must be a completed trial; trial {trial} of study {name!r} "
            f"is {frozen.state.name}. Pass a completed trial (the best is trial {best}), or leave --trial out."
        )
    if not frozen.user_attrs["widths"]:
        raise SensitivityError(
            f"Trial {trial} of study {name!r} is the linear model: it has no layer to resize, remove or copy. "
            "Pass --trial with a trial that has hidden layers."
        )
    return [_centre(config, frozen, neighbourhood(_architecture(frozen), n_inputs, n_outputs, steps))]


def _architecture(trial: FrozenTrial) -> Architecture:
    attrs = trial.user_attrs
    return Architecture(widths=tuple(attrs["widths"]), dropouts=tuple(attrs["dropouts"]), activation=attrs["activation"])


def _centre(config: SearchConfig, trial: FrozenTrial, neighbours: list[Neighbour]) -> Centre:
    # Replaying the trial's params through its space gives the hyperparameters exactly as it trained.
    candidate = config.space.sample(optuna.trial.FixedTrial(trial.params))
    return Centre(trial.number, _architecture(trial), candidate.hyperparameters, tuple(neighbours))


def _significance_warnings(centres: list[Centre], repeats: int, alpha: float) -> list[str]:
    by_tests: dict[int, list[int]] = {}
    for centre in centres:
        by_tests.setdefault(len(centre.neighbours) - 1, []).append(centre.trial)
    notes = []
    for n_tests, trials in sorted(by_tests.items()):
        if n_tests == 0 or can_reach_significance(repeats, n_tests, alpha):
            continue
        needed = next(n for n in itertools.count(repeats + 1) if can_reach_significance(n, n_tests, alpha))
        around = f"trial {trials[0]}" if len(trials) == 1 else "trials " + ", ".join(map(str, trials))
        notes.append(
            f"With {repeats} seeds no neighbour of {around} can be called better or worse: Holm's correction "
            f"over {n_tests} neighbours asks for p < {alpha / n_tests:.2g}, and the smallest p-value of "
            f"{repeats} paired runs is {smallest_possible_p(repeats):.2g}. Use --repeats {needed} or more."
        )
    return notes


def _open_companion(storage: optuna.storages.BaseStorage, parent: optuna.Study) -> optuna.Study:
    """Create (or reopen) the study of the runs, marked so that workers train its enqueued jobs."""
    name = companion_name(parent.study_name)
    companion = optuna.create_study(study_name=name, storage=storage, direction=parent.direction, load_if_exists=True)
    attrs = companion.user_attrs
    ours = attrs.get(KIND_ATTR) == KIND and attrs.get("parent_study", parent.study_name) == parent.study_name
    if not ours and (attrs or companion.get_trials(deepcopy=False)):
        raise SensitivityError(
            f"Study {name!r} already exists and does not hold the sensitivity runs of {parent.study_name!r}; "
            f"rename it or delete it (`optuna delete-study --study-name {name}`) first."
        )
    if CONFIG_ATTR not in attrs:
        companion.set_user_attr("archsearch_version", archsearch.__version__)
        companion.set_user_attr(KIND_ATTR, KIND)
        companion.set_user_attr("parent_study", parent.study_name)
        for key in ("metric", "task", "data", "preprocessing"):
            if key in parent.user_attrs:
                companion.set_user_attr(key, parent.user_attrs[key])
        # Written last, as by the controller: its presence marks a complete study that workers may join.
        companion.set_user_attr(CONFIG_ATTR, parent.user_attrs[CONFIG_ATTR])
    return companion


def _finished_jobs(trials: Sequence[FrozenTrial]) -> set[str]:
    return {t.user_attrs[JOB_ID_ATTR] for t in trials if t.state in FINISHED_STATES and JOB_ID_ATTR in t.user_attrs}


def _first_finished_runs(trials: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The finished run of each job; of two (two workers retried one failed job at once), the first."""
    runs: dict[str, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state in FINISHED_STATES and JOB_ID_ATTR in t.user_attrs:
            runs.setdefault(t.user_attrs[JOB_ID_ATTR], t)
    return runs


def _train_jobs(
    url: str, companion: optuna.Study, config: SearchConfig, total: int, workers: int | None, quiet: bool, stream: TextIO
) -> None:
    """Train the queued jobs in this process (one worker) or in the worker pool, as a search's trials."""
    from archsearch.controller import SearchError, _log_dir_for, _plan
    from archsearch.pool import PoolFailure, progress_line, run_pool
    from archsearch.worker import run_worker

    # The URL given here is how this machine reaches the database; the stored one may name another host.
    config = config.replace(storage=url)
    slots = _plan(config, workers, None, 1)
    metric = companion.user_attrs["metric"]
    stop = (
        f"Stopped the sensitivity runs of study {companion.study_name!r} after {config.study.max_consecutive_failures} "
        "failed runs in a row; {}. Fix the cause and rerun the same command: finished runs are kept."
    )
    if len(slots) == 1:
        started = time.monotonic()

        def progress(study: optuna.Study, trial: FrozenTrial) -> None:
            stream.write(progress_line(study, total, metric, started) + "\n")
            stream.flush()

        outcome = run_worker(url, companion.study_name, slots[0], total=total, callbacks=[] if quiet else [progress])
        if outcome.stopped_by_failures:
            raise SearchError(stop.format(f"the last (trial {outcome.last_failed_trial}) failed with: {outcome.last_failure}"))
        return
    try:
        run_pool(url, companion, slots, total=total, metric=metric, log_dir=_log_dir_for(config), quiet=quiet, stream=stream)
    except PoolFailure as e:
        raise SearchError(stop.format(e)) from e


def _compare(
    centre: Centre,
    seeds: list[int],
    runs: dict[str, FrozenTrial],
    direction: str,
    alpha: float,
    n_inputs: int,
    n_outputs: int,
) -> CentreResult:
    """Compare each neighbour of one centre with it over the seeds both finished, Holm-corrected together."""
    values: dict[str, dict[int, float]] = {}
    diverged: dict[str, int] = {}
    for neighbour in centre.neighbours:
        found = [(seed, runs.get(job_id(centre.trial, neighbour.key, seed))) for seed in seeds]
        values[neighbour.key] = {seed: run.value for seed, run in found if run is not None and run.state == TrialState.COMPLETE}
        diverged[neighbour.key] = sum(run is not None and run.state == TrialState.PRUNED for _, run in found)
    centre_key, others = centre.neighbours[0].key, centre.neighbours[1:]
    centre_values = values[centre_key]
    comparable = {n.key: values[n.key] for n in others if set(values[n.key]) & set(centre_values)}
    effects = compare_to_centre(centre_values, comparable, direction, alpha) if comparable else {}
    spreads = [
        statistics.stdev(d) for d in (paired_differences(centre_values, v).tolist() for v in comparable.values()) if len(d) >= 2
    ]
    n_tests = len(others)
    mdd = math.nan
    if spreads and n_tests:
        mdd = minimum_detectable_difference(statistics.median(spreads), len(seeds), alpha / n_tests)
    centre_params = centre.architecture.n_params(n_inputs, n_outputs)
    neighbours = []
    for n in others:
        architecture = n.architecture
        n_params = architecture.n_params(n_inputs, n_outputs)
        neighbours.append(NeighbourResult(
            kind=n.kind, change=n.change, group=_group(n), key=n.key, layer=n.layer, widths=architecture.widths,
            dropouts=architecture.dropouts, delta_units=n.delta_units, n_params=n_params,
            delta_params=n_params - centre_params, values=values[n.key], diverged=diverged[n.key],
            effect=effects.get(n.key),
        ))  # fmt: skip
    architecture = centre.architecture
    return CentreResult(
        trial=centre.trial,
        widths=architecture.widths,
        dropouts=architecture.dropouts,
        activation=architecture.activation,
        n_params=centre_params,
        hyperparameters=centre.hyperparameters.to_dict(),
        values=centre_values,
        diverged=diverged[centre_key],
        noise_floor=noise_floor(centre_values) if len(centre_values) >= 2 else math.nan,
        minimum_detectable_difference=mdd,
        n_tests=n_tests,
        can_reach_significance=n_tests > 0 and can_reach_significance(len(seeds), n_tests, alpha),
        neighbours=tuple(neighbours),
    )


def _group(neighbour: Neighbour) -> str:
    """The change of a neighbour without its layer: "+1 neuron", "-2 neurons", "-50%", "-1 layer"."""
    if neighbour.kind != "width":
        return _GROUPS[neighbour.kind]
    label = _STEP_LABEL.search(neighbour.change).group(1)
    if label.endswith("%"):
        return label
    count = int(label)
    return f"{count:+d} neuron{'' if abs(count) == 1 else 's'}"


def _centre_dict(centre: CentreResult) -> dict[str, Any]:
    return {
        "trial": centre.trial,
        "widths": list(centre.widths),
        "dropouts": list(centre.dropouts),
        "activation": centre.activation,
        "n_params": centre.n_params,
        "hyperparameters": centre.hyperparameters,
        "values": {str(seed): v for seed, v in centre.values.items()},
        "mean": centre.mean,
        "diverged": centre.diverged,
        "noise_floor": centre.noise_floor,
        "minimum_detectable_difference": centre.minimum_detectable_difference,
        "n_tests": centre.n_tests,
        "can_reach_significance": centre.can_reach_significance,
        "neighbours": [
            {
                "kind": n.kind, "change": n.change, "group": n.group, "key": n.key, "layer": n.layer,
                "widths": list(n.widths), "dropouts": list(n.dropouts), "delta_units": n.delta_units,
                "n_params": n.n_params, "delta_params": n.delta_params,
                "values": {str(seed): v for seed, v in n.values.items()}, "diverged": n.diverged,
                "effect": None if n.effect is None else {
                    "mean": n.effect.mean, "ci_low": n.effect.ci_low, "ci_high": n.effect.ci_high, "n": n.effect.n,
                    "p_value": n.effect.p_value, "p_adjusted": n.effect.p_adjusted, "verdict": n.effect.verdict,
                },
            }
            for n in centre.neighbours
        ],
    }  # fmt: skip


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _describe(centre: CentreResult) -> str:
    """``"trial 3 (1 layer of 64, relu; 451 params)"``."""
    depth = len(centre.widths)
    layers = f"{depth} layer{'s' if depth != 1 else ''} of {', '.join(map(str, centre.widths))}, {centre.activation}"
    return f"trial {centre.trial} ({layers}; {centre.n_params:,} params)"


def _summary(result: SensitivityResult) -> str:
    better = "higher" if result.direction == "maximize" else "lower"
    n_arch = sum(len(c.neighbours) + 1 for c in result.centres)
    lines = [
        f"## Sensitivity of study '{result.study_name}': validation {result.metric}, {better} is better",
        "",
        f"- Runs: {result.runs_planned} ({n_arch} architectures x {len(result.seeds)} seeds, paired by seed); "
        f"{result.runs_trained} trained now, {result.runs_reused} reused, {result.runs_diverged} diverged"
        + (f", {result.runs_missing} failed (rerun to retry them)." if result.runs_missing else "."),
    ]
    for centre in result.centres:
        lines.append(
            f"- Centre {_describe(centre)}: {_fmt(centre.mean)} on average; seed-to-seed sd {_fmt(centre.noise_floor)} "
            f"(the noise floor); with {len(result.seeds)} seeds a difference below "
            f"{_fmt(centre.minimum_detectable_difference)} is unlikely to be detected."
        )
        by_verdict: dict[str, list[NeighbourResult]] = {"worse": [], "better": [], "within noise": []}
        for n in centre.neighbours:
            if n.effect is not None:
                by_verdict[n.effect.verdict].append(n)
        for verdict in ("worse", "better"):
            found = by_verdict[verdict]
            listed = "; ".join(
                f"{n.change} ({n.effect.mean:+.3g}, 95% CI {n.effect.ci_low:+.3g} to {n.effect.ci_high:+.3g})" for n in found
            )
            lines.append(f"- {verdict.capitalize()} than trial {centre.trial}: {listed or 'none'}.")
        noise = by_verdict["within noise"]
        one_neuron = [n for n in centre.neighbours if n.group in ("+1 neuron", "-1 neuron")]
        plateau = " (every +-1 neuron change among them)" if one_neuron and all(n in noise for n in one_neuron) else ""
        lines.append(f"- Within noise: {len(noise)} of {len(centre.neighbours)} changes{plateau}.")
    lines += [f"- Warning: {note}" for note in result.warnings]
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"


def _table(result: SensitivityResult) -> str:
    blocks = []
    for centre in result.centres:
        head = (
            f"Centre {_describe(centre)}: val {result.metric} {_fmt(centre.mean)}, noise floor (sd) "
            f"{_fmt(centre.noise_floor)}, detectable difference {_fmt(centre.minimum_detectable_difference)} "
            f"at {len(result.seeds)} seeds"
        )
        width = max([len("change"), *(len(n.change) for n in centre.neighbours)])
        rows = [
            f"  {'change':<{width}}  {'params':>8}  {'mean diff':>9}  {'95% CI':^21}  {'p (Holm)':>8}  {'verdict':<12}  {'n':>3}"
        ]
        for n in sorted(centre.neighbours, key=lambda n: (n.delta_params, n.change)):
            e = n.effect
            if e is None:
                rows.append(f"  {n.change:<{width}}  {n.delta_params:>+8,}  {'no paired run finished':>9}")
                continue
            interval = f"[{e.ci_low:+.4f}, {e.ci_high:+.4f}]" if math.isfinite(e.ci_low) else "n/a"
            rows.append(
                f"  {n.change:<{width}}  {n.delta_params:>+8,}  {e.mean:>+9.4f}  {interval:^21}  {e.p_adjusted:>8.3g}  "
                f"{e.verdict:<12}  {e.n:>3}"
            )
        blocks.append("\n".join([head, *rows]))
    lines = ["\n\n".join(blocks)]
    lines += [f"Warning: {note}" for note in result.warnings]
    return "\n".join(lines)
