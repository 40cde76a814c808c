"""Weights on disk: the bytes stored as each trial's Optuna artifact and exported as model.pt."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import torch

from archsearch.base import ArchsearchError

__all__ = ["WeightsError", "save_weights", "load_weights", "torch_load_reason", "weights_mismatch"]

# torch.load(weights_only=True) names the first Python object it refused, after advice to load the file with
# weights_only=False, which would run code from the file: archsearch keeps the name and never repeats the advice.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


class WeightsError(ArchsearchError, ValueError):
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
        reason = torch_load_reason(e)
        if reason.startswith("it holds Python objects"):
            raise WeightsError(f"{str(path)!r} is not a weights file archsearch wrote: {reason}.") from e
        raise WeightsError(f"{str(path)!r} is not a readable weights file (corrupt or truncated): {reason}") from e
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise WeightsError(f"{str(path)!r} does not hold a state dict of tensors.")
    return state


def torch_load_reason(error: BaseException) -> str:
    """Why `torch.load(weights_only=True)` failed, in one line, without torch's advice to load the file anyway.

    >>> torch_load_reason(pickle.UnpicklingError("Weights only load failed. ... `weights_only` set to `False` ... "
    ...     "WeightsUnpickler error: Unsupported global: GLOBAL datetime.datetime was not an allowed global"))
    'it holds Python objects other than tensors (datetime.datetime)'
    >>> torch_load_reason(EOFError("Ran out of input"))
    'Ran out of input'
    """
    text = str(error).strip()
    if isinstance(error, pickle.UnpicklingError) and "weights_only" in text:
        found = _REFUSED_GLOBAL.search(text)
        if found:
            return f"it holds Python objects other than tensors ({found.group(1)})"
        detail = _UNPICKLER_DETAIL.search(text)
        return "the weights-only unpickler cannot read it" + (f" ({detail.group(1)})" if detail else "")
    return text.splitlines()[0] if text else type(error).__name__


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
