"""The Optuna sampler and pruner a study's config names, shared by the controller and every worker."""

from __future__ import annotations

import warnings

import optuna

from archsearch.config import SearchConfig

__all__ = ["first_prunable_epoch", "make_pruner", "make_sampler"]


def make_sampler(config: SearchConfig, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with `seed` (default: the study seed)."""
    study = config.study
    seed = study.seed if seed is None else seed
    if study.sampler == "tpe":
        # group=True models the per-layer parameters of each depth together (they only exist for some
        # depths); Optuna flags both options experimental, which is no news to an archsearch user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=study.n_startup_trials
            )
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == "qmc":
        # QMC workers share one sequence through the study (its position is stored there), so one seed.
        return optuna.samplers.QMCSampler(seed=study.seed, warn_independent_sampling=False)
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=study.n_startup_trials)


def _warmup_epochs(config: SearchConfig) -> int:
    return min(3, max(config.train.epochs - 1, 0))


def first_prunable_epoch(config: SearchConfig) -> int | None:
    """The first epoch (from 1) at which the study's pruner can stop a trial; None when it never does.

    Median and percentile pruners never prune a step below their warm-up, and asking them reads every
    finished trial, so workers do not ask before this epoch.
    """
    name = config.study.pruner
    if name in ("median", "percentile"):
        return max(_warmup_epochs(config), 1)
    if name in ("successive_halving", "hyperband"):
        return 1
    return None


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    name, epochs = config.study.pruner, config.train.epochs
    warmup = _warmup_epochs(config)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=warmup)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()
