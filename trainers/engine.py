"""What both training engines are built from: the run's settings and result, its schedule, loss weights and metrics.

`train_mlp` (one network, `_train.py`) and the fused engine (`archsearch.trainers.fused`, many networks
stepped together) use these same pieces, so that a slot of the fused engine trains as `train_mlp` would:
the learning rate of each step (`lr_factor`), the batches of an epoch (`batches_per_epoch`), the class
weights of the loss, the device, and the metrics measured on a split. The network's builders
(`build_mlp`, `build_embedding` and what they draw) are re-exported for the fused engine, which draws
its slots' weights as they do. Not part of archsearch's user API: the names may change between versions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from archsearch.base import is_int, is_real
from archsearch.trainers._calibration import balanced_class_weights
from archsearch.trainers._embedding import DEFAULT_DIM, PERIODIC_SIGMA, build_embedding, fit_bin_edges, pl_encoding
from archsearch.trainers._model import ACTIVATIONS, build_mlp, check_architecture, count_parameters
from archsearch.trainers.data import PreparedData, Preprocessing
from archsearch.trainers.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_DIRECTIONS,
    REGRESSION_METRICS,
    classification_metrics,
    regression_metrics,
)
from archsearch.trainers.names import DEVICE_RULE, LINEAR_SOLVERS, LR_SCHEDULES, OPTIMIZERS, is_device_name

__all__ = [
    "ACTIVATIONS",
    "CLASS_WEIGHTS",
    "DEFAULT_DIM",
    "EVAL_BATCH_SIZE",
    "PERIODIC_SIGMA",
    "Report",
    "RunProgress",
    "TrainResult",
    "TrainSettings",
    "autocast",
    "batches_per_epoch",
    "build_embedding",
    "build_mlp",
    "check_architecture",
    "check_metric",
    "class_weights",
    "count_parameters",
    "fit_bin_edges",
    "is_int",
    "lr_factor",
    "output_metrics",
    "pl_encoding",
    "resolve_device",
    "split_metrics",
    "tensor",
    "wants_lbfgs",
]

CLASS_WEIGHTS = ("none", "balanced")
EVAL_BATCH_SIZE = 8192


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one training run (everything except the architecture). Validated at construction.

    Example:
        >>> settings = TrainSettings(lr=3e-3, optimizer="adamw", epochs=30, patience=5)
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # sgd means Nesterov momentum 0.9
    epochs: int = 50
    patience: int | None = None  # epochs without a better validation metric before stopping early
    metric: str = "accuracy"  # a key of METRIC_DIRECTIONS that applies to the task
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when available
    bf16: bool = False  # bfloat16 autocast; applies on CUDA only
    class_weight: Literal["none", "balanced"] = "none"
    num_threads: int | None = None  # torch.set_num_threads for the process, when given
    keep_last: bool = False  # keep the last epoch's weights, not the best validation epoch's (retraining on train+val)
    lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant"  # stepped per batch over all `epochs`
    warmup: float = 0.0  # fraction of all steps spent rising linearly to `lr`, for every schedule
    cooldown: float = 0.0  # fraction of the last steps over which the lr falls linearly to 0 ("constant" only)
    label_smoothing: float = 0.0  # classification only
    grad_clip: float | None = None  # largest gradient norm over all parameters at each step
    # "lbfgs": a network without hidden layers or embedding is fitted by full-batch L-BFGS with weight_decay as
    # its L2 penalty (lr, batch size and schedule unused); "optimizer": by `optimizer` like any other network.
    linear_solver: Literal["lbfgs", "optimizer"] = "optimizer"

    def __post_init__(self) -> None:
        rules = (
            ("lr", is_real(self.lr) and math.isfinite(self.lr) and self.lr > 0, "a float > 0"),
            ("weight_decay", is_real(self.weight_decay) and 0 <= self.weight_decay < math.inf, "a float >= 0"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
            ("epochs", is_int(self.epochs) and self.epochs >= 1, "an int >= 1"),
            (
                "patience",
                self.patience is None or (is_int(self.patience) and self.patience >= 1),
                "an int >= 1 or None",
            ),
            ("metric", self.metric in METRIC_DIRECTIONS, f"one of {list(METRIC_DIRECTIONS)}"),
            ("seed", is_int(self.seed) and self.seed >= 0, "an int >= 0"),
            (
                "device",
                is_device_name(self.device),
                DEVICE_RULE,
            ),
            ("bf16", isinstance(self.bf16, bool), "a bool"),
            ("keep_last", isinstance(self.keep_last, bool), "a bool"),
            ("class_weight", self.class_weight in CLASS_WEIGHTS, f"one of {list(CLASS_WEIGHTS)}"),
            (
                "num_threads",
                self.num_threads is None or (is_int(self.num_threads) and self.num_threads >= 1),
                "an int >= 1 or None",
            ),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"one of {list(LR_SCHEDULES)}"),
            ("warmup", is_real(self.warmup) and 0 <= self.warmup <= 0.5, "a float in [0, 0.5]"),
            (
                "cooldown",
                is_real(self.cooldown)
                and 0 <= self.cooldown <= 0.5
                and (self.cooldown == 0 or self.lr_schedule == "constant"),
                'a float in [0, 0.5], above 0 only with lr_schedule "constant" (the others already fall to 0)',
            ),
            (
                "label_smoothing",
                is_real(self.label_smoothing) and 0 <= self.label_smoothing < 0.5,
                "a float in [0, 0.5)",
            ),
            ("linear_solver", self.linear_solver in LINEAR_SOLVERS, f"one of {list(LINEAR_SOLVERS)}"),
            (
                "grad_clip",
                self.grad_clip is None
                or (is_real(self.grad_clip) and math.isfinite(self.grad_clip) and self.grad_clip > 0),
                "a float > 0 or None",
            ),
        )
        for name, ok, rule in rules:
            if not ok:
                raise ValueError(
                    f"The {name!r} parameter of TrainSettings must be {rule}. Got {getattr(self, name)!r} instead."
                )


@dataclass
class TrainResult:
    """What one training run produced. Metrics are measured with the best epoch's weights."""

    status: Literal["completed", "pruned", "diverged"]
    reason: str | None  # why the run stopped before its last epoch; None when it ran them all
    epochs_run: int
    best_epoch: int | None  # None when the run diverged in its first epoch
    best_value: float | None  # the validation metric at best_epoch
    history: list[float]  # the validation metric after each completed epoch
    metrics: dict[str, float]  # "{split}_{metric}" for every split and every metric of the task
    train_seconds: float
    device: str
    n_params: int
    state_dict: dict[str, torch.Tensor] | None  # the best epoch's weights, on CPU


Report = Callable[[int, float], "bool | str"]  # train_mlp's `report(epoch, value)`: True or a reason stops the run


@dataclass
class RunProgress:
    """One run's epochs as both engines book them: its history, its best epoch, and when it ends.

    Attributes:
        settings: The run's settings (metric, epochs, patience, keep_last).
        report: Called as `report(epoch, value)` after every epoch; True, or a string saying why, stops the run.
        epoch: Epochs ended so far.
        history: The validation metric after each epoch.
        best_epoch: The epoch whose weights are kept; None before the first.
        best_value: Its validation metric.
    """

    settings: TrainSettings
    report: Report | None = None
    epoch: int = 0
    history: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None

    def end_epoch(
        self, loss: float, value: Callable[[], float], keep_best: Callable[[], None]
    ) -> tuple[str, str | None] | None:
        """Book an epoch of mean training `loss`; (status, reason) when the run ends with it, else None.

        Args:
            value: Measures the epoch's validation metric (called only when the loss is finite).
            keep_best: Called when this epoch becomes the best: the engine keeps its weights.
        """
        settings = self.settings
        self.epoch += 1
        epoch = self.epoch
        if not math.isfinite(loss):
            return "diverged", f"loss became {loss} at epoch {epoch}"
        measured = value()
        if not math.isfinite(measured):
            return "diverged", f"validation {settings.metric} became {measured} at epoch {epoch}"
        self.history.append(measured)
        maximize = METRIC_DIRECTIONS[settings.metric] == "maximize"
        best = self.best_value
        if best is None or settings.keep_last or (measured > best if maximize else measured < best):
            self.best_epoch, self.best_value = epoch, measured
            keep_best()
        stop = self.report(epoch, measured) if self.report is not None else False
        if stop:  # True from the pruner, or a string that says why the run stops
            return "pruned", stop if isinstance(stop, str) else f"pruned by the pruner at epoch {epoch}"
        if settings.patience is not None and epoch - self.best_epoch >= settings.patience:
            return "completed", (
                f"early stopped at epoch {epoch}: validation {settings.metric} did not improve on "
                f"{self.best_value:.6g} (epoch {self.best_epoch}) for {settings.patience} epochs"
            )
        if epoch == settings.epochs:
            return "completed", None
        return None

    def result(self, status: str, reason: str | None, **measured: object) -> TrainResult:
        """The run's TrainResult; `measured` gives its metrics, train_seconds, device, n_params and state_dict."""
        return TrainResult(
            status=status,  # type: ignore[arg-type]
            reason=reason,
            epochs_run=self.epoch,
            best_epoch=self.best_epoch,
            best_value=self.best_value,
            history=self.history,
            **measured,  # type: ignore[arg-type]
        )


def batches_per_epoch(n_rows: int, batch_size: int, normalization: str) -> int:
    n_batches = math.ceil(n_rows / batch_size)
    # BatchNorm cannot normalize a one-row batch in training mode: that row sits out (another one next epoch).
    if normalization == "batch" and n_rows % batch_size == 1 and n_rows > 1:
        n_batches -= 1
    return n_batches


def lr_factor(step: int, total_steps: int, settings: TrainSettings) -> float:
    """The multiple of `settings.lr` for the 0-based `step` of a run of `total_steps` optimizer steps.

    A linear warm-up over the first `warmup` fraction of the steps (reaching 1 at its last step), then
    1 ("constant"), a cosine from 1 towards 0 ("cosine") or a straight line from 1 towards 0 ("onecycle").
    A constant schedule with a `cooldown` falls in a straight line towards 0 over that last fraction.

    Example:
        >>> cooled = TrainSettings(cooldown=0.5)
        >>> [round(lr_factor(step, 8, cooled), 2) for step in range(8)]
        [1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2]
    """
    warmup_steps = round(settings.warmup * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if settings.lr_schedule == "constant":
        left = total_steps - step  # steps from this one to the end, this one included
        cooldown_steps = round(settings.cooldown * total_steps)
        return min(1.0, left / (cooldown_steps + 1)) if cooldown_steps else 1.0
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)  # in [0, 1)
    if settings.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def split_metrics(
    model: nn.Module, x: torch.Tensor, y: np.ndarray, preprocessing: Preprocessing, use_bf16: bool
) -> dict[str, float]:
    """Every metric of the task on one split, in the target's original units."""
    model.eval()
    with torch.inference_mode(), autocast(x.device, use_bf16):
        out = torch.cat([model(x[i : i + EVAL_BATCH_SIZE]).float() for i in range(0, x.shape[0], EVAL_BATCH_SIZE)])
    return output_metrics(out, y, preprocessing)


def output_metrics(out: torch.Tensor, y: np.ndarray, preprocessing: Preprocessing) -> dict[str, float]:
    """Every metric of the task from the network's float outputs (n, n_outputs) on one split."""
    if preprocessing.task == "classification":
        proba = torch.softmax(out, dim=1)  # (n, n_classes)
        return classification_metrics(y, proba.cpu().numpy())
    predicted = out.squeeze(1).cpu().numpy().astype(np.float64)  # (n,)
    scale, mean = preprocessing.target_scale, preprocessing.target_mean
    return regression_metrics(np.asarray(y, dtype=np.float64) * scale + mean, predicted * scale + mean)


def class_weights(data: PreparedData, class_weight: str, device: torch.device) -> torch.Tensor | None:
    """Per-class loss weights (n_classes,), or None for unweighted."""
    if class_weight != "balanced":
        return None
    # n / (k * count_c), as scikit-learn's "balanced"; export's calibration divides them back out of the softmax.
    balanced = balanced_class_weights(data.y_train, data.n_outputs)  # (n_classes,)
    return torch.tensor(balanced, dtype=torch.float32, device=device)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"TrainSettings.device is {name!r} but PyTorch sees no CUDA device; use 'auto' or 'cpu'.")
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"TrainSettings.device is {name!r} but only {torch.cuda.device_count()} CUDA device(s) are visible."
        )
    return torch.device("cuda", index)


def autocast(device: torch.device, use_bf16: bool) -> contextlib.AbstractContextManager[None]:
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array)).to(device=device, dtype=dtype)


def check_metric(metric: str, task: str) -> None:
    applicable = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in applicable:
        raise ValueError(f"The metric {metric!r} does not apply to {task}; use one of {list(applicable)}.")


def wants_lbfgs(net: Any, linear_solver: str) -> bool:
    """Whether `net` is a linear model (no hidden layers, no embedding) that `linear_solver` fits by L-BFGS.

    >>> from archsearch.spaces import NetSpec
    >>> wants_lbfgs(NetSpec((), (), "relu"), "lbfgs")
    True
    >>> wants_lbfgs(NetSpec((64,), (0.0,), "relu"), "lbfgs")
    False
    """
    return linear_solver == "lbfgs" and len(net.widths) == 0 and net.embedding == "none"
