import json

import pytest

from archsearch.spaces import Candidate, Hyperparameters, InvalidSpaceError, NetSpec


def _arch(widths: tuple[int, ...], activation: str = "relu") -> NetSpec:
    return NetSpec(widths=widths, dropouts=(0.0,) * len(widths), activation=activation)


def test_architecture_n_params_matches_hand_count() -> None:
    """Check that n_params counts the weights and biases of every Linear layer."""
    assert _arch((32, 16)).n_params(64, 10) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    # Depth 0 is one Linear layer from the inputs to the outputs.
    assert _arch(()).n_params(64, 10) == 64 * 10 + 10


def test_architecture_depth_and_total_units() -> None:
    """Check that depth and total_units describe the hidden layers."""
    arch = _arch((32, 16, 8))
    assert (arch.depth, arch.total_units) == (3, 56)
    assert (_arch(()).depth, _arch(()).total_units) == (0, 0)


@pytest.mark.parametrize(
    "widths, expected",
    [
        ((), "linear"),
        ((64,), "single"),
        ((64, 64, 64), "uniform"),
        ((128, 64, 32), "funnel"),
        ((128, 128, 32), "funnel"),
        ((32, 64, 128), "expanding"),
        ((32, 64, 64), "expanding"),
        ((32, 128, 64), "diamond"),
        ((32, 128, 128, 16), "diamond"),
        ((16, 32, 64, 32, 16), "diamond"),
        ((128, 32, 64), "irregular"),
        ((32, 64, 32, 64), "irregular"),
    ],
)
def test_architecture_layer_shape_classifies_hand_cases(widths: tuple[int, ...], expected: str) -> None:
    """Check that layer_shape names each width profile."""
    assert _arch(widths).layer_shape() == expected


def test_architecture_coerces_lists_to_tuples() -> None:
    """Check that lists become tuples, so equal architectures compare and hash equal."""
    arch = NetSpec(widths=[32, 16], dropouts=[0.1, 0], activation="gelu")
    assert arch == NetSpec(widths=(32, 16), dropouts=(0.1, 0.0), activation="gelu")
    assert isinstance(arch.widths, tuple) and isinstance(arch.dropouts[1], float)
    assert hash(arch)


def test_architecture_round_trips_through_json() -> None:
    """Check that from_dict(to_dict()) gives the same architecture after JSON."""
    arch = NetSpec(widths=(32, 16), dropouts=(0.25, 0.0), activation="tanh")
    assert NetSpec.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch


def test_architecture_from_dict_rejects_unknown_and_missing_keys() -> None:
    """Check that from_dict names an unknown key and a missing one."""
    data = {"widths": [8], "dropouts": [0.0], "activation": "relu"}
    match = r"Unknown key 'widht' in NetSpec; did you mean 'widths'\?"
    with pytest.raises(InvalidSpaceError, match=match):
        NetSpec.from_dict({**data, "widht": [8]})
    with pytest.raises(InvalidSpaceError, match="Missing key 'dropouts' in NetSpec"):
        NetSpec.from_dict({"widths": [8], "activation": "relu"})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"widths": (8, 0)}, r"'widths' parameter of NetSpec must be a list of ints >= 1"),
        ({"widths": (8, True)}, r"'widths' .* ints >= 1. Got \(8, True\) instead"),
        ({"widths": "8"}, r"'widths' .* ints >= 1"),
        ({"dropouts": (1.0,)}, r"'dropouts' .* floats in \[0, 1\)"),
        ({"dropouts": (-0.1,)}, r"'dropouts' .* floats in \[0, 1\)"),
        ({"dropouts": (0.1, 0.1)}, r"'dropouts' .* as long as widths \(1\). Got \(0.1, 0.1\) instead"),
        ({"activation": "swish"}, r"'activation' .* one of \{'relu', 'gelu'.*\}. Got 'swish' instead"),
    ],
)
def test_architecture_rejects_invalid_values(kwargs: dict, match: str) -> None:
    """Check that each invalid field raises the scikit-learn style error naming it."""
    valid = {"widths": (8,), "dropouts": (0.0,), "activation": "relu"}
    with pytest.raises(InvalidSpaceError, match=match):
        NetSpec(**{**valid, **kwargs})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 0.0}, r"'lr' parameter of Hyperparameters must be a float > 0. Got 0.0 instead"),
        ({"lr": float("nan")}, r"'lr' .* a float > 0"),
        ({"lr": "0.1"}, r"'lr' .* a float > 0"),
        ({"weight_decay": -1e-4}, r"'weight_decay' .* a float >= 0"),
        ({"batch_size": 0}, r"'batch_size' .* an int >= 1. Got 0 instead"),
        ({"batch_size": 64.0}, r"'batch_size' .* an int >= 1"),
        ({"optimizer": "rmsprop"}, r"'optimizer' .* one of \{'adam', 'adamw', 'sgd'\}"),
    ],
)
def test_hyperparameters_rejects_invalid_values(kwargs: dict, match: str) -> None:
    """Check that each invalid field raises the scikit-learn style error naming it."""
    valid = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}
    with pytest.raises(InvalidSpaceError, match=match):
        Hyperparameters(**{**valid, **kwargs})


def test_candidate_round_trips_through_json() -> None:
    """Check that a candidate survives to_dict, JSON and from_dict, as it does in a user attribute."""
    candidate = Candidate(
        architecture=_arch((16,)),
        hyperparameters=Hyperparameters(lr=1e-3, weight_decay=0, batch_size=128, optimizer="sgd"),
    )
    assert Candidate.from_dict(json.loads(json.dumps(candidate.to_dict()))) == candidate
