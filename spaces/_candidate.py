"""Plain values describing one network to train: its architecture and its training hyperparameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.base import is_finite_real, is_int, is_sequence
from archsearch.spaces._validation import (
    InvalidSpaceError,
    check_float,
    check_int,
    check_keys,
    check_name,
    error,
)

ACTIVATIONS = ("relu", "gelu", "tanh", "silu", "leaky_relu", "elu")
# "sgd" is SGD with Nesterov momentum 0.9; plain SGD is rarely competitive on MLPs.
OPTIMIZERS = ("adam", "adamw", "sgd")
# The trainer's names (archsearch.trainers), repeated because spaces import nothing of ours.
LR_SCHEDULES = ("constant", "cosine", "onecycle")
NORMALIZATIONS = ("none", "batch", "layer")
# Numeric-feature embeddings before the first layer (archsearch.trainers._embedding): periodic (PLR) or
# piecewise-linear on quantile bins.
EMBEDDINGS = ("none", "periodic", "pl")
# Values per embedded feature when a space names none: 16 tested ahead of 8 on the quality benchmark's median
# table and on its worst (phoneme, 5 features), at n = 4 seeds (BENCHMARKS.md section 6, fifth session).
EMBEDDING_DIM = 16
# A classifier's output head (archsearch.trainers._heads): one softmax, or one sigmoid per class.
HEADS = ("softmax", "one_vs_rest")


@dataclass(frozen=True)
class NetSpec:
    """One network's architecture: the single value that travels from sampling to ``architecture.json``.

    The space builds it once per trial (:meth:`MLPSpace.sample`); the objective stores it once (its
    :meth:`to_dict` keys as the trial's user attributes); the trainer, the fused engine's slots, sensitivity
    jobs, export and the report take it as it is. Trials stored before it read back with :meth:`from_trial`.

    Args:
        widths: Units of each hidden layer, input side first. Empty for a linear (or softmax) model.
        dropouts: Dropout probability after each hidden layer, in ``[0, 1)``; 0.0 means no Dropout layer.
        activation: One of :data:`ACTIVATIONS`, used after every hidden layer.
        normalization: One of :data:`NORMALIZATIONS`: a norm layer after each hidden ``Linear``.
        embedding: One of :data:`EMBEDDINGS`: how each numeric input feature is encoded before the first
            layer (one-hot inputs pass through). Allowed at depth 0, where it makes the model non-linear.
        embedding_dim: Values per embedded feature (frequencies or bins, and the embedding's output size);
            unused when ``embedding`` is ``"none"``.
        blocks: Names of the data's feature blocks the network reads (``[data] blocks``); empty: every input.
        head: One of :data:`HEADS`: a softmax over the classes, or one sigmoid per class trained one-vs-rest.

    Example:
        >>> net = NetSpec(widths=(32, 16), dropouts=(0.1, 0.0), activation="relu")
        >>> net.n_params(64, 10)
        2778
    """

    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    activation: str
    normalization: str = "none"
    embedding: str = "none"
    embedding_dim: int = EMBEDDING_DIM
    blocks: tuple[str, ...] = ()
    head: str = "softmax"

    def __post_init__(self) -> None:
        owner = "NetSpec"
        check_name(owner, "head", self.head, HEADS)
        blocks = self.blocks
        if not (
            is_sequence(blocks) and all(isinstance(b, str) and b for b in blocks) and len(set(blocks)) == len(blocks)
        ):
            raise error(owner, "blocks", "a list of distinct block names", blocks)
        object.__setattr__(self, "blocks", tuple(blocks))
        if not (is_sequence(self.widths) and all(is_int(w) and w >= 1 for w in self.widths)):
            raise error(owner, "widths", "a list of ints >= 1", self.widths)
        if not (is_sequence(self.dropouts) and all(is_finite_real(p) and 0 <= p < 1 for p in self.dropouts)):
            raise error(owner, "dropouts", "a list of floats in [0, 1)", self.dropouts)
        if len(self.dropouts) != len(self.widths):
            raise error(owner, "dropouts", f"a list as long as widths ({len(self.widths)})", self.dropouts)
        check_name(owner, "activation", self.activation, ACTIVATIONS)
        check_name(owner, "normalization", self.normalization, NORMALIZATIONS)
        check_name(owner, "embedding", self.embedding, EMBEDDINGS)
        object.__setattr__(self, "embedding_dim", check_int(owner, "embedding_dim", self.embedding_dim, low=1))
        # Frozen: coerce through object.__setattr__ so lists from JSON/TOML compare and hash as tuples.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "dropouts", tuple(float(p) for p in self.dropouts))

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.widths)

    @property
    def total_units(self) -> int:
        """Sum of the hidden widths."""
        return sum(self.widths)

    def n_params(self, n_inputs: int, n_outputs: int, *, n_numeric: int | None = None) -> int:
        """Count the trainable scalars of the embedding and the ``Linear`` chain ``inputs -> widths... -> n_outputs``.

        A norm layer's gain and shift are not counted, as in every study stored so far.

        Args:
            n_inputs: Input features.
            n_outputs: Classes, or 1.
            n_numeric: Inputs that are numeric (embedded); the others are one-hot and pass through.
                None: all of them.
        """
        n_embedded = self._embedded(n_inputs, n_numeric)
        d = self.embedding_dim
        # Per feature: periodic has d frequencies and a Linear(2d -> d); pl a Linear(d bins -> d).
        per_feature = {"none": 0, "periodic": d + 2 * d * d + d, "pl": d * d + d}[self.embedding]
        sizes = (self.input_width(n_inputs, n_numeric=n_numeric), *self.widths, n_outputs)
        linear = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
        return n_embedded * per_feature + linear

    def input_width(self, n_inputs: int, *, n_numeric: int | None = None) -> int:
        """Inputs of the first ``Linear``: each embedded feature gives ``embedding_dim`` values, the rest one.

        Example:
            >>> NetSpec((8,), (0.0,), "relu", embedding="pl", embedding_dim=4).input_width(5, n_numeric=3)
            14
        """
        n_embedded = self._embedded(n_inputs, n_numeric)
        return n_inputs - n_embedded + n_embedded * self.embedding_dim

    def _embedded(self, n_inputs: int, n_numeric: int | None) -> int:
        return 0 if self.embedding == "none" else (n_inputs if n_numeric is None else n_numeric)

    def layer_shape(self) -> str:
        """Name the width profile, for grouping trials in reports (see :func:`classify_shape`)."""
        return classify_shape(self.widths)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, the inverse of :meth:`from_dict`.

        The normalization and embedding keys appear only when they are not "none", so a plain network's
        dict (and every record stored from it) reads as before they existed.
        """
        out: dict[str, Any] = {
            "widths": list(self.widths),
            "dropouts": list(self.dropouts),
            "activation": self.activation,
        }
        if self.normalization != "none":
            out["normalization"] = self.normalization
        if self.embedding != "none":
            out.update(embedding=self.embedding, embedding_dim=self.embedding_dim)
        if self.blocks:
            out["blocks"] = list(self.blocks)
        if self.head != "softmax":
            out["head"] = self.head
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetSpec:
        """Build from :meth:`to_dict` output; unknown or missing keys raise :class:`InvalidSpaceError`.

        The normalization and embedding keys may be missing (dicts stored before they existed): none.
        """
        return cls(**_fields_of(cls, data))

    @classmethod
    def from_trial(cls, attrs: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> NetSpec:
        """Build from a stored trial: its user attributes (which hold :meth:`to_dict`'s keys among others).

        Trials stored before the spec held its norm layer recorded it as the parameter ``normalization``
        only; ``params`` (the trial's) supplies it then. Neither: no norm layer.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in attrs.items() if key in names}
        if "normalization" not in fields and params is not None and "normalization" in params:
            fields["normalization"] = params["normalization"]
        return cls.from_dict(fields)


@dataclass(frozen=True)
class Hyperparameters:
    """How one network is trained.

    Args:
        lr: Learning rate, > 0.
        weight_decay: Decoupled (AdamW) or L2 (Adam, SGD) weight decay, >= 0.
        batch_size: Examples per step, >= 1.
        optimizer: One of :data:`OPTIMIZERS`.
        lr_schedule: One of :data:`LR_SCHEDULES`, stepped per batch over the whole epoch budget.
        label_smoothing: Cross-entropy label smoothing in ``[0, 0.5)``; classification only.

    The last two default to training as archsearch did before they existed, so candidates stored
    without them mean what they meant then.
    """

    lr: float
    weight_decay: float
    batch_size: int
    optimizer: str
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        owner = "Hyperparameters"
        object.__setattr__(self, "lr", check_float(owner, "lr", self.lr, "a float > 0", lambda v: v > 0))
        object.__setattr__(
            self,
            "weight_decay",
            check_float(owner, "weight_decay", self.weight_decay, "a float >= 0", lambda v: v >= 0),
        )
        object.__setattr__(self, "batch_size", check_int(owner, "batch_size", self.batch_size, low=1))
        check_name(owner, "optimizer", self.optimizer, OPTIMIZERS)
        check_name(owner, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        object.__setattr__(
            self,
            "label_smoothing",
            check_float(owner, "label_smoothing", self.label_smoothing, "a float in [0, 0.5)", lambda v: 0 <= v < 0.5),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hyperparameters:
        """Build from :meth:`to_dict` output; unknown or missing keys raise :class:`InvalidSpaceError`."""
        return cls(**_fields_of(cls, data))


@dataclass(frozen=True)
class Candidate:
    """One point of a search space: what :meth:`MLPSpace.sample` returns for a trial."""

    architecture: NetSpec
    hyperparameters: Hyperparameters

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, suitable for an Optuna user attribute."""
        return {
            "architecture": self.architecture.to_dict(),
            "hyperparameters": self.hyperparameters.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Build from :meth:`to_dict` output."""
        fields = _fields_of(cls, data)
        return cls(
            architecture=NetSpec.from_dict(fields["architecture"]),
            hyperparameters=Hyperparameters.from_dict(fields["hyperparameters"]),
        )


def _fields_of(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    check_keys(cls.__name__, data, names)
    # A field with a default was added later: data written before it may lack it.
    required = tuple(f.name for f in fields if f.default is dataclasses.MISSING)
    missing = [name for name in required if name not in data]
    if missing:
        raise InvalidSpaceError(
            f"Missing key {missing[0]!r} in {cls.__name__}; required keys are: {', '.join(required)}."
        )
    return dict(data)


def classify_shape(widths: Sequence[int]) -> str:
    """Name the profile of a list of hidden widths, input side first.

    Returns:
        ``"linear"`` (no hidden layer), ``"single"`` (one), ``"uniform"`` (all equal), ``"funnel"``
        (never widens, narrows at least once), ``"expanding"`` (never narrows, widens at least
        once), ``"diamond"`` (widens, then narrows; equal neighbours allowed, as for funnel) or
        ``"irregular"``.
    """
    widths = list(widths)
    if len(widths) <= 1:
        return ("linear", "single")[len(widths)]
    # Signs of the non-zero steps: equal neighbours do not change the profile.
    signs = [1 if b > a else -1 for a, b in zip(widths, widths[1:]) if b != a]
    if not signs:
        return "uniform"
    if all(s < 0 for s in signs):
        return "funnel"
    if all(s > 0 for s in signs):
        return "expanding"
    first_decrease = signs.index(-1)
    if signs[0] > 0 and all(s < 0 for s in signs[first_decrease:]):
        return "diamond"
    return "irregular"
