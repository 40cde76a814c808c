"""archsearch's pruning rule for multi-objective studies: hopeless among trials of the same size stratum."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsearch.pool._stratum import StratumRule, stratum_decision, stratum_of
from archsearch.storage import keys

from ..conftest import small_config


def test_strata_are_powers_of_two() -> None:
    assert [stratum_of(n) for n in (1, 2, 3, 4, 1023, 1024, 5000)] == [0, 1, 1, 2, 9, 10, 12]


def test_a_trial_below_the_median_of_its_stratum_is_pruned() -> None:
    assert stratum_decision(0.5, [0.6, 0.7, 0.8], percentile=50.0, maximize=True) == pytest.approx(0.7)
    assert stratum_decision(0.75, [0.6, 0.7, 0.8], percentile=50.0, maximize=True) is None
    # Minimised metrics prune above the threshold; the percentile rule keeps only the best quarter.
    assert stratum_decision(2.0, [1.0, 1.5, 3.0], percentile=50.0, maximize=False) == pytest.approx(1.5)
    assert stratum_decision(0.75, [0.6, 0.7, 0.8, 0.9], percentile=25.0, maximize=True) == pytest.approx(0.825)
    # Too few peers: never.
    assert stratum_decision(0.0, [0.6, 0.7], percentile=50.0, maximize=True) is None


def _study(histories: dict[int, list[float]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for params, history in histories.items():
        trial = study.ask()
        trial.set_user_attr(keys.SIZE_PARAMS, params)
        trial.set_user_attr(keys.VAL_HISTORY, history)
        study.tell(trial, [max(history), params])
    return study


def test_the_rule_compares_only_with_trials_of_the_same_stratum(tmp_path: Path) -> None:
    config = small_config(tmp_path, study={"objectives": ["accuracy", "params"], "pruner_startup_trials": 3})
    # Three large networks (stratum 12) that reach 0.9 early; two small ones (stratum 9) that stay near 0.5.
    study = _study({5000: [0.9] * 5, 5100: [0.92] * 5, 6000: [0.88] * 5, 600: [0.5] * 5, 700: [0.52] * 5})
    rule = StratumRule(config, "accuracy")
    large = rule.judge(study, 4500)
    assert [large(epoch, 0.6) for epoch in (1, 2)] == [False, False]  # warm-up: min(3, epochs - 1) epochs
    reason = large(3, 0.6)
    assert isinstance(reason, str) and "worse than the median 0.9 of 3 complete trials with 4,096 to 8,191" in reason
    # The same curve among the small networks has only 2 peers there: not judged.
    small = rule.judge(study, 650)
    assert [small(epoch, 0.4) for epoch in (1, 2, 3, 4)] == [False] * 4


def test_the_rule_is_off_without_a_pruner(tmp_path: Path) -> None:
    config = small_config(tmp_path, study={"objectives": ["accuracy", "params"], "pruner": "none"})
    study = _study({5000: [0.9] * 5, 5100: [0.92] * 5, 6000: [0.88] * 5})
    judge = StratumRule(config, "accuracy").judge(study, 4500)
    assert [judge(epoch, 0.1) for epoch in range(1, 6)] == [False] * 5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_multi_objective_search_prunes_with_the_rule(tmp_path: Path) -> None:
    from archsearch.controller import run_search

    config = small_config(
        tmp_path,
        study={"n_trials": 12, "objectives": ["accuracy", "params"], "pruner_startup_trials": 3, "sampler": "random"},
        # One width and depth: every trial in one stratum, a bad learning rate hopeless there.
        space={
            "layers": [1, 1],
            "width": [32, 32],
            "lr": [1e-5, 3e-2],
            "normalization": ["none"],
            "embedding": ["none"],
        },
        train={"epochs": 6, "patience": 6},
    )
    # One worker: which trials have completed when another is judged must not depend on the machine's load.
    study = run_search(config, workers=1)
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert pruned and all("archsearch's stratum rule" in t.user_attrs[keys.PRUNED_REASON] for t in pruned)
