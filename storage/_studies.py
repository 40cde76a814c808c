"""Reading studies back: open by name with helpful errors, and count trials by state."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence

import optuna
import sqlalchemy
from optuna.trial import TrialState

from archsearch.storage import keys
from archsearch.storage._attrs import stored_value
from archsearch.storage._rdb import rdb_backend
from archsearch.storage._retry import with_retry
from archsearch.storage._url import StorageError, mask_url

__all__ = [
    "study_file_stem",
    "open_study",
    "study_names",
    "state_counts",
    "trial_state_counts",
    "finished_count",
    "FINISHED_STATES",
    "heartbeat_ages",
    "sensitivity_result",
]

# What `n_trials` counts: a pruned trial is a decision the search made, a failed one is not.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w.\-]+")


def study_file_stem(name: str) -> str:
    """A file name stem made from a study name that cannot leave the working folder.

    Study names are free text (`../x/evil`, `/abs/evil`); path separators and other characters outside
    letters, digits, '_', '-' and '.' become '_', and leading dots go, so no stem is '..' or hidden.

    >>> study_file_stem("../x/evil")
    '_x_evil'
    >>> study_file_stem("digits v2")
    'digits_v2'
    """
    stem = _UNSAFE_IN_FILE_NAME.sub("_", name).lstrip(".")[:200]
    return stem if stem.strip("._") else "study"


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of all studies in the storage."""
    return sorted(s.study_name for s in storage.get_all_studies())


def open_study(storage: optuna.storages.BaseStorage, name: str, *, url: str = "") -> optuna.Study:
    """Load an existing study; the error lists the studies that do exist."""
    names = study_names(storage)
    if name not in names:
        where = f" in {mask_url(url)!r}" if url else ""
        available = ", ".join(repr(n) for n in names) if names else "none"
        raise StorageError(f"No study named {name!r}{where}. Studies there: {available}.")
    return optuna.load_study(study_name=name, storage=storage)


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state name, every state present (zeros included)."""
    counts = trial_state_counts(study)
    return {state.name: counts[state] for state in TrialState}


def trial_state_counts(study: optuna.Study) -> Counter[TrialState]:
    """Trials of the study per state, counted by the database on RDB storages.

    One small query however many trials the study holds, where `get_trials` builds every trial that is
    not cached yet with its parameters and attributes; workers count before each trial.
    """
    backend = rdb_backend(study._storage)
    if backend is None:
        return Counter(t.state for t in study.get_trials(deepcopy=False))
    query = sqlalchemy.text("SELECT state, COUNT(*) FROM trials WHERE study_id = :study_id GROUP BY state")

    def count() -> list:
        with backend.engine.connect() as connection:
            return connection.execute(query, {"study_id": study._study_id}).all()

    rows = with_retry(backend, count)
    return Counter({TrialState[state]: count for state, count in rows})


def finished_count(study: optuna.Study) -> int:
    """Completed plus pruned trials: the number `n_trials` is measured against."""
    counts = trial_state_counts(study)
    return sum(counts[state] for state in FINISHED_STATES)


def heartbeat_ages(storage: optuna.storages.BaseStorage, study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each running trial (trial number -> age), read from the database.

    Optuna keeps heartbeats in its `trial_heartbeats` table without a public reader, so this asks the
    database directly, with the database's own clock as Optuna's stale-trial check does.
    """
    if not isinstance(storage, optuna.storages.RDBStorage):
        return {}
    running = {t._trial_id: t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return {}
    query = sqlalchemy.text("SELECT trial_id, heartbeat FROM trial_heartbeats").columns(
        sqlalchemy.column("trial_id", sqlalchemy.Integer), sqlalchemy.column("heartbeat", sqlalchemy.DateTime)
    )

    def read() -> tuple:
        with storage.engine.connect() as connection:
            now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar().replace(tzinfo=None)
            return now, connection.execute(query).all()

    now, rows = with_retry(storage, read)
    return {
        running[trial_id]: (now - beat.replace(tzinfo=None)).total_seconds()
        for trial_id, beat in rows
        if trial_id in running
    }


def name_metric(study: optuna.Study, metric: str, sizes: Sequence[str] = ()) -> None:
    """Name the study's objectives ``val <metric>`` and its size measures, so optuna-dashboard does not call
    them "Objective 0" and its Pareto-front view labels the axes."""
    with warnings.catch_warnings():
        # set_metric_names is experimental in Optuna 3.x/4.x; the name it stores is plain data either way.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"val {metric}", *sizes])


def sensitivity_result(study: optuna.Study) -> dict | None:
    """The last `archsearch sensitivity` analysis of `study` (the dict its companion study stores), or None when
    no analysis finished."""
    try:
        companion = optuna.load_study(study_name=study.study_name + keys.COMPANION_SUFFIX, storage=study._storage)
    except KeyError:  # Optuna's answer for a study name the storage does not hold
        return None
    return stored_value(companion.user_attrs, keys.SENSITIVITY_RESULT)
