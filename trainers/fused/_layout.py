"""Where a slot's network lives in its row of a population's flat parameter tensor, and how it gets there and out.

A population stacks every slot's padded network as one row of a (rows, n_params) tensor. `ParameterLayout`
knows the row's tensors in order, draws a slot's initial weights into it exactly as `build_mlp` draws an
unpadded network's, and reads a row back as `build_mlp`'s state dict. `BatchStats` holds BatchNorm1d's
running statistics per layer and slot.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from archsearch.trainers.engine import PERIODIC_SIGMA
from archsearch.trainers.fused._group import FusedGroup
from archsearch.trainers.fused._optim import resized
from archsearch.trainers.names import Net

__all__ = ["BatchStats", "ParameterLayout"]


class ParameterLayout:
    """The tensors of one slot's row, in order.

    The embedding's tensors in its modules' order (periodic: frequencies (numeric, dim), weight (numeric,
    2 dim, dim), bias (numeric, dim); pl: weight (numeric, dim, dim), bias (numeric, dim)), then (weight (in,
    width), bias (width,)[, norm weight (width,), norm bias (width,)]) per hidden layer, then the output
    layer; a depth-0 group's output layer reads the inputs directly.

    Args:
        group: The population's group (depth, width, normalization).
        embedding: The embedding the population trains ("none" also when the data has no numeric input).
        n_numeric: Numeric inputs the embedding encodes.
        n_inputs: Inputs of the first Linear (embedded features count `embedding_dim` values each).
        n_outputs: Classes, or 1.
        buffers: The embedding's buffers of `build_mlp`'s state dict (`0.numeric`, `0.passed`, and a pl
            embedding's `0.encoder.edges`), the same for every slot; empty without an embedding.
    """

    def __init__(
        self,
        group: FusedGroup,
        embedding: str,
        n_numeric: int,
        n_inputs: int,
        n_outputs: int,
        buffers: dict[str, torch.Tensor],
    ):
        dim, width, depth = group.embedding_dim, group.max_width, group.max_depth
        shapes: list[tuple[int, ...]] = {
            "none": [],
            "pl": [(n_numeric, dim, dim), (n_numeric, dim)],
            "periodic": [(n_numeric, dim), (n_numeric, 2 * dim, dim), (n_numeric, dim)],
        }[embedding]
        self.lead = len(shapes)  # tensors before the first hidden layer's
        self.per_layer = 2 if group.normalization == "none" else 4
        for layer in range(depth):
            shapes += [(n_inputs if layer == 0 else width, width), (width,)] + [(width,)] * (self.per_layer - 2)
        shapes += [(width if depth else n_inputs, n_outputs), (n_outputs,)]
        self.shapes = shapes
        self.offsets = list(itertools.accumulate((math.prod(s) for s in shapes), initial=0))
        self.n_params = self.offsets[-1]
        self.embedding, self.n_inputs, self.n_outputs = embedding, n_inputs, n_outputs
        self.normalization = group.normalization
        self.buffers = buffers

    def _spans(self) -> zip:
        return zip(zip(self.offsets, self.offsets[1:]), self.shapes)

    def views(self, params: torch.Tensor) -> list[torch.Tensor]:
        """Leaves that alias `params` (rows, n_params): the optimizer updates `params` in place and the leaves see it."""
        rows = params.shape[0]
        return [params[:, a:b].view(rows, *shape).detach().requires_grad_() for (a, b), shape in self._spans()]

    def row_views(self, row: torch.Tensor) -> list[torch.Tensor]:
        """One row's tensors, in the layout's order."""
        return [row[a:b].view(shape) for (a, b), shape in self._spans()]

    def initialize(self, row: torch.Tensor, widths: Sequence[int], generator: torch.Generator) -> None:
        """Draw a slot's weights exactly as `build_mlp(..., generator=generator)` would, into its zeroed, padded row."""
        row.zero_()
        views = self.row_views(row)
        embedded, views = views[: self.lead], views[self.lead :]
        if self.embedding != "none":
            # build_embedding draws first, as its modules do: (periodic: the frequencies ~ N(0, sigma),) the
            # weight, then the bias, each U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the per-feature Linear's fan_in.
            if self.embedding == "periodic":
                frequencies, *embedded = embedded
                frequencies.copy_(torch.empty(frequencies.shape).normal_(0.0, PERIODIC_SIGMA, generator=generator))
            bound = 1.0 / math.sqrt(embedded[0].shape[1])
            for tensor in embedded:
                tensor.copy_(torch.empty(tensor.shape).uniform_(-bound, bound, generator=generator))
        fan_in = self.n_inputs
        layers = [(self.per_layer * layer, width) for layer, width in enumerate(widths)]
        layers.append((len(views) - 2, self.n_outputs))
        for position, fan_out in layers:
            bound = 1.0 / math.sqrt(fan_in)
            # Drawn in build_mlp's order and shapes: the weight (fan_out, fan_in), then the bias.
            weight = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator)
            bias = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
            views[position][:fan_in, :fan_out] = weight.T.to(row.device)
            views[position + 1][:fan_out] = bias.to(row.device)
            if self.normalization != "none" and position < len(views) - 2:
                views[position + 2][:fan_out] = 1.0  # both norms start at weight 1, bias 0 (no draw)
            fan_in = fan_out

    def state_dict(self, row: torch.Tensor, net: Net, stats: BatchStats | None, index: int) -> dict[str, torch.Tensor]:
        """A row's weights unpadded, with the keys and shapes of `build_mlp`'s nn.Sequential.

        Args:
            row: The slot's parameters (n_params,), on the CPU.
            net: The slot's architecture.
            stats: BatchNorm1d's statistics to read the slot's running ones from (batch norm only).
            index: The slot's row in `stats`.
        """
        tensors = self.row_views(row)
        embedded, tensors = tensors[: self.lead], tensors[self.lead :]
        state: dict[str, torch.Tensor] = {}
        position, fan_in = 0, self.n_inputs
        if self.embedding != "none":  # module 0, a NumericEmbedding: its buffers, then its encoder's parameters
            names = ("frequencies", "weight", "bias") if self.embedding == "periodic" else ("weight", "bias")
            state.update({key: t.clone() for key, t in self.buffers.items() if not key.startswith("0.encoder")})
            state.update({f"0.encoder.{name}": t.clone() for name, t in zip(names, embedded)})
            state.update({key: t.clone() for key, t in self.buffers.items() if key.startswith("0.encoder")})
            position = 1
        for layer, (width, p) in enumerate(zip(net.widths, net.dropouts)):
            first = self.per_layer * layer
            weight, bias = tensors[first], tensors[first + 1]
            state[f"{position}.weight"] = weight[:fan_in, :width].T.clone()  # (width, fan_in)
            state[f"{position}.bias"] = bias[:width].clone()
            if self.normalization != "none":
                position += 1
                state[f"{position}.weight"] = tensors[first + 2][:width].clone()
                state[f"{position}.bias"] = tensors[first + 3][:width].clone()
            if self.normalization == "batch":
                state[f"{position}.running_mean"] = stats.mean[layer, index, :width].cpu().clone()
                state[f"{position}.running_var"] = stats.var[layer, index, :width].cpu().clone()
                state[f"{position}.num_batches_tracked"] = stats.tracked[index].cpu().clone()
            position += 3 if p > 0 else 2  # Linear, activation[, Dropout]
            fan_in = width
        state[f"{position}.weight"] = tensors[-2][:fan_in].T.clone()  # (n_outputs, fan_in)
        state[f"{position}.bias"] = tensors[-1].clone()
        return state


class BatchStats:
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

    def copy_slot(self, index: int, other: BatchStats) -> None:
        self.mean[:, index] = other.mean[:, index]
        self.var[:, index] = other.var[:, index]
        self.tracked[index] = other.tracked[index]
