"""The Optuna sampler and pruner a study's config names, shared by the controller and every worker."""

from __future__ import annotations

import warnings

import optuna

from archsearch._pruners import PatientHyperbandPruner, PatientSuccessiveHalvingPruner
from archsearch.config import SearchConfig
from archsearch.storage import keys

__all__ = ["first_prunable_epoch", "latency_constraint", "make_pruner", "make_sampler"]


def make_sampler(config: SearchConfig, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with `seed` (default: the study seed)."""
    study = config.study
    seed = study.seed if seed is None else seed
    # Optuna 5 reads the constraint the objective sets on each trial (SearchObjective); 4.x asks this function.
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")
    constraints = latency_constraint if study.max_latency_ms is not None and legacy else None
    if study.sampler == "tpe":
        # group=True models the per-layer parameters of each depth together (they only exist for some
        # depths); Optuna flags both options experimental, which is no news to an archsearch user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,
                n_startup_trials=study.n_startup_trials,
                constraints_func=constraints,
            )
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == "nsga2":
        # Optuna's default population (50) would leave a search of a few dozen trials random; the startup
        # trials, which TPE and GP draw at random too, are the first generation instead.
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=study.n_startup_trials, constraints_func=constraints
        )
    if study.sampler == "qmc":
        # QMC workers share one sequence through the study (its position is stored there), so one seed.
        return optuna.samplers.QMCSampler(seed=study.seed, warn_independent_sampling=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=study.n_startup_trials, constraints_func=constraints
        )


def latency_constraint(trial: optuna.trial.FrozenTrial) -> tuple[float]:
    """Optuna's constraint value of a finished trial: 1.0 when it is over [study] max_latency_ms (marked
    `keys.INFEASIBLE` with its latency), else 0.0; the sampler then models the feasible trials apart."""
    return (1.0 if keys.INFEASIBLE in trial.user_attrs else 0.0,)


def _warmup_epochs(config: SearchConfig) -> int:
    # With [data] folds a step is a whole fold, so one fold of evidence is warm-up enough.
    if config.data.folds:
        return 1
    return min(3, max(config.train.epochs - 1, 0))


def first_prunable_epoch(config: SearchConfig) -> int | None:
    """The first epoch (from 1) at which the study's pruner can stop a trial; None when it never does.

    With [data] folds the steps are folds (see `archsearch.pool.train_folds`), and so is the answer.

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
    if config.study.objectives:
        # Optuna cannot prune a multi-objective study; archsearch.pool.StratumRule does it instead.
        return optuna.pruners.NopPruner()
    name, steps = config.study.pruner, config.data.folds or config.train.epochs
    warmup = _warmup_epochs(config)
    startup = config.study.pruner_startup_trials
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "successive_halving":
        return PatientSuccessiveHalvingPruner(min_resource=1, min_complete_trials=startup)
    if name == "hyperband":
        return PatientHyperbandPruner(min_resource=1, max_resource=steps, min_complete_trials=startup)
    return optuna.pruners.NopPruner()
