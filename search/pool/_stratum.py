"""Pruning for multi-objective studies: stop a trial whose quality is hopeless among networks of its size.

Optuna cannot prune a study of several objectives (`Trial.report` and `should_prune` raise), and pruning is
what makes a search fast. A size objective also changes what "hopeless" means: a 2,000-parameter network
that trails the 200,000-parameter ones may still be on the front. So the rule compares a trial only with
the complete trials of its parameter-count stratum (the same power of two, `stratum_of`): at each epoch
from the pruner's warm-up on, its best validation value so far against theirs at the same epoch (read from
`keys.VAL_HISTORY`); worse than their median (`[study] pruner = "median"`, and for successive halving and
Hyperband, which need intermediate values) or than their best quarter (`"percentile"`) stops it, raising
`TrialPruned` through the trainer's report as any pruner does. `"none"` turns it off.

A front keeps one network per size, so one lost trial can cost a front point that no other trial makes up
for, where a single-objective search loses nothing by pruning a trial that is not the best. The rule is
therefore more patient than Optuna's median pruner (`StratumPolicy`): it waits for `MIN_PEERS` peers, a
trial must trail by more than the metric's resolution (one validation row's worth of accuracy: a tie, or
one row either way, says nothing on small tables), and it must trail at `PATIENCE` consecutive checks, as
`optuna.pruners.PatientPruner` asks. Replays of unpruned searches (`benchmarks/stratum_replay.py`) and
equal-trial searches (`benchmarks/size_front.py --trials`) chose these: the earlier rule (3 peers, no
patience, no tolerance) pruned about half the trials and lost fronts, and borrowing peers from neighbouring
or smaller strata lost more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.samplers import first_prunable_epoch
from archsearch.storage import keys
from archsearch.trainers.metrics import METRIC_DIRECTIONS

__all__ = [
    "HISTORY_DECIMALS",
    "MIN_PEERS",
    "PATIENCE",
    "StratumPolicy",
    "StratumRule",
    "metric_resolution",
    "stratum_check",
    "stratum_decision",
    "stratum_of",
]

MIN_PEERS = 5  # complete trials of the stratum before it prunes any
PATIENCE = 2  # consecutive checks a trial must trail at before it is stopped
HISTORY_DECIMALS = 6  # `keys.VAL_HISTORY` is stored rounded to this many decimals
REFRESH_S = 5.0  # within one trial, the peers are read again at most this often
# The share of a stratum's trials a pruned trial must trail: the median, or all but the best quarter.
PERCENTILES = {"median": 50.0, "percentile": 25.0, "successive_halving": 50.0, "hyperband": 50.0}
Peers = Mapping[int, Sequence[Sequence[float]]]  # validation histories of complete trials, by stratum


def stratum_of(params: int) -> int:
    """The parameter-count stratum: trials with 2**s to 2**(s + 1) - 1 parameters share stratum s."""
    return int(math.floor(math.log2(max(int(params), 1))))


def metric_resolution(metric: str, y_val: np.ndarray | None) -> float:
    """The smallest change of a validation metric that one row can make: 1/rows for accuracy, 1/(classes x the
    largest class's rows) for balanced accuracy, 0 for the continuous metrics (log loss, RMSE, R2)."""
    if y_val is None or len(y_val) == 0:
        return 0.0
    if metric == "accuracy":
        return 1.0 / len(y_val)
    if metric == "balanced_accuracy":
        counts = np.unique(np.asarray(y_val), return_counts=True)[1]
        return 1.0 / (len(counts) * int(counts.max()))
    return 0.0


@dataclass(frozen=True)
class StratumPolicy:
    """How far and how long a trial must trail its stratum's peers before it is stopped.

    Attributes:
        percentile: Prune below the top `100 - percentile` percent of peers (50: the median).
        maximize: Whether larger values of the metric are better.
        min_peers: Complete trials of the stratum needed before it judges any.
        patience: Consecutive checks at which the trial trails, counting the one that stops it.
        tolerance: A trial trails only when worse than the threshold by more than this (the metric's resolution).
    """

    percentile: float
    maximize: bool
    min_peers: int = MIN_PEERS
    patience: int = PATIENCE
    tolerance: float = 0.0


def stratum_decision(best: float, peers: Sequence[float], policy: StratumPolicy) -> float | None:
    """The peers' threshold that `best` trails by more than the tolerance, or None (it does not, or too few peers).

    Args:
        best: The trial's best validation value so far.
        peers: The stratum's complete trials' best values up to the same epoch.
        policy: The threshold's percentile, the metric's direction, the peers needed and the tolerance.
    """
    if len(peers) < policy.min_peers:
        return None
    threshold = float(np.percentile(peers, 100.0 - policy.percentile if policy.maximize else policy.percentile))
    shortfall = threshold - best if policy.maximize else best - threshold
    # The margin absorbs the rounding of the peers' stored histories: one resolution step behind stays a tie.
    return threshold if shortfall > policy.tolerance + 10.0**-HISTORY_DECIMALS else None


def stratum_check(
    params: int, peers: Callable[[], Peers], policy: StratumPolicy, prune_from: int, metric: str
) -> Callable[[int, float], bool | str]:
    """One trial's check after each epoch: a reason when it is to stop, else False.

    Args:
        params: The trial's parameter count (its stratum's key).
        peers: Reads the complete trials' histories by stratum when a check needs them.
        policy: When a trial counts as hopeless.
        prune_from: The first epoch that is judged (the pruner's warm-up).
        metric: The validation metric's name, for the reason.
    """
    stratum, pick = stratum_of(params), max if policy.maximize else min
    seen: list[float] = []
    behind = 0  # consecutive checks at which the trial trailed

    def check(epoch: int, value: float) -> bool | str:
        nonlocal behind
        seen.append(value)
        if epoch < prune_from:
            return False
        best = pick(seen)
        at_epoch = [pick(h[:epoch]) for h in peers().get(stratum, ()) if h]
        threshold = stratum_decision(best, at_epoch, policy)
        behind = 0 if threshold is None else behind + 1
        if threshold is None or behind < policy.patience:
            return False
        share = "median" if policy.percentile == 50.0 else f"{100 - policy.percentile:g}th percentile"
        return (
            f"pruned at epoch {epoch}: best val {metric} {best:.4g} is worse than the {share} {threshold:.4g} "
            f"of {len(at_epoch)} complete trials with {2**stratum:,} to {2 ** (stratum + 1) - 1:,} parameters "
            f"at that epoch, {behind} epochs running (archsearch's stratum rule)"
        )

    return check


class StratumRule:
    """The rule for one worker's trials; `judge(study, params)` gives one trial's report check."""

    def __init__(self, config: SearchConfig, metric: str, *, resolution: float = 0.0):
        percentile = PERCENTILES.get(config.study.pruner)
        maximize = METRIC_DIRECTIONS[metric] == "maximize"
        self.policy = None if percentile is None else StratumPolicy(percentile, maximize, tolerance=resolution)
        self.prune_from = first_prunable_epoch(config) if config.data.folds is None else None
        self.startup = config.study.pruner_startup_trials
        self.metric = metric

    def peers(self, study: optuna.Study) -> dict[int, list[list[float]]]:
        """The validation histories of the study's complete trials, by stratum (none before `startup` trials)."""
        by_stratum: dict[int, list[list[float]]] = {}
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.startup:
            return by_stratum
        for t in complete:
            history, params = t.user_attrs.get(keys.VAL_HISTORY), t.user_attrs.get(keys.SIZE_PARAMS)
            if history and params is not None:
                by_stratum.setdefault(stratum_of(params), []).append(history)
        return by_stratum

    def judge(self, study: optuna.Study, params: int) -> Callable[[int, float], bool | str]:
        """A trial's check after each epoch (always False when the rule is off: a multi-objective trial must not
        report to Optuna either way)."""
        if self.policy is None or self.prune_from is None:
            return lambda epoch, value: False
        read: dict[str, Any] = {"at": -math.inf, "peers": {}}

        def peers() -> Peers:
            # Read afresh for each trial (trials shorter than REFRESH_S would otherwise all see the peers of the
            # first, none before `startup` trials completed), then at most every REFRESH_S: each read loads
            # every complete trial.
            if time.monotonic() - read["at"] >= REFRESH_S:
                read["at"], read["peers"] = time.monotonic(), self.peers(study)
            return read["peers"]

        return stratum_check(params, peers, self.policy, self.prune_from, self.metric)
