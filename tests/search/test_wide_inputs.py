"""A search on a wide NPZ of integer labels (issue #24): the task line, the fitted space, status and report."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import optuna
import pytest

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.status import study_status
from archsearch.storage import keys

pytestmark = pytest.mark.slow


def _wide_npz(folder: Path, rows: int = 1000, features: int = 300, classes: int = 25) -> str:
    rng = np.random.default_rng(0)
    y = np.arange(rows) % classes
    x = rng.normal(size=(rows, features)).astype(np.float32)
    x[:, :classes] += 2.0 * np.eye(classes, dtype=np.float32)[y]
    path = folder / "vectors.npz"
    np.savez(path, X=x, y=y)
    return str(path)


@pytest.mark.timeout(300)
def test_a_config_naming_only_the_file_searches_classes_without_embedding(tmp_path: Path) -> None:
    """Check the first lines of the search, the stored task line and space, and that status and report repeat it."""
    url = f"sqlite:///{tmp_path}/s.db"
    config = SearchConfig.from_dict(
        {
            "study": {"name": "wide", "storage": url, "n_trials": 3},
            "data": {"path": _wide_npz(tmp_path)},
            "train": {"epochs": 2, "patience": 2},
        }
    )
    stream = io.StringIO()
    study = run_search(config, quiet=False, stream=stream)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("Task: classification of target 'y', inferred from 25 distinct integers 0..24")
    assert lines[1].startswith("Space: no per-feature embedding on 300 input features")
    assert study.user_attrs[keys.TASK] == "classification"
    assert study.user_attrs[keys.TASK_LINE] == lines[0]
    stored_space = study.user_attrs[keys.CONFIG]["space"]
    assert stored_space["embedding"] == ["none"] and stored_space["width"] == [32, 512]
    # The linear baseline and the recipe; no recipe with "pl".
    enqueued = [t.user_attrs.get(keys.BASELINE) for t in study.get_trials(deepcopy=False)]
    # The linear baseline is fitted by L-BFGS (scikit-learn's default L2) and says so; the recipe is not.
    assert [t.user_attrs.get(keys.SOLVER) for t in study.trials[:2]] == ["lbfgs", None]
    assert enqueued[:2] == ["linear", "recipe"] and all(
        t.params.get("embedding", "none") == "none" for t in study.trials
    )
    storage = optuna.storages.RDBStorage(url)
    status = study_status(storage, "wide")
    assert lines[0] in status
    # Each finished trial records its worker's peak memory, and status reports it.
    assert all(t.user_attrs[keys.PEAK_RSS_MB] > 0 for t in study.trials if t.state.is_finished())
    assert "memory: peak RSS per worker process up to" in status
    if Path("/proc/self/smaps_rollup").exists():  # Linux: the proportional set size too
        assert all(t.user_attrs[keys.PSS_MB] > 0 for t in study.trials if t.state.is_finished())
        assert ", PSS at a trial's end up to" in status
    from archsearch.dashboards import build_report

    assert lines[0] in build_report(study).summary


def _two_blocks(folder: Path) -> str:
    rng = np.random.default_rng(0)
    y = np.arange(400) % 4
    x = rng.normal(size=(400, 12)).astype(np.float32)
    x[:, 6:10] += 3.0 * np.eye(4, dtype=np.float32)[y]
    path = folder / "two.npz"
    np.savez(path, X=x, y=y)
    return str(path)


@pytest.mark.timeout(300)
def test_a_search_over_blocks_stores_each_trials_choice(tmp_path: Path) -> None:
    """Check that [space] blocks is searched, each trial records its blocks, and an unknown name is refused."""
    from archsearch.config import ConfigError
    from archsearch.controller import open_search_study

    sections = {
        "study": {"name": "blocks", "storage": f"sqlite:///{tmp_path}/b.db", "n_trials": 4},
        "data": {"path": _two_blocks(tmp_path), "blocks": {"a": [0, 6], "b": [6, 12]}},
        "space": {"layers": [0, 1], "width": [16, 32], "blocks": [["a"], ["b"], ["a", "b"]], "recipe_baseline": False},
        "train": {"epochs": 2, "patience": 2},
    }
    study = run_search(SearchConfig.from_dict(sections))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.user_attrs[keys.BLOCKS] == t.params["blocks"].split("+") for t in done)
    # Every trial finished: the latency timing once built a one-block network without its block and failed it.
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert {t.params["blocks"] for t in done} > {"a+b"}
    sections["study"]["name"] = "unknown"
    sections["space"]["blocks"] = [["a"], ["vgg"]]
    with pytest.raises(ConfigError, match=r"\[space\] blocks names 'vgg', which is not a feature block"):
        open_search_study(SearchConfig.from_dict(sections))


@pytest.mark.timeout(300)
def test_an_npz_of_two_backbones_naming_only_the_file_searches_one_or_both(tmp_path: Path) -> None:
    """Check that arrays X_a and X_b become blocks searched alone and together, without a [space] key."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 3))
    a[:, :3] += 2.0 * np.eye(3)[y]
    np.savez(tmp_path / "two.npz", X_a=a, X_b=b, y=y)
    sections = {
        "study": {"name": "two", "storage": f"sqlite:///{tmp_path}/t.db", "n_trials": 6},
        "data": {"path": str(tmp_path / "two.npz"), "task": "classification"},
        "train": {"epochs": 2, "patience": 2},
    }
    stream = io.StringIO()
    study = run_search(SearchConfig.from_dict(sections), quiet=False, stream=stream)
    assert "Space: feature blocks searched alone and together (['a'], ['b'], ['a', 'b'])" in stream.getvalue()
    assert study.user_attrs[keys.CONFIG]["space"]["blocks"] == [["a"], ["b"], ["a", "b"]]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.user_attrs[keys.BLOCKS] == t.params["blocks"].split("+") for t in done)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
