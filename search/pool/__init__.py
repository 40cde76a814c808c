"""archsearch.pool: where trials train. Worker placement, the worker loop, the per-trial objective, the local pool.

A worker joins a study by storage URL and name and trains trials until the study's total is reached; the
pool spawns one per slot (a GPU, a share of a GPU, or a CPU core) and watches them. What a trial trains is
decided by an objective factory: a search's (`search_objective`) by default, or one that the caller passes
(`archsearch sensitivity` trains its planned jobs), so this package never imports what runs on top of it.
"""

from archsearch.pool._budget import REFIT_RESERVE_CAP, AskDeadline, fit_rows, refit_epochs, refit_seconds
from archsearch.pool._data_check import check_same_data, record_fingerprint
from archsearch.pool._objective import FusedSlot, Objective, TotalReached, train_and_record, train_settings
from archsearch.pool._placement import PlacementError, WorkerSlot, plan_workers
from archsearch.pool._pool import PROGRESS_LEGEND, PoolFailure, StatusWriter, progress_line, run_pool
from archsearch.pool._slots import SearchError, log_dir_for, plan_slots, run_slots
from archsearch.pool._worker import (
    ObjectiveFactory,
    WorkerContext,
    WorkerOutcome,
    WorkerStudy,
    load_worker_study,
    run_worker,
    search_objective,
    study_total,
    use_worker_sampler,
    worker_storage,
)

__all__ = [
    "AskDeadline",
    "FusedSlot",
    "Objective",
    "ObjectiveFactory",
    "PlacementError",
    "PoolFailure",
    "SearchError",
    "TotalReached",
    "WorkerContext",
    "WorkerOutcome",
    "WorkerSlot",
    "WorkerStudy",
    "check_same_data",
    "load_worker_study",
    "log_dir_for",
    "plan_slots",
    "plan_workers",
    "progress_line",
    "PROGRESS_LEGEND",
    "StatusWriter",
    "record_fingerprint",
    "REFIT_RESERVE_CAP",
    "fit_rows",
    "refit_epochs",
    "refit_seconds",
    "run_pool",
    "run_slots",
    "run_worker",
    "search_objective",
    "study_total",
    "train_and_record",
    "train_settings",
    "use_worker_sampler",
    "worker_storage",
]
