"""One trial: sample a candidate, train it, record everything the user needs later in the study.

Shared by the in-process search and by worker processes: it needs only the config and the data.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.pool._folds import FoldsResult, train_folds
from archsearch.spaces import Candidate, NetSpec
from archsearch.storage import drop_weights_beyond_best, keys, open_artifact_store, set_user_attrs, upload_weights
from archsearch.trainers.data import PreparedData, load_folds
from archsearch.trainers.metrics import REGRESSION_METRICS

__all__ = ["Objective", "TotalReached", "stop_for_time", "time_up_reason", "train_and_record", "train_settings"]


# The Hyperparameters fields that reach TrainSettings under their own name, beyond the four of every trial.
RECIPE_KEYS = ("lr_schedule", "label_smoothing")


class TotalReached(Exception):
    """Raised in a trial that another worker's trial made surplus: the study already has its total."""


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
    }
    # Sensitivity jobs and candidates stored before the training recipe knobs lack them: TrainSettings'
    # defaults then train as those runs did.
    values.update({k: hyperparameters[k] for k in RECIPE_KEYS if k in hyperparameters})
    if metric in REGRESSION_METRICS:
        values["label_smoothing"] = 0.0  # smoothing spreads probability over classes; a regression has none
    # None keeps the study's value, except for patience, where None means "no early stopping".
    values.update({k: v for k, v in overrides.items() if v is not None or k == "patience"})
    return TrainSettings(**values)


@dataclass(frozen=True)
class FusedSlot:
    """What the fused worker needs of an objective for one trial (see `Objective.fused_slot`)."""

    spec: Any  # archsearch.trainers.SlotSpec
    unfused_reason: str | None  # why it must train on the single engine; None: it can be fused
    train_single: Callable[[], float]  # trains it on the single engine, as the objective's __call__ would
    prune_from: int | None  # first epoch at which the pruner is asked; None: never
    more_attrs: Callable[[Any], Mapping[str, Any]] | None  # attributes of a completed run (its weights)
    time_up: Callable[[], bool] | None = None  # asked every epoch: True stops the run (see train_and_record)


def time_up_reason(epoch: int) -> str:
    """The pruned reason of a trial stopped because the search's time was up."""
    return (
        f"stopped at epoch {epoch}: the search's time was up (timeout less the refit's reserve, [study] reserve_refit)"
    )


def stop_for_time(time_up: Callable[[], bool] | None, epoch: int) -> str | None:
    """`time_up_reason(epoch)` when `time_up` says the search's time is up, else None (a report's answer)."""
    return time_up_reason(epoch) if time_up is not None and time_up() else None


def train_and_record(
    trial: optuna.Trial,
    settings: Any,
    data: PreparedData | Sequence[PreparedData],
    net: NetSpec,
    *,
    prune_from: int | None = 1,
    more_attrs: Callable[[Any], Mapping[str, Any]] | None = None,
    time_up: Callable[[], bool] | None = None,
):
    """Train one network, reporting each epoch to the trial, and store the outcome as user attributes.

    Args:
        data: One split, or the folds of `load_folds` (then a step is a fold, see `train_folds`).
        net: The architecture to train.
        prune_from: First epoch at which the study's pruner is asked (None: never). Asking reads every
            finished trial, so epochs where the pruner cannot prune yet (its warm-up) skip it.
        more_attrs: For a completed run, more attributes to store with the outcome (e.g. the weights'
            artifact id), computed from the TrainResult; all are written in one transaction.
        time_up: Asked after every epoch; True stops the run there, as pruned (`time_up_reason`): the
            search's time is up (`archsearch.pool.AskDeadline`).

    Raises:
        optuna.TrialPruned: The pruner stopped it or the loss diverged; the reason is stored.
    """
    from archsearch.trainers import train_mlp

    single = isinstance(data, PreparedData)

    def report(epoch: int, value: float) -> bool | str:  # with folds, `epoch` is the fold
        trial.report(value, epoch)
        if single and (reason := stop_for_time(time_up, epoch)):
            return reason
        return prune_from is not None and epoch >= prune_from and trial.should_prune()

    if single:
        result = train_mlp(net, data, settings, report)
    else:
        # With folds `report` sees each fold's end; the time check must also reach every epoch of a fold.
        def epoch_report(epoch: int, value: float) -> bool | str:
            return stop_for_time(time_up, epoch) or False

        result = train_folds(net, data, settings, report, epoch_report)
    attrs = {
        "device": result.device,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 4),
        **result.metrics,
        **(result.fold_attrs() if isinstance(result, FoldsResult) else {}),
    }
    if result.status != "completed":
        set_user_attrs(trial, {**attrs, keys.PRUNED_REASON: result.reason})
        raise optuna.TrialPruned(result.reason)
    if more_attrs is not None:
        attrs.update(more_attrs(result))
    set_user_attrs(trial, attrs)
    return result


class Objective:
    """Callable passed to `study.optimize`; returns the best-epoch validation metric of a trial."""

    def __init__(
        self,
        config: SearchConfig,
        data: PreparedData,
        metric: str,
        storage: optuna.storages.BaseStorage,
        artifact_dir: Path,
        device: str | None = None,
        *,
        num_threads: int | None = None,
        worker: str | None = None,
        total: int | None = None,
        prune_from: int | None = 1,
    ):
        self.config = config
        self.storage = storage
        # An explicit [train] num_threads wins over the worker slot's share of the cores.
        self.num_threads = config.train.num_threads or num_threads
        self.worker = worker
        self.total = total
        self.data = data
        self.metric = metric
        self.artifact_store = open_artifact_store(artifact_dir)
        self.device = device or config.train.device
        self.prune_from = prune_from
        self._counted: tuple[int, int] | None = None
        self._folds: list[PreparedData] | None = None  # loaded at the first trial, with [data] folds only
        self._worker_attrs = {} if worker is None else {"worker": worker}  # stored with a trial's first write
        # Set by the worker when the search ends at a time (archsearch.pool.AskDeadline): asked every epoch.
        self.time_up: Callable[[], bool] | None = None

    def note_counts(self, claimable: int, existing: int) -> None:
        """The worker's count just before it asks for a trial: trials finished, running or waiting, and all trials.

        The next trial's claim uses it to skip re-reading the study when the total is still far off.
        """
        self._counted = (claimable, existing)

    def trial_seed(self, trial: optuna.Trial) -> int:
        """Each trial trains with its own seed, reproducible from the study seed and trial number."""
        return self.config.study.seed * 1_000_003 + trial.number

    def __call__(self, trial: optuna.Trial, *, sampled: Candidate | None = None) -> float:
        try:
            return self._train(trial, sampled or self._sample(trial))
        except (optuna.TrialPruned, TotalReached):
            raise
        except (Exception, KeyboardInterrupt) as e:
            # An interrupt (Ctrl-C, or the controller stopping its workers) fails the trial too; say so.
            text = f"interrupted ({e})" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
            reason = {keys.FAIL_REASON: text[:2000]}
            set_user_attrs(trial, {**reason, **self._worker_attrs})
            raise

    def fused_slot(self, trial: optuna.Trial) -> FusedSlot:
        """For the fused worker: sample and record the trial as `__call__` does, then return its slot.

        Raises:
            TotalReached: The study holds its total already; the trial was marked as not run.
        """
        from archsearch.trainers import SlotSpec, fused_unsupported_reason

        try:
            candidate = self._sample(trial)
            spec = SlotSpec(candidate.architecture, self._settings(trial, candidate))
            reason = fused_unsupported_reason(spec.net, spec.settings)
            if reason is None and self.config.data.folds:
                reason = "the fused engine does not train [data] folds yet"
        except TotalReached:
            raise
        except Exception as e:
            set_user_attrs(trial, {keys.FAIL_REASON: f"{type(e).__name__}: {e}"[:2000], **self._worker_attrs})
            raise
        return FusedSlot(
            spec,
            reason,
            lambda: self(trial, sampled=candidate),
            self.prune_from,
            self._weights_attr(trial),
            self.time_up,
        )

    def _sample(self, trial: optuna.Trial) -> Candidate:
        """Claim the trial, sample its candidate and store its architecture (before it trains)."""
        self._claim(trial)
        candidate = self.config.space.sample(trial, task=self.data.task)
        self._record_architecture(trial, candidate)
        return candidate

    def _settings(self, trial: optuna.Trial, candidate: Candidate) -> Any:
        return train_settings(
            self.config,
            self.metric,
            candidate.hyperparameters.to_dict(),
            seed=self.trial_seed(trial),
            device=self.device,
            num_threads=self.num_threads,
        )

    def _claim(self, trial: optuna.Trial) -> None:
        """Refuse a sampled trial that would exceed the total because workers asked at the same moment.

        Workers check the total before asking for a trial, but two can ask at once; the trial with the
        higher number then stands down. Retries and enqueued trials always run: they replace or precede
        sampled ones, and they count against the total: a waiting retry of a killed trial takes its
        place before any new trial, so the study never fills with the retry left waiting.
        """
        if self.total is None:
            return
        counted, self._counted = self._counted, None
        if counted is not None:
            # Trials numbered below this one are those the worker counted plus any created since;
            # when even all of them being claimed leaves room, the trial stands without reading more.
            claimable, existing = counted
            if claimable + max(trial.number - existing, 0) < self.total:
                return
        # Trial objects do not expose system attributes; the storage does (by the trial's id).
        system_attrs = self.storage.get_trial_system_attrs(trial._trial_id)
        if "failed_trial" in system_attrs or "fixed_params" in system_attrs:
            return
        claimed = trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        )
        if sum(t.number < trial.number for t in claimed) >= self.total:
            set_user_attrs(
                trial,
                {
                    keys.NOT_RUN: True,
                    keys.FAIL_REASON: f"not run: the study reached n_trials = {self.total} while it started",
                    **self._worker_attrs,
                },
            )
            raise TotalReached()

    def _record_architecture(self, trial: optuna.Trial, candidate: Candidate) -> None:
        architecture = candidate.architecture
        n_numeric = len(self.data.preprocessing.numeric_features)
        attrs: dict[str, Any] = {
            **architecture.to_dict(),  # widths, dropouts, activation, and the embedding when there is one
            "depth": architecture.depth,
            "total_units": architecture.total_units,
            "n_params": architecture.n_params(self.data.n_features, self.data.n_outputs, n_numeric=n_numeric),
            "layer_shape": architecture.layer_shape(),
            "seed": self.trial_seed(trial),
        }
        attrs.update(self._worker_attrs)
        # Written before training, so that the dashboard shows what a running trial trains.
        set_user_attrs(trial, attrs)

    def _train(self, trial: optuna.Trial, candidate: Candidate) -> float:
        settings = self._settings(trial, candidate)
        if self.config.data.folds and self._folds is None:
            self._folds = load_folds(self.config.data)

        result = train_and_record(
            trial,
            settings,
            self._folds or self.data,
            candidate.architecture,
            prune_from=self.prune_from,
            more_attrs=self._weights_attr(trial),
            time_up=self.time_up,
        )
        return result.best_value

    def _weights_attr(self, trial: optuna.Trial) -> Callable[[Any], dict[str, str]]:
        """Upload a completed run's weights as the trial's artifact; returns the attribute that names it."""
        from archsearch.trainers import save_weights

        def weights_attr(result: Any) -> dict[str, str]:
            with tempfile.TemporaryDirectory(prefix="archsearch-") as scratch:
                weights = save_weights(result.state_dict, Path(scratch) / "model.pt")
                return {keys.WEIGHTS: upload_weights(self.artifact_store, weights, trial, self.storage, record=False)}

        return weights_attr

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback: bound the disk used by weights when keep_best_k is set."""
        if trial.state == optuna.trial.TrialState.COMPLETE and self.config.study.keep_best_k:
            drop_weights_beyond_best(study, self.artifact_store, self.config.study.keep_best_k)
