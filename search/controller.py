"""The study controller: open or resume a study, enqueue baselines, run trials until the total is reached."""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

import optuna

import archsearch
from archsearch._objective import BASELINE_ATTR
from archsearch.config import CONFIG_ATTR, ConfigError, SearchConfig
from archsearch.placement import PlacementError, WorkerSlot, plan_workers
from archsearch.pool import PoolFailure, progress_line, run_pool
from archsearch.storage import finished_count, make_storage, mask_url, sqlite_path
from archsearch.worker import run_worker
from archsearch.trainers.data import PreparedData, load_data
from archsearch.trainers.metrics import METRIC_DIRECTIONS

__all__ = ["SearchError", "run_search", "join_study", "open_search_study", "OpenedStudy", "make_sampler", "make_pruner"]


class SearchError(RuntimeError):
    """A search that could not go on (e.g. every trial failing); the message names the last error."""


@dataclass
class OpenedStudy:
    """A study ready for trials, with what every trial needs."""

    study: optuna.Study
    data: PreparedData
    metric: str


def make_sampler(config: SearchConfig, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with `seed` (default: the study seed)."""
    study = config.study
    seed = study.seed if seed is None else seed
    if study.sampler == "tpe":
        # group=True models the per-layer parameters of each depth together (they only exist for some
        # depths); Optuna flags both options experimental, which is no news to an archsearch user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=study.n_startup_trials
            )
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == "qmc":
        # QMC workers share one sequence through the study (its position is stored there), so one seed.
        return optuna.samplers.QMCSampler(seed=study.seed, warn_independent_sampling=False)
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=study.n_startup_trials)


def _warmup_epochs(config: SearchConfig) -> int:
    # With [data] folds a step is a whole fold, so one fold of evidence is warm-up enough.
    if config.data.folds:
        return 1
    return min(3, max(config.train.epochs - 1, 0))


def first_prunable_epoch(config: SearchConfig) -> int | None:
    """The first epoch (from 1) at which the study's pruner can stop a trial; None when it never does.

    With [data] folds the steps are folds (see `archsearch._folds`), and so is the answer.

    Median and percentile pruners never prune a step below their warm-up, and asking them reads every
    finished trial, so workers do not ask before this epoch.
    """
    name = config.study.pruner
    if name in ("median", "percentile"):
        return max(_warmup_epochs(config), 1)
    if name in ("successive_halving", "hyperband"):
        return 1
    return None


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    name, steps = config.study.pruner, config.data.folds or config.train.epochs
    warmup = _warmup_epochs(config)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=warmup)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps)
    return optuna.pruners.NopPruner()


# [train] keys that change what a trial's value means; other [study]/[train] keys may change on resume.
_COMPARABILITY_TRAIN_KEYS = ("epochs", "patience", "class_weight")


def stored_config(config: SearchConfig) -> dict:
    """The config as kept in the study: everything but the storage password (dashboard users see it)."""
    data = config.to_dict()
    data["study"]["storage"] = mask_url(data["study"]["storage"])
    return data


def _check_compatible(study: optuna.Study, config: SearchConfig, metric: str, url: str) -> None:
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(
                f"Study {study.study_name!r} in {mask_url(url)!r} already holds trials but was not created by "
                "archsearch. Pick another [study] name (or --study NAME)."
            )
        return
    current = config.to_dict()
    changed = [f"[data] {k}" for k in sorted(set(stored["data"]) | set(current["data"])) if stored["data"].get(k) != current["data"].get(k)]
    stored_space = type(config.space).from_dict(stored["space"])
    changed += [f"[space] {k}" for k in stored_space.is_compatible_with(config.space)]
    changed += [f"[train] {k}" for k in _COMPARABILITY_TRAIN_KEYS if stored["train"].get(k) != current["train"].get(k)]
    if study.user_attrs.get("metric") != metric:
        changed.append("[study] metric")
    if changed:
        hint = " ([data] seed follows [study] seed unless [data] sets it)" if "[data] seed" in changed else ""
        raise ConfigError(
            f"Study {study.study_name!r} in {mask_url(url)!r} was created with a different search: "
            f"{', '.join(changed)} changed{hint}, so its trials are not comparable. Restore those settings to resume "
            "it, or start a new study with another [study] name (or --study NAME)."
        )


def open_search_study(config: SearchConfig, *, storage: optuna.storages.BaseStorage | None = None) -> OpenedStudy:
    """Create the study (or resume the one with the same name), checking that a resumed one is compatible."""
    url = config.study.storage
    # Data first: a bad file or metric must not leave an empty study (or database file) behind.
    data = load_data(config.data)
    metric = config.metric_for(data.task)
    storage = storage or make_storage(url)
    study = optuna.create_study(
        study_name=config.study.name,
        storage=storage,
        direction=METRIC_DIRECTIONS[metric],
        sampler=make_sampler(config),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    _check_compatible(study, config, metric, url)
    if CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr("archsearch_version", archsearch.__version__)
        study.set_user_attr("metric", metric)
        study.set_user_attr("task", data.task)
        study.set_user_attr(
            "data",
            {
                "name": data.name,
                "n_features": data.n_features,
                "n_outputs": data.n_outputs,
                "n_train": len(data.y_train),
                "n_val": len(data.y_val),
                "n_test": len(data.y_test),
            },
        )
        study.set_user_attr("preprocessing", data.preprocessing.to_dict())
        # Written last: its presence marks a fully initialised study.
        study.set_user_attr(CONFIG_ATTR, stored_config(config))
        _enqueue_baselines(study, config, linear=True)
    else:
        # Settings that may change on resume (n_trials, timeout, sampler, device, ...) are stored, so that
        # workers joining later follow them; newly listed baselines are tried first.
        before = SearchConfig.from_dict(study.user_attrs[CONFIG_ATTR]).space.baselines
        study.set_user_attr(CONFIG_ATTR, stored_config(config))
        new = [widths for widths in config.space.baselines if widths not in before]
        if new:
            _enqueue_baselines(study, config, linear=False, only=new)
    return OpenedStudy(study=study, data=data, metric=metric)


def _enqueue_baselines(study: optuna.Study, config: SearchConfig, *, linear: bool, only: list | None = None) -> None:
    space = config.space
    if linear and space.layers[0] == 0:
        study.enqueue_trial(space.fixed_params([]), user_attrs={BASELINE_ATTR: "linear"}, skip_if_exists=True)
    for widths in space.baselines if only is None else only:
        study.enqueue_trial(space.fixed_params(widths), user_attrs={BASELINE_ATTR: "user"}, skip_if_exists=True)


def log_dir_for(config: SearchConfig) -> Path:
    path = sqlite_path(config.study.storage)
    return (path.parent / f"{path.stem}_logs") if path is not None else Path("archsearch_logs")


def run_search(
    config: SearchConfig,
    *,
    workers: int | None = 1,
    gpus: Sequence[int] | None = None,
    trials_per_gpu: int = 1,
    quiet: bool = True,
    stream: TextIO | None = None,
    log_dir: str | Path | None = None,
) -> optuna.Study:
    """Run (or resume) a search until `n_trials` trials are completed or pruned, or the timeout passes.

    Args:
        config: The whole search; build it with `SearchConfig(...)` or `load_config("search.toml")`.
        workers: Worker processes; 1 trains in this process, None places one per GPU or CPU core.
        gpus: GPU indices for the workers (default: all visible GPUs when the device allows CUDA).
        trials_per_gpu: Workers sharing each GPU.
        quiet: Print no progress lines.
        stream: Where progress goes (default: stderr).
        log_dir: Folder of the per-worker log files (default: beside a SQLite file, else ./archsearch_logs).

    Returns:
        The Optuna study, with every trial and its user attributes stored in `config.study.storage`.

    Raises:
        SearchError: `max_consecutive_failures` trials failed in a row; the message names the last error.

    Example:
        >>> from archsearch import SearchConfig, run_search
        >>> study = run_search(SearchConfig())  # digits, 30 trials, ./archsearch.db
        >>> study.best_trial.user_attrs["widths"]
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    slots = plan_slots(config, workers, gpus, trials_per_gpu)  # before the study exists: bad flags change nothing
    opened = open_search_study(config)
    study, total = opened.study, config.study.n_trials
    if finished_count(study) >= total:
        return study
    deadline = time.time() + config.study.timeout if config.study.timeout else None
    run_slots(
        config, study, slots, in_process=gpus is None, data=opened.data, deadline=deadline, quiet=quiet, stream=stream,
        log_dir=log_dir,
    )
    return study


def run_slots(
    config: SearchConfig,
    study: optuna.Study,
    slots: list[WorkerSlot],
    *,
    in_process: bool,
    data: PreparedData | None = None,
    seed_salt: int = 0,
    total: int | None = None,
    deadline: float | None = None,
    max_trials: int | None = None,
    quiet: bool = True,
    stream: TextIO | None = None,
    log_dir: str | Path | None = None,
) -> None:
    """Train in this process (one CPU slot) or in a pool of spawned workers; raise on a failure streak."""
    url, metric = config.study.storage, study.user_attrs["metric"]
    if total is None:
        # A sensitivity analysis's companion study runs to its planned job count, not the search's n_trials.
        total = study.user_attrs.get("sensitivity_jobs", config.study.n_trials)
    stream = stream or sys.stderr
    if len(slots) == 1 and in_process:
        callbacks = [] if quiet else [_PrintProgress(total, metric, stream)]
        outcome = run_worker(
            url, study.study_name, slots[0], total=total, max_trials=max_trials, deadline=deadline,
            callbacks=callbacks, seed_salt=seed_salt, data=data,
        )
        if outcome.stopped_by_failures:
            last = f"the last (trial {outcome.last_failed_trial}) failed with: {outcome.last_failure}"
            raise SearchError(_failure_message(study, outcome.failed_streak, last))
        return
    try:
        run_pool(
            url, study, slots, total=total, metric=metric, log_dir=Path(log_dir) if log_dir else log_dir_for(config),
            deadline=deadline, quiet=quiet, stream=stream, max_trials=max_trials,
        )
    except PoolFailure as e:
        if e.streak:
            raise SearchError(_failure_message(study, config.study.max_consecutive_failures, str(e))) from e
        raise SearchError(f"Study {study.study_name!r}: {e}. Fix the cause and rerun the same command to continue.") from e


def plan_slots(config: SearchConfig, workers: int | None, gpus: Sequence[int] | None, trials_per_gpu: int) -> list[WorkerSlot]:
    device = config.train.device
    # Counting GPUs needs torch; skip it when the config rules CUDA out anyway.
    visible = 0
    if device != "cpu":
        from archsearch.trainers import cuda_device_count

        visible = cuda_device_count()
    try:
        return plan_workers(
            cpu_count=os.cpu_count() or 1, visible_gpus=visible, workers=workers, gpus=gpus,
            trials_per_gpu=trials_per_gpu, device=device,
        )
    except PlacementError as e:
        raise ConfigError(str(e)) from e


def _failure_message(study: optuna.Study, streak: int, last: str) -> str:
    return (
        f"Stopped study {study.study_name!r} after {streak} failed trials in a row; {last}. "
        "Fix the cause and rerun the same command to continue the study."
    )


class _PrintProgress:
    """Study callback for an in-process search: one progress line per finished trial."""

    def __init__(self, total: int, metric: str, stream: TextIO):
        self.total, self.metric, self.stream = total, metric, stream
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.stream.write(progress_line(study, self.total, self.metric, self.started) + "\n")
        self.stream.flush()


def join_study(
    storage: str,
    study_name: str,
    *,
    workers: int | None = 1,
    gpus: Sequence[int] | None = None,
    trials_per_gpu: int = 1,
    max_trials: int | None = None,
    quiet: bool = True,
    stream: TextIO | None = None,
    log_dir: str | Path | None = None,
) -> optuna.Study:
    """Add workers on this machine to an existing study, knowing only its storage URL and name.

    The study's config (space, data reference, training settings) is read from the study itself. The
    workers stop when the study reaches its total, or after `max_trials` trials each.

    Example:
        >>> join_study("postgresql+psycopg://archsearch@db-host/archsearch", "digits", workers=4)
    """
    from archsearch.worker import load_worker_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config, _, study = load_worker_study(storage, study_name)
    # The URL given here is how this machine reaches the database; the stored one may name another host.
    config = config.replace(storage=storage)
    slots = plan_slots(config, workers, gpus, trials_per_gpu)
    # Another machine's worker may start with the same slot index and trial count: the process id tells them apart.
    run_slots(
        config, study, slots, in_process=gpus is None, seed_salt=os.getpid(), max_trials=max_trials, quiet=quiet,
        stream=stream, log_dir=log_dir,
    )
    return study
