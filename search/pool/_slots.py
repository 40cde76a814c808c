"""Where trials run: in this process (one CPU slot) or in a pool of spawned workers, placed on the devices."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO

import optuna

from archsearch.base import ArchsearchError
from archsearch.config import ConfigError, SearchConfig
from archsearch.pool._kinds import JobKind, job_kind
from archsearch.pool._placement import PlacementError, WorkerSlot, plan_workers
from archsearch.pool._pool import PoolFailure, StatusWriter, progress_line, run_pool
from archsearch.pool._shared_data import shared_data
from archsearch.pool._supervision import RetryStaleTrial
from archsearch.pool._worker import WorkerStudy, run_worker
from archsearch.storage import keys, sqlite_path
from archsearch.trainers.data import PreparedData

__all__ = ["SearchError", "log_dir_for", "plan_slots", "run_slots"]


class SearchError(ArchsearchError, RuntimeError):
    """A search that could not go on (e.g. every trial failing); the message names the last error."""


def log_dir_for(config: SearchConfig) -> Path:
    path = sqlite_path(config.study.storage)
    return (path.parent / f"{path.stem}_logs") if path is not None else Path("archsearch_logs")


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
    kind: JobKind | None = None,
    opened: WorkerStudy | None = None,
) -> None:
    """Train in this process (one CPU slot) or in a pool of spawned workers; raise on a failure streak.

    An in-process run trains through `opened` when given (the caller's config, storage and study), so
    nothing is read back from the storage that this process already holds. A pool's workers share `data`
    when given (see `archsearch.pool._shared_data`); without it each worker loads the data itself.
    """
    url, metric = config.study.storage, study.user_attrs[keys.METRIC]
    kind = kind or job_kind(study)
    total = kind.total(study, config) if total is None else total
    stream = stream or sys.stderr
    if len(slots) == 1 and in_process:
        callbacks = [] if quiet else [_PrintProgress(total, metric, stream)]
        try:
            outcome = run_worker(
                url,
                study.study_name,
                slots[0],
                total=total,
                max_trials=max_trials,
                deadline=deadline,
                callbacks=callbacks,
                seed_salt=seed_salt,
                data=data,
                kind=kind,
                opened=opened,
            )
        finally:
            for callback in callbacks:
                callback.status.close()
        if outcome.stopped_by_failures:
            last = f"the last (trial {outcome.last_failed_trial}) failed with: {outcome.last_failure}"
            raise SearchError(_failure_message(study, outcome.failed_streak, last))
        return
    try:
        # The pool's workers map the data this process prepared; without it (`archsearch worker`) each loads its own.
        with shared_data(data) as data_dir:
            run_pool(
                url,
                study,
                slots,
                total=total,
                metric=metric,
                log_dir=Path(log_dir) if log_dir else log_dir_for(config),
                deadline=deadline,
                quiet=quiet,
                stream=stream,
                max_trials=max_trials,
                kind=kind,
                retry=RetryStaleTrial(config.study.max_retry, config.study.grace_period),
                data_dir=data_dir,
            )
    except PoolFailure as e:
        if e.streak:
            raise SearchError(_failure_message(study, config.study.max_consecutive_failures, str(e))) from e
        raise SearchError(
            f"Study {study.study_name!r}: {e}. Fix the cause and rerun the same command to continue."
        ) from e


def plan_slots(
    config: SearchConfig, workers: int | None, gpus: Sequence[int] | None, trials_per_gpu: int
) -> list[WorkerSlot]:
    device = config.train.device
    # Counting GPUs needs torch; skip it when the config rules CUDA out anyway.
    visible = 0
    if device != "cpu":
        from archsearch.trainers import cuda_device_count

        visible = cuda_device_count()
    try:
        return plan_workers(
            cpu_count=os.cpu_count() or 1,
            visible_gpus=visible,
            workers=workers,
            gpus=gpus,
            trials_per_gpu=trials_per_gpu,
            device=device,
        )
    except PlacementError as e:
        raise ConfigError(str(e)) from e


def _failure_message(study: optuna.Study, streak: int, last: str) -> str:
    return (
        f"Stopped study {study.study_name!r} after {streak} failed trials in a row; {last}. "
        "Fix the cause and rerun the same command to continue the study."
    )


class _PrintProgress:
    """Study callback for an in-process search: the status line, refreshed after each finished trial."""

    def __init__(self, total: int, metric: str, stream: TextIO):
        self.total, self.metric = total, metric
        self.status = StatusWriter(stream)
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.status.update(progress_line(study, self.total, self.metric, self.started, width=self.status.width))
