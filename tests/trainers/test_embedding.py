"""Tests for archsearch.trainers._embedding: numeric-feature embeddings before an MLP's first layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.spaces import NetSpec
from archsearch.trainers import build_mlp, count_parameters
from archsearch.trainers._embedding import (
    NumericEmbedding,
    PiecewiseLinearEmbedding,
    build_embedding,
    embedding_parameters,
    fit_bin_edges,
)

ROWS = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)  # (rows, inputs)
NUMERIC = (0, 1, 3)  # inputs 2 and 4 stand for one-hot columns


@pytest.mark.parametrize("kind", ["periodic", "pl"])
def test_embedding_shapes_and_one_hot_pass_through(kind: str) -> None:
    """Check that numeric inputs become dim values each and the other inputs follow unchanged."""
    embedding = build_embedding(kind, 4, 5, NUMERIC, train_rows=ROWS, generator=torch.Generator().manual_seed(0))
    assert isinstance(embedding, NumericEmbedding) and embedding.out_features == 3 * 4 + 2
    x = torch.from_numpy(ROWS[:7])
    out = embedding(x)
    assert out.shape == (7, 14)
    # The embedded features come first, then the passed-through ones in input order.
    assert torch.equal(out[:, 12:], x[:, [2, 4]])


@pytest.mark.parametrize("kind", ["periodic", "pl"])
@pytest.mark.parametrize("widths", [[], [6, 3]])
def test_parameter_count_includes_the_embedding(kind: str, widths: list[int]) -> None:
    """Check that count_parameters, embedding_parameters and NetSpec.n_params agree on embedded networks."""
    embedding = build_embedding(kind, 4, 5, NUMERIC, train_rows=ROWS)
    model = build_mlp(5, widths, [0.0] * len(widths), "relu", 3, embedding=embedding)
    sizes = (3 * 4 + 2, *widths, 3)
    linear = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    assert count_parameters(model) == embedding_parameters(kind, 4, 3) + linear
    architecture = NetSpec(tuple(widths), (0.0,) * len(widths), "relu", embedding=kind, embedding_dim=4)
    assert architecture.n_params(5, 3, n_numeric=3) == count_parameters(model)
    # The bin edges are data, not trained: a buffer in the state dict, not a parameter.
    if kind == "pl":
        assert "0.encoder.edges" in model.state_dict()
        assert "encoder.edges" not in dict(model[0].named_parameters())


def test_no_embedding_keeps_todays_network() -> None:
    """Check that kind "none", or no numeric input, gives no module, so weight names stay as without embeddings."""
    assert build_embedding("none", 8, 5, NUMERIC) is None
    assert build_embedding("pl", 8, 5, ()) is None
    model = build_mlp(5, [4], [0.0], "relu", 2, embedding=None)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_piecewise_linear_encoding_fills_bins_in_order() -> None:
    """Check that each bin reads 0 below it, 1 above it, the fraction inside, and the outer bins extrapolate."""
    edges = torch.tensor([[0.0, 1.0, 2.0, 4.0]])  # one feature, three bins
    module = PiecewiseLinearEmbedding(1, 3, edges)
    with torch.no_grad():
        module.weight.copy_(torch.eye(3).unsqueeze(0))  # read the encoding itself
        module.bias.zero_()
    x = torch.tensor([[-1.0], [0.5], [1.5], [3.0], [6.0]])
    expected = [[-1.0, 0, 0], [0.5, 0, 0], [1, 0.5, 0], [1, 1, 0.5], [1, 1, 2.0]]
    torch.testing.assert_close(module(x)[:, 0, :], torch.tensor(expected))


def test_tied_bin_edges_merge_and_leave_empty_bins() -> None:
    """Check that a column with few values gets merged edges, and its unused bins encode as zero."""
    rows = np.array([[0.0], [0.0], [1.0], [1.0], [1.0], [2.0]] * 5, dtype=np.float32)
    edges = fit_bin_edges(rows, 4)
    np.testing.assert_array_equal(edges, [[0.0, 1.0, 2.0, 2.0, 2.0]])
    module = PiecewiseLinearEmbedding(1, 4, torch.from_numpy(edges))
    with torch.no_grad():
        module.weight.copy_(torch.eye(4).unsqueeze(0))
        module.bias.zero_()
    # The second bin is the last one in use, so it extrapolates above 2; bins 3 and 4 stay empty.
    torch.testing.assert_close(
        module(torch.tensor([[0.5], [3.0]]))[:, 0, :], torch.tensor([[0.5, 0, 0, 0], [1, 2, 0, 0]])
    )


def test_bin_edges_are_training_quantiles() -> None:
    """Check that the edges of a column are its quantiles at evenly spaced probabilities."""
    edges = fit_bin_edges(ROWS[:, :2], 4)
    assert edges.shape == (2, 5) and edges.dtype == np.float32
    np.testing.assert_allclose(edges[1], np.quantile(ROWS[:, 1], [0, 0.25, 0.5, 0.75, 1]), rtol=1e-6)


def test_embedding_init_follows_the_generator() -> None:
    """Check that equally seeded generators give identical embeddings, and the periodic frequencies ~ N(0, 0.1)."""
    first = build_embedding("periodic", 64, 5, NUMERIC, generator=torch.Generator().manual_seed(1))
    second = build_embedding("periodic", 64, 5, NUMERIC, generator=torch.Generator().manual_seed(1))
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name])
    assert 0.08 < float(first.encoder.frequencies.detach().std()) < 0.12


def test_embedded_model_trains_end_to_end() -> None:
    """Check that gradients reach the embedding's parameters through the network."""
    model = build_mlp(5, [4], [0.0], "relu", 2, embedding=build_embedding("periodic", 4, 5, NUMERIC))
    loss = nn.functional.cross_entropy(model(torch.from_numpy(ROWS)), torch.zeros(50, dtype=torch.int64))
    loss.backward()
    assert model[0].encoder.frequencies.grad is not None and model[0].encoder.frequencies.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("ple", 8, 5, NUMERIC), r"The 'embedding' parameter must be one of \['none', 'periodic', 'pl'\]. Got 'ple'"),
        (("pl", 0, 5, NUMERIC), r"The 'embedding_dim' parameter must be an int >= 1. Got 0 instead"),
        (("pl", True, 5, NUMERIC), r"The 'embedding_dim' parameter must be an int >= 1. Got True instead"),
        (("pl", 8, 5, (0, 5)), r"The 'numeric' parameter must hold distinct input indices in \[0, 5\)"),
        (("pl", 8, 5, (1, 1)), r"The 'numeric' parameter .*Got \[1, 1\] instead"),
    ],
)
def test_build_embedding_rejects_invalid_values(args: tuple, match: str) -> None:
    """Check that build_embedding names the parameter, the rule and the value."""
    with pytest.raises(ValueError, match=match):
        build_embedding(*args)


def test_piecewise_linear_rejects_edges_of_the_wrong_shape() -> None:
    """Check that edges must hold n_bins + 1 values per feature."""
    with pytest.raises(ValueError, match=r"The 'edges' parameter of PiecewiseLinearEmbedding must have shape \(2, 5\)"):
        PiecewiseLinearEmbedding(2, 4, torch.zeros(2, 4))
