"""Optuna storages, artifacts and reading results back (archsearch.storage)."""

from archsearch.storage import keys
from archsearch.storage._artifacts import (
    download_weights,
    drop_weights_beyond_best,
    open_artifact_store,
    upload_weights,
)
from archsearch.storage._attrs import annotate_finished_trial, set_study_user_attrs, set_user_attrs, stored_value
from archsearch.storage._budget import EpochBudget, epoch_budget, still_improving
from archsearch.storage._objectives import (
    SIZE_KEYS,
    SIZE_OBJECTIVES,
    best_quality_trial,
    front_trials,
    is_feasible,
    maximizes,
    quality_trials,
    quality_value,
    size_objectives,
    size_value,
)
from archsearch.storage._rdb import SQLITE_BUSY_TIMEOUT_S, make_storage
from archsearch.storage._retry import (
    DB_RETRY_SECONDS,
    DatabaseUnavailable,
    RetryingRDBStorage,
    is_transient,
    run_after_storage_call,
    with_retry,
)
from archsearch.storage._studies import (
    FINISHED_STATES,
    finished_count,
    heartbeat_ages,
    name_metric,
    open_study,
    sensitivity_result,
    state_counts,
    study_file_stem,
    study_names,
    trial_state_counts,
)
from archsearch.storage._url import StorageError, backend_of, default_artifact_dir, mask_url, sqlite_path

__all__ = [
    "keys",
    "SIZE_KEYS",
    "SIZE_OBJECTIVES",
    "best_quality_trial",
    "front_trials",
    "is_feasible",
    "maximizes",
    "quality_trials",
    "quality_value",
    "size_objectives",
    "size_value",
    "DB_RETRY_SECONDS",
    "DatabaseUnavailable",
    "EpochBudget",
    "FINISHED_STATES",
    "RetryingRDBStorage",
    "SQLITE_BUSY_TIMEOUT_S",
    "StorageError",
    "annotate_finished_trial",
    "backend_of",
    "default_artifact_dir",
    "download_weights",
    "drop_weights_beyond_best",
    "epoch_budget",
    "finished_count",
    "heartbeat_ages",
    "is_transient",
    "make_storage",
    "mask_url",
    "name_metric",
    "run_after_storage_call",
    "open_artifact_store",
    "open_study",
    "set_study_user_attrs",
    "set_user_attrs",
    "sensitivity_result",
    "sqlite_path",
    "state_counts",
    "study_file_stem",
    "still_improving",
    "stored_value",
    "study_names",
    "trial_state_counts",
    "upload_weights",
    "with_retry",
]
