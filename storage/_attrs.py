"""Several user attributes of a trial in one statement.

Optuna writes each `set_user_attr` in a transaction of its own, and each one first loads the trial to
check that it still runs. A trial's record is some twenty attributes: on a database server that is
some forty round trips, and on SQLite twenty commits while the write lock is held, so the other workers
wait. Here the check runs once and the rows go in as one multi-row upsert, in one transaction. The rows
are those `set_trial_user_attr` writes: (trial_id, key, JSON of the value), replacing an earlier value.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping

import optuna
from sqlalchemy.dialects import mysql, postgresql, sqlite

from archsearch.storage._rdb import rdb_backend
from archsearch.storage._retry import with_retry

__all__ = ["set_user_attrs", "annotate_finished_trial"]


def _upsert(dialect: str, table: Any, rows: list[dict[str, Any]]) -> Any | None:
    """One INSERT of all `rows` that replaces the value of an existing (trial_id, key); None if unsupported."""
    if dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)):
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(rows)
        return insert.on_conflict_do_update(
            index_elements=[table.c.trial_id, table.c.key], set_={"value_json": insert.excluded.value_json}
        )
    if dialect == "mysql":
        insert = mysql.insert(table).values(rows)
        return insert.on_duplicate_key_update(value_json=insert.inserted.value_json)
    return None


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Set every key of `attrs` as a user attribute of the running `trial`, in one transaction on RDB storages.

    The trial's own view (`trial.user_attrs`) sees them too, as after `trial.set_user_attr`. Other
    storages, and database dialects without an upsert, fall back to one `set_user_attr` per key.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: The trial has finished (as `set_user_attr` does); nothing is written.
    """
    if not attrs:
        return
    backend = rdb_backend(trial.storage)
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:  # another Optuna layout: per-key writes are slower but equally correct
        backend = None
    statement = None
    if backend is not None:
        table = models.TrialUserAttributeModel.__table__
        rows = [
            {"trial_id": trial._trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()
        ]
        statement = _upsert(backend.engine.name, table, rows)
    if statement is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial_model = models.TrialModel.find_or_raise_by_id(trial._trial_id, session)
            backend.check_trial_is_updatable(trial._trial_id, trial_model.state)
            session.execute(statement)

    # An upsert: repeating it after a lost reply writes the same rows again.
    with_retry(backend, write)
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:
        cached.user_attrs.update(attrs)


def annotate_finished_trial(storage: optuna.storages.BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Set user attributes of a trial that has already finished, such as why a stale trial was failed.

    Optuna refuses any write to a finished trial, but a trial failed for a stale heartbeat is finished
    by the worker that noticed, before anyone can say why; this writes the rows without that check.

    Raises:
        TypeError: `storage` is not an Optuna RDB storage (or a cache over one) with an upsert.
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    if not attrs:
        return
    backend = rdb_backend(storage)
    statement = None
    if backend is not None:
        table = models.TrialUserAttributeModel.__table__
        rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
        statement = _upsert(backend.engine.name, table, rows)
    if statement is None:
        raise TypeError(
            f"annotate_finished_trial needs an RDB storage with an upsert. Got {type(storage).__name__} instead."
        )

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            session.execute(statement)

    with_retry(backend, write)
