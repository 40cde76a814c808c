"""Tests of weights files: a corrupt file is one clear error, and shapes are checked against an architecture."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from archsearch.trainers import WeightsError, build_mlp, load_weights, save_weights, weights_mismatch


def test_load_weights_round_trips_a_state_dict(tmp_path: Path) -> None:
    """Check that saved weights load back equal."""
    mlp = build_mlp(4, [8], [0.1], "relu", 3)
    loaded = load_weights(save_weights(mlp.state_dict(), tmp_path / "model.pt"))
    assert all(torch.equal(loaded[k], v) for k, v in mlp.state_dict().items())


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04 truncated zip"])
def test_load_weights_corrupt_file_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    """Check that a corrupt or truncated weights file raises WeightsError naming the file, not UnpicklingError."""
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(
        WeightsError, match=r"'.*model\.pt' is not a readable weights file \(corrupt or truncated\): "
    ) as info:
        load_weights(path)
    # torch's advice to load the file with weights_only=False (running code from it) is never repeated.
    assert "weights_only" not in str(info.value)


def test_load_weights_refuses_a_file_without_tensors(tmp_path: Path) -> None:
    """Check that a torch file holding something other than a state dict is refused."""
    path = tmp_path / "model.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match=r"does not hold a state dict of tensors"):
        load_weights(path)


def test_load_weights_of_a_file_with_python_objects_never_suggests_weights_only_false(tmp_path: Path) -> None:
    """Check that a weights file holding a Python object is refused naming what it holds, without torch's hint
    to load it with weights_only=False (which would run code from the file)."""
    import datetime

    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "when": datetime.datetime(2026, 1, 1)}, path)
    with pytest.raises(
        WeightsError,
        match=r"is not a weights file archsearch wrote: it holds Python objects other than tensors \(datetime\.datetime\)",
    ) as info:
        load_weights(path)
    assert "weights_only" not in str(info.value) and "trust" not in str(info.value)


def test_weights_mismatch_accepts_matching_shapes_whatever_the_dropout() -> None:
    """Check that weights of the same layer sizes fit, with or without Dropout layers between them."""
    state = build_mlp(5, [16, 8], [0.2, 0.0], "relu", 3).state_dict()
    assert weights_mismatch(state, 5, [16, 8], 3) is None


@pytest.mark.parametrize(
    ("n_inputs", "widths", "n_outputs", "message"),
    [
        (
            5,
            [16, 8],
            2,
            r"the output layer is 8 -> 3 where the study's architecture has 8 -> 2 \(5 inputs, widths \[16, 8\], 2 outputs\)",
        ),
        (6, [16, 8], 3, r"hidden layer 1 is 5 -> 16 where the study's architecture has 6 -> 16"),
        (5, [16], 3, r"they hold 3 linear layers where the architecture has 2"),
    ],
)
def test_weights_mismatch_names_the_layer_that_differs(
    n_inputs: int, widths: list[int], n_outputs: int, message: str
) -> None:
    """Check that a 3-class network checked against 2 classes (or other sizes) names the layer and both shapes."""
    state = build_mlp(5, [16, 8], [0.0, 0.0], "relu", 3).state_dict()
    assert re.search(message, weights_mismatch(state, n_inputs, widths, n_outputs) or "")
