"""What slots of one population share (`FusedGroup`), what one slot trains (`SlotSpec`), and which populations
a network should join: the fused engine's placement rules, without torch arithmetic beyond a device check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from archsearch.trainers.engine import (
    ACTIVATIONS,
    CLASS_WEIGHTS,
    DEFAULT_DIM,
    Report,
    TrainSettings,
    is_int,
    wants_lbfgs,
)
from archsearch.trainers.names import EMBEDDINGS, NORMALIZATIONS, Net

__all__ = [
    "FUSED_SETTINGS",
    "FusedGroup",
    "Report",
    "SlotSpec",
    "fused_unsupported_reason",
    "network_macs",
    "padded_macs",
    "padding_acceptable",
    "padding_is_free",
    "size_bucket",
]

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
        "linear_solver",  # unused by hidden-layer slots; a linear slot it fits by L-BFGS is refused below
    }
)


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
    if wants_lbfgs(net, settings.linear_solver):
        return "a linear model is fitted by the single engine ([train] linear_solver = 'lbfgs'), by L-BFGS where the data allow"
    if getattr(net, "blocks", ()):
        return "the fused engine does not select feature blocks yet"
    if getattr(net, "head", "softmax") != "softmax":
        return f"the fused engine has no {net.head!r} head yet"
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
