"""The ends of a network: at the input, the feature blocks it reads (`_blocks.py`) then its numeric embedding;
at the output, its head (`_heads.py`).

A network trained on some blocks keeps the whole input: its first module selects the columns, so the
exported program and `Predictor` take the full vector whichever blocks the trial chose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archsearch.trainers._embedding import build_embedding
from archsearch.trainers._heads import HEADS, OneVsRest
from archsearch.trainers._model import build_mlp
from archsearch.trainers.data import Preprocessing
from archsearch.trainers.names import Net

__all__ = ["SelectColumns", "build_input", "build_network", "select_input", "with_head"]


class SelectColumns(nn.Module):
    """Keep the input columns `indices` (sorted), then apply `inner` (an embedding) when given."""

    def __init__(self, indices: Sequence[int], inner: nn.Module | None = None) -> None:
        super().__init__()
        # Not in the state dict: the indices follow from the architecture's blocks and the preprocessing.
        self.register_buffer("index", torch.tensor(list(indices), dtype=torch.long), persistent=False)
        self.inner = inner
        self.out_features = inner.out_features if inner is not None else len(indices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        selected = x.index_select(1, self.index)  # (batch, n_selected)
        return selected if self.inner is None else self.inner(selected)


def build_input(
    embedding: str,
    embedding_dim: int,
    blocks: Sequence[str],
    preprocessing: Preprocessing,
    *,
    train_rows: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module | None:
    """The module before the first Linear for a network on `blocks` (all inputs for none), or None when the
    network reads every input unembedded."""
    return select_input(
        embedding,
        embedding_dim,
        len(preprocessing.encoded_names),
        preprocessing.numeric_features,
        preprocessing.block_indices(blocks),
        train_rows=train_rows,
        generator=generator,
    )


def select_input(
    embedding: str,
    embedding_dim: int,
    n_inputs: int,
    numeric: Sequence[int],
    indices: Sequence[int],
    *,
    train_rows: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module | None:
    """`build_input` from the input's width, its `numeric` columns and the columns `indices` the network reads."""
    if len(indices) == n_inputs:
        return build_embedding(embedding, embedding_dim, n_inputs, numeric, train_rows=train_rows, generator=generator)
    position = {j: i for i, j in enumerate(indices)}
    kept = [position[j] for j in numeric if j in position]
    rows = None if train_rows is None else train_rows[:, indices]
    inner = build_embedding(embedding, embedding_dim, len(indices), kept, train_rows=rows, generator=generator)
    return SelectColumns(indices, inner)


def with_head(mlp: nn.Sequential, head: str) -> nn.Sequential:
    """The network with its output head: nothing more for "softmax", a parameter-free `OneVsRest` at the end
    for "one_vs_rest" (so the state dict is the same either way)."""
    if head not in HEADS:
        raise ValueError(f"The 'head' parameter must be one of {list(HEADS)}. Got {head!r} instead.")
    return mlp if head == "softmax" else nn.Sequential(*mlp, OneVsRest())


def build_network(
    net: Net,
    preprocessing: Preprocessing,
    n_outputs: int,
    *,
    train_rows: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """The network `net` on data of `preprocessing`, as the trainer builds it: its blocks' columns, its embedding
    (a pl embedding's bins from `train_rows`; without them its edges come with the state dict), the layers and
    the head; weights drawn from `generator`, embedding first. Every place that builds a trial's network for its
    weights goes through here, so none can forget a part (latency was timed without blocks once, and failed)."""
    embedder = build_input(
        net.embedding,
        net.embedding_dim,
        getattr(net, "blocks", ()),
        preprocessing,
        train_rows=train_rows,
        generator=generator,
    )
    mlp = build_mlp(
        len(preprocessing.encoded_names),
        net.widths,
        net.dropouts,
        net.activation,
        n_outputs,
        generator=generator,
        embedding=embedder,
        normalization=net.normalization,
    )
    return with_head(mlp, getattr(net, "head", "softmax"))
