"""One trial of any kind, on either engine: claim it, train what it asks for, record its outcome or its failure.

`TrialObjective` is written once for every kind of job (a search's sampled trials, a sensitivity analysis's
planned runs, ...) and both engines: the single engine calls it (`study.optimize`), the fused engine asks it
for a `FusedSlot`. A kind supplies only `prepare`: claim the trial and say what it trains (a `Run`), plus,
optionally, what a completed run adds to its record (`completed_attrs`) and what follows a trial
(`after_trial`). The outcome is recorded the same way whichever engine trained the run (`record_outcome`).
"""

from __future__ import annotations

import abc
import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from archsearch.config import SearchConfig
from archsearch.pool._folds import FoldsResult, train_folds
from archsearch.spaces import NetSpec
from archsearch.storage import keys, set_user_attrs
from archsearch.trainers.data import PreparedData
from archsearch.trainers.metrics import REGRESSION_METRICS

__all__ = [
    "FusedSlot",
    "OverBudget",
    "Run",
    "TotalReached",
    "TrialObjective",
    "WorkerContext",
    "outcome_attrs",
    "record_outcome",
    "stop_for_time",
    "time_up_reason",
    "train_and_record",
    "train_settings",
]


# The Hyperparameters fields that reach TrainSettings under their own name, beyond the four of every trial.
RECIPE_KEYS = ("lr_schedule", "label_smoothing")
FAIL_REASON_LENGTH = 2000  # a traceback's last line fits; a runaway message does not fill the database


class TotalReached(Exception):
    """Raised in a trial that another worker's trial made surplus: the study already has its total."""


class OverBudget(TotalReached):
    """Raised in a trial whose sampled candidate is over [space] max_params or max_flops: it trains nothing,
    is failed as not run and does not count against the total, so the next trial samples again."""


@dataclass(frozen=True)
class WorkerContext:
    """What a worker hands to its kind's objective: the study's config and data, and where this worker runs."""

    config: SearchConfig
    data: PreparedData
    metric: str
    storage: optuna.storages.RDBStorage
    artifact_dir: Path
    device: str
    num_threads: int | None
    worker: str | None  # this worker's label, host:pid/wN
    total: int | None


@dataclass(frozen=True)
class Run:
    """What one trial trains, as its objective's `prepare` decided.

    Attributes:
        net: The architecture.
        settings: The trainer's `TrainSettings`.
        data: One split, or the folds of `load_folds` (then a report's step is a fold, see `train_folds`).
        prune_from: First epoch at which the study's pruner is asked (None: never).
        unfused_reason: Why the fused engine cannot train it; None when it can (the trainer may still refuse).
        record: User attributes to store before it trains (a search's architecture), with the worker's
            label, in one transaction: the dashboard shows what a running trial trains.
        judge: Asked after each epoch in place of Optuna's pruner, which a multi-objective study cannot
            use (`archsearch.pool.StratumRule`): a reason (or True) stops the run as pruned.
    """

    net: NetSpec
    settings: Any
    data: PreparedData | Sequence[PreparedData]
    prune_from: int | None
    unfused_reason: str | None = None
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    judge: Callable[[int, float], bool | str] | None = None  # archsearch's own pruning check (multi-objective)


@dataclass(frozen=True)
class FusedSlot:
    """What the fused worker needs of an objective for one trial (see `TrialObjective.fused_slot`)."""

    spec: Any  # archsearch.trainers.SlotSpec
    unfused_reason: str | None  # why it must train on the single engine; None: it can be fused
    train_single: Callable[[], float]  # trains it on the single engine, as the objective's __call__ would
    prune_from: int | None  # first epoch at which the pruner is asked; None: never
    finish: Callable[[Any], float]  # records a finished TrainResult as __call__ would; raises TrialPruned
    time_up: Callable[[], bool] | None = None  # asked every epoch: True stops the run (see train_and_record)
    judge: Callable[[int, float], bool | str] | None = None  # Run.judge: asked in place of Optuna's pruner


def train_settings(
    config: SearchConfig, metric: str, hyperparameters: Mapping[str, Any], *, seed: int, **overrides: Any
):
    """The trainer's settings for one run: the sampled hyperparameters plus the study's [train] section."""
    # Imported here so that the controller process and `import archsearch` stay free of torch.
    from archsearch.trainers import TrainSettings

    train = config.train
    values = {
        "lr": hyperparameters["lr"],
        "weight_decay": hyperparameters["weight_decay"],
        "batch_size": hyperparameters["batch_size"],
        "optimizer": hyperparameters["optimizer"],
        "epochs": train.epochs,
        "patience": train.patience,
        "metric": metric,
        "seed": seed,
        "device": train.device,
        "bf16": train.bf16,
        "class_weight": train.resolved_class_weight(metric),
        "num_threads": train.num_threads,
        "warmup": train.warmup,
        "grad_clip": train.grad_clip,
        "linear_solver": train.linear_solver,
    }
    # Sensitivity jobs and candidates stored before the training recipe knobs lack them: TrainSettings'
    # defaults then train as those runs did.
    values.update({k: hyperparameters[k] for k in RECIPE_KEYS if k in hyperparameters})
    if metric in REGRESSION_METRICS:
        values["label_smoothing"] = 0.0  # smoothing spreads probability over classes; a regression has none
    # None keeps the study's value, except for patience, where None means "no early stopping".
    values.update({k: v for k, v in overrides.items() if v is not None or k == "patience"})
    return TrainSettings(**values)


def time_up_reason(epoch: int) -> str:
    """The pruned reason of a trial stopped because the search's time was up."""
    return (
        f"stopped at epoch {epoch}: the search's time was up (timeout less the refit's reserve, [study] reserve_refit)"
    )


def stop_for_time(time_up: Callable[[], bool] | None, epoch: int) -> str | None:
    """`time_up_reason(epoch)` when `time_up` says the search's time is up, else None (a report's answer)."""
    return time_up_reason(epoch) if time_up is not None and time_up() else None


def memory_attrs() -> dict[str, float]:
    """The worker process's peak resident memory so far and its proportional set size now, in MB (each left
    out where the platform cannot say): what `status` reports per worker (issue #24).

    Every process that maps the pool's shared data counts those pages in its RSS; the PSS counts each shared
    page once over all of them, so the PSS of the workers adds up to the memory they hold together.
    """
    attrs = {keys.PEAK_RSS_MB: _peak_rss_mb(), keys.PSS_MB: _pss_mb()}
    return {name: value for name, value in attrs.items() if value is not None}


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory: /proc's VmHWM where there is one, else getrusage's ru_maxrss.

    Linux's ru_maxrss of a process started by fork and exec is at least its parent's peak at the fork: a pool
    worker reported its controller's (3.4 GB on 50,000 x 2,048 values, where the worker itself peaked at 1.5 GB).
    VmHWM belongs to the process's own memory map, which exec replaces.
    """
    hwm = _proc_kb("status", "VmHWM:")
    if hwm is not None:
        return round(hwm / 2**10, 1)
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _pss_mb() -> float | None:
    pss = _proc_kb("smaps_rollup", "Pss:")  # Linux 4.14 and later
    return None if pss is None else round(pss / 2**10, 1)


def _proc_kb(name: str, field: str) -> int | None:
    """A field in kB of this process's /proc file `name` (e.g. "status", "VmHWM:"); None where there is none."""
    try:
        with open(f"/proc/self/{name}", encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def outcome_attrs(result: Any) -> dict[str, Any]:
    """The user attributes of a finished run (a `TrainResult` of either engine, or a `FoldsResult`)."""
    return {
        keys.DEVICE: result.device,
        keys.EPOCHS_RUN: result.epochs_run,
        keys.BEST_EPOCH: result.best_epoch,
        keys.TRAIN_SECONDS: round(result.train_seconds, 4),
        **memory_attrs(),
        **result.metrics,
        **(result.fold_attrs() if isinstance(result, FoldsResult) else {}),
    }


def record_outcome(
    trial: optuna.Trial, result: Any, more_attrs: Callable[[Any], Mapping[str, Any]] | None = None
) -> float:
    """Store a finished run's outcome as user attributes, in one transaction; return its best value.

    Args:
        more_attrs: For a completed run, more attributes to store with the outcome (e.g. the weights'
            artifact id), computed from the result.

    Raises:
        optuna.TrialPruned: The pruner stopped it, its time was up or the loss diverged; the reason is stored.
    """
    attrs = outcome_attrs(result)
    if result.status != "completed":
        set_user_attrs(trial, {**attrs, keys.PRUNED_REASON: result.reason})
        raise optuna.TrialPruned(result.reason)
    if more_attrs is not None:
        attrs.update(more_attrs(result))
    set_user_attrs(trial, attrs)
    return result.best_value


def train_and_record(
    trial: optuna.Trial,
    settings: Any,
    data: PreparedData | Sequence[PreparedData],
    net: NetSpec,
    *,
    prune_from: int | None = 1,
    more_attrs: Callable[[Any], Mapping[str, Any]] | None = None,
    time_up: Callable[[], bool] | None = None,
    judge: Callable[[int, float], bool | str] | None = None,
):
    """Train one network on the single engine, reporting each epoch to the trial, and record its outcome.

    Args:
        data: One split, or the folds of `load_folds` (then a step is a fold, see `train_folds`).
        net: The architecture to train.
        prune_from: First epoch at which the study's pruner is asked (None: never). Asking reads every
            finished trial, so epochs where the pruner cannot prune yet (its warm-up) skip it.
        more_attrs: See `record_outcome`.
        time_up: Asked after every epoch; True stops the run there, as pruned (`time_up_reason`): the
            search's time is up (`archsearch.pool.AskDeadline`).
        judge: See `Run.judge`; when given, nothing is reported to Optuna.

    Returns:
        The TrainResult (or FoldsResult) of a completed run.

    Raises:
        optuna.TrialPruned: The pruner stopped it or the loss diverged; the reason is stored.
    """
    from archsearch.trainers import train_mlp

    single = isinstance(data, PreparedData)

    def report(epoch: int, value: float) -> bool | str:  # with folds, `epoch` is the fold
        if judge is None:
            trial.report(value, epoch)
        if single and (reason := stop_for_time(time_up, epoch)):
            return reason
        if judge is not None:
            return judge(epoch, value)
        return prune_from is not None and epoch >= prune_from and trial.should_prune()

    if single:
        result = train_mlp(net, data, settings, report)
    else:
        # With folds `report` sees each fold's end; the time check must also reach every epoch of a fold.
        def epoch_report(epoch: int, value: float) -> bool | str:
            return stop_for_time(time_up, epoch) or False

        result = train_folds(net, data, settings, report, epoch_report)
    record_outcome(trial, result, more_attrs)
    return result


class TrialObjective(abc.ABC):
    """Callable passed to `study.optimize` (the single engine), and the source of the fused engine's slots.

    The bookkeeping of every kind of job lives here: a failed trial says why (`record_failure`), a surplus
    claim stands down as not run (`stand_down`), and a finished run's outcome is stored alike on both engines
    (`record_outcome`). A kind supplies `prepare`.

    Args:
        context: The worker's study config, data and device.
    """

    def __init__(self, context: WorkerContext):
        self.context = context
        self.config = context.config
        self.data = context.data
        self.metric = context.metric
        self.device = context.device or context.config.train.device
        # An explicit [train] num_threads wins over the worker slot's share of the cores.
        self.num_threads = context.config.train.num_threads or context.num_threads
        self.worker_attrs = {} if context.worker is None else {keys.WORKER: context.worker}
        # Set by the worker when the search ends at a time (archsearch.pool.AskDeadline): asked every epoch.
        self.time_up: Callable[[], bool] | None = None

    @abc.abstractmethod
    def prepare(self, trial: optuna.Trial) -> Run:
        """Claim the trial and decide what it trains (and what to record of it before it trains).

        Raises:
            TotalReached: The study holds its total already; the trial stood down (`stand_down`).
        """

    def completed_attrs(self, trial: optuna.Trial) -> Callable[[Any], Mapping[str, Any]] | None:
        """More attributes of a completed run (e.g. its weights), stored with its outcome; None: nothing more."""
        return None

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback after every trial of this worker (e.g. bounding the weights kept on disk)."""

    def note_counts(self, claimable: int, existing: int) -> None:
        """The worker's count just before it asks for a trial: trials finished, running or waiting, and all trials."""

    def objective_values(self, trial: optuna.Trial, value: float) -> float | list[float]:
        """What Optuna is told for a completed trial: its best validation value, or all of a multi-objective
        study's values (a search adds its size measures)."""
        return value

    def settings(self, hyperparameters: Mapping[str, Any], *, seed: int) -> Any:
        """The trainer's settings for a run of these hyperparameters on this worker's device and threads."""
        return train_settings(
            self.config, self.metric, hyperparameters, seed=seed, device=self.device, num_threads=self.num_threads
        )

    def claim(self, trial: optuna.Trial) -> Run:
        """`prepare` the trial, then record its `Run.record` and this worker's label."""
        run = self.prepare(trial)
        set_user_attrs(trial, {**run.record, **self.worker_attrs})
        return run

    def __call__(self, trial: optuna.Trial, *, run: Run | None = None) -> float:
        try:
            run = run or self.claim(trial)
            result = train_and_record(
                trial,
                run.settings,
                run.data,
                run.net,
                prune_from=run.prune_from,
                more_attrs=self.completed_attrs(trial),
                time_up=self.time_up,
                judge=run.judge,
            )
            return self.objective_values(trial, result.best_value)
        except (optuna.TrialPruned, TotalReached):
            raise
        except (Exception, KeyboardInterrupt) as e:
            self.record_failure(trial, e)
            raise

    def fused_slot(self, trial: optuna.Trial) -> FusedSlot:
        """For the fused worker: prepare the trial as `__call__` does, then return its slot.

        Raises:
            TotalReached: The study holds its total already; the trial was marked as not run.
        """
        from archsearch.trainers import SlotSpec, fused_unsupported_reason

        try:
            run = self.claim(trial)
            reason = run.unfused_reason or fused_unsupported_reason(run.net, run.settings)
        except TotalReached:
            raise
        except Exception as e:
            self.record_failure(trial, e)
            raise
        more_attrs = self.completed_attrs(trial)
        return FusedSlot(
            SlotSpec(run.net, run.settings),
            reason,
            lambda: self(trial, run=run),
            run.prune_from,
            lambda result: self.objective_values(trial, record_outcome(trial, result, more_attrs)),
            self.time_up,
            run.judge,
        )

    def record_failure(self, trial: optuna.Trial, error: BaseException) -> None:
        """Store why the trial failed; an interrupt (Ctrl-C, or the controller stopping its workers) says so."""
        text = f"interrupted ({error})" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
        set_user_attrs(trial, {keys.FAIL_REASON: text[:FAIL_REASON_LENGTH], **self.worker_attrs})

    def stand_down(self, trial: optuna.Trial, reason: str) -> None:
        """Mark a claim that found its work taken (the study reached its total) as not run, and raise TotalReached."""
        set_user_attrs(trial, {keys.NOT_RUN: True, keys.FAIL_REASON: f"not run: {reason}", **self.worker_attrs})
        raise TotalReached()
