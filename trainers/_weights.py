"""Weights on disk: the bytes stored as each trial's Optuna artifact and exported as model.pt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save_weights(state_dict: dict[str, Any], path: str | Path) -> Path:
    """Save a state dict (tensors moved to CPU) with torch.save."""
    path = Path(path)
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, path)
    return path


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict saved by `save_weights`; never unpickles arbitrary objects."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
