"""Rows as free parameters for gradient steps: numeric features kept inside the training range by a sigmoid,
each categorical column's one-hot block relaxed to a softmax over its categories and projected back to one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from archsearch.trainers.explain._inputs import ColumnSpace

__all__ = ["RelaxedRow", "one_thread", "torch_threads"]

_EDGE = 1e-4  # a start on the range's edge gets a finite sigmoid parameter


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside the block (None: left as they are)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """torch on one thread for the few rows of a gradient search: on a busy 2-core machine, waking a second
    thread for each tiny op made a softmax of 3 x 4 values take 1.2 ms instead of 2 us."""
    return torch_threads(1)


class RelaxedRow:
    """Encoded rows (m, n_encoded) as `torch` parameters; features not in `free` stay at `start`'s values.

    Args:
        space: The model's columns and training rows.
        start: Encoded starting rows (m, n_encoded).
        free: The user columns that may move (default: all).
    """

    def __init__(self, space: ColumnSpace, start: np.ndarray, free: list[int] | None = None) -> None:
        self.space = space
        free = list(range(len(space.columns))) if free is None else free
        low, high = space.low_high()
        start = np.atleast_2d(np.asarray(start, dtype=np.float64))
        self.start = torch.as_tensor(start)
        numeric = [int(space.features_of(c)[0]) for c in free if not space.is_categorical(c)]
        numeric = [j for j in numeric if high[j] > low[j]]  # a constant training column cannot move
        self.numeric = torch.as_tensor(numeric, dtype=torch.int64)
        self.low = torch.as_tensor(low[numeric])
        self.width = torch.as_tensor(high[numeric] - low[numeric])
        fraction = ((start[:, numeric] - low[numeric]) / (high[numeric] - low[numeric])).clip(_EDGE, 1 - _EDGE)
        self.u = torch.nn.Parameter(torch.as_tensor(np.log(fraction / (1 - fraction))))
        self.blocks = [torch.as_tensor(space.features_of(c)) for c in free if space.is_categorical(c)]
        self.v = [
            torch.nn.Parameter(torch.log(torch.as_tensor(start[:, block]).clamp_min(0.0) * 0.9 + 0.1 / len(block)))
            for block in self.blocks
        ]

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.u, *self.v]

    def rows(self) -> torch.Tensor:
        """The relaxed rows (m, n_encoded): numeric features inside the range, one-hot blocks on the simplex."""
        x = self.start.clone()
        if len(self.numeric):
            x[:, self.numeric] = self.low + self.width * torch.sigmoid(self.u)
        for block, logits in zip(self.blocks, self.v):
            x[:, block] = torch.softmax(logits, dim=1)
        return x

    def projected(self) -> np.ndarray:
        """The rows with every relaxed one-hot block set to its most likely category (m, n_encoded)."""
        x = self.rows().detach().numpy().copy()
        for block in self.blocks:
            columns = block.numpy()
            chosen = x[:, columns].argmax(axis=1)
            x[:, columns] = 0.0
            x[np.arange(len(x)), columns[chosen]] = 1.0
        return x
