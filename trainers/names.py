"""What the trainer can build and where it can run, as plain names (no torch).

`archsearch.spaces` repeats the name lists (it may not import trainers); `tests/test_rules.py` keeps the
copies equal, and `archsearch.config` checks devices with `is_device_name` from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "ACTIVATIONS",
    "DEVICE_RULE",
    "EMBEDDINGS",
    "LINEAR_SOLVERS",
    "LR_SCHEDULES",
    "NORMALIZATIONS",
    "Net",
    "OPTIMIZERS",
    "is_device_name",
]

ACTIVATIONS = ("relu", "gelu", "tanh", "silu", "leaky_relu", "elu")
OPTIMIZERS = ("adam", "adamw", "sgd")  # sgd means Nesterov momentum 0.9
LR_SCHEDULES = ("constant", "cosine", "onecycle")
# How a network without hidden layers or embedding (a linear/softmax model, a convex problem) is fitted:
# full-batch L-BFGS as scikit-learn's LogisticRegression does, or the trial's own optimizer like every other net.
LINEAR_SOLVERS = ("lbfgs", "optimizer")
NORMALIZATIONS = ("none", "batch", "layer")
EMBEDDINGS = ("none", "periodic", "pl")
DEVICE_RULE = "one of 'auto', 'cpu', 'cuda' or 'cuda:N'"

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def is_device_name(name: object) -> bool:
    """Whether `name` is a device the trainer accepts ("auto" picks CUDA when it is there)."""
    return isinstance(name, str) and _DEVICE_PATTERN.fullmatch(name) is not None


class Net(Protocol):
    """What the trainers read of one network's architecture: `archsearch.spaces.NetSpec` is the one in use.

    The trainers may not import `spaces` (the layout keeps them apart), so they name the fields they read.
    """

    @property
    def widths(self) -> Sequence[int]: ...  # hidden widths, input side first
    @property
    def dropouts(self) -> Sequence[float]: ...  # one per hidden layer
    @property
    def activation(self) -> str: ...  # one of ACTIVATIONS
    @property
    def normalization(self) -> str: ...  # one of NORMALIZATIONS
    @property
    def embedding(self) -> str: ...  # one of EMBEDDINGS
    @property
    def embedding_dim(self) -> int: ...  # values per embedded feature
