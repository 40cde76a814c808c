"""Optuna storages, artifacts and reading results back (archsearch.storage)."""

from archsearch.storage import keys
from archsearch.storage._artifacts import (
    download_weights,
    drop_weights_beyond_best,
    open_artifact_store,
    upload_weights,
)
from archsearch.storage._attrs import set_user_attrs
from archsearch.storage._rdb import SQLITE_BUSY_TIMEOUT_S, make_storage
from archsearch.storage._studies import (
    FINISHED_STATES,
    finished_count,
    heartbeat_ages,
    open_study,
    state_counts,
    study_names,
    trial_state_counts,
)
from archsearch.storage._url import StorageError, backend_of, default_artifact_dir, mask_url, sqlite_path

__all__ = [
    "keys",
    "FINISHED_STATES",
    "SQLITE_BUSY_TIMEOUT_S",
    "StorageError",
    "backend_of",
    "default_artifact_dir",
    "download_weights",
    "drop_weights_beyond_best",
    "finished_count",
    "heartbeat_ages",
    "make_storage",
    "mask_url",
    "open_artifact_store",
    "open_study",
    "set_user_attrs",
    "sqlite_path",
    "state_counts",
    "study_names",
    "trial_state_counts",
    "upload_weights",
]
