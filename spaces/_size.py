"""A network's size from its architecture alone: the scalars its export ships and its FLOPs per row.

Both are exact and known before training, so the search can refuse a candidate over a budget
(`[space] max_params`, `max_flops`) before it spends a trial on it, and a multi-objective study can use them
as objectives. Counted from the same layers as `archsearch.trainers` builds (tests/trainers/test_size.py
checks both numbers against a built network: the state dict's sizes and `torch.utils.flop_counter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsearch.spaces._candidate import NetSpec
from archsearch.spaces._validation import InvalidSpaceError

if TYPE_CHECKING:
    from archsearch.spaces._mlp import MLPSpace

__all__ = ["NetSize", "check_budget_reachable", "net_size", "over_budget"]


@dataclass(frozen=True)
class NetSize:
    """How big one network is.

    Attributes:
        params: Every scalar of the network's state dict, which is what the export ships: weights and
            biases, the norm layers' gains and shifts (and batch norm's running mean, variance and step
            count), the embedding's parameters, its bin edges and the index buffers that route the numeric
            features. The preprocessing and calibration an export adds are not counted.
        trainable: The trainable scalars among them (the optimizer's share).
        flops: Floating-point operations to predict one row, 2 per multiply-add of the network's matrix
            products (each Linear and the embedding's per-feature Linear), the convention of
            `torch.utils.flop_counter`; element-wise work (activations, norms, biases, the embedding's
            cos/sin or bins) is a few operations per value and left out, as that counter does.
    """

    params: int
    trainable: int
    flops: int


def net_size(net: NetSpec, n_inputs: int, n_outputs: int, *, n_numeric: int | None = None) -> NetSize:
    """The size of `net` on `n_inputs` features (`n_numeric` of them numeric, the rest one-hot) and `n_outputs`.

    Example:
        >>> net_size(NetSpec((32, 16), (0.1, 0.0), "relu"), 64, 10)
        NetSize(params=2778, trainable=2778, flops=5440)
    """
    n_embedded = 0 if net.embedding == "none" else (n_inputs if n_numeric is None else n_numeric)
    d = net.embedding_dim
    sizes = (net.input_width(n_inputs, n_numeric=n_numeric), *net.widths, n_outputs)
    pairs = list(zip(sizes, sizes[1:]))
    trainable = sum(fan_in * fan_out + fan_out for fan_in, fan_out in pairs)
    flops = sum(2 * fan_in * fan_out for fan_in, fan_out in pairs)
    buffers = 0
    if n_embedded:
        # Periodic: d frequencies and a Linear(2d -> d) per feature; pl: a Linear(d bins -> d) and d + 1 edges.
        trainable += n_embedded * {"periodic": d + 2 * d * d + d, "pl": d * d + d}[net.embedding]
        flops += n_embedded * 2 * (2 * d if net.embedding == "periodic" else d) * d
        # The embedding's index buffers name each input once (embedded or passed through).
        buffers += n_inputs + (n_embedded * (d + 1) if net.embedding == "pl" else 0)
    if net.normalization != "none":
        trainable += 2 * net.total_units  # gain and shift per unit
        if net.normalization == "batch":
            buffers += 2 * net.total_units + net.depth  # running mean and variance, and one step count per layer
    return NetSize(params=trainable + buffers, trainable=trainable, flops=flops)


def over_budget(size: NetSize, max_params: int | None, max_flops: int | None) -> str | None:
    """Why a network of `size` is over `[space] max_params` or `max_flops`; None when it meets both."""
    if max_params is not None and size.params > max_params:
        return f"{size.params:,} parameters > [space] max_params {max_params:,}"
    if max_flops is not None and size.flops > max_flops:
        return f"{size.flops:,} FLOPs per row > [space] max_flops {max_flops:,}"
    return None


def check_budget_reachable(space: MLPSpace, n_inputs: int, n_outputs: int, *, n_numeric: int | None = None) -> None:
    """Refuse a budget that no architecture of `space` meets on this data, before any trial is spent.

    Raises:
        InvalidSpaceError: Even the space's smallest network (`MLPSpace.smallest_net`) is over budget.
    """
    smallest = space.smallest_net()
    why = over_budget(net_size(smallest, n_inputs, n_outputs, n_numeric=n_numeric), space.max_params, space.max_flops)
    if why is not None:
        shape = f"{list(smallest.widths)} hidden" if smallest.widths else "the linear model"
        raise InvalidSpaceError(
            f"No architecture of [space] meets its budget on this data ({n_inputs} inputs, {n_outputs} outputs): "
            f"the smallest, {shape}, has {why}. Raise the budget or lower [space] layers / width."
        )
