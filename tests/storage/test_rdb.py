"""Tests of opening Optuna storages on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.storage import StorageError, finished_count, make_storage, open_study, state_counts, trial_state_counts


def test_make_storage_sqlite_uses_wal(tmp_path: Path) -> None:
    """Check that a SQLite storage is switched to WAL so readers and several writers coexist."""
    make_storage(f"sqlite:///{tmp_path}/a.db")
    with sqlite3.connect(tmp_path / "a.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_make_storage_sqlite_missing_folder(tmp_path: Path) -> None:
    """Check that a SQLite file in a missing folder is a clear error, not a driver traceback."""
    with pytest.raises(StorageError, match="which does not exist"):
        make_storage(f"sqlite:///{tmp_path}/nope/a.db")


def test_make_storage_unreachable_server_masks_password() -> None:
    """Check that a connection failure names the URL without its password."""
    with pytest.raises(
        StorageError, match=r"Cannot open the storage 'postgresql\+psycopg://bob:\*\*\*@127\.0\.0\.1:1/none'"
    ) as info:
        make_storage("postgresql+psycopg://bob:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(info.value)


def test_open_study_lists_existing_names(tmp_path: Path) -> None:
    """Check that opening a missing study lists the studies that do exist."""
    storage = make_storage(f"sqlite:///{tmp_path}/a.db")
    optuna.create_study(study_name="alpha", storage=storage)
    with pytest.raises(StorageError, match=r"No study named 'beta'.*Studies there: 'alpha'\."):
        open_study(storage, "beta")
    assert open_study(storage, "alpha").study_name == "alpha"


def test_state_counts_and_finished_count(tmp_path: Path) -> None:
    """Check that counts cover every state and that finished means complete + pruned."""
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path}/a.db"))
    study.add_trial(optuna.trial.create_trial(value=1.0))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    counts = state_counts(study)
    assert counts["COMPLETE"] == 1 and counts["PRUNED"] == 1 and counts["FAIL"] == 1 and counts["RUNNING"] == 0
    assert finished_count(study) == 2


def _study_of_every_state(storage: optuna.storages.BaseStorage | None, name: str) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage)
    for state in (TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        trial = study.ask()
        study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # RUNNING
    study.enqueue_trial({"x": 0.5})  # WAITING
    optuna.create_study(study_name=f"{name}-other", storage=storage).ask()  # another study's trial: not counted
    return study


def test_trial_state_counts_match_get_trials(tmp_path: Path) -> None:
    """Check the database-side count against counting the trials themselves, on SQLite and in memory."""
    for storage in (make_storage(f"sqlite:///{tmp_path}/a.db"), None):
        study = _study_of_every_state(storage, "counts")
        counts = trial_state_counts(study)
        assert counts == Counter(t.state for t in study.get_trials(deepcopy=False))
        assert counts[TrialState.COMPLETE] == 2 and counts[TrialState.WAITING] == 1 and counts[TrialState.RUNNING] == 1


@pytest.mark.services
@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
def test_trial_state_counts_on_database_servers(server: str, request: pytest.FixtureRequest, unique_name: str) -> None:
    """Check the GROUP BY count on PostgreSQL and MariaDB, where states are stored as enum names."""
    storage = make_storage(request.getfixturevalue(server))
    try:
        study = _study_of_every_state(storage, unique_name)
        assert trial_state_counts(study) == Counter(t.state for t in study.get_trials(deepcopy=False))
    finally:
        for name in (unique_name, f"{unique_name}-other"):
            optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.services
@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
def test_make_storage_on_database_servers(server: str, request: pytest.FixtureRequest, unique_name: str) -> None:
    """Check that PostgreSQL and MariaDB storages round-trip a study and clean up after themselves."""
    url = request.getfixturevalue(server)
    storage = make_storage(url)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    try:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        assert finished_count(open_study(make_storage(url), unique_name)) == 3
    finally:
        optuna.delete_study(study_name=unique_name, storage=storage)


def test_make_storage_must_exist_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    """Check that read-only commands do not create an empty database at a mistyped path."""
    with pytest.raises(StorageError, match=r"No SQLite database at .*typo\.db"):
        make_storage(f"sqlite:///{tmp_path}/typo.db", must_exist=True)
    assert not (tmp_path / "typo.db").exists()


def _claim_enqueued(url: str) -> list[int]:
    """Worker process: claim enqueued trials until a fresh (not enqueued) one comes back."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(url)
    study = optuna.load_study(study_name="claims", storage=storage)
    claimed = []
    while True:
        trial = study.ask()
        if "fixed_params" not in storage.get_trial_system_attrs(trial._trial_id):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return claimed
        claimed.append(trial.number)
        study.tell(trial, 1.0)


@pytest.mark.timeout(300)
def test_make_storage_sqlite_workers_never_claim_the_same_waiting_trial(tmp_path: Path) -> None:
    """Check that 4 processes popping enqueued trials from one SQLite file each get distinct trials
    (plain pysqlite lets two processes both claim one WAITING trial; BEGIN IMMEDIATE prevents it)."""
    import multiprocessing

    url = f"sqlite:///{tmp_path}/claims.db"
    study = optuna.create_study(study_name="claims", storage=make_storage(url))
    for k in range(80):
        study.enqueue_trial({"x": k})
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claims = pool.map(_claim_enqueued, [url] * 4, chunksize=1)
    every = [number for claimed in claims for number in claimed]
    assert sorted(every) == list(range(80))


def _open_when_told(url: str, go, results) -> None:
    """Worker process: wait for the common start signal, then open (and so create) the storage at `url`."""
    go.wait(60)
    try:
        make_storage(url)
        results.put("ok")
    except Exception as e:  # reported to the test, which names it
        results.put(f"{type(e).__name__}: {e}")


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path):
    """The URL of a database that has no tables yet: a new SQLite file, or a new database on a server (dropped after)."""
    import sqlalchemy

    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    server = request.getfixturevalue(kind)
    name = f"archsearch_fresh_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield sqlalchemy.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if kind == "postgres_url" else ""
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "fresh_database",
    ["sqlite", *(pytest.param(url, marks=pytest.mark.services) for url in ("postgres_url", "mysql_url"))],
    indirect=True,
)
def test_make_storage_by_eight_processes_at_once_on_a_fresh_database(fresh_database: str) -> None:
    """Check that 8 processes opening one new, empty database at the same moment all succeed (a cluster's
    start): without a lock their schema creations collide ('already exists', duplicate alembic version)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    processes = [context.Process(target=_open_when_told, args=(fresh_database, go, results)) for _ in range(8)]
    for process in processes:
        process.start()
    try:
        go.set()
        outcomes = [results.get(timeout=180) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    # Every process opened the storage; none met another's half-made schema.
    assert outcomes == ["ok"] * 8, outcomes
    assert finished_count(optuna.create_study(study_name="after", storage=make_storage(fresh_database))) == 0


@pytest.mark.services
def test_make_storage_names_a_schema_lock_held_too_long(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that a MariaDB schema lock that another connection holds past the wait is a one-line StorageError."""
    from archsearch.storage import _rdb

    monkeypatch.setattr(_rdb, "_MYSQL_SCHEMA_LOCK_WAIT_S", 0)
    with _rdb._schema_lock(mysql_url, "mysql"):
        with pytest.raises(StorageError, match=r"another process held its schema lock 'archsearch-schema-\w+' for 0 s"):
            make_storage(mysql_url)
    make_storage(mysql_url)  # released with the holder's connection
