"""A trainer worker: joins a study by URL and name, and trains trials until the study's total is reached.

Everything a worker needs (space, data reference, training settings) is read from the study itself, so
a worker on another machine needs only the storage URL and the study name.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from archsearch._objective import EXCESS_ATTR, Objective
from archsearch.config import CONFIG_ATTR, ConfigError, SearchConfig
from archsearch.placement import WorkerSlot
from archsearch.storage import (
    FINISHED_STATES,
    default_artifact_dir,
    heartbeat_ages,
    make_storage,
    mask_url,
    open_study,
    trial_state_counts,
)
from archsearch.trainers.data import DataError, PreparedData, load_data

__all__ = ["run_worker", "WorkerOutcome", "EXIT_FAILURE_STREAK", "EXIT_ERROR", "ERROR_PREFIX", "worker_main", "GracefulStop"]
EXIT_FAILURE_STREAK = 3
EXIT_ERROR = 4
ERROR_PREFIX = "worker error: "


@dataclass
class WorkerOutcome:
    """How a worker ended: trials it finished, and the failure streak that stopped it (if any)."""

    finished: int = 0
    stopped_by_failures: bool = False
    stood_down: bool = False  # the last trial found its work taken by another worker
    failed_streak: int = 0
    last_failure: str | None = None
    last_failed_trial: int | None = None


def worker_label(slot: WorkerSlot) -> str:
    return f"{socket.gethostname()}:{os.getpid()}/w{slot.index}"


def load_worker_study(
    url: str, study_name: str, *, seed_salt: int = 0
) -> tuple[SearchConfig, optuna.storages.RDBStorage, optuna.Study]:
    """Open a study created by archsearch with heartbeats, retries, and the sampler and pruner it was made with.

    Each worker's sampler gets its own seed (the study seed, the trials already there and `seed_salt`):
    workers seeded alike would all propose the same parameters, and so would every rerun.
    """
    from archsearch.controller import make_pruner, make_sampler

    plain = open_study(make_storage(url, must_exist=True), study_name, url=url)
    if CONFIG_ATTR not in plain.user_attrs:
        raise ConfigError(
            f"Study {study_name!r} in {mask_url(url)!r} has no archsearch config; create it with "
            "`archsearch search CONFIG` before starting workers."
        )
    config = SearchConfig.from_dict(plain.user_attrs[CONFIG_ATTR])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=config.study.max_retry)
    storage = make_storage(
        url,
        heartbeat_interval=config.study.heartbeat_interval,
        grace_period=config.study.grace_period,
        heartbeat_stale_trial_callback=retry,
    )
    seed = (config.study.seed + 7919 * len(plain.get_trials(deepcopy=False)) + seed_salt) % 2**32
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(config, seed=seed), pruner=make_pruner(config)
    )
    return config, storage, study


def _load_data_here(config: SearchConfig):
    try:
        return load_data(config.data)
    except DataError as e:
        if config.data.path and not Path(config.data.path).exists():
            raise DataError(
                f"The study's data file {config.data.path!r} is not readable on this machine "
                f"({socket.gethostname()}): every worker needs the data at the same path. {e}"
            ) from e
        raise


def run_worker(
    url: str,
    study_name: str,
    slot: WorkerSlot,
    *,
    total: int | None = None,
    max_trials: int | None = None,
    deadline: float | None = None,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    log: TextIO | None = None,
    seed_salt: int = 0,
    data: PreparedData | None = None,
) -> WorkerOutcome:
    """Train trials of an existing study until it holds `total` finished trials (or a limit is hit).

    Args:
        url: Storage URL.
        study_name: Study created by `archsearch search`.
        slot: This worker's device and thread count.
        total: Completed + pruned trials the study should reach; default: its config's n_trials, or for a
            sensitivity companion study the number of jobs it holds.
        max_trials: Stop after this many trials of this worker's own.
        deadline: `time.time()` after which no new trial starts.
        callbacks: Extra study callbacks (progress).
        log: Where one line per finished trial goes.
        seed_salt: Makes this worker's sampler seed differ from other workers' (slot index, process id).
        data: The study's data when the caller already loaded it (an in-process search); else loaded here.
    """
    config, storage, study = load_worker_study(url, study_name, seed_salt=seed_salt + 104729 * slot.index)
    # A companion study of `archsearch sensitivity` holds enqueued jobs instead of a search to sample.
    sensitivity = study.user_attrs.get("archsearch_kind") == "sensitivity"
    if total is None:
        total = study.user_attrs["sensitivity_jobs"] if sensitivity else config.study.n_trials
    if len(study.get_trials(deepcopy=False, states=FINISHED_STATES)) >= total:
        return WorkerOutcome()  # nothing left: no need for the data (which may not even be here)
    data = data if data is not None else _load_data_here(config)
    metric = study.user_attrs["metric"]
    artifact_dir = Path(config.study.artifacts) if config.study.artifacts else default_artifact_dir(url)
    device = _device_for(slot)
    label = worker_label(slot)
    if sensitivity:
        from archsearch._sensitivity_jobs import SensitivityObjective

        objective = SensitivityObjective(config, data, metric, device=device, num_threads=slot.threads, worker=label)
    else:
        from archsearch.controller import first_prunable_epoch

        objective = Objective(
            config, data, metric, storage, artifact_dir, device=device, num_threads=slot.threads, worker=label,
            total=total, prune_from=first_prunable_epoch(config),
        )
    outcome = WorkerOutcome()
    limit = config.study.max_consecutive_failures

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        outcome.stood_down = bool(trial.user_attrs.get(EXCESS_ATTR))
        if outcome.stood_down:
            return
        if trial.state == TrialState.FAIL:
            outcome.failed_streak += 1
            outcome.last_failed_trial = trial.number
            outcome.last_failure = trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason", "unknown error")
        else:
            outcome.failed_streak = 0
            outcome.finished += 1
        if log is not None:
            value = "" if trial.value is None else f" value {trial.value:.4f}"
            log.write(f"{time.strftime('%H:%M:%S')} {label} trial {trial.number} {trial.state.name}{value} {trial.user_attrs.get('widths')}\n")
            log.flush()

    # Search trials bound their stored weights after each trial; sensitivity runs keep none.
    after_trial = getattr(objective, "after_trial", None)
    all_callbacks = [record, *([after_trial] if after_trial else []), *(callbacks or [])]
    stop = GracefulStop()
    with stop.installed():
        if config.train.engine == "fused" and not sensitivity:
            from archsearch.fused_worker import fused_trial_loop

            fused_trial_loop(
                study, objective, all_callbacks, stop, total=total, failure_limit=limit,
                failed_streak=lambda: outcome.failed_streak, finished_here=lambda: outcome.finished,
                max_trials=max_trials, deadline=deadline,
            )
        # After a fused loop this only waits for trials running elsewhere, and trains the retries of any whose worker died.
        _trial_loop(
            study, storage, stop.guard(objective), all_callbacks, stop, outcome, config, total, limit, max_trials, deadline,
            note_counts=getattr(objective, "note_counts", None),
        )  # fmt: skip
    if stop.requested:
        raise KeyboardInterrupt("stopped by a signal")
    outcome.stopped_by_failures = outcome.failed_streak >= limit
    return outcome


def _trial_loop(study, storage, objective, callbacks, stop, outcome, config, total, limit, max_trials, deadline, note_counts=None) -> None:
    """Run one trial at a time until the study's total, a limit, a failure streak or a stop request."""
    while outcome.failed_streak < limit and not stop.requested:
        if max_trials is not None and outcome.finished >= max_trials:
            break
        if deadline is not None and time.time() >= deadline:
            break
        counts = trial_state_counts(study)
        finished = sum(counts[state] for state in FINISHED_STATES)
        running, waiting = counts[TrialState.RUNNING], counts[TrialState.WAITING]
        if finished >= total:
            break
        if finished + running >= total and not waiting:
            # The remaining trials are running elsewhere; wait in case their worker dies. (Optuna checks
            # for stale trials whenever a trial starts; while waiting, nothing starts, so check here.)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(study)
            _fail_orphans(study, storage, config.study.grace_period)
            time.sleep(0.5)
            continue
        if note_counts is not None:
            note_counts(finished + running + waiting, sum(counts.values()))
        study.optimize(objective, n_trials=1, callbacks=callbacks, catch=(Exception,))
        if outcome.failed_streak:
            from archsearch.trainers import release_memory

            release_memory()
        if outcome.stood_down:
            time.sleep(0.2)  # let the other workers' claims settle before counting again


def _fail_orphans(study: optuna.Study, storage: optuna.storages.RDBStorage, grace_period: int) -> None:
    """Fail (and retry) RUNNING trials that never sent a heartbeat: their worker died right after claiming them.

    Optuna's stale-trial check skips trials without any heartbeat, so such a trial would stay RUNNING
    forever and the study would never reach its total. Twice the grace period after its start, it is
    treated like any dead worker's trial.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return
    beating = heartbeat_ages(storage, study)
    now = datetime.datetime.now()
    for trial in running:
        if trial.number in beating or trial.datetime_start is None:
            continue
        if (now - trial.datetime_start).total_seconds() <= 2 * grace_period:
            continue
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", "its worker died before its first heartbeat")
        if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            retry = storage.get_heartbeat_stale_trial_callback()
            if retry is not None:
                retry(study, storage.get_trial(trial._trial_id))


def _device_for(slot: WorkerSlot) -> str:
    """The torch device name of a slot; a spawned worker sees only its own GPU, as cuda:0."""
    if slot.gpu is None:
        return "cpu"
    return "cuda:0" if os.environ.get("CUDA_VISIBLE_DEVICES") == str(slot.gpu) else f"cuda:{slot.gpu}"


class GracefulStop:
    """SIGINT/SIGTERM handling for a worker: interrupt the trial being trained, or stop before the next.

    A KeyboardInterrupt raised inside the objective is caught by Optuna, which closes the trial as FAIL.
    Raised anywhere else (while asking for a trial or telling its result) it could leave a trial
    RUNNING until its heartbeat goes stale, so outside the objective a signal only asks the loop to stop.
    """

    def __init__(self) -> None:
        self.requested = False
        self._in_trial = False

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._in_trial:
            raise KeyboardInterrupt(f"signal {signum}")

    def guard(self, objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
        def guarded(trial: optuna.Trial) -> float:
            self._in_trial = True
            try:
                if self.requested:
                    raise KeyboardInterrupt("stop requested before the trial started")
                return objective(trial)
            finally:
                self._in_trial = False

        return guarded

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM within the block (main thread only; elsewhere signals stay as they are)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self.handle) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def worker_main(url: str, study_name: str, slot: WorkerSlot, log_path: str, total: int | None, deadline: float | None, max_trials: int | None) -> None:
    """Entry point of a spawned worker process: logs to its own file; exit code 3 on a failure streak, 4 on an error."""
    os.environ.update(slot.env)  # before torch loads, so the worker sees only its GPU
    code = 0
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        sys.stdout = sys.stderr = log
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        log.write(f"{time.strftime('%H:%M:%S')} {worker_label(slot)} starts on {slot.device}"
                  f"{'' if slot.gpu is None else f' (GPU {slot.gpu})'}, {slot.threads} thread(s)\n")
        try:
            outcome = run_worker(
                url, study_name, slot, total=total, max_trials=max_trials, deadline=deadline, log=log, seed_salt=os.getpid()
            )
            code = EXIT_FAILURE_STREAK if outcome.stopped_by_failures else 0
        except KeyboardInterrupt:
            log.write(f"{time.strftime('%H:%M:%S')} stopped by a signal\n")
            code = 130
        except Exception as e:
            # The last line of the log is what the controller shows; the traceback above it is for a person.
            log.write(mask_url(traceback.format_exc()))
            log.write(f"{ERROR_PREFIX}{mask_url(f'{type(e).__name__}: {e}')}\n")
            code = EXIT_ERROR
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    # Every trial is stored and the log is closed. An interpreter that has loaded torch takes seconds to
    # tear itself down (1.5 to 5 s here), and the controller, so every search, would wait for it.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(code)
