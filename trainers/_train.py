"""Train one MLP on prepared data, reporting the validation metric after every epoch.

The trainer knows nothing about the search: it receives plain values and a `report(epoch, value)`
callback whose True answer stops the run (that is how a pruner plugs in).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.trainers._heads import one_vs_rest_loss
from archsearch.trainers._lbfgs import lbfgs_epochs, lbfgs_fits
from archsearch.trainers._select import build_network
from archsearch.trainers.data import PreparedData
from archsearch.trainers.engine import (
    RunProgress,
    TrainResult,
    TrainSettings,
    autocast,
    batches_per_epoch,
    check_metric,
    class_weights,
    count_parameters,
    lr_factor,
    resolve_device,
    split_metrics,
    tensor,
)
from archsearch.trainers.names import Net

__all__ = ["TrainResult", "TrainSettings", "train_mlp"]


def train_mlp(
    net: Net,
    data: PreparedData,
    settings: TrainSettings,
    report: Callable[[int, float], bool | str] | None = None,
) -> TrainResult:
    """Train an MLP on `data` and return its best epoch's weights and metrics.

    Runs with the same seed draw the same initial weights and the same batch order, so on CPU they give
    identical results (a paired comparison of two settings differs only by those settings). A NaN or
    infinite loss ends the run with status "diverged" instead of raising.

    Args:
        net: The architecture (`archsearch.spaces.NetSpec`): hidden widths, dropouts, activation and norm
            layer (see `build_mlp`), and the numeric-feature embedding before the first layer ("pl" takes
            its bin edges from `data.x_train`, see `_embedding.py`).
        data: Standardized splits; the validation split must not be empty.
        settings: Optimizer, schedule and device settings.
        report: Called as `report(epoch, value)` after every epoch (epochs count from 1) with the
            validation metric in the target's original units; returning True stops the run with
            status "pruned", returning a string stops it likewise with that string as the reason.

    Returns:
        The run's outcome; `metrics` holds e.g. "train_accuracy", "val_log_loss", "test_rmse".

    Example:
        >>> from archsearch.spaces import NetSpec
        >>> from archsearch.trainers.data import DataSpec, load_data
        >>> data = load_data(DataSpec(dataset="wine"))
        >>> net = NetSpec(widths=(64, 32), dropouts=(0.1, 0.0), activation="relu")
        >>> result = train_mlp(net, data, TrainSettings(epochs=5, patience=5))
        >>> result.status, sorted(result.metrics)[:2]
        ('completed', ['test_accuracy', 'test_balanced_accuracy'])
    """
    _check_run(net, data, settings)
    device = resolve_device(settings.device)
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)
    generator = torch.Generator().manual_seed(settings.seed)  # weight init, then one shuffle per epoch
    model = _build(net, data, generator).to(device)
    use_bf16 = settings.bf16 and device.type == "cuda"
    x = {split: tensor(getattr(data, f"x_{split}"), torch.float32, device) for split in ("train", "val", "test")}
    progress = RunProgress(settings, report)
    best: dict[str, dict[str, torch.Tensor]] = {}

    def keep_best() -> None:
        best["state"] = {name: t.detach().clone() for name, t in model.state_dict().items()}

    def validation_value() -> float:
        return split_metrics(model, x["val"], data.y_val, data.preprocessing, use_bf16)[settings.metric]

    started = time.perf_counter()
    with _seeded_dropout(settings.seed, device):
        status, reason = _run_epochs(
            net, data, settings, model, x["train"], generator, use_bf16, progress, validation_value, keep_best
        )
    train_seconds = time.perf_counter() - started
    metrics: dict[str, float] = {}
    if "state" in best:
        model.load_state_dict(best["state"])
        for split in ("train", "val", "test"):
            if len(x[split]) > 0:
                values = split_metrics(model, x[split], getattr(data, f"y_{split}"), data.preprocessing, use_bf16)
                metrics.update({f"{split}_{name}": v for name, v in values.items()})
    return progress.result(
        status,
        reason,
        metrics=metrics,
        train_seconds=train_seconds,
        device=str(device),
        n_params=count_parameters(model),
        state_dict=None if "state" not in best else {name: t.cpu() for name, t in best["state"].items()},
    )


def _check_run(net: Net, data: PreparedData, settings: TrainSettings) -> None:
    check_metric(settings.metric, data.task)
    if len(data.x_val) == 0:
        raise ValueError("train_mlp needs a non-empty validation split to measure the metric each epoch.")
    if data.task == "regression" and settings.label_smoothing > 0:
        raise ValueError(
            f"TrainSettings.label_smoothing is {settings.label_smoothing!r} but label smoothing applies to "
            "classification only; use 0.0 for regression."
        )
    if data.task == "regression" and getattr(net, "head", "softmax") != "softmax":
        raise ValueError(f"The {net.head!r} head is for classification; a regression network has one output.")
    if net.normalization == "batch" and len(data.x_train) < 2:
        raise ValueError("normalization 'batch' needs at least 2 training rows to compute batch statistics.")


def _build(net: Net, data: PreparedData, generator: torch.Generator) -> nn.Sequential:
    """The network, its embedding's then its layers' weights drawn from `generator`; a pl embedding's bins
    from the training rows."""
    return build_network(net, data.preprocessing, data.n_outputs, train_rows=data.x_train, generator=generator)


def _run_epochs(
    net: Net,
    data: PreparedData,
    settings: TrainSettings,
    model: nn.Module,
    x_train: torch.Tensor,
    generator: torch.Generator,
    use_bf16: bool,
    progress: RunProgress,
    validation_value: Callable[[], float],
    keep_best: Callable[[], None],
) -> tuple[str, str | None]:
    """Train epoch after epoch until the run ends; its (status, reason) as `RunProgress.end_epoch` says."""
    device = x_train.device
    loss_fn = _make_loss(data, settings.class_weight, settings.label_smoothing, device, getattr(net, "head", "softmax"))
    y_train = tensor(data.y_train, torch.int64 if data.task == "classification" else torch.float32, device)
    if lbfgs_fits(net, settings.linear_solver, data):
        return lbfgs_epochs(model, loss_fn, x_train, y_train, settings, progress, validation_value, keep_best)
    optimizer = _make_optimizer(settings, model)
    # The schedule spans the whole budget, so a run stopped early was on the same schedule as a full one.
    steps_per_epoch = batches_per_epoch(len(data.x_train), settings.batch_size, net.normalization)
    total_steps = settings.epochs * steps_per_epoch
    while True:
        first_step = progress.epoch * steps_per_epoch
        loss = _train_epoch(
            model,
            optimizer,
            loss_fn,
            x_train,
            y_train,
            generator,
            use_bf16,
            settings,
            first_step,
            total_steps,
            steps_per_epoch,
        )
        ended = progress.end_epoch(loss, validation_value, keep_best)
        if ended is not None:
            return ended


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
    n_batches: int,
) -> float:
    """One pass of `n_batches` batches over the shuffled training rows; returns the mean loss."""
    model.train()
    n_rows, batch_size = x.shape[0], settings.batch_size
    # Drawn on CPU so that the batch order is the same on every device.
    order = torch.randperm(n_rows, generator=generator).to(x.device)  # (n_rows,)
    # One gather per epoch; the batches are then views, not two index copies per step.
    x, y = x[order], y[order]  # (n_rows, n_features), (n_rows,)
    scheduled = settings.lr_schedule != "constant" or settings.warmup > 0 or settings.cooldown > 0
    losses, sizes = [], []
    for batch in range(n_batches):
        start = batch * batch_size
        if scheduled:
            _set_lr(optimizer, settings.lr * lr_factor(first_step + batch, total_steps, settings))
        with autocast(x.device, use_bf16):
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


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _clip_gradients(model: nn.Module, max_norm: float) -> None:
    # One norm over all parameters (not per layer), so clipping keeps the update's direction.
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def _make_loss(
    data: PreparedData, class_weight: str, label_smoothing: float, device: torch.device, head: str = "softmax"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if data.task == "regression":
        return lambda out, y: F.mse_loss(out.squeeze(1), y)  # out (batch, 1), y (batch,)
    weight = class_weights(data, class_weight, device)
    if head == "one_vs_rest":
        return one_vs_rest_loss(data.n_outputs, weight, label_smoothing)
    return lambda out, y: F.cross_entropy(out, y, weight=weight, label_smoothing=label_smoothing)


def _make_optimizer(settings: TrainSettings, model: nn.Module) -> torch.optim.Optimizer:
    # fused kernels exist for these three optimizers on CPU and CUDA since torch 2.4.
    common = {"lr": settings.lr, "weight_decay": settings.weight_decay, "fused": True}
    if settings.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), momentum=0.9, nesterov=True, **common)
    optimizer_class = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.AdamW
    return optimizer_class(model.parameters(), **common)


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
