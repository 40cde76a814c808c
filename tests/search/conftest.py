"""A real digits search shared by the controller, export and CLI tests (run once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from archsearch.config import SearchConfig


@dataclass
class FinishedSearch:
    config: SearchConfig
    study: optuna.Study
    url: str
    folder: Path

    @property
    def exported_trial(self) -> optuna.trial.FrozenTrial:
        """The trial `archsearch export` ships: the best, and among trials tied for the best value the smallest
        network (`Study.best_trial` is the first of them, which a tie makes another trial)."""
        complete = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = self.study.best_value
        return min((t for t in complete if t.value == best), key=lambda t: (t.user_attrs["n_params"], t.number))


def search_objective(
    config: SearchConfig,
    data,
    storage,
    artifact_dir: Path,
    *,
    metric: str = "accuracy",
    worker: str | None = None,
    total: int | None = None,
):
    """A search's objective as a worker builds it, on CPU."""
    from archsearch.pool import SearchObjective, WorkerContext

    context = WorkerContext(config, data, metric, storage, artifact_dir, "cpu", None, worker, total)
    return SearchObjective(context)


def small_config(folder: Path, **sections: dict) -> SearchConfig:
    """A quick search config writing into `folder`; sections override the defaults key by key."""
    base = {
        "study": {"name": "digits", "storage": f"sqlite:///{folder}/search.db", "n_trials": 4, "seed": 0},
        "data": {"dataset": "digits"},
        # No recipe baseline (a 2 x 128 batch-norm trial in every quick search): the tests that need it ask for it.
        "space": {"layers": [0, 2], "width": [16, 128], "batch_size": [64, 128], "recipe_baseline": False},
        "train": {"epochs": 8, "patience": 4},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return SearchConfig.from_dict(base)


@pytest.fixture(scope="session")
def digits_search(tmp_path_factory: pytest.TempPathFactory) -> FinishedSearch:
    """An end-to-end search shared by the session: 8 trials on digits, on CPU (about 20 s here)."""
    from archsearch.controller import run_search

    folder = tmp_path_factory.mktemp("digits-search")
    config = small_config(
        folder,
        study={"n_trials": 8},
        space={"layers": [0, 2], "width": [32, 128], "lr": [1e-3, 2e-2], "optimizer": ["adam", "adamw"]},
        train={"epochs": 12, "patience": 4},
    )
    study = run_search(config)
    return FinishedSearch(config=config, study=study, url=config.study.storage, folder=folder)
