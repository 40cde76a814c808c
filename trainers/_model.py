"""The feedforward network that archsearch searches over, built from plain architecture values."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from archsearch.base import is_int
from archsearch.trainers.names import NORMALIZATIONS

# Keyed in the order of `names.ACTIVATIONS`, which tests/test_rules.py checks.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def build_mlp(
    n_inputs: int,
    widths: Sequence[int],
    dropouts: Sequence[float],
    activation: str,
    n_outputs: int,
    *,
    generator: torch.Generator | None = None,
    normalization: str = "none",
    embedding: nn.Module | None = None,
) -> nn.Sequential:
    """Build `Linear [-> norm] -> activation [-> Dropout]` per hidden layer, then a final `Linear`.

    A Dropout module is added only where its probability is > 0, and zero hidden layers give a single
    Linear (a linear or logistic model). An `embedding` goes first, feeding its `out_features` values to
    the first Linear; the trainer allows it with zero hidden layers too (the model is then additive in
    learned per-feature functions, no longer linear), while the search keeps its depth-0 model plain.

    Args:
        n_inputs: Number of input features.
        widths: Width of each hidden layer, input side first.
        dropouts: Dropout probability after each hidden layer, one per width.
        activation: One of `ACTIVATIONS`.
        n_outputs: Number of classes, or 1 for regression.
        generator: When given, every weight and bias is drawn from it (with PyTorch's default
            distribution) and the global random state is left untouched, so two models built from
            equally seeded generators are identical even when other code draws random numbers meanwhile.
        normalization: One of `NORMALIZATIONS`: "batch" (BatchNorm1d) or "layer" (LayerNorm) adds a norm
            layer after each hidden Linear; "none" adds nothing, so module indices and weight names stay those
            of networks built before this option existed.
        embedding: An input encoding with an `out_features` attribute, e.g. from `build_embedding`.

    Returns:
        The network on CPU, in training mode.

    Example:
        >>> build_mlp(4, [8], [0.1], "relu", 3)
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.1, inplace=False)
          (3): Linear(in_features=8, out_features=3, bias=True)
        )
    """
    check_architecture(n_inputs, widths, dropouts, activation, n_outputs)
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"The 'normalization' parameter of build_mlp must be one of {list(NORMALIZATIONS)}. "
            f"Got {normalization!r} instead."
        )
    layers: list[nn.Module] = [] if embedding is None else [embedding]
    fan_in = n_inputs if embedding is None else embedding.out_features
    for width, p in zip(widths, dropouts):
        layers.append(_linear(fan_in, width, generator))
        if normalization != "none":
            layers.append(nn.BatchNorm1d(width) if normalization == "batch" else nn.LayerNorm(width))
        layers.append(ACTIVATIONS[activation]())
        if p > 0:
            layers.append(nn.Dropout(p))
        fan_in = width
    layers.append(_linear(fan_in, n_outputs, generator))
    return nn.Sequential(*layers)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _linear(fan_in: int, fan_out: int, generator: torch.Generator | None) -> nn.Linear:
    if generator is None:
        return nn.Linear(fan_in, fan_out)
    # PyTorch's own init draws from the global generator; fork_rng puts that state back. (skip_init would
    # avoid the draw, but its meta-device path imports sympy: 0.7 s at the first layer of every worker.)
    with torch.random.fork_rng(devices=[]):
        layer = nn.Linear(fan_in, fan_out)
    # PyTorch's default (kaiming_uniform_ with a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)  # (fan_out, fan_in)
        layer.bias.uniform_(-bound, bound, generator=generator)  # (fan_out,)
    return layer


def check_architecture(
    n_inputs: int, widths: Sequence[int], dropouts: Sequence[float], activation: str, n_outputs: int
) -> None:
    for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
        if not is_int(value) or value < 1:
            raise ValueError(f"The '{name}' parameter of build_mlp must be an int >= 1. Got {value!r} instead.")
    if not all(is_int(w) and w >= 1 for w in widths):
        raise ValueError(
            f"The 'widths' parameter of build_mlp must be a sequence of ints >= 1. Got {list(widths)!r} instead."
        )
    if len(dropouts) != len(widths) or not all(
        isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1 for p in dropouts
    ):
        raise ValueError(
            "The 'dropouts' parameter of build_mlp must hold one float in the range [0, 1) per width "
            f"({len(widths)}). Got {list(dropouts)!r} instead."
        )
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"The 'activation' parameter of build_mlp must be one of {sorted(ACTIVATIONS)}. Got {activation!r} instead."
        )
