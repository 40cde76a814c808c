"""The study controller: open or resume a study, enqueue baselines, run trials until the total is reached."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

import archsearch
from archsearch.config import ConfigError, SearchConfig
from archsearch._objective import BASELINE_ATTR, Objective
from archsearch.storage import FINISHED_STATES, default_artifact_dir, finished_count, make_storage, mask_url
from archsearch.trainers.data import PreparedData, load_data
from archsearch.trainers.metrics import METRIC_DIRECTIONS

__all__ = ["SearchError", "run_search", "open_search_study", "OpenedStudy"]

CONFIG_ATTR = "archsearch_config"


class SearchError(RuntimeError):
    """A search that could not go on (e.g. every trial failing); the message names the last error."""


@dataclass
class OpenedStudy:
    """A study ready for trials, with what every trial needs."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    data: PreparedData
    metric: str
    artifact_dir: Path


def _make_sampler(config: SearchConfig) -> optuna.samplers.BaseSampler:
    study = config.study
    if study.sampler == "tpe":
        # group=True models the per-layer parameters of each depth together (they only exist for some
        # depths); Optuna flags both options experimental, which is no news to an archsearch user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=study.seed, multivariate=True, group=True, n_startup_trials=study.n_startup_trials
            )
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=study.seed)
    if study.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=study.seed, warn_independent_sampling=False)
    return optuna.samplers.GPSampler(seed=study.seed, n_startup_trials=study.n_startup_trials)


def _make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    name, epochs = config.study.pruner, config.train.epochs
    warmup = min(3, max(epochs - 1, 0))
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=warmup)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def _check_compatible(study: optuna.Study, config: SearchConfig, metric: str, url: str) -> None:
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        return
    current = config.to_dict()
    changed = [f"[data] {k}" for k in sorted(set(stored["data"]) | set(current["data"])) if stored["data"].get(k) != current["data"].get(k)]
    stored_space = type(config.space).from_dict(stored["space"])
    changed += [f"[space] {k}" for k in stored_space.is_compatible_with(config.space)]
    if study.user_attrs.get("metric") != metric:
        changed.append("[study] metric")
    if changed:
        raise ConfigError(
            f"Study {study.study_name!r} in {mask_url(url)!r} was created with a different search: "
            f"{', '.join(changed)} changed, so its trials are not comparable. Restore those settings to resume it, "
            "or start a new study with another [study] name (or --study NAME)."
        )


def open_search_study(config: SearchConfig, *, storage: optuna.storages.BaseStorage | None = None) -> OpenedStudy:
    """Create the study (or resume the one with the same name), checking that a resumed one is compatible."""
    url = config.study.storage
    storage = storage or make_storage(url)
    data = load_data(config.data)
    metric = config.metric_for(data.task)
    study = optuna.create_study(
        study_name=config.study.name,
        storage=storage,
        direction=METRIC_DIRECTIONS[metric],
        sampler=_make_sampler(config),
        pruner=_make_pruner(config),
        load_if_exists=True,
    )
    _check_compatible(study, config, metric, url)
    if CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr("archsearch_version", archsearch.__version__)
        study.set_user_attr("metric", metric)
        study.set_user_attr("task", data.task)
        study.set_user_attr(
            "data",
            {
                "name": data.name,
                "n_features": data.n_features,
                "n_outputs": data.n_outputs,
                "n_train": len(data.y_train),
                "n_val": len(data.y_val),
                "n_test": len(data.y_test),
            },
        )
        study.set_user_attr("preprocessing", data.preprocessing.to_dict())
        # Written last: its presence marks a fully initialised study.
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        _enqueue_baselines(study, config)
    artifact_dir = Path(config.study.artifacts) if config.study.artifacts else default_artifact_dir(url)
    return OpenedStudy(study=study, storage=storage, data=data, metric=metric, artifact_dir=artifact_dir)


def _enqueue_baselines(study: optuna.Study, config: SearchConfig) -> None:
    space = config.space
    if space.layers[0] == 0:
        study.enqueue_trial(space.fixed_params([]), user_attrs={BASELINE_ATTR: "linear"}, skip_if_exists=True)
    for widths in space.baselines:
        study.enqueue_trial(space.fixed_params(widths), user_attrs={BASELINE_ATTR: "user"}, skip_if_exists=True)


class _Progress:
    """Study callback printing trials done/pruned/failed and the best value so far."""

    def __init__(self, opened: OpenedStudy, total: int, stream: TextIO):
        self.metric = opened.metric
        self.total = total
        self.stream = stream
        self.live = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        counts = {state: sum(t.state == state for t in trials) for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        try:
            best = f"best val {self.metric} {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no completed trial yet"
        line = (
            f"[archsearch] {done}/{self.total} trials: {counts[TrialState.COMPLETE]} complete, "
            f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed | {best} | "
            f"{time.monotonic() - self.started:.0f}s"
        )
        if self.live:
            self.stream.write("\r" + line.ljust(110))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")


class _FailureGuard:
    """Stops the study after `limit` failed trials in a row, remembering the last error."""

    def __init__(self, limit: int):
        self.limit = limit
        self.streak = 0
        self.last_error: str | None = None
        self.last_trial: int | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.streak = 0
            return
        self.streak += 1
        self.last_trial = trial.number
        self.last_error = trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason", "unknown error")
        if self.streak >= self.limit:
            study.stop()

    @property
    def tripped(self) -> bool:
        return self.streak >= self.limit


class _StopAtTotal:
    """Stops the study once completed + pruned trials reach the configured total."""

    def __init__(self, total: int):
        self.total = total

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if finished_count(study) >= self.total:
            study.stop()


def run_search(config: SearchConfig, *, quiet: bool = True, stream: TextIO | None = None) -> optuna.Study:
    """Run (or resume) a search until `n_trials` trials are completed or pruned, or the timeout passes.

    Args:
        config: The whole search; build it with `SearchConfig(...)` or `load_config("search.toml")`.
        quiet: Print no progress lines.
        stream: Where progress goes (default: stderr).

    Returns:
        The Optuna study, with every trial and its user attributes stored in `config.study.storage`.

    Example:
        >>> from archsearch import SearchConfig, run_search
        >>> study = run_search(SearchConfig())  # digits, 30 trials, ./archsearch.db
        >>> study.best_trial.user_attrs["widths"]
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_search_study(config)
    study = opened.study
    total = config.study.n_trials
    if finished_count(study) >= total:
        return study
    objective = Objective(config, opened.data, opened.metric, opened.storage, opened.artifact_dir)
    guard = _FailureGuard(config.study.max_consecutive_failures)
    callbacks: list[Any] = [_StopAtTotal(total), guard, objective.after_trial]
    progress = None if quiet else _Progress(opened, total, stream or sys.stderr)
    if progress is not None:
        callbacks.append(progress)
    logging.getLogger("optuna").setLevel(logging.ERROR)  # failed trials are reported by the guard instead
    try:
        study.optimize(
            objective,
            timeout=config.study.timeout or None,
            callbacks=callbacks,
            catch=(Exception,),
            gc_after_trial=True,
        )
    finally:
        if progress is not None:
            progress.close()
    if guard.tripped:
        raise SearchError(
            f"Stopped study {study.study_name!r} after {guard.streak} failed trials in a row; the last "
            f"(trial {guard.last_trial}) failed with: {guard.last_error}. Fix the cause and rerun the same "
            "command to continue the study."
        )
    return study
