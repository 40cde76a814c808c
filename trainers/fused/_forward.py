"""The forward pass of every slot of a population at once: embedding, hidden layers, norms and output layer.

Every operation is either elementwise along the slot axis or a per-slot product (`_affine`), so a slot's
outputs depend on its own row of parameters only. The per-slot masks (which layers a slot has, its
dropout, its real units) are rebuilt only when the population's occupants change (`set_occupants`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from archsearch.trainers.data import PreparedData
from archsearch.trainers.engine import ACTIVATIONS, autocast, pl_encoding, tensor
from archsearch.trainers.fused._group import FusedGroup
from archsearch.trainers.fused._layout import BatchStats, ParameterLayout
from archsearch.trainers.names import Net

__all__ = ["BATCH_NORM_MOMENTUM", "NORM_EPS", "StackedForward"]

NORM_EPS = 1e-5  # nn.LayerNorm's and nn.BatchNorm1d's default, which build_mlp uses
BATCH_NORM_MOMENTUM = 0.1  # nn.BatchNorm1d's default weight of a batch in the running statistics
_EVAL_ELEMENTS = 2**24  # slots x rows x width per evaluation chunk, so validation memory stays near 64 MiB


class StackedForward:
    """The population's network as one function of its stacked parameters.

    Args:
        data: The population's data; its training and validation inputs move to `device` once.
        group: What every slot shares (depth, width, activation, normalization, embedding).
        layout: Where each tensor lives in a slot's row.
        numeric: The inputs the embedding encodes (empty without an embedding).
        edges: A pl embedding's bin edges (numeric, dim + 1), as `train_mlp` fits them; None otherwise.
        stats: BatchNorm1d's running statistics, updated by a training pass under batch norm.
        device: Where the population trains.
        use_bf16: Autocast to bfloat16 (CUDA only).
        seed: Seeds the dropout masks' generator.
    """

    def __init__(
        self,
        data: PreparedData,
        group: FusedGroup,
        layout: ParameterLayout,
        numeric: Sequence[int],
        edges: torch.Tensor | None,
        stats: BatchStats,
        device: torch.device,
        use_bf16: bool,
        seed: int,
    ):
        self.group, self.layout, self.stats, self.device, self.use_bf16 = group, layout, stats, device, use_bf16
        self.embedding = layout.embedding
        self._act = ACTIVATIONS[group.activation]()
        self._layer_norm = group.normalization == "layer"
        self._batch_norm = group.normalization == "batch"
        self._dropout_generator = torch.Generator(device=device).manual_seed(seed)
        self.x = {s: tensor(getattr(data, f"x_{s}"), torch.float32, device) for s in ("train", "val")}
        if self.embedding != "none":
            passed = [j for j in range(data.n_features) if j not in set(numeric)]
            self._passed = {s: x[:, passed] for s, x in self.x.items()}  # (rows, n_features - numeric)
            self._numeric_x = {s: x[:, list(numeric)] for s, x in self.x.items()}  # (rows, numeric)
            if edges is not None:  # the rows are encoded per batch, as train_mlp's embedding does
                self._edges = edges.to(device)
        self.n_outputs = data.n_outputs
        self.rows = 1

    def set_occupants(self, nets: Sequence[Net | None]) -> None:
        """Per-slot masks of the current occupants, one entry per row (None: an empty slot)."""
        depth, rows = self.group.max_depth, len(nets)
        on = torch.zeros(depth, rows, 1, 1, dtype=torch.bool)
        drop = torch.zeros(depth, rows, 1, 1)
        units = torch.zeros(depth, rows, 1, self.group.max_width)
        for index, net in enumerate(nets):
            if net is None:
                on[:, index] = True  # an empty slot's zero layers give zeros either way; no pass-through needed
                continue
            for layer, (width, p) in enumerate(zip(net.widths, net.dropouts)):
                on[layer, index] = True
                drop[layer, index] = p
                units[layer, index, 0, :width] = 1.0
        self.rows = rows
        self._on = on.to(self.device)  # (depth, capacity, 1, 1): the slot has this layer
        self._passthrough = [not bool(on[layer].all()) for layer in range(depth)]
        self._drop = drop.to(self.device)  # (depth, capacity, 1, 1)
        self._keep_scale = (1.0 / (1.0 - drop)).to(self.device)
        self._dropout_layers = [bool((drop[layer] > 0).any()) for layer in range(depth)]
        self._units = units.to(self.device)  # (depth, capacity, 1, width): the slot's real units of the layer
        # At least 1, so a slot without the layer (all zeros) normalizes to zeros, not 0 / 0.
        self._n_units = units.sum(dim=3, keepdim=True).clamp(min=1.0).to(self.device)  # (depth, capacity, 1, 1)

    def forward(
        self, split: str, index: torch.Tensor | slice, params: Sequence[torch.Tensor], train: bool
    ) -> torch.Tensor:
        """Outputs (capacity, rows, n_outputs) for rows `index` of `split` (see `_inputs`), from all the leaves."""
        folded = self.embedding == "pl" and self.group.max_depth > 0
        # The first Linear's inputs are built only where needed: without the folded pl layer, or when a
        # slot without hidden layers carries them on.
        h = None if folded and not self._passthrough[0] else self._inputs(split, index, params)
        lead, per_layer = self.layout.lead, self.layout.per_layer
        leaves, params = params, params[lead:]
        for layer in range(self.group.max_depth):
            first = per_layer * layer
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

    def validation_outputs(self, leaves: Sequence[torch.Tensor]) -> torch.Tensor:
        """Every slot's float outputs on the validation split, (capacity, n_val, n_outputs), in chunks."""
        n_val = self.x["val"].shape[0]
        # Floats a slot holds per row at the chunk's peak: a hidden layer, the outputs, or the embedding's (pl:
        # the first Linear's inputs, built when a slot without hidden layers carries them on; periodic: also the
        # phase, its cos and sin, and their concatenation).
        n_inputs = self.layout.n_inputs
        embedding = {"none": 0, "pl": n_inputs, "periodic": 6 * n_inputs}[self.embedding]
        width = max(self.group.max_width, self.n_outputs, embedding)
        rows = max(1, _EVAL_ELEMENTS // (self.rows * width))
        params = [p.detach() for p in leaves]
        with torch.inference_mode(), autocast(self.device, self.use_bf16):
            chunks = [
                self.forward("val", slice(i, i + rows), params, train=False).float() for i in range(0, n_val, rows)
            ]
        return torch.cat(chunks, dim=1)

    def _inputs(self, split: str, index: torch.Tensor | slice, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The first Linear's inputs for rows `index` of `split`: rows (capacity, batch) give (capacity, batch,
        n_inputs) and a slice gives the shared (rows, n_features) without an embedding, else (capacity, rows, n_inputs).

        With an embedding, `params` are all the leaves and the embedding's come first; computed as
        `NumericEmbedding` computes it, per slot.
        """
        if self.embedding == "none":
            return self.x[split][index]
        # (capacity, batch, numeric) or shared (rows, numeric); a pl encoding adds a dimension of bins. Encoded
        # per batch, not once per split: a population would hold rows x numeric x dim floats (GBs on large data).
        codes = self._numeric_x[split][index]
        if self.embedding == "pl":
            codes = pl_encoding(codes, self._edges)
        if self.embedding == "periodic":
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
        if self.embedding == "periodic":
            out = torch.relu(out)
        passed = self._passed[split][index]  # (capacity, batch, others) or (rows, others)
        if passed.dim() == 2:
            passed = passed.expand(self.rows, *passed.shape)
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
        lead = self.layout.lead
        weight, bias = params[lead], params[lead + 1]
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
        stats = self.stats
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


def _affine(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """h @ weight + bias per slot: h (capacity, rows, in) or shared (rows, in), weight (capacity, in, out)."""
    if h.dim() == 3:
        return torch.baddbmm(bias.unsqueeze(1), h, weight)
    return torch.matmul(h, weight) + bias.unsqueeze(1)
