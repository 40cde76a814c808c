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
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from archsearch.config import ConfigError, SearchConfig
from archsearch.encoded import artifact_folder, fetch_encoded
from archsearch.pool._budget import AskDeadline
from archsearch.pool._data_check import check_same_data
from archsearch.pool._fused_worker import fused_trial_loop
from archsearch.pool._kinds import JobKind, job_kind
from archsearch.pool._objective import TrialObjective, WorkerContext
from archsearch.pool._placement import WorkerSlot
from archsearch.pool._shared_data import load_shared
from archsearch.pool._supervision import RetryStaleTrial, die_with_parent, quiet_expected_failures
from archsearch.samplers import make_pruner, make_sampler
from archsearch.storage import (
    FINISHED_STATES,
    DatabaseUnavailable,
    heartbeat_ages,
    keys,
    make_storage,
    mask_url,
    open_study,
    quality_value,
    run_after_storage_call,
    set_user_attrs,
    trial_state_counts,
)
from archsearch.trainers.data import DataError, PreparedData, load_data

__all__ = [
    "ERROR_PREFIX",
    "EXIT_ERROR",
    "EXIT_FAILURE_STREAK",
    "GracefulStop",
    "WorkerOutcome",
    "WorkerStudy",
    "load_worker_study",
    "run_worker",
    "use_worker_sampler",
    "worker_main",
    "worker_storage",
]
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


@dataclass(frozen=True)
class WorkerStudy:
    """A study opened for training: its config, the heartbeat storage and the study with this worker's sampler."""

    config: SearchConfig
    storage: optuna.storages.RDBStorage
    study: optuna.Study


def worker_storage(url: str, config: SearchConfig, *, wait_for_database: bool = False) -> optuna.storages.RDBStorage:
    """The storage trials train through: heartbeats, a retry of every trial whose worker died, and retries of
    transient database errors for [study] db_retry_seconds.

    `wait_for_database` retries the first connection as well (a pool worker, whose controller just connected).
    """
    return make_storage(
        url,
        heartbeat_interval=config.study.heartbeat_interval,
        grace_period=config.study.grace_period,
        heartbeat_stale_trial_callback=RetryStaleTrial(config.study.max_retry, config.study.grace_period),
        retry_seconds=config.study.db_retry_seconds,
        wait_for_database=wait_for_database,
    )


def use_worker_sampler(study: optuna.Study, config: SearchConfig, *, seed_salt: int = 0) -> None:
    """Give `study` the config's sampler and pruner, the sampler seeded for this worker.

    Each worker's sampler gets its own seed (the study seed, the trials already there and `seed_salt`):
    workers seeded alike would all propose the same parameters, and so would every rerun.
    """
    seed = (config.study.seed + 7919 * len(study.get_trials(deepcopy=False)) + seed_salt) % 2**32
    study.sampler, study.pruner = make_sampler(config, seed=seed), make_pruner(config)


def load_worker_study(url: str, study_name: str, *, seed_salt: int = 0, wait_for_database: bool = False) -> WorkerStudy:
    """Open a study created by archsearch from its storage alone, as a worker on another machine does."""
    storage = make_storage(url, must_exist=True, wait_for_database=wait_for_database)
    plain = open_study(storage, study_name, url=url)
    if keys.CONFIG not in plain.user_attrs:
        raise ConfigError(
            f"Study {study_name!r} in {mask_url(url)!r} has no archsearch config; create it with "
            "`archsearch search CONFIG` before starting workers."
        )
    config = SearchConfig.from_stored(plain.user_attrs[keys.CONFIG])
    storage = worker_storage(url, config, wait_for_database=wait_for_database)
    study = optuna.load_study(study_name=study_name, storage=storage)
    use_worker_sampler(study, config, seed_salt=seed_salt)
    return WorkerStudy(config, storage, study)


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
    kind: JobKind | None = None,
    opened: WorkerStudy | None = None,
    wait_for_database: bool = False,
) -> WorkerOutcome:
    """Train trials of an existing study until it holds `total` finished trials (or a limit is hit).

    Args:
        url: Storage URL.
        study_name: Study created by `archsearch search` (or a companion study of another kind of job).
        slot: This worker's device and thread count.
        total: Completed + pruned trials the study should reach; default: what its kind says (a search's
            n_trials, the jobs a sensitivity analysis holds, ...).
        max_trials: Stop after this many trials of this worker's own.
        deadline: `time.time()` after which no new trial starts (earlier by the refit reserve, see `AskDeadline`).
        callbacks: Extra study callbacks (progress).
        log: Where one line per finished trial goes.
        seed_salt: Makes this worker's sampler seed differ from other workers' (slot index, process id).
        data: The study's data when the caller already loaded it (an in-process search); else loaded here.
        kind: The study's kind of job (see `archsearch.pool.job_kind`); default: the one the study names.
        opened: The study as the caller (an in-process search) opened it; else opened here from the storage.
        wait_for_database: Retry the first connection too (see `make_storage`).

    Raises:
        DatabaseUnavailable: The database stayed unreachable for [study] db_retry_seconds.
    """
    quiet_expected_failures()
    if opened is None:
        opened = load_worker_study(
            url, study_name, seed_salt=seed_salt + 104729 * slot.index, wait_for_database=wait_for_database
        )
    config, study = opened.config, opened.study
    kind = job_kind(study, kind)
    total = kind.total(study, config) if total is None else total
    if len(study.get_trials(deepcopy=False, states=FINISHED_STATES)) >= total:
        return WorkerOutcome()  # nothing left: no need for the data (which may not even be here)
    label = worker_label(slot)
    objective = kind.objective(_context(opened, url, slot, label, total, data))
    engine, engine_why = choose_engine(config, slot)
    if log is not None:
        log.write(f"{time.strftime('%H:%M:%S')} {label} {engine_why}\n")
    outcome = WorkerOutcome()
    ask_deadline = _ask_deadline(opened, kind, deadline, log, label)
    if ask_deadline.reserve:
        objective.time_up = ask_deadline.time_up  # running trials end with the search, not after it
    all_callbacks = [_Recorder(outcome, log, label), objective.after_trial, *(callbacks or [])]
    stop = GracefulStop()
    with stop.installed(), stop.putting_back(study, opened.storage):
        _train(opened, engine, objective, all_callbacks, stop, outcome, total, max_trials, ask_deadline)
    if stop.requested:
        raise KeyboardInterrupt("stopped by a signal")
    outcome.stopped_by_failures = outcome.failed_streak >= config.study.max_consecutive_failures
    return outcome


def _ask_deadline(
    opened: WorkerStudy, kind: JobKind, deadline: float | None, log: TextIO | None, label: str
) -> AskDeadline:
    """When this worker stops asking for trials: the caller's deadline, the study's timeout, less the refit's reserve."""
    config = opened.config
    return AskDeadline(
        opened.study,
        deadline,
        timeout=config.study.timeout,
        reserve=config.study.reserve_refit and kind.reserve_refit,
        folds=config.data.folds,
        epochs=config.train.epochs,
        members=config.export.ensemble_seeds,
        log=log,
        label=label,
    )


def _train(
    opened: WorkerStudy,
    engine: str,
    objective: TrialObjective,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
    stop: GracefulStop,
    outcome: WorkerOutcome,
    total: int,
    max_trials: int | None,
    deadline: AskDeadline,
) -> None:
    """Train trials with the chosen engine until the study holds `total` (or a limit or a signal stops it)."""
    if engine == "fused":
        fused_trial_loop(
            opened.study,
            opened.storage,
            objective,
            callbacks,
            stop,
            total=total,
            failure_limit=opened.config.study.max_consecutive_failures,
            failed_streak=lambda: outcome.failed_streak,
            finished_here=lambda: outcome.finished,
            max_trials=max_trials,
            deadline=deadline,
        )
    # After a fused loop this only waits for trials running elsewhere, and trains the retries of any whose worker died.
    _trial_loop(
        opened,
        stop.guard(objective),
        objective.note_counts,
        callbacks,
        stop,
        outcome,
        total,
        max_trials,
        deadline,
    )


def _context(
    opened: WorkerStudy, url: str, slot: WorkerSlot, label: str, total: int, data: PreparedData | None
) -> WorkerContext:
    """What this worker's objective needs: the study's data (loaded here unless given) and where it trains."""
    config, study = opened.config, opened.study
    if data is None:
        fetch_encoded(study, config.data, artifact_folder(config, url))
        data = _load_data_here(config)
        check_same_data(study, data, url)
    return WorkerContext(
        config=config,
        data=data,
        metric=study.user_attrs[keys.METRIC],
        storage=opened.storage,
        artifact_dir=artifact_folder(config, url),
        device=_device_for(slot),
        num_threads=slot.threads,
        worker=label,
        total=total,
    )


class _Recorder:
    """Study callback: counts this worker's finished trials and its failure streak, and logs each trial."""

    def __init__(self, outcome: WorkerOutcome, log: TextIO | None, label: str):
        self.outcome, self.log, self.label = outcome, log, label

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        outcome = self.outcome
        # A candidate over the budget is not run either, but the next trial samples again at once.
        outcome.stood_down = bool(trial.user_attrs.get(keys.NOT_RUN)) and keys.OVER_BUDGET not in trial.user_attrs
        if trial.user_attrs.get(keys.NOT_RUN):
            return
        if trial.state == TrialState.FAIL:
            outcome.failed_streak += 1
            outcome.last_failed_trial = trial.number
            outcome.last_failure = trial.user_attrs.get(keys.FAIL_REASON) or trial.system_attrs.get(
                keys.OPTUNA_FAIL_REASON, "unknown error"
            )
        else:
            outcome.failed_streak = 0
            outcome.finished += 1
        if self.log is not None:
            value = "" if quality_value(trial) is None else f" value {quality_value(trial):.4f}"
            widths = trial.user_attrs.get(keys.WIDTHS)
            self.log.write(
                f"{time.strftime('%H:%M:%S')} {self.label} trial {trial.number} {trial.state.name}{value} {widths}\n"
            )
            self.log.flush()


def _trial_loop(
    opened: WorkerStudy,
    objective: Callable[[optuna.Trial], float],
    note_counts: Callable[[int, int], None],
    callbacks: list,
    stop: GracefulStop,
    outcome: WorkerOutcome,
    total: int,
    max_trials: int | None,
    deadline: AskDeadline,
) -> None:
    """Run one trial at a time until the study's total, a limit, a failure streak or a stop request."""
    config, storage, study = opened.config, opened.storage, opened.study
    limit = config.study.max_consecutive_failures
    while outcome.failed_streak < limit and not stop.requested:
        if max_trials is not None and outcome.finished >= max_trials:
            break
        if deadline.passed():
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
        note_counts(finished + running + waiting, sum(counts.values()))
        try:
            study.optimize(objective, n_trials=1, callbacks=callbacks, catch=(Exception,))
        except Exception as e:
            _raise_database_unavailable(e)
            if _finished_elsewhere(e, storage, stop.current_trial):
                continue  # another process failed it (as stale) and queued its retry: this run is void, not an error
            raise
        if outcome.failed_streak:
            from archsearch.trainers import release_memory

            release_memory()
        if outcome.stood_down:
            time.sleep(0.2)  # let the other workers' claims settle before counting again


def _raise_database_unavailable(error: BaseException) -> None:
    """Raise the DatabaseUnavailable behind `error`, if any.

    When the database is gone Optuna cannot record the trial's end, and its own bookkeeping then fails
    with an UnboundLocalError that hides the reason; the reason is in the chain of exceptions.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, DatabaseUnavailable):
            raise error from None
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def _finished_elsewhere(error: BaseException, storage: optuna.storages.BaseStorage, trial_id: int | None) -> bool:
    """Whether `error` came from writing to this worker's trial after another process had finished it.

    On a loaded machine a live worker's heartbeats can come late: another worker then fails its trial as
    stale and queues the retry, and this worker's next write to it raises UpdateFinishedTrialError, or
    Optuna's tell "Cannot tell a FAIL trial". Both stopped the whole search (twice in a chaos run).
    """
    if trial_id is None:
        return False
    seen, link = [], error
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    told = any(isinstance(e, ValueError) and str(e).startswith("Cannot tell a") for e in seen)  # Optuna's wording
    if not told and not any(isinstance(e, UpdateFinishedTrialError) for e in seen):
        return False
    return storage.get_trial(trial_id).state.is_finished()


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
        try:
            storage.set_trial_user_attr(trial._trial_id, keys.FAIL_REASON, "its worker died before its first heartbeat")
            failed = storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # it ended (its worker was alive after all) or another worker failed it first
        if failed:
            retry = storage.get_heartbeat_stale_trial_callback()
            if retry is not None:
                retry(study, storage.get_trial(trial._trial_id))


# engine = "auto" fuses only where it pays. On a 2-core CPU a whole fused search ran at 0.48-0.51x the single
# engine (BENCHMARKS.md section 8: populations of mixed sizes gain nothing per epoch). On a GPU a single-engine
# step of a network up to 512 wide costs the same 1.1-1.9 ms of launches as a 128-wide one (section 5): the
# idle time that fusing K trials into one step fills.
AUTO_FUSED_MAX_WIDTH = 512


def choose_engine(config: SearchConfig, slot: WorkerSlot) -> tuple[str, str]:
    """The engine a worker trains its trials with, and why (for the worker's first log line).

    >>> from archsearch.config import SearchConfig
    >>> choose_engine(SearchConfig(), WorkerSlot(index=0, device="cpu", gpu=None, threads=1))
    ('single', 'engine auto on a CPU: the single engine (whole fused searches ran at 0.8x its speed)')
    """
    engine = config.train.engine
    if engine != "auto":
        return engine, f"engine {engine} ([train] engine)"
    if not slot.device.startswith("cuda"):
        return "single", "engine auto on a CPU: the single engine (whole fused searches ran at 0.8x its speed)"
    widest = config.space.width[1]
    if widest > AUTO_FUSED_MAX_WIDTH:
        return "single", f"engine auto on a GPU: the single engine (widths up to {widest} > {AUTO_FUSED_MAX_WIDTH})"
    return "fused", f"engine auto on a GPU: fused, {config.train.slots} slots (widths up to {widest})"


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
        self._interrupted: list[int] = []  # ids of the trials failed by this stop, to put back
        self.current_trial: int | None = None  # id of the trial the guarded objective runs, or ran last

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self._in_trial:
            return
        # Inside a storage call the interrupt waits for the call to end: raised between BEGIN and COMMIT
        # it could leave SQLite's write lock held, and every worker would wait on it until this one died.
        if not run_after_storage_call(lambda: self._interrupt(signum)):
            self._interrupt(signum)

    def _interrupt(self, signum: int) -> None:
        if self._in_trial:
            raise KeyboardInterrupt(f"signal {signum}")

    def guard(self, objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
        def guarded(trial: optuna.Trial) -> float:
            self._in_trial, self.current_trial = True, trial._trial_id
            try:
                if self.requested:
                    # Every failed trial says why, this one too (the signal came between ask and start).
                    set_user_attrs(trial, {keys.FAIL_REASON: "stopped by a signal before the trial started"})
                    raise KeyboardInterrupt("stop requested before the trial started")
                return objective(trial)
            except KeyboardInterrupt:
                self.interrupted(trial._trial_id)
                raise
            finally:
                self._in_trial = False

        return guarded

    def interrupted(self, trial_id: int) -> None:
        """Note a trial that this stop failed (Optuna, or the fused loop, records it FAIL): it is put back."""
        self._interrupted.append(trial_id)

    @contextlib.contextmanager
    def putting_back(self, study: optuna.Study, storage: optuna.storages.BaseStorage) -> Iterator[None]:
        """On leaving the block, queue every trial this stop interrupted again (`RetryStaleTrial.put_back`).

        Without it an interrupted trial stayed FAIL and never ran again: 4 trials lost in each interrupted
        run, an interrupted baseline never completed (issue #27).
        """
        try:
            yield
        finally:
            for trial_id in self._interrupted:
                trial = storage.get_trial(trial_id)
                if trial.state == TrialState.FAIL:
                    RetryStaleTrial.put_back(study, trial)
            self._interrupted.clear()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM within the block (main thread only; elsewhere signals stay as they are).

        A signal that this process ignores stays ignored: the pool starts its workers with SIGINT ignored,
        so that a Ctrl-C at the terminal reaches only the controller, which then stops them.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        watched = [
            signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) is not signal.SIG_IGN
        ]
        previous = {signum: signal.signal(signum, self.handle) for signum in watched}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def worker_main(
    url: str,
    study_name: str,
    slot: WorkerSlot,
    log_path: str,
    total: int | None,
    deadline: float | None,
    max_trials: int | None,
    kind: JobKind | None = None,
    parent_pid: int | None = None,
    data_dir: str | None = None,
) -> None:
    """Entry point of a spawned worker process: logs to its own file; exit code 3 on a failure streak, 4 on an error.

    With `parent_pid` (its controller) the worker is killed when that process dies (see `die_with_parent`).
    With `data_dir` it trains on the data its pool shares there (`load_shared`), else it loads the data itself.
    """
    if parent_pid is not None:
        die_with_parent(parent_pid)
    os.environ.update(slot.env)  # before torch loads, so the worker sees only its GPU
    code = 0
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        sys.stdout = sys.stderr = log
        # The descriptors too: Optuna's log handler holds the original stderr, and native code writes to
        # fd 2; nothing a worker says belongs on the controller's terminal.
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        log.write(
            f"{time.strftime('%H:%M:%S')} {worker_label(slot)} starts on {slot.device}"
            f"{'' if slot.gpu is None else f' (GPU {slot.gpu})'}, {slot.threads} thread(s)\n"
        )
        try:
            outcome = run_worker(
                url,
                study_name,
                slot,
                total=total,
                max_trials=max_trials,
                deadline=deadline,
                log=log,
                seed_salt=os.getpid(),
                kind=kind,
                wait_for_database=True,
                data=None if data_dir is None else load_shared(data_dir),
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
