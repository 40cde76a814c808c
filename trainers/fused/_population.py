"""A population: up to `capacity` training runs of one group, stepped one epoch at a time, each refilled as it ends.

This module keeps the slots' lives (add, step, end, refill) and their bookkeeping, as `train_mlp` keeps one
run's; the stacked parameters' layout is `_layout.py`, the forward pass `_forward.py`, the loss and clipping
`_training.py` and the optimizer `_optim.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from archsearch.trainers.data import PreparedData
from archsearch.trainers.engine import (
    RunProgress,
    TrainResult,
    autocast,
    batches_per_epoch,
    build_embedding,
    build_mlp,
    check_architecture,
    check_metric,
    count_parameters,
    fit_bin_edges,
    is_int,
    lr_factor,
    output_metrics,
    resolve_device,
    split_metrics,
    tensor,
)
from archsearch.trainers.fused._forward import StackedForward
from archsearch.trainers.fused._group import FusedGroup, Report, SlotSpec, fused_unsupported_reason
from archsearch.trainers.fused._layout import BatchStats, ParameterLayout
from archsearch.trainers.fused._optim import StackedOptimizer, resized
from archsearch.trainers.fused._training import StackedClip, StackedLoss

__all__ = ["Population", "train_fused"]


@dataclass
class _Slot:
    spec: SlotSpec
    progress: RunProgress  # its epochs, booked as train_mlp books them
    generator: torch.Generator  # the slot's own: weight init, then one shuffle per epoch
    seconds: float = 0.0  # its share of the population's epochs: each epoch's time over the slots it trained
    step: int = 0  # optimizer steps taken, the position on the slot's own learning-rate schedule


class Population:
    """`capacity` training runs of one group, stepped one epoch at a time; a finished slot can be refilled.

    Each slot keeps its own epoch counter: a slot added later simply starts at its epoch 1 while the others
    go on. `step_epoch` trains every occupied slot for one epoch, reports to each slot's callback and
    returns the runs that ended (completed, early stopped, pruned or diverged); their slots are free again.

    Example:
        >>> population = Population(data, FusedGroup(activation="relu", max_depth=2, max_width=64), capacity=8)  # doctest: +SKIP
        >>> slot = population.add(SlotSpec(NetSpec((64, 32), (0.0, 0.0), "relu"), TrainSettings(epochs=20)))  # doctest: +SKIP
        >>> while population.occupied:  # doctest: +SKIP
        ...     for slot, result in population.step_epoch():
        ...         print(slot, result.status, result.best_value)
    """

    def __init__(self, data: PreparedData, group: FusedGroup, capacity: int, *, seed: int = 0):
        if not is_int(capacity) or capacity < 1:
            raise ValueError(f"The 'capacity' parameter of Population must be an int >= 1. Got {capacity!r} instead.")
        if len(data.x_val) == 0:
            raise ValueError("Population needs a non-empty validation split to measure the metric each epoch.")
        if group.normalization == "batch" and len(data.x_train) < 2:
            raise ValueError("normalization 'batch' needs at least 2 training rows to compute batch statistics.")
        self.data, self.group, self.capacity = data, group, capacity
        self.device = resolve_device(group.device)
        self._use_bf16 = group.bf16 and self.device.type == "cuda"
        self.layout, self._forward = self._build_network(data, group, seed)
        self.n_inputs = self.layout.n_inputs  # of the first Linear
        # The slots' tensors hold rows for the slots used so far, not for `capacity`: every row costs its
        # arithmetic in each step, occupied or not, and a population of a search often holds one or two runs.
        # `add` doubles them when it needs a row (at most `capacity`); `_size` is their row count.
        self._size = 1
        self.params = torch.zeros(1, self.layout.n_params, device=self.device)  # (rows, n_params)
        self._best = torch.zeros_like(self.params)
        self._best_stats = BatchStats(group.max_depth, 1, group.max_width, self.device)  # at each slot's best epoch
        self._leaves = self.layout.views(self.params)
        self._optimizer = StackedOptimizer(1, self.layout.n_params, self.device)
        y_dtype = torch.int64 if data.task == "classification" else torch.float32
        self._y_train = tensor(data.y_train, y_dtype, self.device)
        self._loss = StackedLoss(data, group, self.device)
        self._clip = StackedClip(self.device)
        self._slots: list[_Slot | None] = [None]
        self._refresh()

    def _build_network(
        self, data: PreparedData, group: FusedGroup, seed: int
    ) -> tuple[ParameterLayout, StackedForward]:
        """The stacked parameters' layout and the forward pass over them, with the embedding as build_embedding
        makes it: of the numeric inputs only, and none without any."""
        numeric = sorted(data.preprocessing.numeric_features) if group.embedding != "none" else []
        embedding = group.embedding if numeric else "none"
        buffers, edges = {}, None
        if embedding != "none":
            passed = [j for j in range(data.n_features) if j not in set(numeric)]
            # NumericEmbedding's `numeric` and `passed` buffers, and a pl embedding's edges, as train_mlp fits them.
            buffers = {
                "0.numeric": torch.tensor(numeric, dtype=torch.int64),
                "0.passed": torch.tensor(passed, dtype=torch.int64),
            }
            if embedding == "pl":
                edges = torch.from_numpy(fit_bin_edges(data.x_train[:, numeric], group.embedding_dim))
                buffers["0.encoder.edges"] = edges
        n_inputs = group.n_inputs(data.n_features, len(numeric))
        layout = ParameterLayout(group, embedding, len(numeric), n_inputs, data.n_outputs, buffers)
        stats = BatchStats(group.max_depth, 1, group.max_width, self.device)
        forward = StackedForward(data, group, layout, numeric, edges, stats, self.device, self._use_bf16, seed)
        return layout, forward

    def _resize(self, rows: int) -> None:
        """Give the slots' tensors `rows` rows: the first ones keep their state, added ones are empty (cut ones must be)."""
        with torch.no_grad():
            self.params, self._best = resized(self.params, rows), resized(self._best, rows)
        for stats in (self._forward.stats, self._best_stats):
            stats.resize(rows)
        self._optimizer.resize(rows)
        self._slots = (self._slots + [None] * rows)[:rows]
        self._size = rows
        self._leaves = self.layout.views(self.params)

    @property
    def occupied(self) -> int:
        """Number of slots holding a run."""
        return sum(slot is not None for slot in self._slots)

    @property
    def free(self) -> list[int]:
        """Indices of the empty slots (those without rows yet included, up to `capacity`)."""
        return [i for i, slot in enumerate(self._slots) if slot is None] + list(range(self._size, self.capacity))

    def add(self, spec: SlotSpec, report: Report | None = None) -> int:
        """Place a run in a free slot (fresh weights from its seed, fresh optimizer state); returns the slot.

        Raises:
            ValueError: The run does not fit this group (architecture, settings or an option the fused
                engine does not support), or every slot is occupied.
        """
        reason = self.unfit_reason(spec)
        if reason is not None:
            raise ValueError(f"This run cannot join the population: {reason}.")
        if not self.free:
            raise ValueError(f"The population is full ({self.capacity} slots); add after step_epoch frees one.")
        settings = spec.settings
        if settings.num_threads is not None:
            torch.set_num_threads(settings.num_threads)
        index = self.free[0]
        if index >= self._size:
            self._resize(min(self.capacity, max(2 * self._size, index + 1)))
        generator = torch.Generator().manual_seed(settings.seed)
        self.layout.initialize(self.params[index], spec.net.widths, generator)
        self._optimizer.reset(index, settings.optimizer, settings.lr, settings.weight_decay)
        self._forward.stats.reset(index)
        self._slots[index] = _Slot(spec, RunProgress(settings, report), generator)
        self._refresh()
        return index

    def unfit_reason(self, spec: SlotSpec) -> str | None:
        """Why `spec` cannot join this population, or None when it can."""
        net, settings, group = spec.net, spec.settings, self.group
        widths = net.widths
        check_architecture(self.data.n_features, widths, net.dropouts, net.activation, self.data.n_outputs)
        check_metric(settings.metric, self.data.task)
        reason = fused_unsupported_reason(net, settings)
        if reason is not None:
            return reason
        if len(widths) > group.max_depth or any(w > group.max_width for w in widths):
            return f"widths {list(widths)} exceed the group's {group.max_depth} layers of {group.max_width} units"
        if net.embedding != group.embedding or (net.embedding != "none" and net.embedding_dim != group.embedding_dim):
            return (
                f"embedding {net.embedding!r} of {net.embedding_dim} differs from the group's "
                f"{group.embedding!r} of {group.embedding_dim}"
            )
        if len(widths) == 0 and group.max_depth > 0 and self.n_inputs > group.max_width:
            return f"a depth-0 slot needs max_width >= its inputs ({self.n_inputs})"
        if len(widths) > 0 and net.activation != group.activation:
            return f"activation {net.activation!r} differs from the group's {group.activation!r}"
        if net.normalization != group.normalization:
            return f"normalization {net.normalization!r} differs from the group's {group.normalization!r}"
        for name in ("batch_size", "bf16", "class_weight"):
            if getattr(settings, name) != getattr(group, name):
                return f"{name} {getattr(settings, name)!r} differs from the group's {getattr(group, name)!r}"
        if resolve_device(settings.device) != self.device:
            return f"device {settings.device!r} differs from the group's {str(self.device)!r}"
        if self.data.task == "regression" and settings.label_smoothing > 0:
            return f"label_smoothing {settings.label_smoothing!r} applies to classification only"
        return None

    def discard(self, index: int) -> None:
        """Empty slot `index` without a result (its run was cancelled from outside).

        Raises:
            ValueError: The slot is empty.
        """
        self._occupant(index)
        self._clear(index)
        self._refresh()

    def trim(self) -> None:
        """Drop the empty rows after the last occupied slot, so that the remaining runs stop paying for them."""
        rows = max((i + 1 for i, slot in enumerate(self._slots) if slot is not None), default=1)
        if rows < self._size:
            self._resize(rows)
            self._refresh()

    def best_value(self, index: int) -> float | None:
        """The validation metric of slot `index`'s best epoch so far; None before its first epoch.

        Raises:
            ValueError: The slot is empty.
        """
        return self._occupant(index).progress.best_value

    def stop(self, index: int, reason: str) -> TrainResult:
        """End slot `index`'s run now, as pruned with `reason`: its best epoch's weights and metrics, as any ended run.

        Raises:
            ValueError: The slot is empty.
        """
        result = self._finish(index, self._occupant(index), "pruned", reason)
        self._refresh()
        return result

    def _occupant(self, index: int) -> _Slot:
        slot = self._slots[index] if is_int(index) and 0 <= index < self._size else None
        if slot is None:
            raise ValueError(f"Slot {index!r} of the population holds no run (occupied: {self.occupied}).")
        return slot

    def step_epoch(self) -> list[tuple[int, TrainResult]]:
        """Train every occupied slot for one epoch; returns (slot, result) for each run that ended."""
        if not self.occupied:
            return []
        started = time.perf_counter()
        losses = self._train_epoch()  # (capacity,) mean training loss of the epoch
        outputs = self._forward.validation_outputs(self._leaves)  # (capacity, n_val, n_outputs)
        share = (time.perf_counter() - started) / self.occupied
        finished = []
        for index, slot in enumerate(self._slots):
            if slot is not None:
                slot.seconds += share
                outcome = self._end_epoch(index, slot, losses[index], outputs[index])
                if outcome is not None:
                    finished.append((index, self._finish(index, slot, *outcome)))
        if finished:
            self._refresh()
        return finished

    def _end_epoch(self, index: int, slot: _Slot, loss: float, out: torch.Tensor) -> tuple[str, str | None] | None:
        """The epoch's bookkeeping and stopping rules, as `train_mlp`'s (`RunProgress`); (status, reason) when it ends."""

        def value() -> float:
            return output_metrics(out, self.data.y_val, self.data.preprocessing)[slot.spec.settings.metric]

        def keep_best() -> None:
            self._best[index].copy_(self.params[index])
            self._best_stats.copy_slot(index, self._forward.stats)

        return slot.progress.end_epoch(loss, value, keep_best)

    def _finish(self, index: int, slot: _Slot, status: str, reason: str | None) -> TrainResult:
        """The slot's TrainResult, its metrics measured by `train_mlp`'s own code on the best weights."""
        net, data, group = slot.spec.net, self.data, self.group
        generator = torch.Generator()  # its draws are overwritten; the global generator stays untouched
        embedder = build_embedding(
            group.embedding,
            group.embedding_dim,
            data.n_features,
            data.preprocessing.numeric_features,
            generator=generator,
        )
        model = build_mlp(
            data.n_features,
            net.widths,
            net.dropouts,
            net.activation,
            data.n_outputs,
            normalization=group.normalization,
            generator=generator,
            embedding=embedder,
        )
        state = None
        if slot.progress.best_epoch is not None:
            state = self.layout.state_dict(self._best[index].cpu(), net, self._best_stats, index)
        metrics: dict[str, float] = {}
        if state is not None:
            model.load_state_dict(state)
            model.to(self.device)
            for split in ("train", "val", "test"):
                x = getattr(data, f"x_{split}")
                if len(x) > 0:
                    values = split_metrics(
                        model,
                        tensor(x, torch.float32, self.device),
                        getattr(data, f"y_{split}"),
                        data.preprocessing,
                        self._use_bf16,
                    )
                    metrics.update({f"{split}_{name}": v for name, v in values.items()})
        result = slot.progress.result(
            status,
            reason,
            metrics=metrics,
            # The slot's share of its population's epochs, not the wall time since it joined: that would
            # count the worker's other populations too, and the refit's time is predicted from it.
            train_seconds=slot.seconds,
            device=str(self.device),
            n_params=count_parameters(model),
            state_dict=state,
        )
        self._clear(index)
        return result

    def _clear(self, index: int) -> None:
        self._slots[index] = None
        self.params[index].zero_()
        self._best[index].zero_()
        self._forward.stats.reset(index)
        self._best_stats.reset(index)
        self._optimizer.clear(index)

    def _refresh(self) -> None:
        """Per-slot state of the current occupants, rebuilt only when a slot is added or freed."""
        self._forward.set_occupants([None if slot is None else slot.spec.net for slot in self._slots])
        settings = [None if slot is None else slot.spec.settings for slot in self._slots]
        self._loss.set_occupants(settings)
        self._clip.set_occupants(settings)
        self._active = torch.tensor([float(s is not None) for s in settings], device=self.device)  # (capacity,)
        self._scheduled = [s is not None and (s.lr_schedule != "constant" or s.warmup > 0) for s in settings]

    def _train_epoch(self) -> list[float]:
        """One pass over each slot's own shuffle of the training rows; returns each slot's mean loss."""
        n_rows, batch_size = self._forward.x["train"].shape[0], self.group.batch_size
        orders = [
            torch.randperm(n_rows, generator=s.generator) if s is not None else torch.arange(n_rows)
            for s in self._slots
        ]  # drawn on CPU, as train_mlp does, so the batch order is the same on every device
        order = torch.stack(orders).to(self.device)  # (capacity, n_rows)
        losses, sizes = [], []
        n_batches = batches_per_epoch(n_rows, batch_size, self.group.normalization)
        for batch in range(n_batches):
            start = batch * batch_size
            self._schedule_lrs(n_batches)
            rows = order[:, start : start + batch_size]  # (capacity, batch)
            with autocast(self.device, self._use_bf16):
                out = self._forward.forward("train", rows, self._leaves, train=True)  # (capacity, batch, n_outputs)
            loss = self._loss(out.float(), self._y_train[rows])  # (capacity,)
            # Each slot's loss depends on its own leaves only, so one backward of the sum gives every slot its gradient.
            grads = torch.autograd.grad((loss * self._active).sum(), self._leaves)
            flat = torch.cat([g.reshape(self._size, -1) for g in grads], dim=1)  # (rows, n_params)
            if self._clip.active:
                flat = self._clip(flat)
            self._optimizer.step(self.params, flat)
            losses.append(loss.detach())
            sizes.append(rows.shape[1])
        weights = torch.tensor(sizes, dtype=torch.float32, device=self.device)  # (n_batches,)
        return (weights @ torch.stack(losses) / sum(sizes)).tolist()  # the epoch's only host sync

    def _schedule_lrs(self, n_batches: int) -> None:
        """Set each scheduled slot's lr for its next step, as train_mlp's `_set_lr(... lr_factor(...))`."""
        for index, slot in enumerate(self._slots):
            if slot is None:
                continue
            settings = slot.spec.settings
            if self._scheduled[index]:
                # The schedule spans the slot's whole budget, as in train_mlp, whenever the slot joined.
                factor = lr_factor(slot.step, settings.epochs * n_batches, settings)
                self._optimizer.set_lr(index, settings.lr * factor)
            slot.step += 1


def train_fused(
    specs: Sequence[SlotSpec],
    data: PreparedData,
    group: FusedGroup,
    capacity: int,
    reports: Sequence[Report | None] | None = None,
    *,
    seed: int = 0,
) -> list[TrainResult]:
    """Train every spec in one population of `capacity` slots, refilling each freed slot with the next spec.

    Returns the results in the order of `specs`.

    Example:
        >>> specs = [SlotSpec(NetSpec((64,), (0.0,), "relu"), TrainSettings(lr=lr, epochs=10)) for lr in (1e-3, 3e-3)]  # doctest: +SKIP
        >>> [r.status for r in train_fused(specs, data, FusedGroup("relu", max_depth=1, max_width=64), 2)]  # doctest: +SKIP
        ['completed', 'completed']
    """
    population = Population(data, group, capacity, seed=seed)
    results: list[TrainResult | None] = [None] * len(specs)
    owner: dict[int, int] = {}
    pending = iter(range(len(specs)))
    for position in pending:
        owner[population.add(specs[position], None if reports is None else reports[position])] = position
        if not population.free:
            break
    while population.occupied:
        for slot, result in population.step_epoch():
            results[owner.pop(slot)] = result
        for slot in population.free:
            position = next(pending, None)
            if position is None:
                break
            owner[population.add(specs[position], None if reports is None else reports[position])] = position
    return results  # type: ignore[return-value]
