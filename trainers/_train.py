"""Train one MLP on prepared data, reporting the validation metric after every epoch.

The trainer knows nothing about the search: it receives plain values and a `report(epoch, value)`
callback whose True answer stops the run (that is how a pruner plugs in).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.trainers._calibration import balanced_class_weights
from archsearch.trainers._checks import is_int, is_real
from archsearch.trainers._embedding import DEFAULT_DIM, build_embedding
from archsearch.trainers._model import build_mlp, count_parameters
from archsearch.trainers.data import PreparedData, Preprocessing
from archsearch.trainers.metrics import (
    CLASSIFICATION_METRICS,
    METRIC_DIRECTIONS,
    REGRESSION_METRICS,
    classification_metrics,
    regression_metrics,
)
from archsearch.trainers.names import DEVICE_RULE, LR_SCHEDULES, NORMALIZATIONS, OPTIMIZERS, is_device_name

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
    normalization: Literal["none", "batch", "layer"] = "none"  # a norm layer after each hidden Linear

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
            (
                "grad_clip",
                self.grad_clip is None
                or (is_real(self.grad_clip) and math.isfinite(self.grad_clip) and self.grad_clip > 0),
                "a float > 0 or None",
            ),
            ("normalization", self.normalization in NORMALIZATIONS, f"one of {list(NORMALIZATIONS)}"),
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


def train_mlp(
    widths: Sequence[int],
    dropouts: Sequence[float],
    activation: str,
    data: PreparedData,
    settings: TrainSettings,
    report: Callable[[int, float], bool | str] | None = None,
    *,
    embedding: str = "none",
    embedding_dim: int = DEFAULT_DIM,
) -> TrainResult:
    """Train an MLP on `data` and return its best epoch's weights and metrics.

    Runs with the same seed draw the same initial weights and the same batch order, so on CPU they give
    identical results (a paired comparison of two settings differs only by those settings). A NaN or
    infinite loss ends the run with status "diverged" instead of raising.

    Args:
        widths: Hidden layer widths.
        dropouts: Dropout probability after each hidden layer.
        activation: Activation name, see `build_mlp`.
        data: Standardized splits; the validation split must not be empty.
        settings: Optimizer, schedule and device settings.
        report: Called as `report(epoch, value)` after every epoch (epochs count from 1) with the
            validation metric in the target's original units; returning True stops the run with
            status "pruned", returning a string stops it likewise with that string as the reason.
        embedding: Numeric-feature embedding before the first layer, one of "none", "periodic", "pl"
            (see `_embedding.py`); "pl" takes its bin edges from `data.x_train`.
        embedding_dim: Values per embedded feature.

    Returns:
        The run's outcome; `metrics` holds e.g. "train_accuracy", "val_log_loss", "test_rmse".

    Example:
        >>> from archsearch.trainers.data import DataSpec, load_data
        >>> data = load_data(DataSpec(dataset="wine"))
        >>> result = train_mlp([64, 32], [0.1, 0.0], "relu", data, TrainSettings(epochs=5, patience=5))
        >>> result.status, sorted(result.metrics)[:2]
        ('completed', ['test_accuracy', 'test_balanced_accuracy'])
    """
    _check_metric(settings.metric, data.task)
    if len(data.x_val) == 0:
        raise ValueError("train_mlp needs a non-empty validation split to measure the metric each epoch.")
    if data.task == "regression" and settings.label_smoothing > 0:
        raise ValueError(
            f"TrainSettings.label_smoothing is {settings.label_smoothing!r} but label smoothing applies to "
            "classification only; use 0.0 for regression."
        )
    if settings.normalization == "batch" and len(data.x_train) < 2:
        raise ValueError("normalization 'batch' needs at least 2 training rows to compute batch statistics.")
    device = _resolve_device(settings.device)
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)

    generator = torch.Generator().manual_seed(settings.seed)  # weight init, then one shuffle per epoch
    numeric = data.preprocessing.numeric_features
    embedder = build_embedding(
        embedding, embedding_dim, data.n_features, numeric, train_rows=data.x_train, generator=generator
    )
    model = build_mlp(
        data.n_features,
        widths,
        dropouts,
        activation,
        data.n_outputs,
        generator=generator,
        embedding=embedder,
        normalization=settings.normalization,
    )
    model.to(device)
    optimizer = _make_optimizer(settings, model)
    loss_fn = _make_loss(data, settings.class_weight, settings.label_smoothing, device)
    # The schedule spans the whole budget, so a run stopped early was on the same schedule as a full one.
    steps_per_epoch = _batches_per_epoch(len(data.x_train), settings.batch_size, settings.normalization)
    total_steps = settings.epochs * steps_per_epoch
    use_bf16 = settings.bf16 and device.type == "cuda"
    x = {split: _tensor(getattr(data, f"x_{split}"), torch.float32, device) for split in ("train", "val", "test")}
    y_train = _tensor(data.y_train, torch.int64 if data.task == "classification" else torch.float32, device)
    maximize = METRIC_DIRECTIONS[settings.metric] == "maximize"

    status: Literal["completed", "pruned", "diverged"] = "completed"
    reason = None
    history: list[float] = []
    best_epoch: int | None = None
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    started = time.perf_counter()
    epoch = 0
    with _seeded_dropout(settings.seed, device):
        for epoch in range(1, settings.epochs + 1):
            first_step = (epoch - 1) * steps_per_epoch
            loss = _train_epoch(
                model, optimizer, loss_fn, x["train"], y_train, generator, use_bf16, settings, first_step, total_steps
            )
            if not math.isfinite(loss):
                status, reason = "diverged", f"loss became {loss} at epoch {epoch}"
                break
            value = _split_metrics(model, x["val"], data.y_val, data.preprocessing, use_bf16)[settings.metric]
            if not math.isfinite(value):
                status, reason = "diverged", f"validation {settings.metric} became {value} at epoch {epoch}"
                break
            history.append(value)
            if best_value is None or settings.keep_last or (value > best_value if maximize else value < best_value):
                best_epoch, best_value = epoch, value
                best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
            stop = report(epoch, value) if report is not None else False
            if stop:
                status, reason = "pruned", stop if isinstance(stop, str) else f"pruned by the pruner at epoch {epoch}"
                break
            if settings.patience is not None and epoch - best_epoch >= settings.patience:
                reason = (
                    f"early stopped at epoch {epoch}: validation {settings.metric} did not improve on "
                    f"{best_value:.6g} (epoch {best_epoch}) for {settings.patience} epochs"
                )
                break
    train_seconds = time.perf_counter() - started

    metrics: dict[str, float] = {}
    if best_state is not None:
        model.load_state_dict(best_state)
        for split in ("train", "val", "test"):
            if len(x[split]) > 0:
                values = _split_metrics(model, x[split], getattr(data, f"y_{split}"), data.preprocessing, use_bf16)
                metrics.update({f"{split}_{name}": v for name, v in values.items()})
    return TrainResult(
        status=status,
        reason=reason,
        epochs_run=epoch,
        best_epoch=best_epoch,
        best_value=best_value,
        history=history,
        metrics=metrics,
        train_seconds=train_seconds,
        device=str(device),
        n_params=count_parameters(model),
        state_dict=None if best_state is None else {name: t.cpu() for name, t in best_state.items()},
    )


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    use_bf16: bool,
    settings: TrainSettings,
    first_step: int,
    total_steps: int,
) -> float:
    """One pass over the shuffled training rows; returns the mean loss."""
    model.train()
    n_rows, batch_size = x.shape[0], settings.batch_size
    # Drawn on CPU so that the batch order is the same on every device.
    order = torch.randperm(n_rows, generator=generator).to(x.device)  # (n_rows,)
    # One gather per epoch; the batches are then views, not two index copies per step.
    x, y = x[order], y[order]  # (n_rows, n_features), (n_rows,)
    scheduled = settings.lr_schedule != "constant" or settings.warmup > 0 or settings.cooldown > 0
    losses, sizes = [], []
    for batch in range(_batches_per_epoch(n_rows, batch_size, settings.normalization)):
        start = batch * batch_size
        if scheduled:
            _set_lr(optimizer, settings.lr * _lr_factor(first_step + batch, total_steps, settings))
        with _autocast(x.device, use_bf16):
            loss = loss_fn(model(x[start : start + batch_size]), y[start : start + batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip is not None:
            _clip_gradients(model, settings.grad_clip)
        optimizer.step()
        losses.append(loss.detach())
        sizes.append(min(batch_size, n_rows - start))
    if not losses:
        return math.nan
    # Weighting the batch losses once per epoch saves two tensor ops per step.
    weights = torch.tensor(sizes, dtype=torch.float32, device=x.device)  # (n_batches,)
    return (torch.stack(losses).float() @ weights / sum(sizes)).item()  # the epoch's only host sync


def _batches_per_epoch(n_rows: int, batch_size: int, normalization: str) -> int:
    n_batches = math.ceil(n_rows / batch_size)
    # BatchNorm cannot normalize a one-row batch in training mode: that row sits out (another one next epoch).
    if normalization == "batch" and n_rows % batch_size == 1 and n_rows > 1:
        n_batches -= 1
    return n_batches


def _lr_factor(step: int, total_steps: int, settings: TrainSettings) -> float:
    """The multiple of `settings.lr` for the 0-based `step` of a run of `total_steps` optimizer steps.

    A linear warm-up over the first `warmup` fraction of the steps (reaching 1 at its last step), then
    1 ("constant"), a cosine from 1 towards 0 ("cosine") or a straight line from 1 towards 0 ("onecycle").
    A constant schedule with a `cooldown` falls in a straight line towards 0 over that last fraction.

    Example:
        >>> cooled = TrainSettings(cooldown=0.5)
        >>> [round(_lr_factor(step, 8, cooled), 2) for step in range(8)]
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


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _clip_gradients(model: nn.Module, max_norm: float) -> None:
    # One norm over all parameters (not per layer), so clipping keeps the update's direction.
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def _split_metrics(
    model: nn.Module, x: torch.Tensor, y: np.ndarray, preprocessing: Preprocessing, use_bf16: bool
) -> dict[str, float]:
    """Every metric of the task on one split, in the target's original units."""
    model.eval()
    with torch.inference_mode(), _autocast(x.device, use_bf16):
        out = torch.cat([model(x[i : i + EVAL_BATCH_SIZE]).float() for i in range(0, x.shape[0], EVAL_BATCH_SIZE)])
    return _output_metrics(out, y, preprocessing)


def _output_metrics(out: torch.Tensor, y: np.ndarray, preprocessing: Preprocessing) -> dict[str, float]:
    """Every metric of the task from the network's float outputs (n, n_outputs) on one split."""
    if preprocessing.task == "classification":
        proba = torch.softmax(out, dim=1)  # (n, n_classes)
        return classification_metrics(y, proba.cpu().numpy())
    predicted = out.squeeze(1).cpu().numpy().astype(np.float64)  # (n,)
    scale, mean = preprocessing.target_scale, preprocessing.target_mean
    return regression_metrics(np.asarray(y, dtype=np.float64) * scale + mean, predicted * scale + mean)


def _make_loss(
    data: PreparedData, class_weight: str, label_smoothing: float, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if data.task == "regression":
        return lambda out, y: F.mse_loss(out.squeeze(1), y)  # out (batch, 1), y (batch,)
    weight = _class_weights(data, class_weight, device)
    return lambda out, y: F.cross_entropy(out, y, weight=weight, label_smoothing=label_smoothing)


def _class_weights(data: PreparedData, class_weight: str, device: torch.device) -> torch.Tensor | None:
    """Per-class loss weights (n_classes,), or None for unweighted."""
    if class_weight != "balanced":
        return None
    # n / (k * count_c), as scikit-learn's "balanced"; export's calibration divides them back out of the softmax.
    balanced = balanced_class_weights(data.y_train, data.n_outputs)  # (n_classes,)
    return torch.tensor(balanced, dtype=torch.float32, device=device)


def _make_optimizer(settings: TrainSettings, model: nn.Module) -> torch.optim.Optimizer:
    # fused kernels exist for these three optimizers on CPU and CUDA since torch 2.4.
    common = {"lr": settings.lr, "weight_decay": settings.weight_decay, "fused": True}
    if settings.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), momentum=0.9, nesterov=True, **common)
    optimizer_class = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.AdamW
    return optimizer_class(model.parameters(), **common)


def _resolve_device(name: str) -> torch.device:
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


@contextlib.contextmanager
def _seeded_dropout(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global generator that Dropout draws from, and restore it afterwards.

    Dropout has no generator argument, so its masks come from the process-wide generator of `device`:
    runs in separate processes (or one after another) are reproducible, while threads training at the
    same time share that generator and their dropout masks are not.
    """
    devices = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def _autocast(device: torch.device, use_bf16: bool) -> contextlib.AbstractContextManager[None]:
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array)).to(device=device, dtype=dtype)


def _check_metric(metric: str, task: str) -> None:
    applicable = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric not in applicable:
        raise ValueError(f"The metric {metric!r} does not apply to {task}; use one of {list(applicable)}.")
