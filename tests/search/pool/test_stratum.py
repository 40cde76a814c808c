"""archsearch's pruning rule for multi-objective studies: hopeless among trials of the same size stratum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from archsearch.pool._stratum import (
    HISTORY_DECIMALS,
    MIN_PEERS,
    StratumPolicy,
    StratumRule,
    metric_resolution,
    stratum_check,
    stratum_decision,
    stratum_of,
)
from archsearch.storage import keys

from ..conftest import small_config


def test_strata_are_powers_of_two() -> None:
    assert [stratum_of(n) for n in (1, 2, 3, 4, 1023, 1024, 5000)] == [0, 1, 1, 2, 9, 10, 12]


def test_a_trial_below_the_median_of_its_stratum_is_pruned() -> None:
    """Check that the threshold is the peers' median (or top quarter), in the metric's direction, from 5 peers."""
    median = StratumPolicy(50.0, maximize=True)
    peers = [0.6, 0.65, 0.7, 0.75, 0.8]
    assert stratum_decision(0.5, peers, median) == pytest.approx(0.7)
    assert stratum_decision(0.75, peers, median) is None
    # Minimised metrics prune above the threshold; the percentile rule keeps only the best quarter.
    assert stratum_decision(2.0, [1.0, 1.2, 1.5, 2.5, 3.0], StratumPolicy(50.0, maximize=False)) == pytest.approx(1.5)
    assert stratum_decision(0.74, peers, StratumPolicy(25.0, maximize=True)) == pytest.approx(0.75)
    # Too few peers: never (MIN_PEERS of them are needed).
    assert MIN_PEERS == 5 and stratum_decision(0.0, peers[:4], median) is None


def test_a_trial_within_the_metric_resolution_of_the_threshold_is_not_pruned() -> None:
    """Check that ties, and a shortfall of one resolution step (one validation row), do not prune."""
    step = 1 / 113
    policy = StratumPolicy(50.0, maximize=True, tolerance=step)
    # Stored histories are rounded (105/113 upwards, by 5e-7): one row behind must still read as one row.
    peers = [round(k * step, HISTORY_DECIMALS) for k in (100, 103, 105, 108, 110)]
    assert stratum_decision(105 * step, peers, policy) is None
    assert stratum_decision(104 * step, peers, policy) is None
    assert stratum_decision(103 * step, peers, policy) == pytest.approx(105 * step, abs=1e-6)


def test_the_resolution_is_one_validation_row() -> None:
    """Check the smallest change one row makes: accuracy 1/rows, balanced accuracy 1/(classes x largest class)."""
    y_val = np.array([0] * 30 + [1] * 10)
    assert metric_resolution("accuracy", y_val) == pytest.approx(1 / 40)
    assert metric_resolution("balanced_accuracy", y_val) == pytest.approx(1 / 60)
    assert metric_resolution("log_loss", y_val) == 0.0 and metric_resolution("accuracy", None) == 0.0


def test_a_trial_must_trail_at_consecutive_checks() -> None:
    """Check the patience: a trial that catches up for one epoch starts counting again."""
    peers = {stratum_of(100): [[0.9] * 8] * 5}
    check = stratum_check(100, lambda: peers, StratumPolicy(50.0, maximize=True, patience=2), 3, "accuracy")
    # Epochs 1-2 are warm-up; behind at 3, level at 4 (its best so far is 0.9), then its best stays 0.9.
    assert [check(e, v) for e, v in enumerate([0.5, 0.5, 0.5, 0.9], start=1)] == [False] * 4
    slow = stratum_check(100, lambda: peers, StratumPolicy(50.0, maximize=True, patience=2), 3, "accuracy")
    assert [slow(e, 0.5) for e in (1, 2, 3)] == [False] * 3
    assert "at that epoch, 2 epochs running" in slow(4, 0.5)


def _study(histories: dict[int, list[float]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for params, history in histories.items():
        trial = study.ask()
        trial.set_user_attr(keys.SIZE_PARAMS, params)
        trial.set_user_attr(keys.VAL_HISTORY, history)
        study.tell(trial, [max(history), params])
    return study


def test_the_rule_compares_only_with_trials_of_the_same_stratum(tmp_path: Path) -> None:
    """Check that a trial is judged against its own stratum's 5 peers, and stopped after trailing twice."""
    config = small_config(
        tmp_path, study={"objectives": ["accuracy", "params"], "pruner": "median", "pruner_startup_trials": 3}
    )
    # Five large networks (stratum 12) that reach 0.9 early; four small ones (stratum 9) that stay near 0.5.
    large_peers = {5000: [0.9] * 5, 5100: [0.92] * 5, 6000: [0.88] * 5, 6100: [0.91] * 5, 7000: [0.89] * 5}
    study = _study({**large_peers, 600: [0.5] * 5, 650: [0.52] * 5, 700: [0.51] * 5, 750: [0.5] * 5})
    rule = StratumRule(config, "accuracy")
    large = rule.judge(study, 4500)
    # Warm-up min(3, epochs - 1) epochs, then a first epoch behind: not yet.
    assert [large(epoch, 0.6) for epoch in (1, 2, 3)] == [False, False, False]
    reason = large(4, 0.6)
    assert isinstance(reason, str) and "worse than the median 0.9 of 5 complete trials with 4,096 to 8,191" in reason
    # The same curve among the small networks has only 4 peers there: not judged.
    small = rule.judge(study, 650)
    assert [small(epoch, 0.4) for epoch in range(1, 6)] == [False] * 5


def test_a_rule_with_the_resolution_spares_a_trial_one_row_behind(tmp_path: Path) -> None:
    """Check that StratumRule passes its resolution on: one row behind the median is a tie."""
    config = small_config(
        tmp_path, study={"objectives": ["accuracy", "params"], "pruner": "median", "pruner_startup_trials": 3}
    )
    study = _study({5000 + k: [0.9] * 5 for k in range(5)})
    spared = StratumRule(config, "accuracy", resolution=0.01).judge(study, 4500)
    assert [spared(epoch, 0.89) for epoch in range(1, 6)] == [False] * 5
    judged = StratumRule(config, "accuracy").judge(study, 4500)
    assert isinstance([judged(epoch, 0.89) for epoch in range(1, 6)][3], str)


@pytest.mark.parametrize("pruner", [{"pruner": "none"}, {}], ids=["none", "default"])
def test_the_rule_is_off_without_a_pruner_and_by_default(tmp_path: Path, pruner: dict) -> None:
    """Check that the rule never stops a trial with `pruner = "none"`, which a multi-objective study's default
    ("auto") resolves to: on the size front the rule did not pay (BENCHMARKS.md section 13)."""
    config = small_config(tmp_path, study={"objectives": ["accuracy", "params"], "pruner_startup_trials": 3, **pruner})
    assert config.study.pruner == "none"
    study = _study({5000 + k: [0.9] * 5 for k in range(5)})
    judge = StratumRule(config, "accuracy").judge(study, 4500)
    assert [judge(epoch, 0.1) for epoch in range(1, 6)] == [False] * 5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_multi_objective_search_prunes_with_the_rule(tmp_path: Path) -> None:
    from archsearch.controller import run_search

    config = small_config(
        tmp_path,
        study={
            "n_trials": 14,
            "objectives": ["accuracy", "params"],
            "pruner": "median",
            "pruner_startup_trials": 3,
            "sampler": "random",
        },
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
