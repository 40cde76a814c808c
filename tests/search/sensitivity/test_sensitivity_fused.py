"""The sensitivity analysis on the fused engine: its runs train fused and give the single engine's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.sensitivity import run_sensitivity
from archsearch.storage import keys

from .test_sensitivity import _search_config

# Real searches and analyses: `make test-fast` leaves these out.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:With 2 seeds no neighbour")]


def _analysed(folder: Path, engine: str) -> dict[str, optuna.trial.FrozenTrial]:
    folder.mkdir()
    config = _search_config(folder)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, engine=engine, slots=8))
    run_search(SearchConfig.from_dict(config.to_dict()))
    run_sensitivity(config.study.storage, "teacher", trial=1, repeats=2, steps=(0.95,))
    companion = optuna.load_study(study_name="teacher.sensitivity", storage=config.study.storage)
    runs = companion.get_trials(states=(TrialState.COMPLETE,))
    return {f"{t.user_attrs['key']}/{t.user_attrs[keys.SEED]}": t for t in runs}


@pytest.mark.timeout(300)
def test_sensitivity_runs_train_fused_with_the_single_engine_s_values(tmp_path: Path) -> None:
    """Check that a fused study's analysis trains its runs fused, each equal to the single engine's run."""
    single = _analysed(tmp_path / "single", "single")
    fused = _analysed(tmp_path / "fused", "fused")
    # The centre [32] and its 6 neighbours at step 0.95 (-1 layer, +1 layer, +-1 neuron, +-5%), 2 seeds each.
    assert set(fused) == set(single) and len(fused) == 7 * 2
    # The linear model is fitted by L-BFGS ([train] linear_solver), which only the single engine runs.
    engines = {(t.user_attrs[keys.DEPTH] > 0, t.user_attrs.get(keys.ENGINE)) for t in fused.values()}
    assert engines == {(True, "fused"), (False, "single")}
    assert all(
        "linear_solver = 'lbfgs'" in t.user_attrs[keys.ENGINE_REASON]
        for t in fused.values()
        if not t.user_attrs[keys.DEPTH]
    )
    for key, run in fused.items():
        # Dropout 0: the same seed gives the same initial weights and batch order in either engine.
        assert run.value == pytest.approx(single[key].value, abs=1e-4), key
        assert run.user_attrs["epochs_run"] == single[key].user_attrs["epochs_run"], key
