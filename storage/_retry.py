"""Riding out database outages: retry transient errors with backoff, reconnecting, for a stated time.

A dropped connection (a terminated backend, a server restart, a firewall's reset) or a lock timeout
is raised by SQLAlchemy once; SQLAlchemy then discards the pooled connections, so the same call made
again opens a fresh one. `RetryingRDBStorage` makes every Optuna storage call again, with growing
pauses, until it succeeds or the database has been unreachable for `retry_seconds`; only then does
`DatabaseUnavailable` end the search, in one line that names the (masked) URL.

Each storage call is one transaction, so repeating it is safe with two exceptions, both handled: a
trial's final state whose commit reached the database before the connection dropped (the repeat finds
the trial already finished in that state, which is success), and a claim of a waiting trial in the
same case (the repeat finds it RUNNING and moves on; the claimed trial never beats, and the worker
loop's orphan check fails and retries it).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

import optuna
import sqlalchemy.exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from archsearch.storage._url import StorageError, mask_url

__all__ = [
    "DB_RETRY_SECONDS",
    "DatabaseUnavailable",
    "RetryingRDBStorage",
    "is_transient",
    "retry_transient",
    "with_retry",
]

DB_RETRY_SECONDS = 120.0
_FIRST_PAUSE_S = 0.1
_LONGEST_PAUSE_S = 5.0
T = TypeVar("T")

# PostgreSQL SQLSTATE classes and codes that a later attempt can clear: connection exceptions (08),
# operator intervention such as a terminated backend or a shutting-down server (57P), transaction
# rollbacks from serialization failures and deadlocks (40), insufficient resources such as too many
# connections (53), and a lock wait that timed out (55P03).
_PG_TRANSIENT_PREFIXES = ("08", "57P", "40", "53", "55P03")
# MySQL/MariaDB error codes of the same kinds: lock wait timeout, deadlock, too many connections,
# cannot connect, server gone away, lost connection, server shutdown.
_MYSQL_TRANSIENT_CODES = {1040, 1205, 1213, 2002, 2003, 2006, 2013, 2055, 4031}


class DatabaseUnavailable(StorageError):
    """The database stayed unreachable longer than the retry limit; rerunning the command continues the study."""


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _driver_error_is_transient(orig: BaseException) -> bool:
    module = type(orig).__module__
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    if module.startswith("psycopg"):
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        # No SQLSTATE means the client itself lost or could not open the connection.
        return code is None or str(code).startswith(_PG_TRANSIENT_PREFIXES)
    if module.startswith(("pymysql", "MySQLdb")):
        return bool(orig.args) and orig.args[0] in _MYSQL_TRANSIENT_CODES
    return False


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is one that the same call may not meet again.

    Optuna wraps SQLAlchemy errors raised at commit in its StorageInternalError, so the whole chain
    of causes is examined. Errors in the data or the schema are never transient.
    """
    for link in _chain(error):
        if isinstance(link, sqlalchemy.exc.DBAPIError):
            if link.connection_invalidated:
                return True
            if isinstance(link, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
                return link.orig is not None and _driver_error_is_transient(link.orig)
            return False
        if isinstance(link, sqlalchemy.exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(link, sqlite3.Error):
            return _driver_error_is_transient(link)
    return False


class _Outage:
    """When the database stopped answering (shared by every call through one storage); None while it answers."""

    def __init__(self) -> None:
        self.since: float | None = None


def retry_transient(fn: Callable[[], T], *, url: str, retry_seconds: float, outage: _Outage | None = None) -> T:
    """Call `fn` until it returns, retrying transient database errors for up to `retry_seconds` of outage.

    The pauses grow from 0.1 s to 5 s, with jitter so that workers cut off together do not reconnect
    together. An outage that already lasted `retry_seconds` (seen by an earlier call) gets one attempt.

    Raises:
        DatabaseUnavailable: The database did not answer for `retry_seconds`; the message masks the password.
    """
    outage = outage or _Outage()
    pause = _FIRST_PAUSE_S
    while True:
        try:
            result = fn()
        except Exception as e:
            if not is_transient(e):
                raise
            now = time.monotonic()
            if outage.since is None:
                outage.since = now
            waited = now - outage.since
            if waited >= retry_seconds:
                cause = _chain(e)[-1]
                cause = getattr(cause, "orig", None) or cause  # the driver's own error, without SQLAlchemy's wrapping
                first_line = (str(cause).strip().splitlines() or [""])[0]
                raise DatabaseUnavailable(
                    f"The database {mask_url(url)} stayed unreachable for {waited:.0f} s (the [study] db_retry_seconds "
                    f"limit is {retry_seconds:g} s): {type(cause).__name__}: {mask_url(first_line)}. Rerun the same "
                    "command once it answers to continue the study."
                ) from e
            time.sleep(min(pause * random.uniform(0.5, 1.0), retry_seconds - waited))
            pause = min(2 * pause, _LONGEST_PAUSE_S)
            continue
        outage.since = None
        return result


# Calls made from inside a retried call (Optuna's storage calls one another) are not retried again:
# the outermost call repeats the whole transaction, and the outage limit is not multiplied.
_INSIDE = threading.local()


def run_after_storage_call(action: Callable[[], None]) -> bool:
    """Run `action` when this thread's storage call ends, if it is inside one; False (nothing queued) if not.

    For signal handlers: an exception raised in the middle of a call can land between SQLite's BEGIN
    IMMEDIATE and its COMMIT, and a connection left in its transaction holds the database's write lock
    for every process until this one dies. Queued, the exception is raised once the call has committed or
    rolled back. Only the latest queued action runs.
    """
    if not getattr(_INSIDE, "active", False):
        return False
    _INSIDE.after = action
    return True


# Every RDBStorage method that opens a session, as Optuna and its write-through cache call them.
_RETRIED_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "_get_stale_trial_ids",
)


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose every call rides out transient database errors for `retry_seconds`.

    Args:
        url: SQLAlchemy URL.
        retry_seconds: How long the database may stay unreachable before a call raises DatabaseUnavailable.
        **kwargs: Passed to RDBStorage.
    """

    def __init__(self, url: str, *, retry_seconds: float = DB_RETRY_SECONDS, **kwargs: Any) -> None:
        self.retry_seconds = retry_seconds
        self._outage = _Outage()
        super().__init__(url, **kwargs)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, retried as this storage's own calls are (for queries made outside Optuna)."""
        if getattr(_INSIDE, "active", False):
            return fn(*args, **kwargs)
        _INSIDE.active = True
        try:
            return retry_transient(
                lambda: fn(*args, **kwargs), url=self.url, retry_seconds=self.retry_seconds, outage=self._outage
            )
        finally:
            _INSIDE.active = False
            after, _INSIDE.after = getattr(_INSIDE, "after", None), None
            if after is not None:
                after()  # e.g. a signal's KeyboardInterrupt, now that no transaction is open

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        attempts = 0

        def once() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return optuna.storages.RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                # A repeat after a commit whose reply was lost finds its own write already done.
                if (
                    attempts > 1
                    and state.is_finished()
                    and optuna.storages.RDBStorage.get_trial(self, trial_id).state == state
                ):
                    return True
                raise

        return self.call(once)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.call(optuna.storages.RDBStorage.record_heartbeat, self, trial_id)
        except DatabaseUnavailable:
            # The heartbeat thread's error would only print a traceback; the trial's own next write
            # meets the same outage and stops the worker with one line.
            pass

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_outage", None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._outage = _Outage()


def _retrying(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    def retried(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self.call(method, self, *args, **kwargs)

    retried.__name__ = retried.__qualname__ = name
    retried.__doc__ = method.__doc__
    return retried


for _name in _RETRIED_METHODS:
    setattr(RetryingRDBStorage, _name, _retrying(_name))


def with_retry(storage: Any, fn: Callable[[], T]) -> T:
    """`fn()` retried by `storage`'s policy when it is a RetryingRDBStorage (or wraps one); else called once."""
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, RetryingRDBStorage):
        return backend.call(fn)
    return fn()
