"""Keeping a search whole when its processes die: dead workers' trials are failed, said why, and retried.

- A pool worker dies with its controller: Linux's parent-death signal (prctl PR_SET_PDEATHSIG) sends it
  SIGKILL, so no worker trains on unsupervised after a SIGKILLed controller. Its trial stays RUNNING
  and the next run fails it for its stale heartbeat and retries it with the same parameters. Processes
  started by hand with `archsearch worker` are never bound to the shell that started them. Other
  systems have no parent-death signal; there a worker whose controller died finishes the study alone.
- Every failed trial says why in `fail_reason`, including one failed for a stale heartbeat (Optuna
  writes none) and one whose worker the controller saw die.
- Expected failures print no traceback: a surplus claim (`TotalReached`) is recorded by its `not_run`
  attribute, an interrupted trial by its `fail_reason`, a database gone for good by the command's last line.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import signal
import socket
import sys
import warnings
from typing import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from archsearch.pool._objective import TotalReached
from archsearch.storage import DatabaseUnavailable, annotate_finished_trial, keys

__all__ = [
    "die_with_parent",
    "RetryStaleTrial",
    "fail_trials_of_dead_worker",
    "quiet_expected_failures",
    "worker_prefix",
]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_ORPHANED = 5


def die_with_parent(parent_pid: int) -> bool:
    """Have Linux SIGKILL this process when its parent dies; exit at once if the parent is already gone.

    SIGKILL, not SIGTERM: a worker stopped gracefully closes its trial as an ordinary failure, which is
    not retried, whereas a killed worker's trial goes stale and is retried with its parameters.

    Returns:
        Whether the signal is armed (False off Linux, where a worker outlives its controller).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    # The parent may have died between this process's start and the prctl call.
    if armed and os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)
    return armed


class RetryStaleTrial:
    """Heartbeat-stale trial callback: queue the trial's retry (Optuna's callback) and record why it failed.

    Args:
        max_retry: Retries of one original trial (as RetryHeartbeatStaleTrialCallback's `max_retry`).
        grace_period: The storage's grace period, named in the reason.
    """

    def __init__(self, max_retry: int, grace_period: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.grace_period = grace_period

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reason = trial.user_attrs.get(keys.FAIL_REASON) or (
            f"worker heartbeat stale for over {self.grace_period} s (worker died or lost the database?)"
        )
        self._retry(study, _inherited(trial))
        annotate_finished_trial(study._storage, trial._trial_id, {keys.FAIL_REASON: reason})

    @staticmethod
    def put_back(study: optuna.Study, trial: FrozenTrial) -> None:
        """Queue an interrupted (Ctrl-C, SIGTERM) trial again as WAITING, with its parameters and attributes.

        An interrupt says nothing about the trial, so unlike a death it is put back whatever `max_retry`,
        and the copy does not count as a retry against it (its `retry_history` stays as it was). The copy
        names the interrupted trial in `failed_trial`; like Optuna's retries it runs before any new trial and is
        never stood down as surplus, so an interrupted baseline completes on the next run.
        """
        inherited = _inherited(trial)
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=inherited.params,
                distributions=inherited.distributions,
                user_attrs=inherited.user_attrs,
                system_attrs={keys.OPTUNA_FAILED_TRIAL: trial.number, **trial.system_attrs},
            )
        )


def _inherited(trial: FrozenTrial) -> FrozenTrial:
    """`trial` as its retry copies it: its user attributes less what belongs to the failed run."""
    inherited = copy.deepcopy(trial)
    inherited.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in (keys.FAIL_REASON, keys.NOT_RUN)}
    return inherited


def worker_prefix(pid: int) -> str:
    """The start of the `worker` attribute of every trial of the process `pid` on this machine."""
    return f"{socket.gethostname()}:{pid}/"


def fail_trials_of_dead_worker(
    study: optuna.Study, retry: Callable[[optuna.Study, FrozenTrial], None], pid: int, reason: str
) -> list[int]:
    """Fail, say why and retry the RUNNING trials of a worker process known to be dead; returns their numbers.

    `retry` is a `RetryStaleTrial`, or its `put_back` for a worker that was stopped by an interrupt.

    The controller sees a worker die at once, where a stale heartbeat takes the grace period to show.
    A trial that some other process finished first is left as it is.
    """
    storage = study._storage
    failed = []
    prefix = worker_prefix(pid)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not str(trial.user_attrs.get(keys.WORKER, "")).startswith(prefix):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, keys.FAIL_REASON, reason)
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue
        retry(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


class _QuietExpectedFailures(logging.Filter):
    """Drops Optuna's "Trial N failed" warnings, traceback included, for surplus claims, interrupts and a lost database.

    Each is said once elsewhere: a surplus claim by its `not_run` attribute, an interrupt and a lost
    database by the one line the command ends with. Optuna follows its warning with a second one
    ("Trial N failed with value None."), which goes too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._follow_up: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._follow_up is not None and message.startswith(self._follow_up):
            self._follow_up = None
            return False
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (TotalReached, KeyboardInterrupt, DatabaseUnavailable)):
            self._follow_up = message.split(" failed with parameters", 1)[0] + " failed with value"
            return False
        return True


_FILTER = _QuietExpectedFailures()


def quiet_expected_failures() -> None:
    """Install the filter on the logger of Optuna's optimize loop (once per process)."""
    logging.getLogger("optuna.study._optimize").addFilter(_FILTER)  # adding the same filter twice is a no-op
