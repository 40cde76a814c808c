"""Pruning for multi-objective studies: stop a trial whose quality is hopeless among networks of its size.

Optuna cannot prune a study of several objectives (`Trial.report` and `should_prune` raise), and pruning is
what makes a search fast. A size objective also changes what "hopeless" means: a 2,000-parameter network
that trails the 200,000-parameter ones may still be on the front. So the rule compares a trial only with
the complete trials of its parameter-count stratum (the same power of two, `stratum_of`): at each epoch
from the pruner's warm-up on, its best validation value so far against theirs at the same epoch (read from
`keys.VAL_HISTORY`); worse than their median (`[study] pruner = "median"`, and for successive halving and
Hyperband, which need intermediate values) or than their best quarter (`"percentile"`) stops it, raising
`TrialPruned` through the trainer's report as any pruner does. `"none"` turns it off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from archsearch.config import SearchConfig
from archsearch.samplers import first_prunable_epoch
from archsearch.storage import keys
from archsearch.trainers.metrics import METRIC_DIRECTIONS

__all__ = ["MIN_PEERS", "StratumRule", "stratum_decision", "stratum_of"]

MIN_PEERS = 3  # complete trials of the stratum before it prunes any (and `pruner_startup_trials` in the study)
REFRESH_S = 5.0  # the peers are read again at most this often: each read loads every complete trial
# The share of a stratum's trials a pruned trial must trail: the median, or all but the best quarter.
PERCENTILES = {"median": 50.0, "percentile": 25.0, "successive_halving": 50.0, "hyperband": 50.0}


def stratum_of(params: int) -> int:
    """The parameter-count stratum: trials with 2**s to 2**(s + 1) - 1 parameters share stratum s."""
    return int(math.floor(math.log2(max(int(params), 1))))


def stratum_decision(
    best: float, peers: Sequence[float], *, percentile: float, maximize: bool, min_peers: int = MIN_PEERS
) -> float | None:
    """The peers' threshold that `best` falls short of (prune), or None (go on).

    Args:
        best: The trial's best validation value so far.
        peers: The stratum's complete trials' best values up to the same epoch.
        percentile: Prune below the top `100 - percentile` percent of peers (50: the median).
    """
    if len(peers) < min_peers:
        return None
    threshold = float(np.percentile(peers, 100.0 - percentile if maximize else percentile))
    return threshold if (best < threshold if maximize else best > threshold) else None


class StratumRule:
    """The rule for one worker's trials; `judge(params)` gives one trial's report check."""

    def __init__(self, config: SearchConfig, metric: str):
        self.percentile = PERCENTILES.get(config.study.pruner)
        self.prune_from = first_prunable_epoch(config) if config.data.folds is None else None
        self.startup = config.study.pruner_startup_trials
        self.metric = metric
        self.maximize = METRIC_DIRECTIONS[metric] == "maximize"
        self._peers: dict[int, list[list[float]]] = {}
        self._read_at = -math.inf

    def peers(self, study: optuna.Study) -> dict[int, list[list[float]]]:
        """The validation histories of the study's complete trials, by stratum (re-read every REFRESH_S)."""
        if time.monotonic() - self._read_at >= REFRESH_S:
            by_stratum: dict[int, list[list[float]]] = {}
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            for t in complete:
                history, params = t.user_attrs.get(keys.VAL_HISTORY), t.user_attrs.get(keys.SIZE_PARAMS)
                if history and params is not None:
                    by_stratum.setdefault(stratum_of(params), []).append(history)
            self._peers = by_stratum if len(complete) >= self.startup else {}
            self._read_at = time.monotonic()
        return self._peers

    def judge(self, study: optuna.Study, params: int) -> Callable[[int, float], bool | str]:
        """A trial's check after each epoch: a reason when it is to stop, else False (always, when the rule is
        off: a multi-objective trial must not report to Optuna either way)."""
        if self.percentile is None or self.prune_from is None:
            return lambda epoch, value: False
        stratum, pick = stratum_of(params), max if self.maximize else min
        seen: list[float] = []
        # Read afresh for each trial: trials shorter than REFRESH_S would otherwise all see the peers of the first
        # (none, before `startup` trials completed), and nothing would ever be pruned.
        self._read_at = float("-inf")

        def check(epoch: int, value: float) -> bool | str:
            seen.append(value)
            if epoch < self.prune_from:
                return False
            best = pick(seen)
            at_epoch = [pick(h[:epoch]) for h in self.peers(study).get(stratum, ())]
            threshold = stratum_decision(best, at_epoch, percentile=self.percentile, maximize=self.maximize)
            if threshold is None:
                return False
            share = "median" if self.percentile == 50.0 else f"{100 - self.percentile:g}th percentile"
            return (
                f"pruned at epoch {epoch}: best val {self.metric} {best:.4g} is worse than the {share} {threshold:.4g} "
                f"of {len(at_epoch)} complete trials with {2**stratum:,} to {2 ** (stratum + 1) - 1:,} parameters "
                "at that epoch (archsearch's stratum rule)"
            )

        return check
