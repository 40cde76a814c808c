"""Reading studies back: open by name with helpful errors, and count trials by state."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import TrialState

from archsearch.storage._url import StorageError, mask_url

__all__ = ["open_study", "study_names", "state_counts", "finished_count", "FINISHED_STATES"]

# What `n_trials` counts: a pruned trial is a decision the search made, a failed one is not.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


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
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    return {state.name: counts.get(state.name, 0) for state in TrialState}


def finished_count(study: optuna.Study) -> int:
    """Completed plus pruned trials: the number `n_trials` is measured against."""
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
