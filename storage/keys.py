"""The names of everything archsearch stores in an Optuna study, once (see docs/STUDY_LAYOUT.md).

Every reader and writer (controller, workers, export, report, status, sensitivity) uses these constants;
a stored name spelled as a literal elsewhere is a bug waiting for a rename. Changing a value here breaks
every study stored before, so values only ever get added.
"""

from __future__ import annotations

# Study user attributes.
VERSION = "archsearch_version"
CONFIG = "archsearch_config"  # the search config, password masked; its presence marks an initialised study
METRIC = "metric"
TASK = "task"
DATA = "data"  # {"name", "n_features", "n_outputs", "n_train", "n_val", "n_test"}
PREPROCESSING = "preprocessing"
FINGERPRINT = "data_fingerprint"  # hash, rows, columns and classes of the data the study was made with
KIND = "archsearch_kind"  # "sensitivity" marks a companion study; absent for a search
PARENT_STUDY = "parent_study"
SENSITIVITY_JOBS = "sensitivity_jobs"  # distinct jobs a companion study holds: the total its workers run to
SENSITIVITY_RESULT = "sensitivity_result"  # a companion study's last analysis (SensitivityResult.to_dict())
COMPANION_SUFFIX = ".sensitivity"  # a study's sensitivity companion is named <study>.sensitivity
EXPLANATION = "explanation"  # the last `archsearch explain` result (attributions, prototypes, counterfactual)
DROPPED_COLUMNS = "dropped_columns"  # {column: why} of the data file's columns not trained on; absent before the rule
TASK_LINE = "task_line"  # the search's first line: the task, why (inferred or set), how to override; absent before #24
# {"name", "fingerprint", "artifact_id"}: the [data] encoder, the fingerprint of data file and encoder, and the
# study artifact of its vectors (archsearch.encoded); absent without an encoder
ENCODER = "encoder"

SENSITIVITY_KIND = "sensitivity"  # the value of KIND for a companion study
DROPPED_WEIGHTS = "archsearch_dropped_weights"  # artifact ids removed by keep_best_k

# A study attribute too long for every database's column is split (archsearch.storage.set_study_user_attrs):
# its key then holds {PARTS: n} and the parts of its JSON text are the keys part_key(key, 0 .. n - 1).
PARTS = "archsearch_parts"


def part_key(key: str, index: int) -> str:
    """The key of part `index` of the split study attribute `key`: ``preprocessing:part0``."""
    return f"{key}:part{index}"


# Trial user attributes: the architecture, written before training.
WIDTHS = "widths"
DROPOUTS = "dropouts"
ACTIVATION = "activation"
NORMALIZATION = (
    "normalization"  # the norm layer after each hidden Linear; absent for "none" (and in trials before 2026-12-07)
)
EMBEDDING = "embedding"  # numeric-feature embedding; absent without one (and in studies made before them)
EMBEDDING_DIM = "embedding_dim"  # its values per feature; absent with EMBEDDING
BLOCKS = "blocks"  # the feature blocks the network reads ([space] blocks); absent: every input
HEAD = "head"  # "one_vs_rest" for a one-sigmoid-per-class head; absent for the softmax head
DEPTH = "depth"
TOTAL_UNITS = "total_units"
N_PARAMS = "n_params"
LAYER_SHAPE = "layer_shape"
SEED = "seed"
WORKER = "worker"  # host:pid/wN of the process that trained the trial
BASELINE = "baseline"  # "linear", "recipe" (MLPSpace.recipe_baseline) or "user" for enqueued baselines

# Trial user attributes: the outcome, written when the trial ends.
DEVICE = "device"
EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
TRAIN_SECONDS = "train_seconds"
SOLVER = "solver"  # "lbfgs" on a linear trial fitted by full-batch L-BFGS ([train] linear_solver); absent otherwise
PEAK_RSS_MB = "peak_rss_mb"  # the worker process's peak resident memory when the trial ended, MB; absent before #24
PSS_MB = "pss_mb"  # its proportional set size then (shared pages split among their processes), MB; Linux only
WEIGHTS = "weights_artifact_id"
PRUNED_REASON = "pruned_reason"
FAIL_REASON = "fail_reason"
ENGINE = "engine"  # "fused" or "single": which trainer trained the trial
ENGINE_REASON = "engine_reason"  # why a trial of a fused worker trained on the single engine
FUSED_SLOT = "fused_slot"  # the fused group and slot, "<activation>-b<batch size>[-<normalization>]/<slot>"
NOT_RUN = "not_run"  # a trial claimed after the study reached its total; it trained nothing
FOLD_VALUES = "fold_values"  # with [data] folds: each fold's best validation value
FOLD_BEST_EPOCHS = "fold_best_epochs"  # and each fold's best epoch

# Trial user attributes: the network's size (archsearch.spaces.net_size), written before training, and its
# latency (archsearch.trainers.measure_latency), written when it completes. Absent in trials before 2026-12-07.
SIZE_PARAMS = "size_params"  # every scalar of the state dict the export ships (norm layers and buffers too)
SIZE_TRAINABLE = "size_trainable"  # the trainable ones among them
SIZE_FLOPS = "size_flops"  # FLOPs to predict one row (2 per multiply-add of its matrix products)
LATENCY_MS = "latency_ms"  # median ms of a forward call at batch 1 on the trial's device
LATENCY_BATCH_MS = "latency_batch_ms"  # the same at LATENCY_BATCH rows
LATENCY_BATCH = "latency_batch"  # the rows of that batch
LATENCY_THREADS = "latency_threads"  # threads during the timing
LATENCY_DEVICE = "latency_device"  # the device timed
OVER_BUDGET = "over_budget"  # on a not-run trial: why its candidate was refused ([space] max_params, max_flops)
INFEASIBLE = "infeasible"  # on a complete trial over [study] max_latency_ms: why; such a trial is never the best
VAL_HISTORY = "val_history"  # multi-objective studies: the validation metric after each epoch (no intermediate values)

# Trial system attributes that Optuna itself writes and archsearch reads.
OPTUNA_FAIL_REASON = "fail_reason"  # why Optuna failed a trial (a stale heartbeat, an exception it caught)
OPTUNA_FAILED_TRIAL = "failed_trial"  # on a retry: the number of the trial it retries
OPTUNA_FIXED_PARAMS = "fixed_params"  # on an enqueued trial: the params it was enqueued with

# Trial user attributes of a sensitivity run (its job, enqueued with the trial).
JOB_ID = "job_id"
CENTRE_TRIAL = "centre_trial"
JOB_KIND = "kind"  # what the neighbour changes: "centre", "width", "remove_layer", "add_layer", "linear", ...
CHANGE = "change"  # the change in words, e.g. "layer 1: 64 -> 65 (+1)"
KEY = "key"  # the neighbour's architecture key (archsearch.spaces.architecture_key)
LAYER = "layer"  # the layer the change touches (0-based); None for a whole-network change
DELTA_UNITS = "delta_units"
DELTA_PARAMS = "delta_params"
# The training hyperparameters a job carries (its centre's), under their Hyperparameters field names.
LR = "lr"
WEIGHT_DECAY = "weight_decay"
BATCH_SIZE = "batch_size"
OPTIMIZER = "optimizer"
LR_SCHEDULE = "lr_schedule"
LABEL_SMOOTHING = "label_smoothing"
