"""The fused worker loop: up to `[train] slots` trials of one study trained together in one process.

Trials are asked from Optuna one at a time and placed in an `archsearch.trainers.Population` of their
group (activation, batch size, normalization, embedding) whose size fits them: the smallest population with a free slot
whose padded network costs at most twice the trial's own arithmetic (or is small anyway), else a new
population of the trial's own depth and its widest layer rounded up to a power of two. Padding every trial
to the space's largest network made a digits search half as fast as the single engine (BENCHMARKS.md §8).
After each epoch every slot reports to its own trial (intermediate value, pruner), every running trial
gets a heartbeat, and each slot whose run ended is told to Optuna and refilled with a newly asked trial,
so the worker keeps `slots` trials running until the study's total is reached. Past a timeout with no
complete trial (nothing to refit), it finishes only its most promising trial.

When no trial is left to ask, the worker's ordinary loop takes over: it waits for trials running
elsewhere and trains the retries of any whose worker died, on the single engine.

A fused trial is an ordinary trial: the same parameters, user attributes, per-epoch values and weights
artifact as a trial of the single engine, plus `engine = "fused"` and `fused_slot`. A trial whose options
the fused engine does not support ([data] folds, ...) trains at once on the single engine, with
`engine = "single"` and the reason in `engine_reason`.

The loop serves every kind of job: it asks the objective (a `TrialObjective`) for each trial's
`FusedSlot`; a sensitivity analysis's seeds x neighbours of one centre are the many same-shaped runs
that fuse best (never pruned, no weights kept).
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from archsearch.pool._budget import AskDeadline
from archsearch.pool._objective import OverBudget, TotalReached, TrialObjective, stop_for_time
from archsearch.storage import FINISHED_STATES, keys, maximizes, set_user_attrs, trial_state_counts

__all__ = ["fused_trial_loop"]

Callback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass
class _Running:
    trial: optuna.Trial
    population: Any  # archsearch.trainers.Population
    slot: int
    finish: Callable[[Any], float]  # records the finished run's outcome (FusedSlot.finish); raises TrialPruned


class _Heartbeats(threading.Thread):
    """One heartbeat per interval for every trial this worker trains, as Optuna's per-trial thread does.

    A thread and not a beat per epoch: an epoch of many slots, or a trial that falls back to the single
    engine, can outlast the grace period, and a live worker's trials must not be failed as stale.
    """

    def __init__(self, storage: Any):
        super().__init__(daemon=True)
        self.storage, self.ids, self.lock, self.done = storage, set(), threading.Lock(), threading.Event()
        self.interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None

    def beat(self, trial_id: int) -> None:
        """Record a first heartbeat for `trial_id` now and keep beating for it."""
        if self.interval is not None:
            self.storage.record_heartbeat(trial_id)
            with self.lock:
                self.ids.add(trial_id)

    def forget(self, trial_id: int) -> None:
        with self.lock:
            self.ids.discard(trial_id)

    def run(self) -> None:
        while self.interval is not None and not self.done.wait(self.interval):
            with self.lock:
                ids = list(self.ids)
            for trial_id in ids:
                self.storage.record_heartbeat(trial_id)


def fused_trial_loop(
    study: optuna.Study,
    storage: Any,
    objective: TrialObjective,
    callbacks: list[Callback],
    stop: Any,  # archsearch.worker.GracefulStop
    *,
    total: int,
    failure_limit: int,
    failed_streak: Callable[[], int],
    finished_here: Callable[[], int],
    max_trials: int | None = None,
    deadline: AskDeadline | None = None,
) -> None:
    """Train the study's trials `[train] slots` at a time until its total, a limit, a failure streak or a stop.

    Every finished trial is told to Optuna and passed to `callbacks`, as `study.optimize` would. On a stop
    request (or an error) the trials still training are failed with the reason; interrupted ones are put back.
    """
    slots = objective.config.train.slots
    populations: list[Any] = []  # archsearch.trainers.Population
    running: list[_Running] = []
    heartbeats = _Heartbeats(storage)
    heartbeats.start()
    # The median and percentile pruners read only the complete trials; each slot asking for them read every
    # running trial too (24 ms a call with 16 slots on SQLite, a fifth of a digits search), so they are
    # read once per epoch round. Other pruners keep per-trial state in the storage and are asked as usual.
    complete = _CompleteTrials(study) if isinstance(study.pruner, optuna.pruners.PercentilePruner) else None

    def asking_allowed() -> bool:
        if stop.requested or failed_streak() >= failure_limit:
            return False
        if deadline is not None and deadline.passed():
            return False
        if max_trials is not None and finished_here() + len(running) >= max_trials:
            return False
        counts = trial_state_counts(study)
        claimed = sum(counts[s] for s in FINISHED_STATES) + counts[TrialState.RUNNING]
        return claimed < total or counts[TrialState.WAITING] > 0

    def tell(trial: optuna.Trial, value: float | None, state: TrialState = TrialState.COMPLETE) -> None:
        heartbeats.forget(trial._trial_id)
        frozen = study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        for callback in callbacks:
            callback(study, frozen)

    try:
        while True:
            while len(running) < slots and asking_allowed():
                trial = _ask(study)
                heartbeats.beat(trial._trial_id)
                try:
                    placed = _place(trial, objective, populations, tell, complete)
                except TotalReached:
                    tell(trial, None, TrialState.FAIL)
                    break  # the study reached its total while this trial was asked
                if placed is not None:
                    running.append(placed)
            if not running:
                return
            if complete is not None:
                complete.refresh()
            _step_epoch(populations, running, tell)
            # Past the deadline with a trial to refit, the reporters stop every slot (time_up); with none, one goes on.
            if deadline is not None and deadline.reserve and len(running) > 1 and deadline.passed():
                if not deadline.time_up():  # nothing to refit yet
                    _keep_most_promising(running, study, tell)
            if stop.requested:
                raise KeyboardInterrupt("stopped by a signal")
    except BaseException as e:
        _fail_running(running, e, tell, stop)
        raise
    finally:
        heartbeats.done.set()
        heartbeats.join()


def _ask(study: optuna.Study) -> optuna.Trial:
    """Ask for a trial as `study.optimize` does, failing stale trials first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna warns that heartbeats belong to study.optimize; _Heartbeats does its part here.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed", category=UserWarning)
        fail_stale_trials(study)
        return study.ask()


def _step_epoch(populations: list[Any], running: list[_Running], tell: Callable) -> None:
    """Train every population one epoch; record the trials that finished in it."""
    for population in list(populations):
        for slot, result in population.step_epoch():
            entry = next(r for r in running if r.population is population and r.slot == slot)
            running.remove(entry)
            _record(entry, result, tell)


def _fail_running(running: list[_Running], error: BaseException, tell: Callable, stop: Any) -> None:
    """Fail the trials still training with the reason; a signal's are put back when the worker leaves."""
    interrupted = isinstance(error, KeyboardInterrupt)
    for entry in running:
        reason = "stopped by a signal" if interrupted else f"{type(error).__name__}: {error}"
        set_user_attrs(entry.trial, {keys.FAIL_REASON: reason[:2000]})
        tell(entry.trial, None, TrialState.FAIL)
        if interrupted:
            stop.interrupted(entry.trial._trial_id)  # see GracefulStop


def _keep_most_promising(running: list[_Running], study: optuna.Study, tell: Callable) -> None:
    """Past the timeout, stop every running trial but the one with the best validation value so far.

    With the refit's reserve, running trials stop at the timeout (`time_up`) unless no trial has completed
    yet: then they run on, so that the export has a trial to refit. A single-engine worker has one such
    trial; a fused worker has `slots` of them, in lockstep, which on a CPU ran a 31 s search for minutes
    (BENCHMARKS.md section 8, sixth session). Keeping the most promising one bounds the overrun by one
    trial, as for the single engine; it then trains alone.
    """
    maximize = maximizes(study)

    def rank(entry: _Running) -> tuple[bool, float]:
        value = entry.population.best_value(entry.slot)  # None before its first epoch: ranked last
        if value is None:
            return True, 0.0
        return False, -value if maximize else value

    keep = min(running, key=rank)
    for entry in [r for r in running if r is not keep]:
        reason = (
            f"stopped at the timeout with no trial complete yet: the worker finishes only trial {keep.trial.number}"
        )
        result = entry.population.stop(entry.slot, reason)
        running.remove(entry)
        _record(entry, result, tell)
    keep.population.trim()  # the kept run no longer pays for the rows of the runs stopped around it


def _place(
    trial: optuna.Trial, objective: Any, populations: list, tell: Callable, complete: _CompleteTrials | None
) -> _Running | None:
    """Add `trial` to a population that fits it; None when it already ended (single engine, error).

    Raises:
        TotalReached: The study holds its total already; the trial was marked as not run.
    """
    try:
        slot_of = objective.fused_slot(trial)
        spec, reason = slot_of.spec, slot_of.unfused_reason
        population = None
        if reason is None:
            population = _population_for(spec, objective, populations)
            reason = population.unfit_reason(spec)
        if reason is not None:
            set_user_attrs(trial, {keys.ENGINE: "single", keys.ENGINE_REASON: reason})
            tell(trial, slot_of.train_single())
            return None
        if population not in populations:
            populations.append(population)
        report = _reporter(trial, slot_of.prune_from, complete, slot_of.time_up, slot_of.judge)
        slot = population.add(spec, report=report)
        group = population.group
        norm = "" if group.normalization == "none" else f"-{group.normalization}"
        embedding = "" if group.embedding == "none" else f"-{group.embedding}{group.embedding_dim}"
        size = f"{group.max_depth}x{group.max_width}"
        label = f"{group.activation}-b{group.batch_size}{norm}{embedding}-{size}/{slot}"
        set_user_attrs(trial, {keys.ENGINE: "fused", keys.FUSED_SLOT: label})
        return _Running(trial, population, slot, slot_of.finish)
    except OverBudget:
        tell(trial, None, TrialState.FAIL)  # refused before training; the next ask samples again
    except TotalReached:
        raise
    except optuna.TrialPruned:
        tell(trial, None, TrialState.PRUNED)
    except Exception as e:
        # fused_slot and train_single store the reason themselves; an error of the placement does not.
        if keys.FAIL_REASON not in trial.user_attrs:
            set_user_attrs(trial, {keys.FAIL_REASON: f"{type(e).__name__}: {e}"[:2000]})
        tell(trial, None, TrialState.FAIL)
    return None


def _population_for(spec: Any, objective: Any, populations: list) -> Any:
    """The population `spec` should join, else a new one (not yet in `populations`).

    Of the populations with a free slot that fit it with acceptable padding, the smallest (the fuller one on
    a tie); populations whose padding is free on their device (`padding_is_free`) count as equally small, so
    the trial joins the fullest of them: each population's step costs its own launches and Python work, and
    on a GPU a handful of small populations ran a whole search at 1.33x the single engine where one
    population of 16 trained 8.6x (BENCHMARKS.md §5). A new population is sized for the space's largest
    network when that is free, so every later trial fits it, else by `size_bucket` (the trial's own size).

    Empty populations beyond `slots` are dropped first, so a long search with many sizes keeps at most
    about `slots` populations in memory.
    """
    from archsearch.trainers import FusedGroup, Population, padding_acceptable, padding_is_free, size_bucket

    data, capacity = objective.data, objective.config.train.slots
    shared = FusedGroup.of(spec)
    # The first Linear's inputs: an embedding widens them (each numeric feature becomes embedding_dim values).
    n_in = shared.n_inputs(data.n_features, len(data.preprocessing.numeric_features))

    def cost(population: Any) -> int:
        free = padding_is_free(n_in, data.n_outputs, population.group)
        return 0 if free else population.group.max_depth * population.group.max_width

    fits = [
        p
        for p in populations
        if p.free
        and dataclasses.replace(p.group, max_depth=0, max_width=1) == shared
        and p.unfit_reason(spec) is None
        and padding_acceptable(n_in, spec.net.widths, data.n_outputs, p.group)
    ]
    if fits:
        return min(fits, key=lambda p: (cost(p), -p.occupied))
    depth, width = size_bucket(spec.net.widths)
    group = dataclasses.replace(shared, max_depth=depth, max_width=width)
    space = objective.config.space
    largest = dataclasses.replace(
        shared, max_depth=max(depth, space.layers[1]), max_width=max(width, size_bucket([space.width[1]])[1])
    )
    # A linear slot in a deeper population carries its inputs through hidden units: it needs them wide enough.
    linear_fits = len(spec.net.widths) > 0 or n_in <= largest.max_width
    if linear_fits and padding_is_free(n_in, data.n_outputs, largest):
        group = largest
    for population in populations:
        if population.group == group and not population.occupied:
            return population
    while len(populations) >= capacity:
        empty = next((p for p in populations if not p.occupied), None)
        if empty is None:
            break
        populations.remove(empty)
    return Population(data, group, capacity=capacity)


def _record(entry: _Running, result: Any, tell: Callable) -> None:
    """Store a slot's outcome as the single engine stores a run's (`record_outcome`), and tell Optuna."""
    try:
        value = entry.finish(result)
    except optuna.TrialPruned:
        tell(entry.trial, None, TrialState.PRUNED)
        return
    tell(entry.trial, value)


def _reporter(
    trial: optuna.Trial,
    prune_from: int | None,
    complete: _CompleteTrials | None,
    time_up: Callable[[], bool] | None = None,
    judge: Callable[[int, float], bool | str] | None = None,
) -> Callable[[int, float], bool | str]:
    values: dict[int, float] = {}

    def report(epoch: int, value: float) -> bool | str:
        if judge is None:
            trial.report(value, epoch)
        values[epoch] = value
        if reason := stop_for_time(time_up, epoch):
            return reason
        if judge is not None:
            return judge(epoch, value)
        if prune_from is None or epoch < prune_from:
            return False
        if complete is None:
            return bool(trial.should_prune())
        # What should_prune passes, without reading the trial back: the percentile pruner reads only its
        # intermediate values, which this slot reported itself.
        frozen = optuna.trial.FrozenTrial(
            number=trial.number,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=None,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values=dict(values),
            trial_id=trial._trial_id,
        )
        return bool(complete.study.pruner.prune(complete, frozen))

    return report


class _CompleteTrials:
    """The study as the percentile pruner sees it, its complete trials read at most once per `refresh`."""

    def __init__(self, study: optuna.Study):
        self.study = study
        self._trials: list[optuna.trial.FrozenTrial] | None = None

    def refresh(self) -> None:
        self._trials = None

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        if states is None or tuple(states) != (TrialState.COMPLETE,):
            return self.study.get_trials(deepcopy=deepcopy, states=states)
        if self._trials is None:
            self._trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return self._trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self.study, name)
