"""Tests of archsearch.storage.set_user_attrs: many user attributes of a trial in one write."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.storage import StorageError, keys, make_storage, set_study_user_attrs, set_user_attrs, stored_value

ATTRS = {"widths": [64, 32], "n_params": 4_810, "activation": "relu", "val_accuracy": 0.9875, "best_epoch": None}


def _check_round_trip(storage: optuna.storages.BaseStorage, name: str) -> None:
    study = optuna.create_study(study_name=name, storage=storage)
    trial = study.ask()
    trial.set_user_attr("val_accuracy", 0.5)  # an earlier value, replaced by the batch
    set_user_attrs(trial, ATTRS)
    assert trial.user_attrs == ATTRS  # the trial's own view
    study.tell(trial, 1.0)
    stored = optuna.load_study(study_name=name, storage=storage).trials[0].user_attrs
    assert stored == ATTRS
    assert [type(stored[k]) for k in ATTRS] == [type(v) for v in ATTRS.values()]


def test_set_user_attrs_sqlite_stores_every_key_and_replaces_old_values(tmp_path: Path) -> None:
    """Check that the batch stores the same values as set_user_attr would, on SQLite."""
    _check_round_trip(make_storage(f"sqlite:///{tmp_path}/a.db"), "batch")


@pytest.mark.services
@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
def test_set_user_attrs_on_database_servers(request: pytest.FixtureRequest, server: str, unique_name: str) -> None:
    """Check the multi-row upsert of PostgreSQL and MariaDB (each has its own INSERT ... ON CONFLICT form)."""
    storage = make_storage(request.getfixturevalue(server))
    try:
        _check_round_trip(storage, unique_name)
    finally:
        optuna.delete_study(study_name=unique_name, storage=storage)


def test_set_user_attrs_in_memory_falls_back_to_one_write_per_key() -> None:
    """Check that a non-RDB storage still gets every attribute."""
    study = optuna.create_study()
    trial = study.ask()
    set_user_attrs(trial, ATTRS)
    study.tell(trial, 1.0)
    assert study.trials[0].user_attrs == ATTRS


def test_set_user_attrs_on_a_finished_trial_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Check that a finished trial is refused as by set_user_attr, and that no key of the batch lands."""
    study = optuna.create_study(study_name="done", storage=make_storage(f"sqlite:///{tmp_path}/a.db"))
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(
        optuna.exceptions.UpdateFinishedTrialError, match=r"has already finished and can not be updated"
    ):
        set_user_attrs(trial, ATTRS)
    assert study.trials[0].user_attrs == {}


def test_set_user_attrs_unserializable_value_is_refused_before_writing(tmp_path: Path) -> None:
    """Check that a value JSON cannot hold names its type, and the other keys are not written either."""
    study = optuna.create_study(study_name="bad", storage=make_storage(f"sqlite:///{tmp_path}/a.db"))
    trial = study.ask()
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        set_user_attrs(trial, {"ok": 1, "bad": {1, 2}})
    study.tell(trial, 1.0)
    assert study.trials[0].user_attrs == {}


def test_set_user_attrs_empty_mapping_writes_nothing(tmp_path: Path) -> None:
    """Check that an empty batch is a no-op, not an empty INSERT."""
    study = optuna.create_study(study_name="empty", storage=make_storage(f"sqlite:///{tmp_path}/a.db"))
    trial = study.ask()
    set_user_attrs(trial, {})
    assert trial.user_attrs == {}


def test_annotate_finished_trial_writes_to_a_failed_trial(tmp_path: Path) -> None:
    """Check that a reason can be added to a trial that has already failed, which set_user_attr refuses."""
    from archsearch.storage import annotate_finished_trial

    study = optuna.create_study(study_name="failed", storage=make_storage(f"sqlite:///{tmp_path}/a.db"))
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    annotate_finished_trial(study._storage, trial._trial_id, {"fail_reason": "worker heartbeat stale"})
    assert study.trials[0].user_attrs == {"fail_reason": "worker heartbeat stale"}


def test_annotate_finished_trial_refuses_a_storage_without_rows() -> None:
    """Check that an in-memory storage, which has no rows to upsert, is refused with its type named."""
    from archsearch.storage import annotate_finished_trial

    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(TypeError, match=r"needs an RDB storage with an upsert\. Got InMemoryStorage instead\."):
        annotate_finished_trial(study._storage, trial._trial_id, {"fail_reason": "x"})


# Quotes, backslashes and non-ASCII characters: each grows when a part of the JSON text is quoted again.
LONG = {"categories": [f'city "{i}" \\ Zürich-{i:05d}' for i in range(4000)], "n": 4000}


SERVERS = ["sqlite", *(pytest.param(url, marks=pytest.mark.services) for url in ("postgres_url", "mysql_url"))]


@pytest.mark.parametrize("server", SERVERS)
def test_set_study_user_attrs_splits_a_value_longer_than_mariadb_holds(
    request: pytest.FixtureRequest, server: str, tmp_path: Path, unique_name: str
) -> None:
    """Check that a study attribute whose JSON exceeds MariaDB's 65,535-byte TEXT column is stored in parts, each
    within it, and read back whole by stored_value; a short value is stored whole, as in older studies."""
    import json

    url = f"sqlite:///{tmp_path}/a.db" if server == "sqlite" else request.getfixturevalue(server)
    storage = make_storage(url)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    try:
        assert len(json.dumps(LONG)) > 65_535
        set_study_user_attrs(study, {"preprocessing": LONG, "metric": "accuracy"})
        attrs = optuna.load_study(study_name=unique_name, storage=storage).user_attrs
        assert stored_value(attrs, "preprocessing") == LONG and attrs["metric"] == "accuracy"
        parts = attrs["preprocessing"][keys.PARTS]
        assert parts > 1 and all(
            len(json.dumps(attrs[keys.part_key("preprocessing", i)])) <= 65_535 for i in range(parts)
        )
    finally:
        optuna.delete_study(study_name=unique_name, storage=storage)


@pytest.mark.services
def test_set_user_attrs_refuses_a_trial_attribute_longer_than_mariadb_holds(mysql_url: str, unique_name: str) -> None:
    """Check that on MariaDB a trial attribute too long for its column is refused naming the attribute, its size and
    the fix, before anything is written (it was Optuna's StorageInternalError "e.g. exceeding max length")."""
    storage = make_storage(mysql_url)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    try:
        trial = study.ask()
        with pytest.raises(
            StorageError,
            match=r"The trial attribute 'huge' is 80,00\d bytes of JSON, more than MariaDB/MySQL's attribute column "
            r"\(value_json, TEXT\) holds \(65,535 bytes\); nothing was written\. Store the study on PostgreSQL or SQLite",
        ):
            set_user_attrs(trial, {"small": 1, "huge": "x" * 80_000})
        assert "small" not in storage.get_trial(trial._trial_id).user_attrs
    finally:
        optuna.delete_study(study_name=unique_name, storage=storage)
