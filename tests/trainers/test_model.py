"""Tests for archsearch.trainers._model and the package's lazy public API."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from archsearch.trainers import build_mlp, count_parameters
from archsearch.trainers._model import ACTIVATIONS


def test_build_mlp_layer_structure() -> None:
    """Check that each hidden layer is Linear, activation, and Dropout only where p > 0."""
    model = build_mlp(4, [8, 6], [0.0, 0.5], "relu", 3)
    # The first layer has p = 0, so only the second one gets a Dropout.
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (model[0].in_features, model[0].out_features) == (4, 8)
    assert (model[5].in_features, model[5].out_features) == (6, 3)
    assert model[4].p == 0.5


def test_build_mlp_depth_zero_is_a_single_linear() -> None:
    """Check that no hidden layers give one Linear from inputs to outputs."""
    model = build_mlp(5, [], [], "relu", 2)
    assert len(model) == 1
    assert isinstance(model[0], nn.Linear)
    assert (model[0].in_features, model[0].out_features) == (5, 2)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_build_mlp_activations(activation: str) -> None:
    """Check that every activation name builds its module and the network runs."""
    model = build_mlp(3, [4], [0.0], activation, 1)
    assert isinstance(model[1], ACTIVATIONS[activation])
    assert model(torch.zeros(2, 3)).shape == (2, 1)


def test_count_parameters() -> None:
    """Check that the count is weights plus biases of every Linear."""
    model = build_mlp(4, [8], [0.1], "gelu", 3)
    assert count_parameters(model) == (4 * 8 + 8) + (8 * 3 + 3)


def test_build_mlp_generator_makes_init_reproducible() -> None:
    """Check that equally seeded generators give identical weights without touching the global RNG."""
    global_state = torch.get_rng_state()
    first = build_mlp(6, [16, 8], [0.0, 0.0], "tanh", 2, generator=torch.Generator().manual_seed(3))
    torch.rand(10)  # other code drawing meanwhile must not change the second model
    second = build_mlp(6, [16, 8], [0.0, 0.0], "tanh", 2, generator=torch.Generator().manual_seed(3))
    other = build_mlp(6, [16, 8], [0.0, 0.0], "tanh", 2, generator=torch.Generator().manual_seed(4))
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name])
    assert not torch.equal(first[0].weight, other[0].weight)
    torch.set_rng_state(global_state)
    # PyTorch's default bound for a Linear with 6 inputs is 1/sqrt(6).
    assert first[0].weight.abs().max() <= 6**-0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swish"}, "The 'activation' parameter of build_mlp must be one of"),
        ({"dropouts": [0.1]}, r"must hold one float in the range \[0, 1\) per width \(2\)"),
        ({"dropouts": [0.1, 1.0]}, "Got \\[0.1, 1.0\\] instead"),
        ({"widths": [8, 0]}, "The 'widths' parameter of build_mlp must be a sequence of ints >= 1"),
        ({"n_inputs": 0}, "The 'n_inputs' parameter of build_mlp must be an int >= 1. Got 0 instead."),
    ],
)
def test_build_mlp_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    """Check that a bad architecture value is named in the error."""
    arguments = {"n_inputs": 4, "widths": [8, 4], "dropouts": [0.0, 0.0], "activation": "relu", "n_outputs": 2}
    with pytest.raises(ValueError, match=match):
        build_mlp(**(arguments | kwargs))


@pytest.mark.timeout(120)
def test_importing_trainers_does_not_import_torch() -> None:
    """Check that the package and its data/metrics modules load without torch, and names resolve lazily."""
    code = (
        "import sys\n"
        "import archsearch.trainers, archsearch.trainers.data, archsearch.trainers.metrics\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "from archsearch.trainers import train_mlp, TrainSettings, load_model, ExportError\n"
        "assert 'torch' in sys.modules\n"
        "assert issubclass(ExportError, ValueError)\n"
        "import archsearch.trainers as t\n"
        "assert all(hasattr(t, name) for name in t.__all__)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
