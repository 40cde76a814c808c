"""Tests of a worker's signal handling: an interrupt never lands inside a storage call."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import optuna
import pytest

from archsearch.pool._worker import GracefulStop
from archsearch.storage import make_storage, run_after_storage_call


def test_a_signal_during_a_storage_call_interrupts_the_trial_after_the_call_commits(tmp_path: Path) -> None:
    """Check that SIGTERM arriving mid-call lets the write commit and release SQLite's lock, then interrupts;
    that outside a call it interrupts at once; and that between trials it only asks the worker to stop."""
    path = tmp_path / "s.db"
    storage = make_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="s")
    stop = GracefulStop()

    def write() -> None:
        stop.handle(signal.SIGTERM, None)  # as if the signal arrived in the middle of the call
        optuna.storages.RDBStorage.set_study_user_attr(storage, study._study_id, "written", True)

    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        stop.guard(lambda trial: storage.call(write))(study.ask())
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{path}").user_attrs["written"] is True
    # No transaction was left open: another connection takes the write lock at once.
    with sqlite3.connect(path, timeout=0.5, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")

    def train(trial: object) -> float:
        stop.handle(signal.SIGINT, None)
        return 1.0

    stop.requested = False
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        stop.guard(train)(study.ask())
    stop.requested = False
    stop.handle(signal.SIGTERM, None)  # between trials
    assert stop.requested


def test_run_after_storage_call_queues_nothing_outside_a_call(tmp_path: Path) -> None:
    """Check that an action queued outside any storage call is refused (the caller acts at once)."""
    ran = []
    assert run_after_storage_call(lambda: ran.append(1)) is False
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    assert storage.call(lambda: run_after_storage_call(lambda: ran.append(2))) is True
    assert ran == [2]
