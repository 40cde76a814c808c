"""Tests of the worker pool: many workers on SQLite and PostgreSQL, a killed worker, an interrupted
controller, and a worker joining from "another machine" with only the URL and the study name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.controller import open_search_study, run_search
from archsearch.pool._supervision import RetryStaleTrial
from archsearch.storage import finished_count, make_storage

from ...conftest import backdate_trial, wait_for
from ..conftest import small_config

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

FAST = {
    "space": {"layers": [0, 1], "width": [8, 32], "batch_size": [64]},
    "data": {"dataset": "wine"},
    "train": {"epochs": 2},
}
CLI = [sys.executable, "-m", "archsearch.cli"]


def _fast_config(folder: Path, url: str, name: str, n_trials: int, **study: object) -> SearchConfig:
    return small_config(
        folder, study={"name": name, "storage": url, "n_trials": n_trials, **study}, **{k: v for k, v in FAST.items()}
    )


def _assert_clean_total(study: optuna.Study, total: int) -> None:
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert finished_count(study) == total
    # Only surplus claims (two workers asking at once near the end) may be FAIL; none is a locking error.
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs.get("not_run") for t in failed), [t.user_attrs.get("fail_reason") for t in failed]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.timeout(420)
def test_pool_four_workers_on_sqlite(tmp_path: Path) -> None:
    """Check that 4 local workers on SQLite finish a 24-trial study with no locking failures, and that they do
    not propose the same parameters (each worker's sampler has its own seed)."""
    config = _fast_config(tmp_path, f"sqlite:///{tmp_path}/pool.db", "sqlite-pool", 24, sampler="random")
    study = run_search(config, workers=4)
    _assert_clean_total(study, 24)
    sampled = [
        tuple(sorted(t.params.items())) for t in study.trials if "fixed_params" not in t.system_attrs and t.params
    ]
    assert len(sampled) >= 20 and len(set(sampled)) == len(sampled)
    assert len({t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}) >= 2
    assert sorted(p.name for p in (tmp_path / "pool_logs").iterdir()) == [f"worker-{i}.log" for i in range(4)]


@pytest.mark.services
@pytest.mark.timeout(420)
@pytest.mark.parametrize(("server", "n_trials"), [("postgres_url", 40), ("mysql_url", 16)])
def test_pool_four_workers_on_database_servers(
    tmp_path: Path, server: str, n_trials: int, request: pytest.FixtureRequest, unique_name: str
) -> None:
    """Check that 4 workers on PostgreSQL (40 trials) and MariaDB finish a study: unique numbers, counts add up, no errors."""
    url = request.getfixturevalue(server)
    config = _fast_config(tmp_path, url, unique_name, n_trials, artifacts=str(tmp_path / "artifacts"))
    try:
        study = run_search(config, workers=4, log_dir=tmp_path / "logs")
        _assert_clean_total(study, n_trials)
    finally:
        optuna.delete_study(study_name=unique_name, storage=url)


def _write_config(tmp_path: Path, n_trials: int, epochs: int) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(
        f'[study]\nname = "faults"\nstorage = "sqlite:///{tmp_path}/faults.db"\nn_trials = {n_trials}\n'
        "heartbeat_interval = 1\ngrace_period = 4\n"
        '[data]\ndataset = "digits"\n[space]\nlayers = [1, 2]\nwidth = [64, 256]\nbatch_size = [32]\nrecipe_baseline = false\n'
        f"[train]\nepochs = {epochs}\npatience = {epochs}\n",
        encoding="utf-8",
    )
    return path


def _load(tmp_path: Path, name: str = "faults") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(f"sqlite:///{tmp_path}/faults.db"))


def _running_trial(tmp_path: Path) -> optuna.trial.FrozenTrial | None:
    try:
        # With its parameters sampled: a trial killed before that is retried with none, leaving nothing to compare.
        running = [
            t for t in _load(tmp_path).get_trials(states=(TrialState.RUNNING,)) if "worker" in t.user_attrs and t.params
        ]
    except KeyError:  # the study does not exist yet
        return None
    return running[0] if running else None


@pytest.mark.timeout(420)
def test_pool_survives_a_killed_worker(tmp_path: Path) -> None:
    """Check that a SIGKILLed worker's trial ends FAILED and its retry, with the same parameters, finishes."""
    # Trials of seconds, so that the worker is still inside the trial it was seen running when the kill lands;
    # the killed trial is then told by the worker's pid, not by a read that could race the trial's end.
    config = _write_config(tmp_path, n_trials=4, epochs=100)
    controller = subprocess.Popen([*CLI, "search", str(config), "--workers", "2", "--quiet"], cwd=tmp_path)
    try:
        seen: list[optuna.trial.FrozenTrial] = []

        def running_after_one_finished() -> bool:
            trial = _running_trial(tmp_path)
            if trial is not None and finished_count(_load(tmp_path)) >= 1:
                seen.append(trial)
            return bool(seen)

        wait_for(running_after_one_finished, 180, "a running trial")
        worker = seen[0].user_attrs["worker"]
        os.kill(int(worker.split(":")[1].split("/")[0]), signal.SIGKILL)
        assert controller.wait(timeout=300) == 0
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=30)
    study = _load(tmp_path)
    (killed,) = [t for t in study.trials if t.user_attrs.get("worker") == worker and t.state == TrialState.FAIL]
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == killed.params
    assert finished_count(study) == 4


@pytest.mark.timeout(420)
def test_worker_joins_with_only_url_and_study_name(tmp_path: Path) -> None:
    """Check that `archsearch worker` processes started elsewhere, with only the URL and name, share a study."""
    url = f"sqlite:///{tmp_path}/shared.db"
    config = _fast_config(tmp_path, url, "shared", 8)
    open_search_study(config)
    elsewhere = [tmp_path / "machine-a", tmp_path / "machine-b"]
    workers = []
    for folder in elsewhere:
        folder.mkdir()
        command = [*CLI, "worker", "--storage", url, "--study", "shared", "--workers", "1", "--quiet"]
        workers.append(subprocess.Popen(command, cwd=folder))
    try:
        for worker in workers:
            assert worker.wait(timeout=300) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
    study = optuna.load_study(study_name="shared", storage=url)
    _assert_clean_total(study, 8)
    pids = {t.user_attrs["worker"].split(":")[1].split("/")[0] for t in study.trials if "worker" in t.user_attrs}
    assert len(pids) == 2  # both joined and contributed


def test_worker_refuses_a_study_archsearch_did_not_create(tmp_path: Path) -> None:
    """Check that joining a plain Optuna study is a clear error naming how to create one."""
    from archsearch.config import ConfigError
    from archsearch.controller import join_study

    url = f"sqlite:///{tmp_path}/plain.db"
    optuna.create_study(study_name="plain", storage=url)
    with pytest.raises(ConfigError, match=r"has no archsearch config; create it with `archsearch search CONFIG`"):
        join_study(url, "plain")


@pytest.mark.timeout(300)
def test_pool_worker_error_stops_the_search_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that a worker that cannot start (its data file is gone) fails the command with the reason, exit 2."""
    from archsearch.cli import main

    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,target\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(60)), encoding="utf-8")
    config = tmp_path / "s.toml"
    config.write_text(
        f'[study]\nname = "gone"\nstorage = "sqlite:///{tmp_path}/g.db"\nn_trials = 4\n'
        '[data]\npath = "rows.csv"\n[space]\nlayers = [0, 1]\n[train]\nepochs = 2\n',
        encoding="utf-8",
    )
    from archsearch.config import load_config
    from archsearch.controller import open_search_study

    open_search_study(load_config(config))
    rows.unlink()
    code = main(
        [
            "worker",
            "--storage",
            f"sqlite:///{tmp_path}/g.db",
            "--study",
            "gone",
            "--workers",
            "2",
            "--quiet",
            "--log-dir",
            str(tmp_path / "logs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "is not readable on this machine" in err and "traceback in" in err


def test_run_search_bad_worker_flags_leave_no_study(tmp_path: Path) -> None:
    """Check that impossible worker flags fail before the study (or the database file) is created."""
    from archsearch.config import ConfigError

    config = _fast_config(tmp_path, f"sqlite:///{tmp_path}/none.db", "never", 2)
    with pytest.raises(
        ConfigError, match=r"The 'workers' parameter must be an int in the range \[1, 1024\]\. Got 0 instead\."
    ):
        run_search(config, workers=0)
    assert not (tmp_path / "none.db").exists()


@pytest.mark.timeout(300)
def test_worker_fails_and_retries_a_trial_claimed_by_a_worker_that_died_before_its_first_heartbeat(
    tmp_path: Path,
) -> None:
    """Check that a RUNNING trial with no heartbeat at all (its worker died right after claiming it) does not
    block the study forever: it is failed after twice the grace period and retried."""
    config = _fast_config(tmp_path, f"sqlite:///{tmp_path}/o.db", "orphan", 3, heartbeat_interval=1, grace_period=2)
    study = open_search_study(config).study
    orphan = study.ask()  # claimed (the enqueued linear baseline), then its worker "died": no heartbeat ever
    backdate_trial(config.study.storage, orphan._trial_id, 10)  # twice the grace period, and more
    study = run_search(config)
    frozen = next(t for t in study.trials if t.number == orphan.number)
    assert frozen.state == TrialState.FAIL
    assert frozen.user_attrs["fail_reason"] == "its worker died before its first heartbeat"
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number)
    # The orphan died before sampling anything; its retry keeps what was fixed for it (the linear baseline).
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED) and retry.params["n_layers"] == 0
    assert finished_count(study) == 3


@pytest.mark.timeout(300)
def test_a_worker_whose_trial_another_process_failed_as_stale_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that a live worker whose running trial another worker failed as stale (its heartbeats late on a loaded
    machine) goes on with the next trial, the failed one retried, instead of stopping the search with "Cannot tell
    a FAIL trial" (seen twice in a chaos run)."""
    import archsearch.trainers

    train_mlp = archsearch.trainers.train_mlp
    calls = []

    def failed_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 1:  # what another worker's stale-trial check does to this worker's trial
            storage = make_storage(config.study.storage)
            running_study = optuna.load_study(study_name="stale", storage=storage)
            (running,) = running_study.get_trials(states=(TrialState.RUNNING,))
            storage.set_trial_user_attr(running._trial_id, "fail_reason", "worker heartbeat stale for over 4 s")
            storage.set_trial_state_values(running._trial_id, TrialState.FAIL)
            RetryStaleTrial(2, 4)(running_study, storage.get_trial(running._trial_id))
        return train_mlp(*args, **kwargs)

    monkeypatch.setattr(archsearch.trainers, "train_mlp", failed_meanwhile)
    config = _fast_config(tmp_path, f"sqlite:///{tmp_path}/s.db", "stale", 3)
    study = run_search(config)
    (failed,) = study.get_trials(states=(TrialState.FAIL,))
    assert failed.user_attrs["fail_reason"] == "worker heartbeat stale for over 4 s"
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED) and retry.params == failed.params
    assert finished_count(study) == 3


def test_fail_orphans_skips_a_trial_that_ended_while_it_looked(tmp_path: Path) -> None:
    """Check that an orphan candidate that ends between the worker's look and its write is left alone (the write
    raised UpdateFinishedTrialError and stopped the worker, seen in a chaos run)."""
    from archsearch.pool._worker import _fail_orphans

    config = _fast_config(tmp_path, f"sqlite:///{tmp_path}/o.db", "orphan", 3, heartbeat_interval=1, grace_period=2)
    study = open_search_study(config).study
    orphan = study.ask()
    backdate_trial(config.study.storage, orphan._trial_id, 10)
    storage = study._storage._backend
    write = storage.set_trial_user_attr

    def finished_first(trial_id, key, value):  # noqa: ANN001, ANN202
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])  # its worker was alive after all
        return write(trial_id, key, value)

    storage.set_trial_user_attr = finished_first
    _fail_orphans(study, storage, 2)
    assert storage.get_trial(orphan._trial_id).state == TrialState.COMPLETE
