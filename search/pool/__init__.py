"""archsearch.pool: where trials train. Worker placement, the worker loop, the per-trial objective, the local pool.

A worker joins a study by storage URL and name and trains trials until the study's total is reached; the
pool spawns one per slot (a GPU, a share of a GPU, or a CPU core) and watches them. What a trial trains is
decided by the study's kind of job (`job_kind`): a search's (`SearchKind`), or one that another package
registers (`archsearch sensitivity` trains its planned jobs), so this package never imports what runs on
top of it. Every kind's objective is a `TrialObjective`, which both engines drive.
"""

from archsearch.pool._budget import REFIT_RESERVE_CAP, AskDeadline, fit_rows, refit_epochs, refit_seconds
from archsearch.pool._data_check import check_same_data, record_fingerprint
from archsearch.pool._kinds import JobKind, job_kind, register_job_kind, trial_label
from archsearch.pool._objective import (
    FusedSlot,
    Run,
    TotalReached,
    TrialObjective,
    WorkerContext,
    record_outcome,
    train_and_record,
    train_settings,
)
from archsearch.pool._placement import PlacementError, WorkerSlot, plan_workers
from archsearch.pool._pool import (
    PROGRESS_LEGEND,
    PoolFailure,
    StatusWriter,
    fit_progress,
    legend_lines,
    progress_line,
    run_pool,
)
from archsearch.pool._search import SEARCH, SearchKind, SearchObjective
from archsearch.pool._slots import SearchError, log_dir_for, plan_slots, run_slots
from archsearch.pool._worker import (
    WorkerOutcome,
    WorkerStudy,
    load_worker_study,
    run_worker,
    use_worker_sampler,
    worker_storage,
)

__all__ = [
    "AskDeadline",
    "FusedSlot",
    "JobKind",
    "PlacementError",
    "PoolFailure",
    "PROGRESS_LEGEND",
    "REFIT_RESERVE_CAP",
    "Run",
    "SEARCH",
    "SearchError",
    "SearchKind",
    "SearchObjective",
    "StatusWriter",
    "TotalReached",
    "TrialObjective",
    "WorkerContext",
    "WorkerOutcome",
    "WorkerSlot",
    "WorkerStudy",
    "check_same_data",
    "fit_progress",
    "fit_rows",
    "job_kind",
    "legend_lines",
    "load_worker_study",
    "log_dir_for",
    "plan_slots",
    "plan_workers",
    "progress_line",
    "record_fingerprint",
    "record_outcome",
    "refit_epochs",
    "refit_seconds",
    "register_job_kind",
    "run_pool",
    "run_slots",
    "run_worker",
    "train_and_record",
    "train_settings",
    "trial_label",
    "use_worker_sampler",
    "worker_storage",
]
