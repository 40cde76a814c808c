"""Tests of the data a local pool prepares once and shares with its workers through memory-mapped files."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

from archsearch.controller import open_search_study
from archsearch.pool import _slots, plan_slots, run_slots
from archsearch.pool._shared_data import FOLDER_PREFIX, SPLITS, load_shared, shared_data
from archsearch.spaces import NetSpec
from archsearch.storage import keys
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers.data import DataSpec, load_data

from ..conftest import small_config


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own for `tempfile`, so a test sees every folder the sharing leaves behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_shared_data_maps_the_same_splits_and_trains_to_the_same_values(temp_dir: Path) -> None:
    """Check that the mapped splits equal the prepared ones and train bit for bit alike, without a warning."""
    data = load_data(DataSpec(dataset="wine"))
    net = NetSpec(widths=(16,), dropouts=(0.1,), activation="relu")
    settings = TrainSettings(epochs=3, patience=3, seed=5)
    with shared_data(data) as folder:
        shared = load_shared(folder)
        for split in SPLITS:
            # Mapped, not read into this process, with the same values, dtype and layout.
            assert isinstance(getattr(shared, split), np.memmap)
            np.testing.assert_array_equal(getattr(shared, split), getattr(data, split), strict=True)
        assert shared.preprocessing == data.preprocessing
        assert (shared.name, shared.fingerprint, shared.task_line) == (data.name, data.fingerprint, data.task_line)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns on a read-only array: the mapping must be writable
            on_shared = train_mlp(net, shared, settings)
    on_prepared = train_mlp(net, data, settings)
    # The same floats in the same order: every metric is exactly equal.
    assert on_shared.metrics == on_prepared.metrics


def test_shared_data_folder_is_removed_at_the_end_and_on_an_error(temp_dir: Path) -> None:
    """Check that the temporary folder goes after a normal end, an exception and an interrupt."""
    data = load_data(DataSpec(dataset="wine"))
    with shared_data(data) as folder:
        assert sorted(p.name for p in Path(folder).iterdir()) == sorted([*(f"{s}.npy" for s in SPLITS), "data.json"])
    assert not Path(folder).exists()
    for error in (RuntimeError("a worker failed"), KeyboardInterrupt()):
        with pytest.raises(type(error)), shared_data(data) as folder:
            raise error
        assert not Path(folder).exists()
    assert list(temp_dir.iterdir()) == []
    with shared_data(None) as nothing:
        assert nothing is None


def test_a_pool_removes_its_shared_data_when_it_is_interrupted(
    tmp_path: Path, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that run_slots hands the pool a folder holding the data, and removes it after a Ctrl-C."""
    config = small_config(tmp_path, data={"dataset": "wine"})
    opened = open_search_study(config)
    seen = []

    def interrupted_pool(*args, data_dir: str | None = None, **kwargs) -> None:
        seen.append(load_shared(data_dir).x_train.shape)
        raise KeyboardInterrupt()

    monkeypatch.setattr(_slots, "run_pool", interrupted_pool)
    slots = plan_slots(opened.config, 2, None, 1)
    with pytest.raises(KeyboardInterrupt):
        run_slots(opened.config, opened.study, slots, in_process=False, data=opened.data)
    assert seen == [opened.data.x_train.shape]
    assert list(temp_dir.iterdir()) == []


def _pool_values(folder: Path, npz: Path, *, share: bool) -> dict[str, tuple[dict, float]]:
    """Train the linear and recipe baselines in a one-worker pool; each one's params and validation value."""
    config = small_config(
        folder,
        study={"name": "shared", "storage": f"sqlite:///{folder}/s.db", "n_trials": 2},
        data={"dataset": None, "path": str(npz)},
        space={"recipe_baseline": True},
        train={"epochs": 3, "patience": 3},
    )
    opened = open_search_study(config)
    moved = npz.rename(npz.with_suffix(".away")) if share else None  # a worker that read the file would fail
    slots = plan_slots(opened.config, 1, None, 1)
    run_slots(opened.config, opened.study, slots, in_process=False, data=opened.data if share else None)
    if moved is not None:
        moved.rename(npz)
    trials = opened.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.user_attrs[keys.BASELINE] for t in trials] == ["linear", "recipe"]
    if Path("/proc/self/smaps_rollup").exists():  # Linux: each trial's worker memory, shared pages split
        assert all(t.user_attrs[keys.PSS_MB] > 0 for t in trials)
    return {t.user_attrs[keys.BASELINE]: (t.params, t.user_attrs[f"val_{opened.metric}"]) for t in trials}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_pool_worker_on_shared_data_trains_the_same_trials_as_one_loading_it(tmp_path: Path, temp_dir: Path) -> None:
    """Check that the same trials give the same validation values whether the worker maps the pool's data or
    loads the file itself, that it really maps it (the file is away), and that no folder is left."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = rng.normal(size=(300, 20)).astype(np.float32) + np.eye(3, 20, dtype=np.float32)[y]
    npz = tmp_path / "vectors.npz"
    np.savez(npz, X=x, y=y)
    (tmp_path / "own").mkdir()
    (tmp_path / "shared").mkdir()
    own = _pool_values(tmp_path / "own", npz, share=False)
    shared = _pool_values(tmp_path / "shared", npz, share=True)
    # The recipe fixes every parameter; the linear trial's training parameters are sampled, so its value is
    # comparable only when both workers' samplers drew the same ones.
    assert shared["recipe"] == own["recipe"]
    if shared["linear"][0] == own["linear"][0]:
        assert shared["linear"] == own["linear"]
    assert not [p for p in temp_dir.iterdir() if p.name.startswith(FOLDER_PREFIX)]
