"""Pure computations behind the report: a flattened trials table and the numbers each figure reads.

Nothing here imports plotly, so the numbers can be unit-tested on hand-made studies. Every function
works on scores where higher is better (``score = value`` when maximizing, ``-value`` when
minimizing), so direction is handled once, in :func:`load_study_data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from archsearch.spaces import classify_shape
from archsearch.stats._compare import MIN_GROUP_TRIALS, may_compare
from archsearch.stats._format import format_number
from archsearch.storage import keys, maximizes, quality_value

# How many parameter-count bins the size-split figures use at most; three reads as small/medium/large.
MAX_SIZE_BINS = 3
_BIN_NAMES = {1: ["all sizes"], 2: ["small", "large"], 3: ["small", "medium", "large"]}


@dataclass
class StudyData:
    """A study flattened into one row per trial, with the facts every figure needs.

    Attributes:
        study_name: Name of the Optuna study.
        metric: Optimized metric name (study user attr ``metric``), ``"objective"`` when absent.
        maximize: Whether a higher metric is better (from ``study.direction``).
        task: ``classification``, ``regression`` or ``""`` when the study does not say.
        trials: One row per trial; see :func:`flatten_trials` for the columns.
        curves: Trial number -> (epochs, validation values) from the intermediate values.
        epoch_cap: The most epochs a trial may train (``[train] epochs`` of the stored config), if known.
    """

    study_name: str
    metric: str
    maximize: bool
    task: str
    trials: pd.DataFrame
    curves: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict)
    epoch_cap: int | None = None  # [train] epochs of the stored config; None for a study archsearch did not make

    @property
    def complete(self) -> pd.DataFrame:
        """Finished trials with a finite metric."""
        t = self.trials
        return t[(t["state"] == "COMPLETE") & np.isfinite(t["value"])]

    @property
    def feasible(self) -> pd.DataFrame:
        """Finished trials within [study] max_latency_ms (all of them in a study without it): the best is one."""
        done = self.complete
        return done[done["feasible"].astype(bool)]

    @property
    def sized(self) -> pd.DataFrame:
        """Finished trials whose parameter count is known, with a ``size_bin`` column."""
        done = self.complete
        done = done[done["n_params"].notna()].sort_values("n_params", kind="stable")
        labels = assign_size_bins(done["n_params"].to_numpy(dtype=float))
        # Ordered by size so groupby and plots list small before large.
        done["size_bin"] = pd.Categorical(labels, categories=list(dict.fromkeys(labels)), ordered=True)
        return done.sort_values("number")

    @property
    def metric_label(self) -> str:
        """Axis label such as ``validation accuracy (higher is better)``."""
        better = "higher" if self.maximize else "lower"
        return f"validation {self.metric} ({better} is better)"


def load_study_data(study: optuna.Study) -> StudyData:
    """Read a study into a :class:`StudyData`.

    Args:
        study: An archsearch study (see ``docs/STUDY_LAYOUT.md``); of a multi-objective one (``[study]
            objectives``) the value is the quality, its first objective, and the curves its ``val_history``.

    Returns:
        The flattened study.
    """
    attrs = study.user_attrs
    metric = str(attrs.get("metric", "objective"))
    maximize = maximizes(study)
    trials = study.get_trials(deepcopy=False)
    curves = {
        t.number: (sorted(t.intermediate_values), [t.intermediate_values[s] for s in sorted(t.intermediate_values)])
        for t in trials
        if t.intermediate_values
    }
    for t in trials:  # a multi-objective study's trials report nothing: their history is an attribute
        history = t.user_attrs.get(keys.VAL_HISTORY)
        if history and t.number not in curves:
            curves[t.number] = (list(range(1, len(history) + 1)), [float(v) for v in history])
    epochs = attrs.get(keys.CONFIG, {}).get("train", {}).get("epochs")
    return StudyData(
        study_name=study.study_name,
        metric=metric,
        maximize=maximize,
        epoch_cap=int(epochs) if isinstance(epochs, int) else None,
        task=str(attrs.get("task", "")),
        trials=flatten_trials(trials, metric=metric, maximize=maximize),
        curves=curves,
    )


def flatten_trials(trials: Sequence[optuna.trial.FrozenTrial], *, metric: str, maximize: bool) -> pd.DataFrame:
    """Flatten trials into a table, falling back to parameters where user attributes are missing.

    Pruned and failed trials may lack the size user attributes, so depth, widths and dropouts are
    rebuilt from ``n_layers``/``width_i``/``dropout_i`` when possible.

    Args:
        trials: Frozen trials of one study.
        metric: Metric name, used to find ``test_<metric>``.
        maximize: Whether a higher metric is better.

    Returns:
        Columns: ``number, state, value, score, depth, widths, dropouts, mean_dropout, total_units,
        n_params, layer_shape, activation, seed, seed_group, baseline, epochs_run, train_seconds,
        test_value, pruned_reason, fail_reason, size_params, size_flops, latency_ms, feasible``.
    """
    rows = [_row(t, metric, maximize) for t in trials]
    # Typed even when there are no rows, so the filters downstream work on an empty study.
    return pd.DataFrame(rows, columns=_COLUMNS).astype({c: float for c in _NUMERIC})


def _row(t: optuna.trial.FrozenTrial, metric: str, maximize: bool) -> dict[str, Any]:
    """One trial's row of :func:`flatten_trials`."""
    ua, params = t.user_attrs, t.params
    depth = ua.get(keys.DEPTH, params.get("n_layers"))
    widths = ua.get(keys.WIDTHS) or _indexed(params, "width", depth)
    dropouts = ua.get(keys.DROPOUTS) or _indexed(params, "dropout", depth)
    if depth is None and widths is not None:
        depth = len(widths)
    total_units = ua.get(keys.TOTAL_UNITS, sum(widths) if widths is not None else None)
    quality = quality_value(t) if t.state == optuna.trial.TrialState.COMPLETE else None
    value = math.nan if quality is None else quality
    curve_steps = sorted(t.intermediate_values)
    duration = t.duration.total_seconds() if t.duration is not None else math.nan
    return {
        "number": t.number,
        "state": t.state.name,
        "value": float(value),
        "score": float(value) if maximize else -float(value),
        "depth": _nan_if_none(depth),
        "widths": tuple(widths) if widths is not None else None,
        "dropouts": tuple(dropouts) if dropouts is not None else None,
        "mean_dropout": float(np.mean(dropouts)) if dropouts else (0.0 if depth == 0 else math.nan),
        "total_units": _nan_if_none(total_units),
        "n_params": _nan_if_none(ua.get(keys.N_PARAMS)),
        "layer_shape": ua.get(keys.LAYER_SHAPE) or (classify_shape(widths) if widths is not None else None),
        "activation": ua.get(keys.ACTIVATION, params.get("activation")),
        "seed": ua.get(keys.SEED),
        "seed_group": ua.get("seed_group"),
        "baseline": ua.get(keys.BASELINE),
        "epochs_run": _nan_if_none(ua.get(keys.EPOCHS_RUN, curve_steps[-1] if curve_steps else None)),
        "train_seconds": _nan_if_none(ua.get(keys.TRAIN_SECONDS, duration)),
        "test_value": _nan_if_none(ua.get(f"test_{metric}")),
        "pruned_reason": ua.get(keys.PRUNED_REASON),
        "fail_reason": ua.get(keys.FAIL_REASON),
        **_size_columns(ua),
    }


# A search trial's size measures (issue #26; NaN in trials stored before them), by StudyData column.
SIZE_COLUMNS = ("size_params", "size_flops", "latency_ms")

_COLUMNS = [
    "number",
    "state",
    "value",
    "score",
    "depth",
    "widths",
    "dropouts",
    "mean_dropout",
    "total_units",
    "n_params",
    "layer_shape",
    "activation",
    "seed",
    "seed_group",
    "baseline",
    "epochs_run",
    "train_seconds",
    "test_value",
    "pruned_reason",
    "fail_reason",
    *SIZE_COLUMNS,
    "feasible",
]
_NUMERIC = [
    "value",
    "score",
    "depth",
    "mean_dropout",
    "total_units",
    "n_params",
    "epochs_run",
    "train_seconds",
    "test_value",
    *SIZE_COLUMNS,
]


def _size_columns(attrs: dict) -> dict:
    stored = (keys.SIZE_PARAMS, keys.SIZE_FLOPS, keys.LATENCY_MS)
    sizes = {column: _nan_if_none(attrs.get(key)) for column, key in zip(SIZE_COLUMNS, stored)}
    return {**sizes, "feasible": keys.INFEASIBLE not in attrs}


def _indexed(params: dict, prefix: str, depth: int | None) -> list | None:
    if depth is None:
        return None
    keys = [f"{prefix}_{i}" for i in range(int(depth))]
    return [params[k] for k in keys] if all(k in params for k in keys) else None


def _nan_if_none(x: float | int | None) -> float:
    return math.nan if x is None else float(x)


def assign_size_bins(n_params: Sequence[float], max_bins: int = MAX_SIZE_BINS) -> list[str]:
    """Label each parameter count with a size bin of equal width on a log scale.

    Log-equal bins keep the sizes inside one bin within a constant factor of each other, which is
    what "matched size" needs; quantile bins could put 100 and 100,000 parameters together.

    Args:
        n_params: Parameter counts (positive).
        max_bins: Most bins to use; fewer when there are fewer distinct counts.

    Returns:
        One label per count, such as ``"small (45–1.2k params)"``; the range is that of the counts
        that fell into the bin.
    """
    counts = np.asarray(n_params, dtype=float)
    if counts.size == 0:
        return []
    logs = np.log10(np.maximum(counts, 1.0))
    n_bins = min(max_bins, len(np.unique(counts)))
    if n_bins <= 1:
        index = np.zeros(counts.size, dtype=int)
    else:
        edges = np.linspace(logs.min(), logs.max(), n_bins + 1)
        index = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, n_bins - 1)
    labels = {}
    for i in np.unique(index):
        members = counts[index == i]
        low, high = format_count(members.min()), format_count(members.max())
        labels[i] = f"{_BIN_NAMES[n_bins][i]} ({low if low == high else f'{low}–{high}'} params)"
    return [labels[i] for i in index]


def format_count(n: float) -> str:
    """Write a count compactly: 950, 1.2k, 35k, 1.4M."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.2g}k" if n < 10_000 else f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.2g}M"


def pareto_front(data: StudyData) -> pd.DataFrame:
    """Finished trials that no other trial beats with fewer or equal parameters.

    Returns:
        Rows of ``data.sized`` on the front of (fewer parameters, better metric), by increasing
        parameter count.
    """
    done = data.sized.sort_values(["n_params", "score", "number"], ascending=[True, False, True])
    keep, best = [], -math.inf
    for idx, row in done.iterrows():
        if row["score"] > best:
            keep.append(idx)
            best = row["score"]
    return done.loc[keep]


# Half a point of a metric on a 0-1 scale; for RMSE, half a percent of the target's standard deviation.
KNEE_TOLERANCE = 0.005


def knee_tolerance_for(metric: str, target_scale: float | None, relative: float = KNEE_TOLERANCE) -> float:
    """The knee's default tolerance in the metric's units.

    Accuracy, balanced accuracy, R2 and log loss: ``relative`` itself (0.005 = 0.5 points). RMSE is in
    the target's units (around 55 on diabetes), where 0.005 means nothing; its natural scale is the
    target's standard deviation (the RMSE of always predicting the mean), so the tolerance is
    ``relative * target_scale`` there.

    >>> knee_tolerance_for("accuracy", None)
    0.005
    >>> knee_tolerance_for("rmse", 77.0)
    0.385
    """
    if metric == "rmse" and target_scale is not None and math.isfinite(target_scale) and target_scale > 0:
        return round(relative * target_scale, 12)
    return relative


@dataclass(frozen=True)
class Knee:
    """The smallest architecture within a knee_tolerance of the best.

    Attributes:
        best: Trial number with the best metric.
        knee: Trial number of the smallest trial within ``knee_tolerance`` of the best.
        knee_tolerance: Allowed shortfall, in metric units.
        gap: How much worse the knee is than the best, in metric units (>= 0).
    """

    best: int
    knee: int
    knee_tolerance: float
    gap: float


def find_knee(data: StudyData, knee_tolerance: float = KNEE_TOLERANCE) -> Knee | None:
    """Find the knee: fewest parameters among trials within ``knee_tolerance`` of the best metric.

    Args:
        data: The flattened study.
        knee_tolerance: Allowed shortfall from the best, in metric units (0.005 = 0.5 points of accuracy).

    Returns:
        The knee, or ``None`` when no finished trial has a parameter count.

    Raises:
        ValueError: If ``knee_tolerance`` is negative.
    """
    if knee_tolerance < 0:
        raise ValueError(f"The 'knee_tolerance' parameter must be >= 0. Got {knee_tolerance} instead.")
    done = data.sized
    done = done[done["feasible"].astype(bool)]  # a trial over [study] max_latency_ms is neither best nor knee
    if done.empty:
        return None
    best = done.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
    near = done[done["score"] >= best["score"] - knee_tolerance]
    knee = near.sort_values(["n_params", "score", "number"], ascending=[True, False, True]).iloc[0]
    return Knee(int(best["number"]), int(knee["number"]), knee_tolerance, float(best["score"] - knee["score"]))


def linear_baseline(data: StudyData) -> pd.Series | None:
    """The best finished 0-layer trial, else ``None``.

    The enqueued baseline trial has sampled training hyperparameters like any other, so a later 0-layer
    trial may train the linear model better; depth must beat the best linear model, not the first one.
    """
    linear = data.complete[data.complete["depth"] == 0]
    if linear.empty:
        return None
    return linear.sort_values(["score", "number"], ascending=[False, True]).iloc[0]


def depth_summary(data: StudyData) -> pd.DataFrame:
    """Per depth: number of finished trials, best and median metric, best trial number."""
    done = data.complete[data.complete["depth"].notna()]
    rows = []
    for depth, group in done.groupby("depth"):
        best = group.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
        rows.append(
            {
                "depth": int(depth),
                "n": len(group),
                "best": best["value"],
                "median": float(group["value"].median()),
                "best_trial": int(best["number"]),
            }
        )
    return pd.DataFrame(rows, columns=["depth", "n", "best", "median", "best_trial"])


@dataclass(frozen=True)
class BestGroup:
    """The group with the best median metric, or why no group is named; every number with its n.

    Attributes:
        factor: What the groups are, singular: ``"depth"``, ``"layer shape"``.
        counts: Finished trials per group label, in the order given.
        medians: Median metric (not score) per group label.
        best: Label of the best median among groups with at least ``min_trials`` trials; None when fewer
            than two groups have that many.
        min_trials: The fewest trials a group needs to be compared.
    """

    factor: str
    counts: dict[str, int]
    medians: dict[str, float]
    best: str | None
    min_trials: int

    def sentence(self) -> str:
        """The claim in words, or the reason none is made.

        Example:
            >>> BestGroup("layer shape", {"irregular": 1, "funnel": 2}, {"irregular": 0.98, "funnel": 0.97},
            ...           None, 3).sentence()
            'too few trials to compare layer shapes: 1 irregular, 2 funnel (at least 3 per layer shape needed)'
        """
        listed = ", ".join(f"{n:,} {label}" for label, n in self.counts.items())
        if self.best is None:
            return (
                f"too few trials to compare {self.factor}s: {listed or 'none'} "
                f"(at least {self.min_trials} per {self.factor} needed)"
            )
        others = [
            f"{label} {format_number(self.medians[label])}, n={n:,}"
            for label, n in self.counts.items()
            if label != self.best and n >= self.min_trials
        ]
        skipped = [f"{label}, n={n:,}" for label, n in self.counts.items() if n < self.min_trials]
        best = f"{format_number(self.medians[self.best])}, n={self.counts[self.best]:,}"
        tail = f"; not compared, under {self.min_trials} trials: {'; '.join(skipped)}" if skipped else ""
        return f"best median by {self.factor}: {self.best} ({best}; then {'; '.join(others)}{tail})"


def best_group(
    groups: Sequence[tuple[str, Sequence[float], Sequence[float]]], factor: str, min_trials: int = MIN_GROUP_TRIALS
) -> BestGroup:
    """Name the group whose median score is best, among groups with at least ``min_trials`` trials.

    Args:
        groups: ``(label, values, scores)`` per group: the metric and the score (higher is better) of
            each of its finished trials.
        factor: What the groups are, for the sentence.
        min_trials: The fewest trials a group needs; below it, the group is listed but not compared.

    Raises:
        ValueError: If ``min_trials`` is not an int >= 1.

    Example:
        >>> best_group([("1 layer", [0.9] * 3, [0.9] * 3), ("2 layers", [0.95] * 4, [0.95] * 4)], "depth").best
        '2 layers'
    """
    if isinstance(min_trials, bool) or not isinstance(min_trials, int) or min_trials < 1:
        raise ValueError(f"The 'min_trials' parameter of best_group must be an int >= 1. Got {min_trials!r} instead.")
    counts = {label: len(values) for label, values, _ in groups}
    medians = {label: float(np.median(values)) if len(values) else math.nan for label, values, _ in groups}
    enough = [
        (float(np.median(scores)), label) for label, _, scores in groups if may_compare(len(scores), minimum=min_trials)
    ]
    best = max(enough, key=lambda pair: pair[0])[1] if len(enough) >= 2 else None
    return BestGroup(factor, counts, medians, best, min_trials)


def compare_depths(data: StudyData) -> BestGroup:
    """The depth with the best median metric, from depths with :data:`MIN_GROUP_TRIALS` finished trials.

    The report's summary and its depth figure both print this result's sentence, so they agree.
    """
    done = data.complete[data.complete["depth"].notna()]
    groups = [
        (_depth_label(depth), group["value"].tolist(), group["score"].tolist())
        for depth, group in done.groupby("depth")
    ]
    return best_group(groups, "depth")


def compare_shapes(data: StudyData) -> dict[str, BestGroup]:
    """Per size bin holding two layer shapes or more: the shape with the best median, or why none is named."""
    deep = data.sized
    deep = deep[(deep["depth"] >= 2) & deep["layer_shape"].notna()]
    found = {}
    for size_bin, in_bin in deep.groupby("size_bin", observed=True):
        groups = [(str(shape), g["value"].tolist(), g["score"].tolist()) for shape, g in in_bin.groupby("layer_shape")]
        if len(groups) >= 2:
            found[str(size_bin)] = best_group(groups, "layer shape")
    return found


def _depth_label(depth: float) -> str:
    d = int(depth)
    return "0 (linear)" if d == 0 else f"{d} layer" if d == 1 else f"{d} layers"


def shape_by_size(data: StudyData) -> pd.DataFrame:
    """Per size bin and layer shape (trials with 2+ hidden layers): count, median metric and score.

    The column ``enough`` says whether the group has :data:`MIN_GROUP_TRIALS` trials, the fewest for
    its median to be compared with another's.
    """
    deep = data.sized
    deep = deep[(deep["depth"] >= 2) & deep["layer_shape"].notna()]
    grouped = deep.groupby(["size_bin", "layer_shape"], observed=True)
    table = grouped.agg(n=("value", "size"), median=("value", "median"), median_score=("score", "median"))
    table = table.reset_index()
    table["enough"] = [may_compare(n) for n in table["n"]]
    return table


def dropout_effect(data: StudyData, tolerance: float) -> pd.DataFrame:
    """Per size bin: does dropout help? Median metric with dropout versus without.

    A bin without any dropout-0 trial (a space whose dropout range starts above 0) compares the trials
    above the bin's median dropout with those at or below it instead. Either way each side needs
    :data:`MIN_GROUP_TRIALS` trials (`may_compare`), else the verdict is ``cannot tell``.

    Args:
        data: The flattened study.
        tolerance: Smallest difference in median metric counted as an effect, in metric units.

    Returns:
        Columns ``size_bin, n_without, n_with, median_without, median_with, verdict, split``: ``split`` is
        None when "without" means dropout 0, else the median dropout that separates "without" (at or
        below it) from "with" (above it); the verdict is ``helps``, ``hurts``, ``no clear effect`` or
        ``cannot tell``.
    """
    nets = data.sized
    nets = nets[(nets["depth"] >= 1) & nets["mean_dropout"].notna()]
    rows = []
    for size_bin, group in nets.groupby("size_bin", observed=True):
        split = None
        without, with_ = group[group["mean_dropout"] == 0], group[group["mean_dropout"] > 0]
        if without.empty:
            split = float(group["mean_dropout"].median())
            without, with_ = group[group["mean_dropout"] <= split], group[group["mean_dropout"] > split]
        verdict = "cannot tell"
        if may_compare(len(without), len(with_)):
            gain = with_["score"].median() - without["score"].median()
            verdict = "helps" if gain > tolerance else "hurts" if gain < -tolerance else "no clear effect"
        rows.append(
            {
                "size_bin": size_bin,
                "n_without": len(without),
                "n_with": len(with_),
                "median_without": without["value"].median(),
                "median_with": with_["value"].median(),
                "verdict": verdict,
                "split": split,
            }
        )
    columns = ["size_bin", "n_without", "n_with", "median_without", "median_with", "verdict", "split"]
    return pd.DataFrame(rows, columns=columns)


def spread_by_size(data: StudyData) -> pd.DataFrame:
    """Per size bin: the spread of the metric across trials and between seeds of one setting.

    Returns:
        Columns ``size_bin, n, trial_std, trial_iqr, n_groups, seed_std``: the standard deviation and the
        interquartile range (robust to one outlier) of the metric over all trials of the bin, and the pooled within-group standard deviation over
        ``seed_group`` groups with 2+ finished trials (NaN when the bin has none).
    """
    done = data.sized
    rows = []
    for size_bin, group in done.groupby("size_bin", observed=True):
        repeats = group[group["seed_group"].notna()].groupby("seed_group")["value"]
        variances = [v.var(ddof=1) for _, v in repeats if len(v) >= 2]
        rows.append(
            {
                "size_bin": size_bin,
                "n": len(group),
                "trial_std": float(group["value"].std(ddof=1)) if len(group) >= 2 else math.nan,
                "trial_iqr": float(group["value"].quantile(0.75) - group["value"].quantile(0.25)),
                "n_groups": len(variances),
                "seed_std": math.sqrt(float(np.mean(variances))) if variances else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["size_bin", "n", "trial_std", "trial_iqr", "n_groups", "seed_std"])


@dataclass(frozen=True)
class SpreadReading:
    """What figure 6 may say about spread by size: its title and its caption both read this.

    Attributes:
        table: The rows of :func:`spread_by_size` for the bins with :data:`MIN_GROUP_TRIALS` trials or more.
        too_few: Bins left out for fewer trials: label -> finished trials.
        measures_seeds: Whether some measured bin holds a setting trained with several seeds, so that the
            seed-to-seed spread is measured at all.
        widest: The measured bin with the widest trial-to-trial spread, when two bins or more are measured.
    """

    table: pd.DataFrame
    too_few: dict[str, int]
    measures_seeds: bool
    widest: str | None


def read_spread(data: StudyData) -> SpreadReading:
    """The spread by size that may be stated: bins with enough trials (`may_compare`) and whether seeds were measured."""
    spread = spread_by_size(data)
    enough = np.array([may_compare(n) for n in spread["n"]], dtype=bool)
    measured, small = spread[enough], spread[~enough]
    too_few = {str(r.size_bin): int(r.n) for r in small.itertuples()}
    widest = str(measured.iloc[int(measured["trial_iqr"].argmax())]["size_bin"]) if len(measured) >= 2 else None
    return SpreadReading(measured.reset_index(drop=True), too_few, bool(measured["n_groups"].sum() > 0), widest)


@dataclass(frozen=True)
class PruningSummary:
    """How many trials were pruned at each epoch and the training time pruning saved.

    Attributes:
        pruned_at: Epoch -> number of trials whose last reported epoch it was.
        full_epochs: Epochs a trial runs when not pruned: the config's ``[train] epochs`` (else the longest finished trial).
        saved_seconds: Estimated training time saved: each pruned trial's remaining epochs at its
            own seconds per epoch.
        n_pruned: Number of pruned trials.
    """

    pruned_at: dict[int, int]
    full_epochs: int
    saved_seconds: float
    n_pruned: int


def pruning_summary(data: StudyData) -> PruningSummary:
    """Summarize pruning; see :class:`PruningSummary`."""
    t = data.trials
    pruned = t[(t["state"] == "PRUNED") & t["epochs_run"].notna()]
    runs = t.loc[t["state"] == "COMPLETE", "epochs_run"].dropna()
    if data.epoch_cap is not None:
        full = data.epoch_cap
    else:  # a study without archsearch's config: the longest finished trial is the best guess at the budget
        full = int(runs.max()) if len(runs) else int(t["epochs_run"].max()) if t["epochs_run"].notna().any() else 0
    saved = 0.0
    for _, row in pruned.iterrows():
        if row["epochs_run"] > 0 and np.isfinite(row["train_seconds"]):
            saved += max(0.0, full - row["epochs_run"]) * row["train_seconds"] / row["epochs_run"]
    counts = pruned["epochs_run"].astype(int).value_counts().sort_index()
    return PruningSummary({int(k): int(v) for k, v in counts.items()}, full, saved, int((t["state"] == "PRUNED").sum()))


def width_correlations(data: StudyData) -> dict[str, float]:
    """Spearman rank correlation of each layer's width, and of total units, with the score.

    Positive means wider does better, whatever the direction. Only finished trials with a hidden
    layer count; a layer index needs :data:`MIN_GROUP_TRIALS` trials that have it (`may_compare`).

    Returns:
        ``{"layer 1": rho, ..., "total units": rho}``; NaN where the widths do not vary.
    """
    nets = data.complete[(data.complete["depth"] >= 1) & data.complete["widths"].notna()]
    result = {}
    max_depth = int(nets["depth"].max()) if len(nets) else 0
    for i in range(max_depth):
        having = nets[nets["depth"] > i]
        if may_compare(len(having)):
            result[f"layer {i + 1}"] = _spearman([w[i] for w in having["widths"]], having["score"])
    if may_compare(len(nets)):
        result["total units"] = _spearman(nets["total_units"], nets["score"])
    return result


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    # scipy is imported here so that importing the dashboards stays light.
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(spearmanr(x, y).statistic)
