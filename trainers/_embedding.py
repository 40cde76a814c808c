"""Numeric-feature embeddings: an input encoding placed before an MLP's first hidden layer.

After Gorishniy, Rubachev and Babenko, "On Embeddings for Numerical Features in Tabular Deep Learning"
(NeurIPS 2022). Each numeric feature becomes a vector of `dim` values, learned per feature:

- "periodic" (their PLR): `dim` trainable frequencies `c`, then `[cos(2 pi c x), sin(2 pi c x)]`, then a
  per-feature Linear(2 dim -> dim) and ReLU.
- "pl" (piecewise-linear, their Q-L): `dim` bins with edges at the training quantiles of the feature; the
  encoding is how far `x` has filled each bin (0 below it, 1 above it, the fraction inside), then a
  per-feature Linear(dim -> dim). The edges depend on the data, so they are a buffer: the state dict and the
  exported program carry them.

Only numeric features are embedded. One-hot columns pass through unchanged: a 0/1 input has two values, so
an embedding can learn nothing a weight cannot, and it would multiply the first layer's width by `dim` for
every category.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archsearch.trainers.names import EMBEDDINGS

# 8 values per feature: the small end of the paper's range, so the first layer stays narrow on wide data.
DEFAULT_DIM = 8
# Initial frequencies ~ N(0, 0.1): on unit-scale inputs (|x| < 3) the phase 2 pi c x starts within about
# +-2 rad, a smooth and nearly monotone code that training sharpens; the paper tunes sigma per dataset.
PERIODIC_SIGMA = 0.1


def embedding_parameters(kind: str, dim: int, n_embedded: int) -> int:
    """Trainable scalars of an embedding of `n_embedded` features (the bin edges are not trained)."""
    per_feature = {"none": 0, "periodic": dim + 2 * dim * dim + dim, "pl": dim * dim + dim}[kind]
    return n_embedded * per_feature


def fit_bin_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin edges of each column at its quantiles, shape (n_features, n_bins + 1), from training rows only.

    Tied quantiles (a column with few distinct values) merge into one edge; the unused edges at the end repeat
    the last one, and `PiecewiseLinearEmbedding` gives their zero-width bins a zero encoding.
    """
    x = np.asarray(x, dtype=np.float64)  # (n_rows, n_features)
    quantiles = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1), axis=0).T  # (n_features, n_bins + 1)
    edges = np.empty_like(quantiles)
    for j, row in enumerate(quantiles):
        distinct = np.unique(row)
        edges[j, : len(distinct)], edges[j, len(distinct) :] = distinct, distinct[-1]
    return edges.astype(np.float32)


class PeriodicEmbedding(nn.Module):
    """Periodic features with trainable frequencies, then a per-feature Linear and ReLU (PLR)."""

    def __init__(self, n_features: int, dim: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.empty(n_features, dim))  # (n_features, dim)
        self.weight = nn.Parameter(torch.empty(n_features, 2 * dim, dim))  # (n_features, 2 dim, dim)
        self.bias = nn.Parameter(torch.empty(n_features, dim))  # (n_features, dim)
        bound = 1.0 / math.sqrt(2 * dim)  # PyTorch's default Linear init for fan_in = 2 dim
        with torch.no_grad():
            self.frequencies.normal_(0.0, PERIODIC_SIGMA, generator=generator)
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * x.unsqueeze(-1) * self.frequencies  # (batch, n_features, dim)
        periodic = torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)  # (batch, n_features, 2 dim)
        out = torch.einsum("bfi,fio->bfo", periodic, self.weight) + self.bias  # (batch, n_features, dim)
        return torch.relu(out)


class PiecewiseLinearEmbedding(nn.Module):
    """Piecewise-linear encoding on fixed bins, then a per-feature Linear.

    Args:
        edges: (n_features, n_bins + 1) from `fit_bin_edges`; None allocates the buffer for
            `load_state_dict` to fill (until then every bin is empty and the encoding is zero).
    """

    def __init__(
        self, n_features: int, dim: int, edges: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if edges is None:
            edges = torch.zeros(n_features, dim + 1)
        edges = torch.as_tensor(edges, dtype=torch.float32)
        if edges.shape != (n_features, dim + 1):
            raise ValueError(
                f"The 'edges' parameter of PiecewiseLinearEmbedding must have shape ({n_features}, {dim + 1}). "
                f"Got {tuple(edges.shape)} instead."
            )
        self.register_buffer("edges", edges.clone())  # (n_features, n_bins + 1)
        self.weight = nn.Parameter(torch.empty(n_features, dim, dim))  # (n_features, n_bins, dim)
        self.bias = nn.Parameter(torch.empty(n_features, dim))  # (n_features, dim)
        bound = 1.0 / math.sqrt(dim)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoding = pl_encoding(x, self.edges)  # (batch, n_features, n_bins)
        return torch.einsum("bfi,fio->bfo", encoding, self.weight) + self.bias  # (batch, n_features, dim)


def pl_encoding(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """How far each value of `x` (..., n_features) has filled each bin of its feature: (..., n_features, n_bins).

    Data only (the edges are not trained), so the fused engine computes it once per split.
    """
    left, width = edges[:, :-1], edges[:, 1:] - edges[:, :-1]  # (n_features, n_bins)
    used = width > 0
    # The first bin extends below the lowest edge and the last used bin above the highest (extrapolation,
    # as in the paper); every other bin saturates at 0 and 1.
    last = used & ~torch.cat([used[:, 1:], torch.zeros_like(used[:, :1])], dim=1)
    first = torch.arange(left.shape[1], device=left.device) == 0  # (n_bins,)
    lower = torch.where(first, -math.inf, 0.0)
    upper = torch.where(last, math.inf, 1.0)
    filled = (x.unsqueeze(-1) - left) / torch.where(used, width, torch.ones_like(width))  # (..., f, n_bins)
    return torch.where(used, torch.clamp(filled, min=lower, max=upper), 0.0)


class NumericEmbedding(nn.Module):
    """Embed the features at `numeric` and pass the others through: (batch, n_inputs) -> (batch, out_features).

    The output holds the embedded features first (`dim` values each), then the passed-through ones in order.
    """

    def __init__(self, n_inputs: int, numeric: Sequence[int], encoder: nn.Module, dim: int) -> None:
        super().__init__()
        numeric = sorted(numeric)
        passed = [j for j in range(n_inputs) if j not in set(numeric)]
        self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.int64))  # (n_embedded,)
        self.register_buffer("passed", torch.tensor(passed, dtype=torch.int64))  # (n_inputs - n_embedded,)
        self.encoder = encoder
        self.out_features = len(numeric) * dim + len(passed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedded = self.encoder(x.index_select(1, self.numeric)).flatten(1)  # (batch, n_embedded * dim)
        return torch.cat([embedded, x.index_select(1, self.passed)], dim=1)


def build_embedding(
    kind: str,
    dim: int,
    n_inputs: int,
    numeric: Sequence[int],
    *,
    train_rows: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> NumericEmbedding | None:
    """The embedding of the `numeric` inputs, or None for kind "none" or no numeric input.

    With None the network starts with a Linear, exactly as without an embedding.

    Args:
        kind: One of `EMBEDDINGS`.
        dim: Values per embedded feature: frequencies (periodic) or bins (pl), and the output size.
        n_inputs: Number of input features.
        numeric: Indices of the inputs to embed (`Preprocessing.numeric_features`); the others pass through.
        train_rows: The scaled training inputs (n_rows, n_inputs), for the bin edges of "pl"; None when the
            edges come from a state dict loaded afterwards.
        generator: Draws the initial parameters, as in `build_mlp`.

    Raises:
        ValueError: An unknown kind, a dim below 1, or numeric indices outside the inputs.
    """
    if kind not in EMBEDDINGS:
        raise ValueError(f"The 'embedding' parameter must be one of {list(EMBEDDINGS)}. Got {kind!r} instead.")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"The 'embedding_dim' parameter must be an int >= 1. Got {dim!r} instead.")
    if len(set(numeric)) != len(numeric) or not all(isinstance(j, int) and 0 <= j < n_inputs for j in numeric):
        raise ValueError(
            f"The 'numeric' parameter must hold distinct input indices in [0, {n_inputs}). Got {list(numeric)!r} instead."
        )
    if kind == "none" or not numeric:
        return None
    if kind == "periodic":
        encoder: nn.Module = PeriodicEmbedding(len(numeric), dim, generator=generator)
    else:
        edges = None if train_rows is None else torch.from_numpy(fit_bin_edges(train_rows[:, list(numeric)], dim))
        encoder = PiecewiseLinearEmbedding(len(numeric), dim, edges, generator=generator)
    return NumericEmbedding(n_inputs, numeric, encoder, dim)
