"""The study controller: open or resume a study, enqueue baselines, run trials until the total is reached."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

import optuna

import archsearch
from archsearch.config import ConfigError, SearchConfig
from archsearch.encoded import artifact_folder, fetch_encoded, store_encoded
from archsearch.kinds import job_kind
from archsearch.pool import (
    SEARCH,
    SearchError,
    WorkerStudy,
    check_same_data,
    load_worker_study,
    plan_slots,
    record_fingerprint,
    run_slots,
    use_worker_sampler,
    worker_storage,
)
from archsearch.spaces import MAX_EMBEDDED_FEATURES, InvalidSpaceError, check_budget_reachable, fit_space
from archsearch.storage import (
    StorageError,
    finished_count,
    keys,
    make_storage,
    mask_url,
    name_metric,
    set_study_user_attrs,
    stored_value,
)
from archsearch.trainers.data import DROP_REASON, PreparedData, load_data
from archsearch.trainers.metrics import METRIC_DIRECTIONS

__all__ = ["OpenedStudy", "SearchError", "join_study", "open_search_study", "run_search"]


@dataclass
class OpenedStudy:
    """A study ready for trials, with what every trial needs; an in-process worker trains through it."""

    study: optuna.Study
    data: PreparedData
    metric: str
    config: SearchConfig
    storage: optuna.storages.RDBStorage
    notes: list[str] = dataclasses.field(default_factory=list)  # how the space was fitted to the data's width

    def for_worker(self) -> WorkerStudy:
        return WorkerStudy(self.config, self.storage, self.study)


# [train] keys that change what a trial's value means; other [study]/[train] keys may change on resume.
_COMPARABILITY_TRAIN_KEYS = ("epochs", "patience", "class_weight", "warmup", "grad_clip", "linear_solver")


def stored_config(config: SearchConfig) -> dict:
    """The config as kept in the study: everything but the storage password (dashboard users see it)."""
    data = config.to_dict()
    data["study"]["storage"] = mask_url(data["study"]["storage"])
    return data


def _check_compatible(study: optuna.Study, config: SearchConfig, metric: str, url: str) -> None:
    stored = study.user_attrs.get(keys.CONFIG)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(
                f"Study {study.study_name!r} in {mask_url(url)!r} already holds trials but was not created by "
                "archsearch. Pick another [study] name (or --study NAME)."
            )
        return
    stored = SearchConfig.from_stored(stored).to_dict()  # keys added since the study was stored get their old meaning
    current = config.to_dict()
    # Values beside the names: after an upgrade the stored value is what to restore (e.g. a changed default).
    # keep_ids is judged by its effect (`_check_left_out`): a study stored before it existed reads it as true,
    # and resumes under today's default as long as its data has no row identifier to leave out.
    changed = [
        f"[data] {k} (stored {stored['data'].get(k)!r}, now {current['data'].get(k)!r})"
        for k in sorted((set(stored["data"]) | set(current["data"])) - {"keep_ids"})
        if stored["data"].get(k) != current["data"].get(k)
    ]
    stored_space = type(config.space).from_dict(stored["space"])
    changed += [f"[space] {k}" for k in stored_space.is_compatible_with(config.space)]
    changed += [
        f"[train] {k} (stored {stored['train'].get(k)!r}, now {current['train'].get(k)!r})"
        for k in _COMPARABILITY_TRAIN_KEYS
        if stored["train"].get(k) != current["train"].get(k)
    ]
    if study.user_attrs.get(keys.METRIC) != metric:
        changed.append("[study] metric")
    before, now = list(stored["study"].get("objectives") or []), list(config.study.objectives or [])
    if before != now:
        changed.append(f"[study] objectives (stored {before!r}, now {now!r})")
    if changed:
        seed_changed = any(c.startswith("[data] seed ") for c in changed)
        hint = " ([data] seed follows [study] seed unless [data] sets it)" if seed_changed else ""
        raise ConfigError(
            f"Study {study.study_name!r} in {mask_url(url)!r} was created with a different search: "
            f"{', '.join(changed)} changed{hint}, so its trials are not comparable. Restore those settings to resume "
            "it, or start a new study with another [study] name (or --study NAME)."
        )


def open_search_study(config: SearchConfig, *, storage: optuna.storages.RDBStorage | None = None) -> OpenedStudy:
    """Create the study (or resume the one with the same name), checking that a resumed one is compatible.

    A study this call creates is deleted again when its initialisation fails, so a failed start leaves no
    study without its config behind (issue #27: attributes and no config after a MariaDB error).
    """
    url = config.study.storage
    # Data first: a bad file or metric must not leave an empty study (or database file) behind.
    _reuse_stored_vectors(config)
    data = load_data(config.data)
    config, notes = fit_config(config, data)
    metric = config.metric_for(data.task)
    check_budget(config, data)
    # The storage and sampler an in-process worker trains with: the study is opened once, here.
    storage = storage or worker_storage(url, config)
    sizes = (config.study.objectives or ())[1:]
    directions = [METRIC_DIRECTIONS[metric], *(["minimize"] * len(sizes))]
    study, created = _create_or_load(config.study.name, storage, directions)
    try:
        _check_compatible(study, config, metric, url)
        use_worker_sampler(study, config)
        name_metric(study, metric, sizes)
        if keys.CONFIG not in study.user_attrs:
            _initialise(study, config, data, metric)
        else:
            _resume(study, config, data, url)
        store_encoded(study, config.data, artifact_folder(config, url))
    except BaseException:
        if created:
            _delete_quietly(study, storage)
        raise
    return OpenedStudy(study=study, data=data, metric=metric, config=config, storage=storage, notes=notes)


def _reuse_stored_vectors(config: SearchConfig) -> None:
    """A resume on another machine reads the encoder's vectors the study trained on, not its own encoding."""
    if config.data.encoder is None:
        return
    try:
        storage = make_storage(config.study.storage, must_exist=True)
        study = optuna.load_study(study_name=config.study.name, storage=storage)
    except (StorageError, KeyError):  # a new study (or database): nothing stored yet
        return
    fetch_encoded(study, config.data, artifact_folder(config, config.study.storage))


def fit_config(config: SearchConfig, data: PreparedData) -> tuple[SearchConfig, list[str]]:
    """The config with its space fitted to the data's width (`spaces.fit_space`), and the notes saying how."""
    known = data.preprocessing.blocks
    unknown = sorted({name for choice in config.space.blocks for name in choice} - set(known))
    if unknown:
        have = ", ".join(map(repr, known)) or "none (name them in [data] blocks)"
        raise ConfigError(
            f"[space] blocks names {unknown[0]!r}, which is not a feature block of the data; its blocks are {have}."
        )
    if data.task == "regression" and config.space.head != ("softmax",):
        raise ConfigError(
            f"[space] head = {list(config.space.head)} applies to classification; this data is a regression."
        )
    space, notes = fit_space(config.space, data.n_features, data.n_outputs, config.space_keys, tuple(known))
    return dataclasses.replace(config, space=space), notes


def check_budget(config: SearchConfig, data: PreparedData) -> None:
    """Refuse [space] max_params / max_flops that no architecture of the space meets, before any trial."""
    try:
        n_numeric = len(data.preprocessing.numeric_features)
        check_budget_reachable(config.space, data.n_features, data.n_outputs, n_numeric=n_numeric)
    except InvalidSpaceError as e:
        raise ConfigError(str(e)) from e


def _create_or_load(
    name: str, storage: optuna.storages.BaseStorage, directions: list[str]
) -> tuple[optuna.Study, bool]:
    """The study named `name`, and whether this call created it (two processes may start it at once)."""
    try:
        return optuna.create_study(study_name=name, storage=storage, directions=directions), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage), False


def _initialise(study: optuna.Study, config: SearchConfig, data: PreparedData, metric: str) -> None:
    """Store a new study's attributes, all in one transaction, then enqueue its baselines."""
    attrs = {
        keys.VERSION: archsearch.__version__,
        keys.METRIC: metric,
        keys.TASK: data.task,
        keys.DATA: {
            "name": data.name,
            "n_features": data.n_features,
            "n_outputs": data.n_outputs,
            "n_train": len(data.y_train),
            "n_val": len(data.y_val),
            "n_test": len(data.y_test),
        },
        # Split into parts when longer than a MariaDB column holds (a 10,000-category column: some 230 kB).
        keys.PREPROCESSING: data.preprocessing.to_dict(),
        keys.DROPPED_COLUMNS: data.dropped,
        keys.TASK_LINE: data.task_line,
        # Its presence marks a fully initialised study; in the same transaction as the rest.
        keys.CONFIG: stored_config(config),
    }
    if data.fingerprint is not None:
        attrs[keys.FINGERPRINT] = data.fingerprint
    set_study_user_attrs(study, attrs)
    _enqueue_baselines(
        study, config, linear=True, task=data.task, n_features=data.n_features, n_train=len(data.x_train)
    )


def _resume(study: optuna.Study, config: SearchConfig, data: PreparedData, url: str) -> None:
    _check_left_out(study, data, url)
    check_same_data(study, data, url)
    record_fingerprint(study, data)
    # Settings that may change on resume (n_trials, timeout, sampler, device, ...) are stored, so that
    # workers joining later follow them; newly listed baselines are tried first.
    before = SearchConfig.from_stored(study.user_attrs[keys.CONFIG]).space.baselines
    study.set_user_attr(keys.CONFIG, stored_config(config))
    new = [widths for widths in config.space.baselines if widths not in before]
    if new:
        _enqueue_baselines(study, config, linear=False, only=new)


def _delete_quietly(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Delete a study whose initialisation failed; the error that stopped it is the one to report."""
    try:
        optuna.delete_study(study_name=study.study_name, storage=storage)
    except Exception:  # the database may be what failed: the original error says so
        pass


def _check_left_out(study: optuna.Study, data: PreparedData, url: str) -> None:
    """Refuse a resume that would leave out row identifiers the study trained on (it predates the rule, or
    set keep_ids), saying what to set; `check_same_data` would only say the columns changed."""
    trained = stored_value(study.user_attrs, keys.PREPROCESSING)["columns"]
    ids = {c: why for c, why in data.dropped.items() if c in trained and why != DROP_REASON}
    if ids:
        listed = ", ".join(f"{c!r} ({why})" for c, why in ids.items())
        raise ConfigError(
            f"The data of study {study.study_name!r} in {mask_url(url)!r} changed since the study was created: "
            f"columns removed {list(ids)}: [data] left out {listed}; set keep_ids = true in [data] to resume this "
            "study, which trained on them."
        )


def left_out_line(data: PreparedData) -> str | None:
    """The one line naming the file's columns not trained on, and why; None when every column is used.

    >>> from types import SimpleNamespace
    >>> left_out_line(SimpleNamespace(name="rows.csv", dropped={"rownames": "named like a row identifier"}))
    "Left out 1 column of 'rows.csv': 'rownames' (named like a row identifier); [data] keep_ids = true trains on it."
    """
    if not data.dropped:
        return None
    listed = ", ".join(f"{column!r} ({why})" for column, why in data.dropped.items())
    ids = [column for column, why in data.dropped.items() if why != DROP_REASON]
    keep = f"; [data] keep_ids = true trains on {'it' if len(ids) == 1 else 'them'}" if ids else ""
    columns = "column" if len(data.dropped) == 1 else "columns"
    return f"Left out {len(data.dropped)} {columns} of {data.name!r}: {listed}{keep}."


def _enqueue_baselines(
    study: optuna.Study,
    config: SearchConfig,
    *,
    linear: bool,
    only: list | None = None,
    task: str | None = None,
    n_features: int = 0,
    n_train: int = 0,
) -> None:
    space = config.space
    if linear and space.layers[0] == 0:
        params = _linear_baseline(space, config.train.linear_solver, n_train)
        study.enqueue_trial(params, user_attrs={keys.BASELINE: "linear"}, skip_if_exists=True)
    for widths in space.baselines if only is None else only:
        study.enqueue_trial(space.fixed_params(widths), user_attrs={keys.BASELINE: "user"}, skip_if_exists=True)
    # After the user's own baselines, which say what they want tried first.
    if linear and space.recipe_baseline:
        study.enqueue_trial(space.recipe_params(task=task), user_attrs={keys.BASELINE: "recipe"}, skip_if_exists=True)
        # And again with the piecewise-linear embedding when the space has it: a second strong start, which
        # won phoneme by 1.5 points over 6 seeds (BENCHMARKS.md section 6, "Eighth session"). With only
        # "pl" in the space both are the same trial, enqueued once. Not on wide inputs, where it is the
        # slowest trial of the space (issue #24: 62 to 112 s against 4 to 6 s without, 2,000 features).
        if "pl" in space.embedding and n_features <= MAX_EMBEDDED_FEATURES:
            study.enqueue_trial(
                space.recipe_params(task=task, embedding="pl"),
                user_attrs={keys.BASELINE: "recipe"},
                skip_if_exists=True,
            )


def _linear_baseline(space: Any, linear_solver: str, n_train: int) -> dict[str, Any]:
    """The linear baseline's params: where L-BFGS fits it, scikit-learn's default logistic regression (C = 1: an L2
    of 1 / n_train on the mean loss, within the space's weight-decay range). Left to the sampler, its weight decay
    was drawn at random, and without one a linear model on 2,000 features and 2,880 rows fits its training rows
    and reached 0.52 validation accuracy where logistic regression's default held out 0.62 (BENCHMARKS.md 14)."""
    params = space.fixed_params([])
    low, high = space.weight_decay
    if linear_solver != "lbfgs" or high <= 0 or n_train < 1:
        return params
    overrides: dict[str, Any] = {"weight_decay": min(max(1.0 / n_train, low or space.weight_decay_min), high)}
    if low == 0:
        overrides["use_weight_decay"] = True
    # And no label smoothing, which scikit-learn's loss does not have, where the space can leave it out.
    for extra in ({"label_smoothing": 0.0}, {}):
        try:
            return space.fixed_params([], **overrides, **extra)
        except InvalidSpaceError:  # a parameter this space does not sample at depth 0, or not at that value
            continue
    return params


def run_search(
    config: SearchConfig,
    *,
    workers: int | None = 1,
    gpus: Sequence[int] | None = None,
    trials_per_gpu: int = 1,
    quiet: bool = True,
    stream: TextIO | None = None,
    log_dir: str | Path | None = None,
) -> optuna.Study:
    """Run (or resume) a search until `n_trials` trials are completed or pruned, or the timeout passes.

    Args:
        config: The whole search; build it with `SearchConfig(...)` or `load_config("search.toml")`.
        workers: Worker processes; 1 trains in this process, None places one per GPU or CPU core.
        gpus: GPU indices for the workers (default: all visible GPUs when the device allows CUDA).
        trials_per_gpu: Workers sharing each GPU.
        quiet: Print no progress lines.
        stream: Where progress goes (default: stderr).
        log_dir: Folder of the per-worker log files (default: beside a SQLite file, else ./archsearch_logs).

    Returns:
        The Optuna study, with every trial and its user attributes stored in `config.study.storage`.

    Raises:
        SearchError: `max_consecutive_failures` trials failed in a row; the message names the last error.

    Example:
        >>> from archsearch import SearchConfig, run_search
        >>> study = run_search(SearchConfig())  # digits, 30 trials, ./archsearch.db  # doctest: +SKIP
        >>> study.best_trial.user_attrs["widths"]  # doctest: +SKIP
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    slots = plan_slots(config, workers, gpus, trials_per_gpu)  # before the study exists: bad flags change nothing
    opened = open_search_study(config)
    study, config = opened.study, opened.config
    if not quiet:
        for line in (opened.data.task_line, left_out_line(opened.data), *opened.notes):
            if line:
                print(line, file=stream or sys.stderr)
    total = SEARCH.total(study, config)
    if finished_count(study) >= total:
        return study
    deadline = time.time() + config.study.timeout if config.study.timeout else None
    run_slots(
        config,
        study,
        slots,
        in_process=gpus is None,
        data=opened.data,
        total=total,
        deadline=deadline,
        quiet=quiet,
        stream=stream,
        log_dir=log_dir,
        opened=opened.for_worker(),
    )
    return study


def join_study(
    storage: str,
    study_name: str,
    *,
    workers: int | None = 1,
    gpus: Sequence[int] | None = None,
    trials_per_gpu: int = 1,
    max_trials: int | None = None,
    quiet: bool = True,
    stream: TextIO | None = None,
    log_dir: str | Path | None = None,
) -> optuna.Study:
    """Add workers on this machine to an existing study, knowing only its storage URL and name.

    The study's config (space, data reference, training settings) is read from the study itself. The
    workers stop when the study reaches its total, or after `max_trials` trials each.

    Example:
        >>> join_study("postgresql+psycopg://archsearch@db-host/archsearch", "digits", workers=4)  # doctest: +SKIP
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = load_worker_study(storage, study_name)
    # The URL given here is how this machine reaches the database; the stored one may name another host.
    config, study = opened.config.replace(storage=storage), opened.study
    slots = plan_slots(config, workers, gpus, trials_per_gpu)
    # Another machine's worker may start with the same slot index and trial count: the process id tells them apart.
    run_slots(
        config,
        study,
        slots,
        in_process=gpus is None,
        seed_salt=os.getpid(),
        max_trials=max_trials,
        quiet=quiet,
        stream=stream,
        log_dir=log_dir,
        kind=job_kind(study),  # a search's trials to sample, or another kind's planned jobs
    )
    return study
