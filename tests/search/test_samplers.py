"""The samplers a config names: NSGA-II for multi-objective searches (issue #26)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import ConfigError
from archsearch.samplers import make_sampler

from .conftest import small_config


def test_nsga2_breeds_from_a_first_generation_of_the_startup_trials(tmp_path: Path) -> None:
    """Check that sampler = "nsga2" builds Optuna's NSGA-II with n_startup_trials as its population."""
    config = small_config(
        tmp_path, study={"objectives": ["accuracy", "params"], "sampler": "nsga2", "n_startup_trials": 6}
    )
    sampler = make_sampler(config)
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)
    # The population is what decides when the first generation (random) ends; Optuna's default is 50.
    assert sampler._population_size == 6


def test_nsga2_needs_a_population_of_two(tmp_path: Path) -> None:
    """Check that NSGA-II with fewer than 2 startup trials is a config error naming the field and the rule."""
    with pytest.raises(
        ConfigError,
        match=r"The 'n_startup_trials' parameter of \[study\] must be at least 2 with sampler = \"nsga2\" "
        r"\(its population size\)\. Got 1 instead\.",
    ):
        small_config(tmp_path, study={"sampler": "nsga2", "n_startup_trials": 1})


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("objectives", [["accuracy", "params"], None])
def test_a_search_with_nsga2_completes(tmp_path: Path, objectives: list[str] | None) -> None:
    """Check that NSGA-II runs a multi-objective search past its first generation, and a single-objective one."""
    from archsearch.controller import run_search

    study = {"n_trials": 5, "sampler": "nsga2", "n_startup_trials": 2, "objectives": objectives}
    config = small_config(tmp_path, study={k: v for k, v in study.items() if v is not None}, train={"epochs": 3})
    result = run_search(config)
    assert len(result.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 5
    assert len(result.directions) == (2 if objectives else 1)
