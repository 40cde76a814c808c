"""Weights on disk: the bytes stored as each trial's Optuna artifact and exported as model.pt."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Sequence

import torch

__all__ = ["WeightsError", "save_weights", "load_weights", "weights_mismatch"]


class WeightsError(ValueError):
    """A weights file that cannot be read as a state dict (corrupt, truncated, or not ours)."""


def save_weights(state_dict: dict[str, Any], path: str | Path) -> Path:
    """Save a state dict (tensors moved to CPU) with torch.save."""
    path = Path(path)
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, path)
    return path


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict saved by `save_weights`; never unpickles arbitrary objects.

    Raises:
        WeightsError: The file is corrupt, truncated or holds something other than tensors.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{str(path)!r} is not a readable weights file (corrupt or truncated): {first_line}") from e
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise WeightsError(f"{str(path)!r} does not hold a state dict of tensors.")
    return state


def weights_mismatch(
    state_dict: dict[str, torch.Tensor], n_inputs: int, widths: Sequence[int], n_outputs: int
) -> str | None:
    """Why `state_dict` cannot be the MLP `n_inputs -> widths -> n_outputs`, or None when its shapes fit.

    Only the Linear layers hold weights, in order, whatever Dropout layers sit between them, so their
    2-D weight shapes alone tell the layer sizes: (fan_out, fan_in) for each.
    """
    sizes = [n_inputs, *widths, n_outputs]
    expected = [(fan_out, fan_in) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
    found = [tuple(t.shape) for t in state_dict.values() if t.ndim == 2]
    if len(found) != len(expected):
        return f"they hold {len(found)} linear layers where the architecture has {len(expected)}"
    for k, (got, want) in enumerate(zip(found, expected)):
        if got != want:
            name = (
                "the output layer" if k == len(expected) - 1 else f"hidden layer {k + 1}"
            )  # layer 1 is next to the input, as everywhere
            return (
                f"{name} is {got[1]} -> {got[0]} where the study's architecture has {want[1]} -> {want[0]} "
                f"({n_inputs} inputs, widths {list(widths)}, {n_outputs} outputs)"
            )
    return None
