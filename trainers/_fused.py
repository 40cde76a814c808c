"""Train many MLPs at once: slots stepped together with batched matrix products, each refilled as its run ends.

A `Population` holds up to `capacity` slots of one `FusedGroup`. Every layer's weights are stacked as
(rows, in, width) in one flat (rows, n_params) tensor, and one training step is a handful of batched
products over all rows, so small networks stop paying Python and kernel launch costs per trial. Rows are
allocated as slots are first used (doubling, up to `capacity`): an empty row costs a step its arithmetic.

What varies per slot (fused) and what partitions slots into groups:
- Per slot: hidden widths (padded to the group's `max_width`: a padded unit's weights and bias start at
  zero, so its output is act(0) = 0 for every activation we offer, it passes nothing on and gets exactly zero
  gradient, and every optimizer leaves a zero parameter with zero gradient at zero; the slot's trained
  weights therefore equal an unpadded network's, without a mask to multiply by), depth (up to
  `max_depth`; a shallower slot passes its last hidden layer through the deeper layers unchanged, and
  those layers' weights stay zero), dropout per layer, learning rate, weight decay, optimizer (adam, adamw,
  sgd), seed (initial weights and batch order), epochs, patience, metric, keep_last, and the recipe:
  lr_schedule and warmup (each slot on its own step counter), label_smoothing and grad_clip (each slot's
  own gradient norm).
- Per group: activation, batch size (the steps of an epoch line up), device, bf16, class_weight,
  normalization (a LayerNorm takes its statistics over the slot's real units only; a BatchNorm keeps
  each slot's running statistics; a padded unit's norm weight and bias are zero, so it stays zero) and
  the numeric-feature embedding with its size (the first layer's inputs line up; each slot has its own
  embedding weights, stacked as (rows, n_numeric, ...); a "pl" embedding's per-feature Linear and the
  first hidden Linear are applied as one folded product, see `_folded_first_layer`), besides the data itself.

With dropout 0 on CPU a slot's trajectory equals `train_mlp`'s with the same values to float rounding
(same initial weights and batch order from the slot's seed, same loss, the torch fused optimizers' math;
see `_fused_optim`), except that with batch norm under Adam/AdamW the Linear bias before each norm gets
rounding-noise gradients that Adam scales to full steps in either engine, so those biases and the running
means agree in effect only. Dropout masks come from the population's own generator (`seed`), not from
`settings.seed`, so with dropout a slot matches `train_mlp` in distribution, not number for number.

Every operation is either elementwise along the slot axis or a per-slot product, so a NaN in one slot
stays in it, and adding or finishing one slot (growing the rows or not) leaves the other slots' numbers
unchanged with dropout 0; with dropout the masks are drawn over all rows, so the other slots' masks change.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from archsearch.trainers._checks import is_int
from archsearch.trainers._embedding import DEFAULT_DIM, PERIODIC_SIGMA, build_embedding, fit_bin_edges, pl_encoding
from archsearch.trainers._fused_optim import StackedOptimizer, resized
from archsearch.trainers._model import ACTIVATIONS, _check_architecture, build_mlp, count_parameters
from archsearch.trainers._train import (
    CLASS_WEIGHTS,
    TrainResult,
    TrainSettings,
    _autocast,
    _batches_per_epoch,
    _check_metric,
    _class_weights,
    _lr_factor,
    _output_metrics,
    _resolve_device,
    _split_metrics,
    _tensor,
)
from archsearch.trainers.data import PreparedData
from archsearch.trainers.metrics import METRIC_DIRECTIONS
from archsearch.trainers.names import EMBEDDINGS, NORMALIZATIONS, Net

# TrainSettings fields the fused engine honours; any other field with a non-default value keeps a trial on
# the single engine (see `fused_unsupported_reason`), so a new option never runs fused with other meaning.
FUSED_SETTINGS = frozenset(
    {
        "lr",
        "weight_decay",
        "batch_size",
        "optimizer",
        "epochs",
        "patience",
        "metric",
        "seed",
        "device",
        "bf16",
        "class_weight",
        "num_threads",
        "keep_last",
        "lr_schedule",
        "warmup",
        "label_smoothing",
        "grad_clip",
    }
)
NORM_EPS = 1e-5  # nn.LayerNorm's and nn.BatchNorm1d's default, which build_mlp uses
BATCH_NORM_MOMENTUM = 0.1  # nn.BatchNorm1d's default weight of a batch in the running statistics
_EVAL_ELEMENTS = 2**24  # slots x rows x width per evaluation chunk, so validation memory stays near 64 MiB


def fused_unsupported_reason(net: Net, settings: TrainSettings) -> str | None:
    """Why this trial cannot train in the fused engine, or None when it can.

    Every embedding of `train_mlp` trains fused (it partitions slots into groups, see `FusedGroup`).

    Example:
        >>> from archsearch.spaces import NetSpec
        >>> fused_unsupported_reason(NetSpec((64, 32), (0.0, 0.0), "relu"), TrainSettings()) is None
        True
    """
    for field in dataclasses.fields(settings):
        if field.name in FUSED_SETTINGS:
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        value = getattr(settings, field.name)
        if value != default:
            return f"the fused engine does not support TrainSettings.{field.name} = {value!r} yet"
    if len(net.widths) > 0 and net.activation not in ACTIVATIONS:
        return f"the fused engine has no activation {net.activation!r}"
    return None


@dataclass(frozen=True)
class FusedGroup:
    """What every slot of one population shares; see the module docstring for what varies per slot.

    Example:
        >>> group = FusedGroup(activation="relu", batch_size=64, max_depth=3, max_width=256)
    """

    activation: str
    batch_size: int = 128
    max_depth: int = 3
    max_width: int = 256  # hidden units per layer after padding; a depth-0 slot also needs n_features <= this
    device: str = "auto"
    bf16: bool = False
    class_weight: str = "none"
    normalization: str = "none"  # every slot's: the batch norm's skipped one-row batch is the whole group's
    embedding: str = "none"  # train_mlp's `embedding`, of every slot
    embedding_dim: int = DEFAULT_DIM  # and its `embedding_dim` (unused with "none")

    def __post_init__(self) -> None:
        rules = (
            ("activation", self.activation in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("max_depth", is_int(self.max_depth) and self.max_depth >= 0, "an int >= 0"),
            ("max_width", is_int(self.max_width) and self.max_width >= 1, "an int >= 1"),
            ("bf16", isinstance(self.bf16, bool), "a bool"),
            ("class_weight", self.class_weight in CLASS_WEIGHTS, f"one of {list(CLASS_WEIGHTS)}"),
            ("normalization", self.normalization in NORMALIZATIONS, f"one of {list(NORMALIZATIONS)}"),
            ("embedding", self.embedding in EMBEDDINGS, f"one of {list(EMBEDDINGS)}"),
            ("embedding_dim", is_int(self.embedding_dim) and self.embedding_dim >= 1, "an int >= 1"),
        )
        for name, ok, rule in rules:
            if not ok:
                raise ValueError(
                    f"The {name!r} parameter of FusedGroup must be {rule}. Got {getattr(self, name)!r} instead."
                )
        TrainSettings(device=self.device)  # the same device rule as the single engine

    @classmethod
    def of(cls, spec: SlotSpec, *, max_depth: int = 0, max_width: int = 1) -> FusedGroup:
        """The group a run joins, for networks up to `max_depth` x `max_width`."""
        settings, net = spec.settings, spec.net
        return cls(
            activation=net.activation,
            batch_size=settings.batch_size,
            max_depth=max_depth,
            max_width=max_width,
            device=settings.device,
            bf16=settings.bf16,
            class_weight=settings.class_weight,
            normalization=net.normalization,
            embedding=net.embedding,
            # Without an embedding its size means nothing: runs that differ only there share a group.
            embedding_dim=net.embedding_dim if net.embedding != "none" else DEFAULT_DIM,
        )

    def n_inputs(self, n_features: int, n_numeric: int) -> int:
        """Inputs of the first Linear: each numeric feature embedded as `embedding_dim` values, the others as they are.

        >>> FusedGroup("relu", embedding="pl", embedding_dim=16).n_inputs(10, 8)
        130
        """
        return n_features if self.embedding == "none" else n_features + n_numeric * (self.embedding_dim - 1)


# A slot may join a population bucketed larger than its own network while its padded network stays this
# small (multiply-adds per row; a 128 x 128 layer): on the 2-core CPU one such step of 128 rows costs about
# 0.3 ms of arithmetic, below the 1.4 ms of per-step overhead that a trial of its own costs (BENCHMARKS.md §8).
# On CUDA a step of a network up to 512 wide costs the same 1.1-1.9 ms of launches as a 128-wide one
# (BENCHMARKS.md §5), so padding up to 512 x 512 multiply-adds a row (3 x 256 on 64 inputs) costs nothing
# there; fully padded 3 x 512 populations did cost more (5.7x the single engine at K = 16 against 8.6x for
# 2 x 128 on the H200, §8), so they are not free.
SMALL_NETWORK_MACS = 128 * 128
SMALL_NETWORK_MACS_CUDA = 512 * 512
MAX_PADDING = 2.0  # otherwise, padded multiply-adds at most this many times the slot's own


def network_macs(n_features: int, widths: Sequence[int], n_outputs: int) -> int:
    """Multiply-adds per row of an MLP's forward pass.

    >>> network_macs(64, [32, 16], 10)
    2720
    """
    sizes = [n_features, *widths, n_outputs]
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def padded_macs(n_features: int, n_outputs: int, max_depth: int, max_width: int) -> int:
    """Multiply-adds per row that a slot costs in a population of `max_depth` layers of `max_width` units."""
    return network_macs(n_features, [max_width] * max_depth, n_outputs)


def size_bucket(widths: Sequence[int]) -> tuple[int, int]:
    """(depth, width) of the population a network opens when none fits it: its own depth, and its widest
    layer rounded up to a power of two (at least 8), so that later networks of about its size fit too.

    >>> size_bucket([48, 20]), size_bucket([]), size_bucket([3])
    ((2, 64), (0, 1), (1, 8))
    """
    if not widths:
        return 0, 1
    return len(widths), max(8, 1 << (max(widths) - 1).bit_length())


def padding_is_free(n_features: int, n_outputs: int, group: FusedGroup) -> bool:
    """Whether a population of `group`'s size is small enough that its step costs no more than a smaller one's
    on its device: the step is bound by kernel launches and Python, not by the padded arithmetic."""
    padded = padded_macs(n_features, n_outputs, group.max_depth, group.max_width)
    cuda = group.device.startswith("cuda") or (group.device == "auto" and torch.cuda.is_available())
    return padded <= (SMALL_NETWORK_MACS_CUDA if cuda else SMALL_NETWORK_MACS)


def padding_acceptable(n_features: int, widths: Sequence[int], n_outputs: int, group: FusedGroup) -> bool:
    """Whether a network should join a population of `group`'s size rather than open one of its own."""
    padded = padded_macs(n_features, n_outputs, group.max_depth, group.max_width)
    return padding_is_free(n_features, n_outputs, group) or padded <= MAX_PADDING * network_macs(
        n_features, widths, n_outputs
    )


@dataclass(frozen=True)
class SlotSpec:
    """One training run to place in a slot: the architecture and its settings, as `train_mlp` takes them."""

    net: Net  # archsearch.spaces.NetSpec
    settings: TrainSettings


Report = Callable[[int, float], bool | str]  # as train_mlp's `report`


@dataclass
class _Slot:
    spec: SlotSpec
    report: Report | None
    generator: torch.Generator  # the slot's own: weight init, then one shuffle per epoch
    seconds: float = 0.0  # its share of the population's epochs: each epoch's time over the slots it trained
    epoch: int = 0
    step: int = 0  # optimizer steps taken, the position on the slot's own learning-rate schedule
    history: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None


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
        self.device = _resolve_device(group.device)
        self._use_bf16 = group.bf16 and self.device.type == "cuda"
        self._act = ACTIVATIONS[group.activation]()
        # The embedding as build_embedding makes it: of the numeric inputs only, and none without any.
        numeric = sorted(data.preprocessing.numeric_features) if group.embedding != "none" else []
        self._embedding = group.embedding if numeric else "none"
        n_numeric, dim = len(numeric), group.embedding_dim
        self.n_inputs = group.n_inputs(data.n_features, n_numeric)  # of the first Linear
        width, depth, n_out = group.max_width, group.max_depth, data.n_outputs
        n_in = self.n_inputs
        # Row layout of the flat parameter tensor: the embedding's tensors in its modules' order (periodic:
        # frequencies (numeric, dim), weight (numeric, 2 dim, dim), bias (numeric, dim); pl: weight (numeric,
        # dim, dim), bias (numeric, dim)), then (weight (in, width), bias (width,)[, norm weight (width,), norm
        # bias (width,)]) per hidden layer, then the output layer; a depth-0 group's output layer reads the
        # inputs directly.
        shapes = {
            "none": [],
            "pl": [(n_numeric, dim, dim), (n_numeric, dim)],
            "periodic": [(n_numeric, dim), (n_numeric, 2 * dim, dim), (n_numeric, dim)],
        }[self._embedding]
        self._lead = len(shapes)  # tensors before the first hidden layer's
        self._layer_norm = group.normalization == "layer"
        self._batch_norm = group.normalization == "batch"
        self._per_layer = 2 if group.normalization == "none" else 4
        for layer in range(depth):
            shapes += [(n_in if layer == 0 else width, width), (width,)] + [(width,)] * (self._per_layer - 2)
        shapes += [(width if depth else n_in, n_out), (n_out,)]
        self._shapes = shapes
        self._offsets = list(itertools.accumulate((math.prod(s) for s in shapes), initial=0))
        # The slots' tensors hold rows for the slots used so far, not for `capacity`: every row costs its
        # arithmetic in each step, occupied or not, and a population of a search often holds one or two runs.
        # `add` doubles them when it needs a row (at most `capacity`); `_size` is their row count.
        self._size = 1
        self.params = torch.zeros(1, self._offsets[-1], device=self.device)  # (rows, n_params)
        self._best = torch.zeros_like(self.params)
        # BatchNorm1d's buffers per layer and slot, and their copies at each slot's best epoch.
        self._stats = _BatchStats(depth, 1, width, self.device)
        self._best_stats = _BatchStats(depth, 1, width, self.device)
        self._leaves = self._views()
        self._optimizer = StackedOptimizer(1, self._offsets[-1], self.device)
        self._dropout_generator = torch.Generator(device=self.device).manual_seed(seed)
        self._x = {s: _tensor(getattr(data, f"x_{s}"), torch.float32, self.device) for s in ("train", "val")}
        if self._embedding != "none":
            passed = [j for j in range(data.n_features) if j not in set(numeric)]
            self._columns = numeric, passed  # NumericEmbedding's `numeric` and `passed` buffers
            self._passed = {s: x[:, passed] for s, x in self._x.items()}  # (rows, n_features - numeric)
            self._numeric_x = {s: x[:, numeric] for s, x in self._x.items()}  # (rows, numeric)
            if self._embedding == "pl":  # train_mlp's edges; the rows are encoded per batch, as there
                self._edges = torch.from_numpy(fit_bin_edges(data.x_train[:, numeric], dim)).to(self.device)
        y_dtype = torch.int64 if data.task == "classification" else torch.float32
        self._y_train = _tensor(data.y_train, y_dtype, self.device)
        # None for regression, where train_mlp's loss is MSE and class_weight plays no part.
        self._class_weights = (
            _class_weights(data, group.class_weight, self.device) if data.task == "classification" else None
        )
        self._slots: list[_Slot | None] = [None]
        self._refresh_masks()

    def _views(self) -> list[torch.Tensor]:
        """Leaves that alias `params`: the optimizer updates `params` in place and the leaves see it."""
        return [
            self.params[:, a:b].view(self._size, *shape).detach().requires_grad_()
            for (a, b), shape in zip(zip(self._offsets, self._offsets[1:]), self._shapes)
        ]

    def _resize(self, rows: int) -> None:
        """Give the slots' tensors `rows` rows: the first ones keep their state, added ones are empty (cut ones must be)."""
        with torch.no_grad():
            self.params, self._best = resized(self.params, rows), resized(self._best, rows)
        for stats in (self._stats, self._best_stats):
            stats.resize(rows)
        self._optimizer.resize(rows)
        self._slots = (self._slots + [None] * rows)[:rows]
        self._size = rows
        self._leaves = self._views()

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
        self._initialize(index, spec, generator)
        self._optimizer.reset(index, settings.optimizer, settings.lr, settings.weight_decay)
        self._stats.reset(index)
        self._slots[index] = _Slot(spec, report, generator)
        self._refresh_masks()
        return index

    def unfit_reason(self, spec: SlotSpec) -> str | None:
        """Why `spec` cannot join this population, or None when it can."""
        net, settings, group = spec.net, spec.settings, self.group
        widths = net.widths
        _check_architecture(self.data.n_features, widths, net.dropouts, net.activation, self.data.n_outputs)
        _check_metric(settings.metric, self.data.task)
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
        if _resolve_device(settings.device) != self.device:
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
        self._refresh_masks()

    def trim(self) -> None:
        """Drop the empty rows after the last occupied slot, so that the remaining runs stop paying for them."""
        rows = max((i + 1 for i, slot in enumerate(self._slots) if slot is not None), default=1)
        if rows < self._size:
            self._resize(rows)
            self._refresh_masks()

    def best_value(self, index: int) -> float | None:
        """The validation metric of slot `index`'s best epoch so far; None before its first epoch.

        Raises:
            ValueError: The slot is empty.
        """
        return self._occupant(index).best_value

    def stop(self, index: int, reason: str) -> TrainResult:
        """End slot `index`'s run now, as pruned with `reason`: its best epoch's weights and metrics, as any ended run.

        Raises:
            ValueError: The slot is empty.
        """
        result = self._finish(index, self._occupant(index), "pruned", reason)
        self._refresh_masks()
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
        outputs = self._val_outputs()  # (capacity, n_val, n_outputs)
        share = (time.perf_counter() - started) / self.occupied
        finished = []
        for index, slot in enumerate(self._slots):
            if slot is not None:
                slot.seconds += share
                outcome = self._end_epoch(index, slot, losses[index], outputs[index])
                if outcome is not None:
                    finished.append((index, self._finish(index, slot, *outcome)))
        if finished:
            self._refresh_masks()
        return finished

    def _end_epoch(self, index: int, slot: _Slot, loss: float, out: torch.Tensor) -> tuple[str, str | None] | None:
        """Best-epoch bookkeeping, report and stopping rules of `train_mlp`; (status, reason) when it ends."""
        settings = slot.spec.settings
        slot.epoch += 1
        epoch = slot.epoch
        if not math.isfinite(loss):
            return "diverged", f"loss became {loss} at epoch {epoch}"
        value = _output_metrics(out, self.data.y_val, self.data.preprocessing)[settings.metric]
        if not math.isfinite(value):
            return "diverged", f"validation {settings.metric} became {value} at epoch {epoch}"
        slot.history.append(value)
        maximize = METRIC_DIRECTIONS[settings.metric] == "maximize"
        best = slot.best_value
        if best is None or settings.keep_last or (value > best if maximize else value < best):
            slot.best_epoch, slot.best_value = epoch, value
            self._best[index].copy_(self.params[index])
            self._best_stats.copy_slot(index, self._stats)
        stop = slot.report(epoch, value) if slot.report is not None else False
        if stop:  # True from the pruner, or a string that says why the run stops
            return "pruned", stop if isinstance(stop, str) else f"pruned by the pruner at epoch {epoch}"
        if settings.patience is not None and epoch - slot.best_epoch >= settings.patience:
            return "completed", (
                f"early stopped at epoch {epoch}: validation {settings.metric} did not improve on "
                f"{slot.best_value:.6g} (epoch {slot.best_epoch}) for {settings.patience} epochs"
            )
        if epoch == settings.epochs:
            return "completed", None
        return None

    def _finish(self, index: int, slot: _Slot, status: str, reason: str | None) -> TrainResult:
        """The slot's TrainResult, its metrics measured by `train_mlp`'s own code on the best weights."""
        spec, data, group = slot.spec, self.data, self.group
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
            spec.net.widths,
            spec.net.dropouts,
            spec.net.activation,
            data.n_outputs,
            normalization=group.normalization,
            generator=generator,
            embedding=embedder,
        )
        state = None if slot.best_epoch is None else self._state_dict(index, spec)
        metrics: dict[str, float] = {}
        if state is not None:
            model.load_state_dict(state)
            model.to(self.device)
            for split in ("train", "val", "test"):
                x = getattr(self.data, f"x_{split}")
                if len(x) > 0:
                    tensor = _tensor(x, torch.float32, self.device)
                    y = getattr(self.data, f"y_{split}")
                    values = _split_metrics(model, tensor, y, self.data.preprocessing, self._use_bf16)
                    metrics.update({f"{split}_{name}": v for name, v in values.items()})
        result = TrainResult(
            status=status,  # type: ignore[arg-type]
            reason=reason,
            epochs_run=slot.epoch,
            best_epoch=slot.best_epoch,
            best_value=slot.best_value,
            history=slot.history,
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

    def _state_dict(self, index: int, spec: SlotSpec) -> dict[str, torch.Tensor]:
        """The slot's best weights unpadded, with the keys and shapes of `build_mlp`'s nn.Sequential."""
        row = self._best[index].cpu()
        tensors = [row[a:b].view(shape) for (a, b), shape in zip(zip(self._offsets, self._offsets[1:]), self._shapes)]
        embedded, tensors = tensors[: self._lead], tensors[self._lead :]
        state: dict[str, torch.Tensor] = {}
        position, fan_in = 0, self.n_inputs
        if self._embedding != "none":  # module 0, a NumericEmbedding: its buffers, then its encoder's parameters
            numeric, passed = self._columns
            state["0.numeric"] = torch.tensor(numeric, dtype=torch.int64)
            state["0.passed"] = torch.tensor(passed, dtype=torch.int64)
            names = ("frequencies", "weight", "bias") if self._embedding == "periodic" else ("weight", "bias")
            state.update({f"0.encoder.{name}": t.clone() for name, t in zip(names, embedded)})
            if self._embedding == "pl":
                state["0.encoder.edges"] = self._edges.cpu().clone()
            position = 1
        for layer, (width, p) in enumerate(zip(spec.net.widths, spec.net.dropouts)):
            first = self._per_layer * layer
            weight, bias = tensors[first], tensors[first + 1]
            state[f"{position}.weight"] = weight[:fan_in, :width].T.clone()  # (width, fan_in)
            state[f"{position}.bias"] = bias[:width].clone()
            if self.group.normalization != "none":
                position += 1
                state[f"{position}.weight"] = tensors[first + 2][:width].clone()
                state[f"{position}.bias"] = tensors[first + 3][:width].clone()
            if self._batch_norm:
                stats = self._best_stats
                state[f"{position}.running_mean"] = stats.mean[layer, index, :width].cpu().clone()
                state[f"{position}.running_var"] = stats.var[layer, index, :width].cpu().clone()
                state[f"{position}.num_batches_tracked"] = stats.tracked[index].cpu().clone()
            position += 3 if p > 0 else 2  # Linear, activation[, Dropout]
            fan_in = width
        state[f"{position}.weight"] = tensors[-2][:fan_in].T.clone()  # (n_outputs, fan_in)
        state[f"{position}.bias"] = tensors[-1].clone()
        return state

    def _initialize(self, index: int, spec: SlotSpec, generator: torch.Generator) -> None:
        """Draw the slot's weights exactly as `build_mlp(..., generator=generator)` would, into its padded row."""
        self.params[index].zero_()
        views = [
            self.params[index, a:b].view(shape)
            for (a, b), shape in zip(zip(self._offsets, self._offsets[1:]), self._shapes)
        ]
        embedded, views = views[: self._lead], views[self._lead :]
        if self._embedding != "none":
            # build_embedding draws first, as its modules do: (periodic: the frequencies ~ N(0, sigma),) the
            # weight, then the bias, each U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the per-feature Linear's fan_in.
            if self._embedding == "periodic":
                frequencies, *embedded = embedded
                frequencies.copy_(torch.empty(frequencies.shape).normal_(0.0, PERIODIC_SIGMA, generator=generator))
            bound = 1.0 / math.sqrt(embedded[0].shape[1])
            for tensor in embedded:
                tensor.copy_(torch.empty(tensor.shape).uniform_(-bound, bound, generator=generator))
        fan_in = self.n_inputs
        layers = [(self._per_layer * layer, width) for layer, width in enumerate(spec.net.widths)]
        layers.append((len(views) - 2, self.data.n_outputs))
        for position, fan_out in layers:
            bound = 1.0 / math.sqrt(fan_in)
            # Drawn in build_mlp's order and shapes: the weight (fan_out, fan_in), then the bias.
            weight = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator)
            bias = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
            views[position][:fan_in, :fan_out] = weight.T.to(self.device)
            views[position + 1][:fan_out] = bias.to(self.device)
            if self.group.normalization != "none" and position < len(views) - 2:
                views[position + 2][:fan_out] = 1.0  # both norms start at weight 1, bias 0 (no draw)
            fan_in = fan_out

    def _clear(self, index: int) -> None:
        self._slots[index] = None
        self.params[index].zero_()
        self._best[index].zero_()
        self._stats.reset(index)
        self._best_stats.reset(index)
        self._optimizer.clear(index)

    def _refresh_masks(self) -> None:
        """Per-slot masks of the current occupants, rebuilt only when a slot is added or freed."""
        depth = self.group.max_depth
        on = torch.zeros(depth, self._size, 1, 1, dtype=torch.bool)
        drop = torch.zeros(depth, self._size, 1, 1)
        active = torch.zeros(self._size)
        for index, slot in enumerate(self._slots):
            if slot is None:
                on[:, index] = True  # an empty slot's zero layers give zeros either way; no pass-through needed
                continue
            active[index] = 1.0
            for layer, p in enumerate(slot.spec.net.dropouts):
                on[layer, index] = True
                drop[layer, index] = p
        self._on = on.to(self.device)  # (depth, capacity, 1, 1): the slot has this layer
        self._passthrough = [not bool(on[layer].all()) for layer in range(depth)]
        self._drop = drop.to(self.device)  # (depth, capacity, 1, 1)
        self._keep_scale = (1.0 / (1.0 - drop)).to(self.device)
        self._dropout_layers = [bool((drop[layer] > 0).any()) for layer in range(depth)]
        self._active = active.to(self.device)  # (capacity,)
        units = torch.zeros(depth, self._size, 1, self.group.max_width)
        for index, slot in enumerate(self._slots):
            for layer, width in enumerate([] if slot is None else slot.spec.net.widths):
                units[layer, index, 0, :width] = 1.0
        self._units = units.to(self.device)  # (depth, capacity, 1, width): the slot's real units of the layer
        # At least 1, so a slot without the layer (all zeros) normalizes to zeros, not 0 / 0.
        self._n_units = units.sum(dim=3, keepdim=True).clamp(min=1.0).to(self.device)  # (depth, capacity, 1, 1)
        occupants = [slot.spec.settings for slot in self._slots if slot is not None]
        smoothing = [0.0 if slot is None else slot.spec.settings.label_smoothing for slot in self._slots]
        self._smoothing = torch.tensor(smoothing, device=self.device)  # (capacity,)
        self._smoothing_any = any(s.label_smoothing > 0 for s in occupants)
        clips = [
            math.inf if slot is None or slot.spec.settings.grad_clip is None else slot.spec.settings.grad_clip
            for slot in self._slots
        ]
        self._max_norm = torch.tensor(clips, device=self.device)  # (capacity,)
        self._clipped = torch.isfinite(self._max_norm)  # (capacity,)
        self._clip_any = any(s.grad_clip is not None for s in occupants)
        self._scheduled = [
            slot is not None and (slot.spec.settings.lr_schedule != "constant" or slot.spec.settings.warmup > 0)
            for slot in self._slots
        ]

    def _inputs(self, split: str, index: torch.Tensor | slice, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The first Linear's inputs for rows `index` of `split`: rows (capacity, batch) give (capacity, batch,
        n_inputs) and a slice gives the shared (rows, n_features) without an embedding, else (capacity, rows, n_inputs).

        With an embedding, `params` are all the leaves and the embedding's come first; computed as
        `NumericEmbedding` computes it, per slot.
        """
        if self._embedding == "none":
            return self._x[split][index]
        # (capacity, batch, numeric) or shared (rows, numeric); a pl encoding adds a dimension of bins. Encoded
        # per batch, not once per split: a population would hold rows x numeric x dim floats (GBs on large data).
        codes = self._numeric_x[split][index]
        if self._embedding == "pl":
            codes = pl_encoding(codes, self._edges)
        if self._embedding == "periodic":
            # (capacity, numeric, dim), (capacity, numeric, 2 dim, dim), (capacity, numeric, dim)
            frequencies, weight, bias = params[:3]
            x = codes.unsqueeze(-1)  # (capacity, batch, numeric, 1) or (rows, numeric, 1)
            x = x if x.dim() == 4 else x.unsqueeze(0)
            phase = 2 * math.pi * x * frequencies.unsqueeze(1)  # (capacity, rows, numeric, dim)
            codes = torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)  # (capacity, rows, numeric, 2 dim)
        else:
            weight, bias = params[:2]  # (capacity, numeric, dim, dim), (capacity, numeric, dim)
        equation = "kbfi,kfio->kbfo" if codes.dim() == 4 else "bfi,kfio->kbfo"
        out = torch.einsum(equation, codes, weight) + bias.unsqueeze(1)  # (capacity, rows, numeric, dim)
        if self._embedding == "periodic":
            out = torch.relu(out)
        passed = self._passed[split][index]  # (capacity, batch, others) or (rows, others)
        if passed.dim() == 2:
            passed = passed.expand(self._size, *passed.shape)
        return torch.cat([out.flatten(2), passed], dim=2)  # (capacity, rows, n_inputs)

    def _folded_first_layer(
        self, split: str, index: torch.Tensor | slice, params: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """The first hidden Linear's output (capacity, rows, width) behind a pl embedding, computed folded.

        A pl embedding's per-feature Linear is followed by the first hidden Linear with nothing between, so
        enc @ (W_emb W_1) + (b_emb W_1 + b_1) equals (enc @ W_emb + b_emb) @ W_1 + b_1 to float rounding
        (the same parameters and gradients, another association). Folding the two weights costs
        capacity x numeric x dim^2 x width multiply-adds a step, instead of a per-row product and its
        copies; the per-row embedding output (capacity, rows, numeric x dim) is never built.
        """
        # (capacity, numeric, dim, dim), (capacity, numeric, dim); then (capacity, n_inputs, width), (capacity, width)
        embedding_weight, embedding_bias = params[0], params[1]
        weight, bias = params[self._lead], params[self._lead + 1]
        capacity, n_numeric, dim, _ = embedding_weight.shape
        embedded = n_numeric * dim
        first = weight[:, :embedded].reshape(capacity, n_numeric, dim, -1)  # (capacity, numeric, dim, width)
        folded = torch.matmul(embedding_weight, first).reshape(capacity, embedded, -1)  # (capacity, n x dim, width)
        folded_bias = torch.bmm(embedding_bias.reshape(capacity, 1, embedded), first.reshape(capacity, embedded, -1))
        encoding = pl_encoding(self._numeric_x[split][index], self._edges)  # (capacity, batch | rows, numeric, dim)
        z = _affine(encoding.flatten(-2), folded, folded_bias.squeeze(1) + bias)  # (capacity, rows, width)
        if weight.shape[1] > embedded:  # the inputs passed through (one-hot) meet their own rows of the weight
            z = z + torch.matmul(self._passed[split][index], weight[:, embedded:])
        return z

    def _forward(
        self, split: str, index: torch.Tensor | slice, params: Sequence[torch.Tensor], train: bool
    ) -> torch.Tensor:
        """Outputs (capacity, rows, n_outputs) for rows `index` of `split` (see `_inputs`), from all the leaves."""
        folded = self._embedding == "pl" and self.group.max_depth > 0
        # The first Linear's inputs are built only where needed: without the folded pl layer, or when a
        # slot without hidden layers carries them on.
        h = None if folded and not self._passthrough[0] else self._inputs(split, index, params)
        leaves, params = params, params[self._lead :]
        for layer in range(self.group.max_depth):
            first = self._per_layer * layer
            weight, bias = params[first], params[first + 1]  # (capacity, in, width), (capacity, width)
            if layer == 0 and folded:
                z = self._folded_first_layer(split, index, leaves)
            else:
                z = _affine(h, weight, bias)  # (capacity, rows, width)
            if self.group.normalization != "none":
                z = z.float()  # statistics in float32 under bf16 autocast, as autocast runs layer_norm
            if self._layer_norm:
                z = self._normalize(z, layer, params[first + 2], params[first + 3])
            elif self._batch_norm:
                z = self._batch_normalize(z, layer, params[first + 2], params[first + 3], train)
            a = self._act(z)
            if train and self._dropout_layers[layer]:
                draw = torch.rand(a.shape, generator=self._dropout_generator, device=a.device)
                a = a * ((draw >= self._drop[layer]) * self._keep_scale[layer])
            if self._passthrough[layer]:
                # A slot without this layer carries its last hidden layer on (zero-padded to the width).
                carried = F.pad(h, (0, a.shape[-1] - h.shape[-1])) if h.shape[-1] < a.shape[-1] else h
                a = torch.where(self._on[layer], a, carried)
            h = a
        return _affine(h, params[-2], params[-1])

    def _normalize(self, z: torch.Tensor, layer: int, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """nn.LayerNorm over each slot's real units of `layer` only; padded units stay exactly zero."""
        units, n_units = self._units[layer], self._n_units[layer]  # (capacity, 1, width), (capacity, 1, 1)
        mean = (z * units).sum(dim=2, keepdim=True) / n_units  # (capacity, rows, 1)
        centered = (z - mean) * units  # (capacity, rows, width)
        variance = (centered * centered).sum(dim=2, keepdim=True) / n_units  # biased, as LayerNorm's
        return centered * torch.rsqrt(variance + NORM_EPS) * gain.unsqueeze(1) + shift.unsqueeze(1)

    def _batch_normalize(
        self, z: torch.Tensor, layer: int, gain: torch.Tensor, shift: torch.Tensor, train: bool
    ) -> torch.Tensor:
        """nn.BatchNorm1d per slot: batch statistics in training (updating the running ones), else the running ones."""
        # A padded unit is zero on every row: mean 0, variance 0, so it normalizes to exactly zero.
        stats = self._stats
        if train:
            mean = z.mean(dim=1, keepdim=True)  # (capacity, 1, width)
            variance = z.var(dim=1, unbiased=False, keepdim=True)  # (capacity, 1, width)
            with torch.no_grad():
                rows = z.shape[1]
                m = BATCH_NORM_MOMENTUM
                stats.mean[layer].mul_(1 - m).add_(mean.squeeze(1).detach(), alpha=m)
                # The running variance is the unbiased one, as BatchNorm1d keeps it.
                stats.var[layer].mul_(1 - m).add_(variance.squeeze(1).detach() * (rows / (rows - 1)), alpha=m)
                if layer == 0:
                    stats.tracked += 1
        else:
            mean, variance = stats.mean[layer].unsqueeze(1), stats.var[layer].unsqueeze(1)  # (capacity, 1, width)
        return (z - mean) * torch.rsqrt(variance + NORM_EPS) * gain.unsqueeze(1) + shift.unsqueeze(1)

    def _train_epoch(self) -> list[float]:
        """One pass over each slot's own shuffle of the training rows; returns each slot's mean loss."""
        n_rows, batch_size = self._x["train"].shape[0], self.group.batch_size
        orders = [
            torch.randperm(n_rows, generator=s.generator) if s is not None else torch.arange(n_rows)
            for s in self._slots
        ]  # drawn on CPU, as train_mlp does, so the batch order is the same on every device
        order = torch.stack(orders).to(self.device)  # (capacity, n_rows)
        losses, sizes = [], []
        for batch in range(_batches_per_epoch(n_rows, batch_size, self.group.normalization)):
            start = batch * batch_size
            self._schedule_lrs()
            rows = order[:, start : start + batch_size]  # (capacity, batch)
            with _autocast(self.device, self._use_bf16):
                out = self._forward("train", rows, self._leaves, train=True)  # (capacity, batch, n_outputs)
            loss = self._loss(out.float(), self._y_train[rows])  # (capacity,)
            # Each slot's loss depends on its own leaves only, so one backward of the sum gives every slot its gradient.
            grads = torch.autograd.grad((loss * self._active).sum(), self._leaves)
            flat = torch.cat([g.reshape(self._size, -1) for g in grads], dim=1)  # (rows, n_params)
            if self._clip_any:
                flat = self._clip(flat)
            self._optimizer.step(self.params, flat)
            losses.append(loss.detach())
            sizes.append(rows.shape[1])
        weights = torch.tensor(sizes, dtype=torch.float32, device=self.device)  # (n_batches,)
        return (weights @ torch.stack(losses) / sum(sizes)).tolist()  # the epoch's only host sync

    def _schedule_lrs(self) -> None:
        """Set each scheduled slot's lr for its next step, as train_mlp's `_set_lr(... _lr_factor(...))`."""
        n_batches = _batches_per_epoch(self._x["train"].shape[0], self.group.batch_size, self.group.normalization)
        for index, slot in enumerate(self._slots):
            if slot is None:
                continue
            settings = slot.spec.settings
            if self._scheduled[index]:
                # The schedule spans the slot's whole budget, as in train_mlp, whenever the slot joined.
                factor = _lr_factor(slot.step, settings.epochs * n_batches, settings)
                self._optimizer.set_lr(index, settings.lr * factor)
            slot.step += 1

    def _clip(self, grads: torch.Tensor) -> torch.Tensor:
        """Each clipping slot's gradient row (capacity, n_params) scaled as clip_grad_norm_ over its parameters."""
        # One norm over the slot's whole row, as clip_grad_norm_ takes over all of a model's parameters;
        # padded entries are zero and leave the norm unchanged.
        norms = torch.linalg.vector_norm(grads, dim=1)  # (capacity,)
        scale = (self._max_norm / (norms + 1e-6)).clamp(max=1.0)
        return grads * torch.where(self._clipped, scale, 1.0).unsqueeze(1)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-slot mean loss (capacity,) of outputs (capacity, batch, n_outputs), as train_mlp's loss."""
        if self.data.task == "regression":
            return ((out.squeeze(2) - y) ** 2).mean(dim=1)
        capacity, batch, n_classes = out.shape
        per_row = F.cross_entropy(
            out.reshape(-1, n_classes), y.reshape(-1), weight=self._class_weights, reduction="none"
        ).view(capacity, batch)
        weights = self._class_weights
        # cross_entropy's weighted mean divides by the summed weights of the batch's classes.
        total = float(batch) if weights is None else weights[y].sum(dim=1)  # (capacity,)
        nll = per_row.mean(dim=1) if weights is None else per_row.sum(dim=1) / total
        if not self._smoothing_any:
            return nll
        # cross_entropy(label_smoothing=eps) = (1 - eps) * nll + eps / n_classes * the (weighted) sum of
        # -log p over every class, averaged with the same denominator as nll.
        log_p = F.log_softmax(out, dim=2)  # (capacity, batch, n_classes)
        spread = -(log_p if weights is None else log_p * weights).sum(dim=2).sum(dim=1) / total  # (capacity,)
        eps = self._smoothing
        # A slot without smoothing keeps the plain loss, as cross_entropy skips the term when eps is 0.
        return torch.where(eps > 0, (1 - eps) * nll + spread * (eps / n_classes), nll)

    def _val_outputs(self) -> torch.Tensor:
        """Every slot's float outputs on the validation split, (capacity, n_val, n_outputs), in chunks."""
        n_val = self._x["val"].shape[0]
        # Floats a slot holds per row at the chunk's peak: a hidden layer, the outputs, or the embedding's (pl:
        # the first Linear's inputs, built when a slot without hidden layers carries them on; periodic: also the
        # phase, its cos and sin, and their concatenation).
        embedding = {"none": 0, "pl": self.n_inputs, "periodic": 6 * self.n_inputs}[self._embedding]
        width = max(self.group.max_width, self.data.n_outputs, embedding)
        rows = max(1, _EVAL_ELEMENTS // (self._size * width))
        params = [p.detach() for p in self._leaves]
        with torch.inference_mode(), _autocast(self.device, self._use_bf16):
            chunks = [
                self._forward("val", slice(i, i + rows), params, train=False).float() for i in range(0, n_val, rows)
            ]
        return torch.cat(chunks, dim=1)


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


class _BatchStats:
    """BatchNorm1d's running statistics for every hidden layer and slot, reset as a fresh BatchNorm1d's."""

    def __init__(self, depth: int, capacity: int, width: int, device: torch.device):
        self.mean = torch.zeros(depth, capacity, width, device=device)
        self.var = torch.ones(depth, capacity, width, device=device)
        self.tracked = torch.zeros(capacity, dtype=torch.int64, device=device)  # training batches seen

    def resize(self, rows: int) -> None:
        """Hold `rows` slots: the first ones keep their statistics, added ones are a fresh BatchNorm1d's."""
        self.mean, self.var = resized(self.mean, rows, dim=1), resized(self.var, rows, dim=1, fill=1.0)
        self.tracked = resized(self.tracked, rows)

    def reset(self, index: int) -> None:
        self.mean[:, index] = 0.0
        self.var[:, index] = 1.0
        self.tracked[index] = 0

    def copy_slot(self, index: int, other: _BatchStats) -> None:
        self.mean[:, index] = other.mean[:, index]
        self.var[:, index] = other.var[:, index]
        self.tracked[index] = other.tracked[index]


def _affine(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """h @ weight + bias per slot: h (capacity, rows, in) or shared (rows, in), weight (capacity, in, out)."""
    if h.dim() == 3:
        return torch.baddbmm(bias.unsqueeze(1), h, weight)
    return torch.matmul(h, weight) + bias.unsqueeze(1)
