"""Several user attributes of a trial or a study in one statement, and study attributes of any size.

Optuna writes each `set_user_attr` in a transaction of its own, and each one first loads the trial to
check that it still runs. A trial's record is some twenty attributes: on a database server that is
some forty round trips, and on SQLite twenty commits while the write lock is held, so the other workers
wait. Here the check runs once and the rows go in as one multi-row upsert, in one transaction. The rows
are those `set_trial_user_attr` writes: (trial_id, key, JSON of the value), replacing an earlier value.

MariaDB and MySQL keep an attribute's JSON in a TEXT column of 65,535 bytes, where PostgreSQL and SQLite
hold any size: the preprocessing of a CSV with a 10,000-category column is some 230 kB. A study attribute
longer than that is split into parts (`keys.PARTS`, `keys.part_key`) written in the same transaction, and
`stored_value` joins them; a value that fits is stored whole, as before, so older studies read alike. A
trial attribute that would not fit is refused before anything is written, naming the attribute.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping

import optuna
from sqlalchemy.dialects import mysql, postgresql, sqlite

from archsearch.storage import keys
from archsearch.storage._rdb import rdb_backend
from archsearch.storage._retry import with_retry
from archsearch.storage._url import StorageError

__all__ = ["set_user_attrs", "annotate_finished_trial", "set_study_user_attrs", "stored_value"]

MYSQL_TEXT_BYTES = 65_535  # MariaDB/MySQL's TEXT: Optuna's value_json column there
# A split value's parts are this many characters of its JSON text, which is ASCII (json.dumps escapes the
# rest); stored, each part is JSON-quoted again, at most doubling it (every character a quote or backslash).
PART_CHARS = 30_000


def _upsert(dialect: str, table: Any, rows: list[dict[str, Any]], owner: str = "trial_id") -> Any | None:
    """One INSERT of all `rows` that replaces the value of an existing (owner, key); None if unsupported."""
    if dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)):
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(rows)
        return insert.on_conflict_do_update(
            index_elements=[table.c[owner], table.c.key], set_={"value_json": insert.excluded.value_json}
        )
    if dialect == "mysql":
        insert = mysql.insert(table).values(rows)
        return insert.on_duplicate_key_update(value_json=insert.inserted.value_json)
    return None


def _check_fits(dialect: str, rows: list[dict[str, Any]]) -> None:
    """Refuse, before anything is written, a trial attribute longer than the database's attribute column."""
    if dialect != "mysql":
        return
    for row in rows:
        size = len(row["value_json"].encode())
        if size > MYSQL_TEXT_BYTES:
            raise StorageError(
                f"The trial attribute {row['key']!r} is {size:,} bytes of JSON, more than MariaDB/MySQL's attribute "
                f"column (value_json, TEXT) holds ({MYSQL_TEXT_BYTES:,} bytes); nothing was written. Store the study "
                "on PostgreSQL or SQLite, whose columns hold any size."
            )


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
        _check_fits(backend.engine.name, rows)
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
        _check_fits(backend.engine.name, rows)
        statement = _upsert(backend.engine.name, table, rows)
    if statement is None:
        raise TypeError(
            f"annotate_finished_trial needs an RDB storage with an upsert. Got {type(storage).__name__} instead."
        )

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            session.execute(statement)

    with_retry(backend, write)


def _split(key: str, value: Any) -> dict[str, Any]:
    """`{key: value}`, or when its JSON is longer than every database holds, its parts and the marker that counts them."""
    text = json.dumps(value)
    if len(text) <= MYSQL_TEXT_BYTES:
        return {key: value}
    parts = [text[start : start + PART_CHARS] for start in range(0, len(text), PART_CHARS)]
    return {**{keys.part_key(key, i): part for i, part in enumerate(parts)}, key: {keys.PARTS: len(parts)}}


def set_study_user_attrs(study: optuna.Study, attrs: Mapping[str, Any]) -> None:
    """Set every key of `attrs` as a user attribute of `study`, all in one transaction on RDB storages.

    A value whose JSON is longer than MariaDB/MySQL's column holds is split into parts (read it back with
    `stored_value`). One transaction: a study being initialised holds either all of them or none. Other
    storages, and dialects without an upsert, get one `set_user_attr` per key.

    Raises:
        TypeError: A value is not JSON-serializable; nothing is written.
    """
    rows: dict[str, Any] = {}
    for key, value in attrs.items():
        rows.update(_split(key, value))
    backend = rdb_backend(study._storage)
    statement = None
    if backend is not None and rows:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        table = models.StudyUserAttributeModel.__table__
        values = [{"study_id": study._study_id, "key": k, "value_json": json.dumps(v)} for k, v in rows.items()]
        statement = _upsert(backend.engine.name, table, values, owner="study_id")
    if statement is None:
        for key, value in rows.items():
            study.set_user_attr(key, value)
        return

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            models.StudyModel.find_or_raise_by_id(study._study_id, session)
            session.execute(statement)

    with_retry(backend, write)


def stored_value(attrs: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value of `key` in a study's user attributes, joined from its parts when it was split.

    >>> stored_value({"a": {"archsearch_parts": 2}, "a:part0": '{"x": ', "a:part1": "[1, 2]}"}, "a")
    {'x': [1, 2]}
    >>> stored_value({"a": 3}, "a"), stored_value({}, "a", "none")
    (3, 'none')
    """
    value = attrs.get(key, default)
    if isinstance(value, dict) and set(value) == {keys.PARTS}:
        return json.loads("".join(attrs[keys.part_key(key, i)] for i in range(value[keys.PARTS])))
    return value
