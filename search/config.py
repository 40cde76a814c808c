"""Search configuration: one frozen dataclass per TOML section, validated at construction.

Configs are data: TOML is parsed, never executed, and unknown keys are rejected so a typo cannot
silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.base import ArchsearchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from archsearch.base import closest, is_finite_real, is_int
from archsearch.spaces import MLPSpace, check_keys
from archsearch.storage import DB_RETRY_SECONDS, SIZE_OBJECTIVES, StorageError, backend_of
from archsearch.trainers.data import MAX_SEED, DataSpec, is_program
from archsearch.trainers.metrics import CLASSIFICATION_METRICS, METRIC_DIRECTIONS, REGRESSION_METRICS
from archsearch.trainers.names import DEVICE_RULE, is_device_name

__all__ = [
    "ConfigError",
    "StudyConfig",
    "TrainConfig",
    "SearchConfig",
    "load_config",
    "SAMPLERS",
    "PRUNERS",
    "MAX_EPOCHS",
    "MAX_TRIALS",
]

SAMPLERS = ("tpe", "random", "qmc", "gp", "nsga2")
# "auto": "median" for one objective, "none" for several (archsearch's stratum rule did not pay on the size
# front, BENCHMARKS.md section 13); resolved at construction, so a stored config names the pruner that ran.
PRUNERS = ("auto", "median", "percentile", "successive_halving", "hyperband", "none")
# Optuna keeps every trial in the database and samplers read them all; a million is far past useful.
MAX_TRIALS = 1_000_000
DEFAULT_TRIALS = 30  # [study] n_trials when neither it nor a timeout is set
# Every count has an upper bound: epochs = 2**63 - 1 ran, its 5% warm-up spanning the whole search (issue #27).
# Each bound is far past a useful value; the ones in seconds also keep timers and dates from overflowing.
MAX_EPOCHS = 10_000
MAX_RETRY = 100
MAX_SLOTS = 1024
MAX_THREADS = 1024
MAX_HEARTBEAT_S = 3600
MAX_GRACE_S = 86_400


class ConfigError(ArchsearchError, ValueError):
    """An invalid search configuration; the message names the section, key, rule and value."""


def _fail(section: str, key: str, rule: str, value: Any) -> None:
    raise ConfigError(f"The '{key}' parameter of [{section}] must be {rule}. Got {value!r} instead.")


def _check_count(section: str, key: str, value: Any, low: int, high: int, note: str = "") -> None:
    if not is_int(value) or not low <= value <= high:
        _fail(section, key, f"an int in the range [{low:,}, {high:,}]{note}", value)


def _reject_unknown(section: str, data: dict[str, Any], cls: type) -> None:
    check_keys(f"[{section}]", data, tuple(f.name for f in dataclasses.fields(cls)), error=ConfigError)


@dataclass(frozen=True)
class StudyConfig:
    """The [study] section: where results go and how trials are chosen."""

    name: str = "archsearch"
    storage: str = "sqlite:///archsearch.db"
    metric: str | None = None  # None: accuracy for classification, rmse for regression
    # Completed + pruned trials in total, across reruns and workers. None: DEFAULT_TRIALS without a timeout;
    # with one, as many as the timeout allows (a wall-time budget is spent, not left unused after 30 trials).
    n_trials: int | None = None
    timeout: float | None = None  # seconds for this run; None or 0: no limit
    # With a timeout: stop starting trials while the time left still holds the export's refit of the best
    # trial so far, so that `search` then `export` finish within the timeout (archsearch.pool._budget).
    reserve_refit: bool = True
    sampler: str = "tpe"
    pruner: str = "auto"
    pruner_startup_trials: int = 5  # complete trials before the pruner may stop any trial
    seed: int = 0
    artifacts: str | None = None  # weights folder; default: beside a SQLite file, else ./archsearch_artifacts
    keep_best_k: int = 0  # keep weights of the best k completed trials only; 0 keeps all
    n_startup_trials: int = 10  # random trials before TPE/GP model the results; NSGA-II's population size
    max_consecutive_failures: int = 5  # stop the search after this many failed trials in a row
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 60  # seconds without a heartbeat before a trial counts as dead and is retried
    max_retry: int = 2  # re-runs of a trial whose worker died
    db_retry_seconds: float = DB_RETRY_SECONDS  # how long an unreachable database is waited for before the search stops
    # One quality metric then one or two size measures (SIZE_OBJECTIVES): a multi-objective study. None: the metric alone.
    objectives: tuple[str, ...] | None = None
    max_latency_ms: float | None = None  # a completed trial slower than this at batch 1 is infeasible, never the best

    def __post_init__(self) -> None:
        _check_objectives(self)
        if (
            not isinstance(self.name, str)
            or not self.name.strip()
            or len(self.name) > 500
            or any(not ch.isprintable() for ch in self.name)
        ):
            _fail("study", "name", "a non-empty string of at most 500 printable characters", self.name)
        if not isinstance(self.storage, str):
            _fail("study", "storage", "a database URL string", self.storage)
        try:
            backend_of(self.storage)
        except StorageError as e:
            raise ConfigError(f"[study] {e}") from e
        if self.metric is not None and self.metric not in METRIC_DIRECTIONS:
            _fail("study", "metric", f"one of {', '.join(METRIC_DIRECTIONS)}", self.metric)
        # 0 would create the study and then stop with "No trial completed": a mistake, refused before anything is made.
        if self.n_trials is not None and (not is_int(self.n_trials) or not 1 <= self.n_trials <= MAX_TRIALS):
            _fail(
                "study",
                "n_trials",
                f"an int in the range [1, {MAX_TRIALS:,}] (leave it out for {DEFAULT_TRIALS}, or as many as the timeout allows)",
                self.n_trials,
            )
        if self.timeout is not None and (not is_finite_real(self.timeout) or self.timeout < 0):
            _fail("study", "timeout", "a number of seconds >= 0", self.timeout)
        if not isinstance(self.reserve_refit, bool):
            _fail("study", "reserve_refit", "true or false", self.reserve_refit)
        if self.sampler not in SAMPLERS:
            _fail("study", "sampler", f"one of {', '.join(SAMPLERS)}", self.sampler)
        if self.pruner not in PRUNERS:
            _fail("study", "pruner", f"one of {', '.join(PRUNERS)}", self.pruner)
        if self.pruner == "auto":
            object.__setattr__(self, "pruner", "none" if self.objectives else "median")
        _check_count("study", "pruner_startup_trials", self.pruner_startup_trials, 0, MAX_TRIALS)
        _check_count("study", "seed", self.seed, 0, MAX_SEED)
        if self.artifacts is not None and (not isinstance(self.artifacts, str) or not self.artifacts):
            _fail("study", "artifacts", "a folder path", self.artifacts)
        _check_count("study", "keep_best_k", self.keep_best_k, 0, MAX_TRIALS, " (0 keeps every trial's weights)")
        _check_count("study", "n_startup_trials", self.n_startup_trials, 0, MAX_TRIALS)
        if self.sampler == "nsga2" and self.n_startup_trials < 2:
            # NSGA-II breeds each generation from the last; its first, random one is the startup trials.
            _fail(
                "study",
                "n_startup_trials",
                'at least 2 with sampler = "nsga2" (its population size)',
                self.n_startup_trials,
            )
        _check_count("study", "max_consecutive_failures", self.max_consecutive_failures, 1, MAX_TRIALS)
        _check_count("study", "heartbeat_interval", self.heartbeat_interval, 1, MAX_HEARTBEAT_S, " (seconds)")
        if not is_int(self.grace_period) or not self.heartbeat_interval < self.grace_period <= MAX_GRACE_S:
            _fail(
                "study",
                "grace_period",
                f"an int in the range (heartbeat_interval = {self.heartbeat_interval}, {MAX_GRACE_S:,}] (seconds)",
                self.grace_period,
            )
        _check_count("study", "max_retry", self.max_retry, 0, MAX_RETRY)
        if not is_finite_real(self.db_retry_seconds) or not 0 <= self.db_retry_seconds <= 86_400:
            _fail("study", "db_retry_seconds", "a number of seconds in the range [0, 86400]", self.db_retry_seconds)

    @property
    def trial_total(self) -> int:
        """The finished trials (complete + pruned) the search runs to: `n_trials`, resolved.

        >>> StudyConfig().trial_total, StudyConfig(timeout=600).trial_total, StudyConfig(n_trials=5, timeout=600).trial_total
        (30, 1000000, 5)
        """
        if self.n_trials is not None:
            return self.n_trials
        return MAX_TRIALS if self.timeout else DEFAULT_TRIALS


def _check_objectives(study: StudyConfig) -> None:
    """[study] objectives: a quality metric first (the metric, if that is set too), then 1 or 2 size measures."""
    if study.max_latency_ms is not None and (not is_finite_real(study.max_latency_ms) or study.max_latency_ms <= 0):
        _fail("study", "max_latency_ms", "a number of milliseconds > 0", study.max_latency_ms)
    names = study.objectives
    if names is None:
        return
    rule = f"a list of one metric ({', '.join(METRIC_DIRECTIONS)}) then one or two of {', '.join(SIZE_OBJECTIVES)}"
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        _fail("study", "objectives", rule, names)
    for name in names:
        if name not in METRIC_DIRECTIONS and name not in SIZE_OBJECTIVES:
            guess = closest(name, (*METRIC_DIRECTIONS, *SIZE_OBJECTIVES))
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise ConfigError(f"Unknown objective {name!r} in [study] objectives{hint}; it must be {rule}.")
    sizes = names[1:]
    if not 2 <= len(names) <= 3 or names[0] not in METRIC_DIRECTIONS or not all(n in SIZE_OBJECTIVES for n in sizes):
        _fail("study", "objectives", rule, list(names))
    if len(set(sizes)) != len(sizes):
        _fail("study", "objectives", "a list without repeated size measures", list(names))
    if study.metric is not None and study.metric != names[0]:
        _fail("study", "metric", f"left out or the first of [study] objectives ({names[0]!r})", study.metric)
    object.__setattr__(study, "objectives", tuple(names))


ENGINES = ("auto", "single", "fused")
LINEAR_SOLVERS = ("lbfgs", "optimizer")  # archsearch.trainers.names.LINEAR_SOLVERS (search/ stays free of torch)


@dataclass(frozen=True)
class TrainConfig:
    """The [train] section: the epoch budget and how each trial trains."""

    # 100 and 20 (not 30 and 8): the best trials of the quality benchmark ran to a 30-epoch cap still
    # improving, and phoneme gained 3.4 points from the longer budget (BENCHMARKS.md section 6).
    epochs: int = 100
    patience: int | None = 20  # epochs without validation improvement before stopping; None: never
    device: str = "auto"
    bf16: bool = False  # bf16 autocast, CUDA only
    class_weight: str = "auto"  # auto: balanced when the metric is balanced_accuracy, else none
    num_threads: int | None = None  # torch threads per trial; None: torch's default
    warmup: float = 0.05  # fraction of all steps spent rising linearly to lr, whatever the lr_schedule
    grad_clip: float | None = None  # largest gradient norm at each step; None: no clipping
    # "fused": each worker trains `slots` trials at once (archsearch.pool); "auto": fused on a GPU for
    # networks up to 512 wide, single on a CPU, where whole searches ran fused at half the speed (BENCHMARKS.md 8).
    engine: str = "auto"
    slots: int = 16  # trials a fused worker trains together
    # Trials without hidden layers or embedding (the linear/softmax model) are fitted by full-batch L-BFGS with
    # the sampled weight decay as L2 penalty, as scikit-learn fits logistic regression; "optimizer" trains them
    # like every other trial (studies stored before 2026-12-08 did: BENCHMARKS.md section 14).
    linear_solver: str = "lbfgs"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            _fail("train", "engine", f"one of {', '.join(ENGINES)}", self.engine)
        if self.linear_solver not in LINEAR_SOLVERS:
            _fail("train", "linear_solver", f"one of {', '.join(LINEAR_SOLVERS)}", self.linear_solver)
        _check_count("train", "slots", self.slots, 1, MAX_SLOTS)
        _check_count("train", "epochs", self.epochs, 1, MAX_EPOCHS)
        if self.patience is not None:
            _check_count(
                "train", "patience", self.patience, 1, MAX_EPOCHS, " (set it to `epochs` to train every epoch)"
            )
        if not is_device_name(self.device):
            _fail("train", "device", DEVICE_RULE, self.device)
        if not isinstance(self.bf16, bool):
            _fail("train", "bf16", "true or false", self.bf16)
        if self.class_weight not in ("auto", "none", "balanced"):
            _fail("train", "class_weight", "one of auto, none, balanced", self.class_weight)
        if self.num_threads is not None:
            _check_count("train", "num_threads", self.num_threads, 1, MAX_THREADS)
        if not is_finite_real(self.warmup) or not 0 <= self.warmup <= 0.5:
            _fail("train", "warmup", "a float in [0, 0.5] (a fraction of all training steps)", self.warmup)
        if self.grad_clip is not None and (not is_finite_real(self.grad_clip) or self.grad_clip <= 0):
            _fail("train", "grad_clip", "a float > 0 (leave it out to disable clipping)", self.grad_clip)

    def resolved_class_weight(self, metric: str) -> str:
        if self.class_weight == "auto":
            return "balanced" if metric == "balanced_accuracy" else "none"
        return self.class_weight


MAX_ENSEMBLE_SEEDS = 20


@dataclass(frozen=True)
class ExportConfig:
    """[export]: what `archsearch export` ships when its options do not say, and so what a search with
    `[study] reserve_refit` keeps time for (one refit per member)."""

    ensemble_seeds: int = 1  # refit seeds of the chosen trial whose mean prediction is shipped; 1: one network
    # Add stored trials to the refit best by greedy ensemble selection on the validation split (no training).
    # None (unset) means true, unless ensemble_seeds > 1 asks for the other kind of ensemble.
    greedy_ensemble: bool | None = None
    # Regression: clamp the shipped model's predictions to the range of the targets it trained on (as
    # RealMLP does). False for a target that must extrapolate beyond every training value (e.g. a trend).
    clamp: bool = True

    def __post_init__(self) -> None:
        if self.greedy_ensemble is not None and not isinstance(self.greedy_ensemble, bool):
            _fail("export", "greedy_ensemble", "true or false", self.greedy_ensemble)
        if not isinstance(self.clamp, bool):
            _fail("export", "clamp", "true or false", self.clamp)
        if not is_int(self.ensemble_seeds) or not 1 <= self.ensemble_seeds <= MAX_ENSEMBLE_SEEDS:
            _fail("export", "ensemble_seeds", f"an int in the range [1, {MAX_ENSEMBLE_SEEDS}]", self.ensemble_seeds)
        if self.greedy_ensemble and self.ensemble_seeds > 1:
            _fail("export", "greedy_ensemble", "false when ensemble_seeds > 1 (one kind of ensemble at a time)", True)
        if self.greedy_ensemble is None:  # frozen: set the resolved default the way dataclasses do
            object.__setattr__(self, "greedy_ensemble", self.ensemble_seeds == 1)


@dataclass(frozen=True)
class SearchConfig:
    """A whole search: [study], [data], [space], [train] and [export]."""

    study: StudyConfig = field(default_factory=StudyConfig)
    data: DataSpec = field(default_factory=DataSpec)
    space: MLPSpace = field(default_factory=MLPSpace)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # The [space] keys the config file wrote (None: built in code); `fit_space` changes only the others.
    space_keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """Build from nested dicts (a parsed TOML file); unknown sections and keys are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"A search config must be a table of sections. Got {type(data).__name__} instead.")
        sections = ("study", "data", "space", "train", "export")
        for name, value in data.items():
            if name not in sections:
                guess = closest(name, sections)
                hint = f"did you mean [{guess}]?" if guess else f"valid sections are: {', '.join(sections)}."
                raise ConfigError(f"Unknown section [{name}]; {hint}")
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] must be a table of keys. Got {value!r} instead.")
        study_section = dict(data.get("study", {}))
        _reject_unknown("study", study_section, StudyConfig)
        study = StudyConfig(**study_section)
        train_section = dict(data.get("train", {}))
        _reject_unknown("train", train_section, TrainConfig)
        export_section = dict(data.get("export", {}))
        _reject_unknown("export", export_section, ExportConfig)
        export = ExportConfig(**export_section)
        data_section = dict(data.get("data", {}))
        # The split follows the study's seed unless [data] names its own.
        data_section.setdefault("seed", study.seed)
        if "path" in data_section and "dataset" not in data_section:
            data_section["dataset"] = None
        try:
            data_spec = DataSpec.from_dict(data_section)
            space = MLPSpace.from_dict(dict(data.get("space", {})))
        except ValueError as e:
            raise ConfigError(str(e)) from e
        return cls(
            study=study,
            data=data_spec,
            space=space,
            train=TrainConfig(**train_section),
            export=export,
            space_keys=tuple(data.get("space", {})),
        )

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> SearchConfig:
        """Build from the config kept in a study (`keys.CONFIG`), which may predate some keys.

        A key the stored config lacks takes the value that reproduces how its trials were trained, not
        today's default: studies stored before the training recipe knobs trained without them.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"A stored search config must be a table of sections. Got {type(data).__name__} instead.")
        return cls.from_dict(_with_legacy_values(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able nested dict; `from_dict(to_dict())` gives an equal config."""
        return {
            "study": dataclasses.asdict(self.study),
            "data": self.data.to_dict(),
            "space": self.space.to_dict(),
            "train": dataclasses.asdict(self.train),
            "export": dataclasses.asdict(self.export),
        }

    def replace(self, **study_overrides: Any) -> SearchConfig:
        """A copy with some [study] keys changed (the CLI's --study, --storage, --n-trials, --timeout)."""
        overrides = {k: v for k, v in study_overrides.items() if v is not None}
        _reject_unknown("study", overrides, StudyConfig)
        return dataclasses.replace(self, study=dataclasses.replace(self.study, **overrides))

    def metric_for(self, task: str) -> str:
        """The optimized metric, checked against the task the data turned out to be."""
        first = self.study.objectives[0] if self.study.objectives else None
        metric = self.study.metric or first or ("accuracy" if task == "classification" else "rmse")
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        if metric not in allowed:
            _fail("study", "metric", f"one of {', '.join(allowed)} for a {task} task", metric)
        return metric


# Keys added after studies were first stored, with the value that means "as before they existed".
_LEGACY_VALUES = {
    "space": {
        "lr_schedule": ["constant"],
        "label_smoothing": [0.0, 0.0],
        "normalization": ["none"],
        "embedding": ["none"],  # the default searches ["none", "pl"] since 2026-12-04
    },
    "train": {"warmup": 0.0, "grad_clip": None, "linear_solver": "optimizer"},
    # Studies stored before row identifiers were left out trained on every column of their file.
    "data": {"keep_ids": True},
}


def _with_legacy_values(data: dict[str, Any]) -> dict[str, Any]:
    filled = dict(data)
    for section, values in _LEGACY_VALUES.items():
        stored = filled.get(section, {})
        if isinstance(stored, dict):
            filled[section] = {**values, **stored}
    return filled


def load_config(path: str | Path) -> SearchConfig:
    """Read a TOML search config; TOML is parsed as data, never executed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"The config file {str(path)!r} is a directory; pass the path of a TOML file.")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"Cannot read the config file {str(path)!r}: {e.strerror}.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"The config file {str(path)!r} is not UTF-8 text (byte {e.start} cannot be decoded); TOML files are "
            "UTF-8: save it as UTF-8 (editors on Windows may write UTF-16)."
        ) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The config file {str(path)!r} is not valid TOML: {e}.") from e
    if not data:
        # Every section has defaults, so an empty file would silently run a 30-trial search on digits.
        raise ConfigError(
            f"The config file {str(path)!r} is empty; it must set at least one of the sections study, data, space, "
            "train (see examples/digits.toml)."
        )
    data_section = data.get("data")
    if isinstance(data_section, dict) and isinstance(data_section.get("path"), str):
        # A data path in a config file means "next to this file", wherever the command runs from.
        data_section["path"] = str((path.parent / data_section["path"]).resolve())
    if (
        isinstance(data_section, dict)
        and isinstance(data_section.get("encoder"), str)
        and is_program(data_section["encoder"])
    ):
        data_section["encoder"] = str((path.parent / data_section["encoder"]).resolve())  # a program file: likewise
    return SearchConfig.from_dict(data)
