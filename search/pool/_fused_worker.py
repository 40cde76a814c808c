"""The fused worker loop: up to `[train] slots` trials of one study trained together in one process.

Trials are asked from Optuna one at a time and placed in an `archsearch.trainers.Population` of their
group (activation, batch size, normalization) whose size fits them: the smallest population with a free slot
whose padded network costs at most twice the trial's own arithmetic (or is small anyway), else a new
population of the trial's own depth and its widest layer rounded up to a power of two. Padding every trial
to the space's largest network made a digits search half as fast as the single engine (BENCHMARKS.md §8).
After each epoch every slot reports to its own trial (intermediate value, pruner), every running trial
gets a heartbeat, and each slot whose run ended is told to Optuna and refilled with a newly asked trial,
so the worker keeps `slots` trials running until the study's total is reached.

When no trial is left to ask, the worker's ordinary loop takes over: it waits for trials running
elsewhere and trains the retries of any whose worker died, on the single engine.

A fused trial is an ordinary trial: the same parameters, user attributes, per-epoch values and weights
artifact as a trial of the single engine, plus `engine = "fused"` and `fused_slot`. A trial whose options
the fused engine does not support trains at once on the single engine, with `engine = "single"` and the
reason in `engine_reason`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from archsearch.pool._objective import Objective, TotalReached, train_settings
from archsearch.storage import FINISHED_STATES, keys, set_user_attrs, trial_state_counts, upload_weights

__all__ = ["fused_trial_loop"]

Callback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass
class _Running:
    trial: optuna.Trial
    population: Any  # archsearch.trainers.Population
    slot: int


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
    objective: Objective,
    callbacks: list[Callback],
    stop: Any,  # archsearch.worker.GracefulStop
    *,
    total: int,
    failure_limit: int,
    failed_streak: Callable[[], int],
    finished_here: Callable[[], int],
    max_trials: int | None = None,
    deadline: float | None = None,
) -> None:
    """Train the study's trials `[train] slots` at a time until its total, a limit, a failure streak or a stop.

    Every finished trial is told to Optuna and passed to `callbacks`, as `study.optimize` would. On a stop
    request (or an error) the trials still training are failed with the reason, so they are retried.
    """
    slots = objective.config.train.slots
    populations: list[Any] = []  # archsearch.trainers.Population
    running: list[_Running] = []
    heartbeats = _Heartbeats(objective.storage)
    heartbeats.start()

    def asking_allowed() -> bool:
        if stop.requested or failed_streak() >= failure_limit:
            return False
        if deadline is not None and time.time() >= deadline:
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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    # Optuna warns that heartbeats belong to study.optimize; _Heartbeats does its part here.
                    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed", category=UserWarning)
                    fail_stale_trials(study)  # study.optimize does this before each trial
                    trial = study.ask()
                heartbeats.beat(trial._trial_id)
                try:
                    placed = _place(trial, objective, populations, tell)
                except TotalReached:
                    tell(trial, None, TrialState.FAIL)
                    break  # the study reached its total while this trial was asked
                if placed is not None:
                    running.append(placed)
            if not running:
                return
            for population in list(populations):
                for slot, result in population.step_epoch():
                    entry = next(r for r in running if r.population is population and r.slot == slot)
                    running.remove(entry)
                    _record(entry.trial, result, objective, tell)
            if stop.requested:
                raise KeyboardInterrupt("stopped by a signal")
    except BaseException as e:
        for entry in running:
            reason = "stopped by a signal" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
            set_user_attrs(entry.trial, {keys.FAIL_REASON: reason[:2000]})
            tell(entry.trial, None, TrialState.FAIL)
        raise
    finally:
        heartbeats.done.set()
        heartbeats.join()


def _place(trial: optuna.Trial, objective: Objective, populations: list, tell: Callable) -> _Running | None:
    """Sample `trial` and add it to its group's population; None when it already ended (single engine, error).

    Raises:
        TotalReached: The study holds its total already; the trial was marked as not run.
    """
    from archsearch.trainers import SlotSpec, fused_unsupported_reason

    try:
        objective._claim(trial)
        candidate = objective.config.space.sample(trial, task=objective.data.task)
        objective._record_architecture(trial, candidate)
        architecture = candidate.architecture
        settings = train_settings(
            objective.config,
            objective.metric,
            candidate.hyperparameters.to_dict(),
            seed=objective.trial_seed(trial),
            device=objective.device,
            num_threads=objective.num_threads,
        )
        spec = SlotSpec(tuple(architecture.widths), tuple(architecture.dropouts), architecture.activation, settings)
        reason = fused_unsupported_reason(spec.widths, spec.dropouts, spec.activation, settings)
        if reason is None and architecture.embedding != "none":
            # An input embedding is a train_mlp argument, not a TrainSettings field: the check above cannot see it.
            reason = f"the fused engine does not support embedding = {architecture.embedding!r} yet"
        population = None
        if reason is None:
            population = _population_for(spec, objective, populations)
            reason = population.unfit_reason(spec)
        if reason is not None:
            set_user_attrs(trial, {keys.ENGINE: "single", keys.ENGINE_REASON: reason})
            tell(trial, objective._train(trial, candidate))
            return None
        if population not in populations:
            populations.append(population)
        slot = population.add(spec, report=_reporter(trial, objective.prune_from))
        group = population.group
        norm = "" if group.normalization == "none" else f"-{group.normalization}"
        label = f"{group.activation}-b{group.batch_size}{norm}-{group.max_depth}x{group.max_width}/{slot}"
        set_user_attrs(trial, {keys.ENGINE: "fused", keys.FUSED_SLOT: label})
        return _Running(trial, population, slot)
    except TotalReached:
        raise
    except optuna.TrialPruned:
        tell(trial, None, TrialState.PRUNED)
    except Exception as e:
        set_user_attrs(trial, {keys.FAIL_REASON: f"{type(e).__name__}: {e}"[:2000], **objective._worker_attrs})
        tell(trial, None, TrialState.FAIL)
    return None


def _population_for(spec: Any, objective: Objective, populations: list) -> Any:
    """The population `spec` should join: the smallest one that fits it with acceptable padding and has a
    free slot (the fuller one on a tie), else a new one sized by `size_bucket` (not yet in `populations`).

    Empty populations beyond `slots` are dropped first, so a long search with many sizes keeps at most
    about `slots` populations in memory.
    """
    from archsearch.trainers import FusedGroup, Population, padding_acceptable, size_bucket

    data, capacity = objective.data, objective.config.train.slots
    shared = FusedGroup.of(spec.activation, spec.settings)
    fits = [
        p
        for p in populations
        if p.free
        and dataclasses.replace(p.group, max_depth=0, max_width=1) == shared
        and p.unfit_reason(spec) is None
        and padding_acceptable(data.n_features, spec.widths, data.n_outputs, p.group)
    ]
    if fits:
        return min(fits, key=lambda p: (p.group.max_depth * p.group.max_width, -p.occupied))
    depth, width = size_bucket(spec.widths)
    group = dataclasses.replace(shared, max_depth=depth, max_width=width)
    for population in populations:
        if population.group == group and not population.occupied:
            return population
    while len(populations) >= capacity:
        empty = next((p for p in populations if not p.occupied), None)
        if empty is None:
            break
        populations.remove(empty)
    return Population(data, group, capacity=capacity)


def _record(trial: optuna.Trial, result: Any, objective: Objective, tell: Callable) -> None:
    """Store a slot's outcome as `train_and_record` stores a single-engine run, and tell Optuna."""
    from archsearch.trainers import save_weights

    attrs = {
        "device": result.device,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 4),
        **result.metrics,
    }
    if result.status != "completed":
        set_user_attrs(trial, {**attrs, keys.PRUNED_REASON: result.reason})
        tell(trial, None, TrialState.PRUNED)
        return
    with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
        weights = save_weights(result.state_dict, Path(scratch) / "model.pt")
        attrs[keys.WEIGHTS] = upload_weights(objective.artifact_store, weights, trial, objective.storage, record=False)
    set_user_attrs(trial, attrs)
    tell(trial, result.best_value)


def _reporter(trial: optuna.Trial, prune_from: int | None) -> Callable[[int, float], bool]:
    def report(epoch: int, value: float) -> bool:
        trial.report(value, epoch)
        return prune_from is not None and epoch >= prune_from and trial.should_prune()

    return report
