"""What the trainer can build and where it can run, as plain names (no torch).

`archsearch.spaces` repeats the name lists (it may not import trainers); `tests/test_rules.py` keeps the
copies equal, and `archsearch.config` checks devices with `is_device_name` from here.
"""

from __future__ import annotations

import re

__all__ = [
    "ACTIVATIONS",
    "DEVICE_RULE",
    "EMBEDDINGS",
    "LR_SCHEDULES",
    "NORMALIZATIONS",
    "OPTIMIZERS",
    "is_device_name",
]

ACTIVATIONS = ("relu", "gelu", "tanh", "silu", "leaky_relu", "elu")
OPTIMIZERS = ("adam", "adamw", "sgd")  # sgd means Nesterov momentum 0.9
LR_SCHEDULES = ("constant", "cosine", "onecycle")
NORMALIZATIONS = ("none", "batch", "layer")
EMBEDDINGS = ("none", "periodic", "pl")
DEVICE_RULE = "one of 'auto', 'cpu', 'cuda' or 'cuda:N'"

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def is_device_name(name: object) -> bool:
    """Whether `name` is a device the trainer accepts ("auto" picks CUDA when it is there)."""
    return isinstance(name, str) and _DEVICE_PATTERN.fullmatch(name) is not None
