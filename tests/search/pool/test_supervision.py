"""Tests of a search that outlives failures: dropped database connections, a killed controller, Ctrl-C,
dead workers' trials failed with a reason and retried before any new trial."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from archsearch.controller import open_search_study
from archsearch.pool import TotalReached
from archsearch.pool._supervision import RetryStaleTrial, fail_trials_of_dead_worker, quiet_expected_failures
from archsearch.storage import finished_count, keys, make_storage

from ...conftest import wait_for
from ..conftest import search_objective, small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "archsearch.cli"]


def _write_config(path: Path, url: str, name: str, n_trials: int, epochs: int, **study: object) -> Path:
    extra = "".join(f"{key} = {value!r}\n" for key, value in study.items())
    path.write_text(
        f'[study]\nname = "{name}"\nstorage = "{url}"\nn_trials = {n_trials}\nheartbeat_interval = 1\ngrace_period = 4\n{extra}'
        '[data]\ndataset = "wine"\n[space]\nlayers = [1, 2]\nwidth = [8, 32]\nbatch_size = [32]\nrecipe_baseline = false\n'
        f"[train]\nepochs = {epochs}\npatience = {epochs}\n",
        encoding="utf-8",
    )
    return path


def _finished_or_zero(url: str, name: str) -> int:
    try:
        return finished_count(optuna.load_study(study_name=name, storage=make_storage(url)))
    except KeyError:  # not created yet
        return 0


def _assert_exact_total(study: optuna.Study, total: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert finished_count(study) == total
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # Every failed trial says why.
    assert all(t.user_attrs.get(keys.FAIL_REASON) for t in trials if t.state == TrialState.FAIL)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of a living parent stays a zombie until reaped; it runs nothing.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _tagged(url: str, tag: str) -> str:
    """`url` whose connections carry `tag` as their application name, so a test terminates only its own."""
    return (
        sqlalchemy.engine.make_url(url)
        .update_query_dict({"application_name": tag})
        .render_as_string(hide_password=False)
    )


def _terminate_backends(url: str, tag: str) -> int:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :tag AND pid <> pg_backend_pid()"
    with engine.connect() as connection:
        killed = connection.execute(sqlalchemy.text(query), {"tag": tag}).scalar()
    engine.dispose()
    return killed


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_search_on_postgres_survives_every_backend_terminated_twice(
    tmp_path: Path, postgres_url: str, unique_name: str
) -> None:
    """Check that a 2-worker search whose every PostgreSQL connection is terminated twice mid-search ends at
    exactly n_trials with exit 0, nothing RUNNING or WAITING, and no failed trial."""
    url = _tagged(postgres_url, unique_name)
    # 30 trials, so that the search is still running at the second termination on a fast machine too.
    config = _write_config(tmp_path / "s.toml", url, unique_name, 30, 4, artifacts=str(tmp_path / "art"))
    controller = subprocess.Popen(
        [*CLI, "search", str(config), "--workers", "2", "--quiet"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        for finished in (2, 5):
            wait_for(
                lambda: _finished_or_zero(postgres_url, unique_name) >= finished or controller.poll() is not None,
                240,
                f"{finished} trials",
            )
            # Between two database calls a process may hold no connection: terminate until some were there.
            killed = []
            wait_for(
                lambda: killed.append(_terminate_backends(postgres_url, unique_name)) or killed[-1] > 0,
                30,
                "a connection",
            )
        _, err = controller.communicate(timeout=300)
        assert controller.returncode == 0, err
        study = optuna.load_study(study_name=unique_name, storage=postgres_url)
        _assert_exact_total(study, 30)
        # A claim made as the total was reached trains nothing and is closed as FAIL with not_run (by design;
        # `archsearch status` counts them apart): no trial that ran may fail.
        assert not [t for t in study.get_trials(states=(TrialState.FAIL,)) if not t.user_attrs.get(keys.NOT_RUN)]
    finally:
        _stop(controller)
        optuna.delete_study(study_name=unique_name, storage=postgres_url)


@pytest.fixture
def own_postgres_database(postgres_url: str):
    """A database and a login role of its own, so that a test can lock the role out without touching others."""
    suffix = uuid.uuid4().hex[:8]
    role, database = f"archsearch_lockout_{suffix}", f"archsearch_lockout_{suffix}"
    # No pool: other tests terminate connections to the server, and this one must outlive them.
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {database} OWNER {role}"))
    url = (
        sqlalchemy.engine.make_url(postgres_url)
        .set(username=role, database=database)
        .render_as_string(hide_password=False)
    )
    try:
        yield url, role, admin
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"ALTER ROLE {role} CONNECTION LIMIT -1"))
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            connection.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lone_worker_that_loses_the_database_stops_with_one_line(tmp_path: Path, own_postgres_database) -> None:
    """Check that an `archsearch worker` whose database stays unreachable past db_retry_seconds exits 2 with one
    line naming the database (no UnboundLocalError), and that its trial is retried on the next run."""
    url, role, admin = own_postgres_database
    config = _write_config(
        tmp_path / "s.toml", url, "lockout", 2, 20, db_retry_seconds=3, artifacts=str(tmp_path / "art")
    )
    from archsearch.config import load_config

    open_search_study(load_config(config))
    worker = subprocess.Popen(
        [*CLI, "worker", "--storage", url, "--study", "lockout", "--workers", "1", "--quiet"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        study = optuna.load_study(study_name="lockout", storage=make_storage(url))
        wait_for(
            lambda: any("widths" in t.user_attrs for t in study.get_trials(states=(TrialState.RUNNING,))),
            120,
            "a running trial",
        )
        with admin.connect() as connection:  # new connections of the role are refused (SQLSTATE 53300) ...
            connection.execute(sqlalchemy.text(f"ALTER ROLE {role} CONNECTION LIMIT 0"))
            # ... and its open ones are cut.
            connection.execute(
                sqlalchemy.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
            )
        _, err = worker.communicate(timeout=120)
    finally:
        _stop(worker)
    assert worker.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "stayed unreachable for" in lines[0] and "db_retry_seconds limit is 3 s" in lines[0] and role in lines[0]
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"ALTER ROLE {role} CONNECTION LIMIT -1"))
    # The trial it was training is failed for its stale heartbeat on the next run and retried.
    subprocess.run(
        [*CLI, "worker", "--storage", url, "--study", "lockout", "--workers", "1", "--quiet"],
        cwd=tmp_path,
        check=True,
        timeout=400,
    )
    study = optuna.load_study(study_name="lockout", storage=make_storage(url))
    _assert_exact_total(study, 2)
    stale = [t for t in study.trials if t.state == TrialState.FAIL]
    assert stale and all("heartbeat stale" in t.user_attrs[keys.FAIL_REASON] for t in stale)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_controller_takes_its_workers_along_and_the_rerun_retries_their_trials(tmp_path: Path) -> None:
    """Check that SIGKILLing the controller kills its workers within seconds, and that the rerun fails their
    trials for a stale heartbeat (with a reason) and retries them with the same parameters."""
    url = f"sqlite:///{tmp_path}/k.db"
    # Unpruned trials of seconds each: the two running at the kill must still be running when it lands. With 40
    # epochs (0.5 s a trial) CI saw both finish between the wait and the kill, and with 300 a clean clone saw one
    # finish: each poll opens the storage, which takes a sizeable share of a trial. So the kill waits for two
    # trials in the first half of their epochs.
    epochs = 1000
    config = _write_config(tmp_path / "s.toml", url, "killed", 6, epochs, pruner="none")
    command = [*CLI, "search", str(config), "--workers", "2", "--quiet"]
    controller = subprocess.Popen(command, cwd=tmp_path)
    try:
        wait_for(
            lambda: _finished_or_zero(url, "killed") >= 1 and len(_running_workers(url, before=epochs // 2)) == 2,
            400,
            "two trials in the first half of their epochs",
        )
        pids = _running_workers(url)
        controller.kill()
        controller.wait(timeout=30)
        wait_for(lambda: not any(_alive(pid) for pid in pids), 10, "the workers to die with their controller")
    finally:
        _stop(controller)
    killed = {t.number: t.params for t in _load(url, "killed").get_trials(states=(TrialState.RUNNING,))}
    assert len(killed) == 2
    subprocess.run(command, cwd=tmp_path, check=True, timeout=300)
    study = _load(url, "killed")
    _assert_exact_total(study, 6)
    for number, params in killed.items():
        # A worker killed before its trial's first heartbeat is named as such; after it, as a stale heartbeat.
        reason = study.trials[number].user_attrs[keys.FAIL_REASON]
        assert "heartbeat stale" in reason or "died before its first heartbeat" in reason, reason
        retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == number)
        assert keys.FAIL_REASON not in retry.user_attrs
        # A trial can still be claimed between the wait and the kill; killed before it sampled, its retry samples afresh.
        assert retry.params == params or not params


def _load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(url))


def _running_workers(url: str, *, before: int | None = None) -> set[int]:
    """Process ids of the workers with a running trial (`before`: only trials that have reported fewer epochs)."""
    try:
        running = _load(url, "killed").get_trials(states=(TrialState.RUNNING,))
    except KeyError:
        return set()
    # Only trials that have sampled their parameters: a trial killed before it sampled any is retried with
    # none and samples afresh, which is right but leaves nothing to compare.
    return {
        int(t.user_attrs["worker"].split(":")[1].split("/")[0])
        for t in running
        if "worker" in t.user_attrs and t.params and (before is None or len(t.intermediate_values) < before)
    }


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_ctrl_c_prints_one_line_and_the_rerun_finishes_the_exact_total(tmp_path: Path) -> None:
    """Check that SIGINT to the whole process group (a terminal's Ctrl-C) prints one line, no worker traceback,
    leaves no RUNNING trial, and that the same command then finishes exactly n_trials, leaving the trials
    completed before the interrupt as they were."""
    url = f"sqlite:///{tmp_path}/c.db"
    # Seconds a trial, so that the search is still running when the interrupt lands.
    config = _write_config(tmp_path / "s.toml", url, "ctrlc", 6, 300, pruner="none")
    command = [*CLI, "search", str(config), "--workers", "2", "--quiet"]
    controller = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: _finished_or_zero(url, "ctrlc") >= 1, 240, "a finished trial")
        os.killpg(controller.pid, signal.SIGINT)
        _, err = controller.communicate(timeout=120)
    finally:
        _stop(controller)
    assert controller.returncode == 130
    assert [line for line in err.splitlines() if line.strip()] == [
        "archsearch: interrupted; run the same command again to continue the study."
    ]
    study = _load(url, "ctrlc")
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert all(t.user_attrs.get(keys.FAIL_REASON) for t in study.get_trials(states=(TrialState.FAIL,)))
    # Every trial the interrupt failed is waiting again: those it stopped while training ("interrupted") and one it
    # reached between Optuna's ask and the trial's start ("stopped by a signal before the trial started").
    stopped = ("interrupted", "stopped by a signal")
    interrupted = [
        t.number
        for t in study.get_trials(states=(TrialState.FAIL,))
        if any(word in t.user_attrs[keys.FAIL_REASON] for word in stopped)
    ]
    waiting = [t.system_attrs.get("failed_trial") for t in study.get_trials(states=(TrialState.WAITING,))]
    assert sorted(interrupted) == sorted(waiting)
    before = {t.number: (t.params, t.value) for t in study.get_trials(states=(TrialState.COMPLETE,))}
    subprocess.run(command, cwd=tmp_path, check=True, timeout=300, capture_output=True)
    study = _load(url, "ctrlc")
    _assert_exact_total(study, 6)
    after = {t.number: (t.params, t.value) for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert {n: after[n] for n in before} == before


def _stale_trial(
    tmp_path: Path, n_trials: int, *, retry: int = 2
) -> tuple[optuna.Study, RetryStaleTrial, optuna.trial.FrozenTrial]:
    """A study whose enqueued linear baseline was claimed by a worker that then died mid-trial."""
    config = small_config(
        tmp_path,
        study={"n_trials": n_trials, "heartbeat_interval": 1, "grace_period": 2, "max_retry": retry},
        space={"recipe_baseline": False},  # the linear baseline is then the only enqueued trial
    )
    study = open_search_study(config).study
    trial = study.ask()
    study._storage.set_trial_user_attr(trial._trial_id, "worker", "elsewhere:1/w0")
    return study, RetryStaleTrial(retry, 2), study._storage.get_trial(trial._trial_id)


def test_stale_trial_retry_records_why_and_the_retry_does_not_inherit_it(tmp_path: Path) -> None:
    """Check that a trial failed for a stale heartbeat gets a fail_reason, and its WAITING retry neither that nor not_run."""
    study, retry, trial = _stale_trial(tmp_path, 3)
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    retry(study, study._storage.get_trial(trial._trial_id))
    failed = study._storage.get_trial(trial._trial_id)
    assert (
        failed.user_attrs[keys.FAIL_REASON] == "worker heartbeat stale for over 2 s (worker died or lost the database?)"
    )
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.system_attrs["failed_trial"] == trial.number and waiting.params == trial.params
    assert keys.FAIL_REASON not in waiting.user_attrs and waiting.user_attrs["worker"] == "elsewhere:1/w0"


def test_put_back_queues_an_interrupted_trial_without_spending_a_retry(tmp_path: Path) -> None:
    """Check that an interrupted trial is put back as WAITING with its parameters and baseline label even with
    max_retry = 0, its retry history unchanged (an interrupt is no death), and without the failed run's reason."""
    study, retry, trial = _stale_trial(tmp_path, 3, retry=0)
    study._storage.set_trial_user_attr(trial._trial_id, keys.FAIL_REASON, "interrupted (signal 15)")
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    retry.put_back(study, study._storage.get_trial(trial._trial_id))
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.system_attrs["failed_trial"] == trial.number and "retry_history" not in waiting.system_attrs
    assert waiting.params == trial.params and waiting.user_attrs[keys.BASELINE] == "linear"
    assert keys.FAIL_REASON not in waiting.user_attrs
    assert waiting.system_attrs["fixed_params"] == trial.system_attrs["fixed_params"]


def test_fail_trials_of_dead_worker_fails_and_retries_only_that_workers_trials(tmp_path: Path) -> None:
    """Check that the controller fails (with the given reason) and retries the RUNNING trials of one dead worker only."""
    study, retry, trial = _stale_trial(tmp_path, 3)
    other = study.ask()
    study._storage.set_trial_user_attr(other._trial_id, "worker", "elsewhere:2/w1")
    import archsearch.pool._supervision as supervision

    original = supervision.worker_prefix
    supervision.worker_prefix = lambda pid: f"elsewhere:{pid}/"
    try:
        assert fail_trials_of_dead_worker(study, retry, 1, "its worker process (pid 1) was killed by SIGKILL") == [
            trial.number
        ]
    finally:
        supervision.worker_prefix = original
    assert (
        study._storage.get_trial(trial._trial_id).user_attrs[keys.FAIL_REASON]
        == "its worker process (pid 1) was killed by SIGKILL"
    )
    assert study._storage.get_trial(other._trial_id).state == TrialState.RUNNING
    assert [t.system_attrs["failed_trial"] for t in study.get_trials(states=(TrialState.WAITING,))] == [trial.number]


def test_waiting_retry_takes_precedence_over_a_new_trial(tmp_path: Path) -> None:
    """Check that a new sampled trial stands down when a waiting retry numbered below it already fills the total."""
    from archsearch.trainers.data import load_data

    study, retry, trial = _stale_trial(tmp_path, 1)
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    retry(study, study._storage.get_trial(trial._trial_id))
    # Another worker asked at the same moment as the one about to take the retry: a new, sampled trial.
    newer = study._storage.create_new_trial(study._study_id)
    config = small_config(tmp_path, study={"n_trials": 1})
    objective = search_objective(config, load_data(config.data), study._storage, tmp_path / "art", total=1)
    with pytest.raises(TotalReached):
        objective._claim(optuna.Trial(study, newer))


def test_quiet_expected_failures_drops_surplus_claims_and_interrupts_only() -> None:
    """Check that Optuna's failed-trial warning is dropped for TotalReached and KeyboardInterrupt, kept for others."""
    from archsearch.storage import DatabaseUnavailable

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    quiet_expected_failures()
    collect = Collect()
    logger = logging.getLogger("optuna.study._optimize")
    logger.addHandler(collect)
    try:
        for error in (TotalReached(), KeyboardInterrupt("signal 2"), DatabaseUnavailable("gone"), ValueError("boom")):
            try:
                raise error
            except BaseException:
                logger.warning("Trial 1 failed with parameters: {} because of the following error: x.", exc_info=True)
            logger.warning("Trial 1 failed with value None.")
    finally:
        logger.removeHandler(collect)
    # The follow-up line of a dropped warning goes with it.
    assert [record.exc_info[0] if record.exc_info else None for record in collect.records] == [ValueError, None]
    assert collect.records[1].getMessage() == "Trial 1 failed with value None."


def test_die_with_parent_kills_the_child_when_its_parent_dies(tmp_path: Path) -> None:
    """Check that a process armed with die_with_parent is gone within seconds of its parent's SIGKILL."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time; from archsearch.pool._supervision import die_with_parent; "
        f"assert die_with_parent(os.getppid()); open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)",
        ]
    )
    pid = None
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the child to start")
        pid = int(pid_file.read_text())
        parent.kill()
        parent.wait(timeout=10)
        wait_for(lambda: not _alive(pid), 5, "the child to die with its parent")
    finally:
        _stop(parent)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_during_the_baselines_puts_them_back_and_the_rerun_completes_every_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that SIGTERM while an enqueued baseline trains ends it FAIL and puts it back as waiting (nothing
    RUNNING, nothing lost), and that the rerun completes the linear, the user's and the recipe baselines within
    exactly n_trials, leaving nothing waiting."""
    import archsearch.trainers
    from archsearch.controller import run_search

    train_mlp = archsearch.trainers.train_mlp

    def signalled_train_mlp(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        os.kill(os.getpid(), signal.SIGTERM)  # lands in the worker's handler while the trial trains
        return train_mlp(*args, **kwargs)

    monkeypatch.setattr(archsearch.trainers, "train_mlp", signalled_train_mlp)
    config = small_config(
        tmp_path,
        study={"n_trials": 5, "pruner": "none"},
        space={"baselines": [[16]], "recipe_baseline": True},
        train={"epochs": 3, "patience": 3},
    )
    with pytest.raises(KeyboardInterrupt):
        run_search(config)
    study = _load(config.study.storage, config.study.name)
    (interrupted,) = study.get_trials(states=(TrialState.FAIL,))
    assert interrupted.user_attrs[keys.BASELINE] == "linear"
    assert interrupted.user_attrs[keys.FAIL_REASON] == "interrupted (signal 15)"
    assert not study.get_trials(states=(TrialState.RUNNING,))
    # Put back with its parameters and its baseline label, to run first on the next start.
    again = [t for t in study.trials if t.system_attrs.get("failed_trial") == interrupted.number]
    assert [t.state for t in again] == [TrialState.WAITING]
    assert again[0].user_attrs[keys.BASELINE] == "linear" and keys.FAIL_REASON not in again[0].user_attrs
    monkeypatch.setattr(archsearch.trainers, "train_mlp", train_mlp)
    study = run_search(config)
    _assert_exact_total(study, 5)
    completed = [t.user_attrs.get(keys.BASELINE) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert {"linear", "user", "recipe"} <= set(completed)
