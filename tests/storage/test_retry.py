"""Tests of riding out database outages: which errors are transient, the retry loop, and real dropped connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import TrialState

from archsearch.storage import DatabaseUnavailable, RetryingRDBStorage, is_transient, make_storage, trial_state_counts
from archsearch.storage._retry import _Outage, retry_transient


class _PgError(Exception):
    """Stands in for a psycopg error: the classification reads only its module and SQLSTATE."""

    __module__ = "psycopg"

    def __init__(self, message: str, sqlstate: str | None):
        super().__init__(message)
        self.sqlstate = sqlstate


def _operational(orig: BaseException) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_operational(_PgError("terminating connection due to administrator command", "57P01")), True),
        (_operational(_PgError("server closed the connection unexpectedly", None)), True),
        (_operational(_PgError("canceling statement due to lock timeout", "55P03")), True),
        (_operational(_PgError("password authentication failed for user", "28P01")), False),
        (_operational(sqlite3.OperationalError("database is locked")), True),
        (_operational(sqlite3.OperationalError("no such table: trials")), False),
        (sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_is_transient_tells_connection_and_lock_errors_from_data_errors(error: BaseException, transient: bool) -> None:
    """Check that dropped connections and lock timeouts are transient, and data, schema or login errors are not."""
    assert is_transient(error) is transient


def test_is_transient_looks_through_optuna_wrapping() -> None:
    """Check that an error Optuna re-raised as StorageInternalError is judged by its cause."""
    try:
        try:
            raise _operational(_PgError("terminating connection due to administrator command", "57P01"))
        except sqlalchemy.exc.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e
    except optuna.exceptions.StorageInternalError as wrapped:
        assert is_transient(wrapped)


def test_retry_transient_repeats_until_the_call_succeeds() -> None:
    """Check that a call failing transiently twice is made a third time and its result returned."""
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _operational(sqlite3.OperationalError("database is locked"))
        return "done"

    outage = _Outage()
    assert retry_transient(flaky, url="sqlite:///x.db", retry_seconds=30, outage=outage) == "done"
    assert len(calls) == 3
    # A success ends the outage, so the next one gets the whole limit again.
    assert outage.since is None


def test_retry_transient_does_not_repeat_other_errors() -> None:
    """Check that an error that is not transient is raised at the first attempt."""
    calls = []

    def broken() -> None:
        calls.append(1)
        raise _operational(sqlite3.OperationalError("no such table: trials"))

    with pytest.raises(sqlalchemy.exc.OperationalError, match="no such table"):
        retry_transient(broken, url="sqlite:///x.db", retry_seconds=30)
    assert len(calls) == 1


def test_retry_transient_gives_up_after_the_limit_with_one_masked_line() -> None:
    """Check that an outage longer than the limit raises DatabaseUnavailable naming the masked URL and the limit."""

    def down() -> None:
        raise _operational(_PgError("connection refused", None))

    with pytest.raises(
        DatabaseUnavailable,
        match=r"^The database postgresql://bob:\*\*\*@db/x stayed unreachable for 0 s "
        r"\(the \[study\] db_retry_seconds limit is 0\.2 s\): _PgError: connection refused\. Rerun",
    ) as info:
        retry_transient(down, url="postgresql://bob:s3cret@db/x", retry_seconds=0.2)
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


def test_make_storage_returns_a_retrying_storage_with_the_given_limit(tmp_path: Path) -> None:
    """Check that make_storage's storage is a RetryingRDBStorage with the limit it was given."""
    storage = make_storage(f"sqlite:///{tmp_path}/r.db", retry_seconds=7)
    assert isinstance(storage, RetryingRDBStorage)
    assert storage.retry_seconds == 7


def _terminate_backends(url: str, tag: str) -> int:
    """Terminate the connections whose application name is `tag` (this test's own, not other tests')."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :tag AND pid <> pg_backend_pid()"
    with engine.connect() as connection:
        killed = connection.execute(sqlalchemy.text(query), {"tag": tag}).scalar()
    engine.dispose()
    return killed


@pytest.mark.services
@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_storage_calls_survive_terminated_backends(postgres_url: str, unique_name: str) -> None:
    """Check that every kind of storage call (Optuna's, the batched attributes, the counts) goes on after
    PostgreSQL terminates all of this process's connections, twice."""
    from archsearch.storage import set_user_attrs

    url = (
        sqlalchemy.engine.make_url(postgres_url)
        .update_query_dict({"application_name": unique_name})
        .render_as_string(hide_password=False)
    )
    storage = make_storage(url, heartbeat_interval=1, grace_period=2, retry_seconds=20)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    try:
        for _ in range(2):
            trial = study.ask()
            storage.record_heartbeat(trial._trial_id)
            assert _terminate_backends(postgres_url, unique_name) >= 1
            set_user_attrs(trial, {"widths": [4, 2]})
            trial.report(0.5, 1)
            assert _terminate_backends(postgres_url, unique_name) >= 1
            study.tell(trial, 1.0)
            assert _terminate_backends(postgres_url, unique_name) >= 1
            assert trial_state_counts(study)[TrialState.COMPLETE] >= 1
        assert [t.user_attrs["widths"] for t in study.get_trials()] == [[4, 2], [4, 2]]
    finally:
        optuna.delete_study(study_name=unique_name, storage=postgres_url)
