"""Latency of a trained network on its device, measured as `torch.utils.benchmark` does.

A trial's latency is known only after training, on the trial's own device: the search stores it for every
completed trial (`[study] objectives` may minimise it, `[study] max_latency_ms` bounds it). Each batch size
is warmed up, then timed by `Timer.blocked_autorange` at a fixed thread count; the median of its blocks is
kept, which a loaded machine's outliers move less than the mean. It synchronises CUDA itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from archsearch.trainers._select import build_network
from archsearch.trainers.data import Preprocessing
from archsearch.trainers.engine import resolve_device
from archsearch.trainers.names import Net

__all__ = ["LATENCY_BATCH", "Latency", "measure_latency"]

# Rows of the throughput batch: a typical scoring batch, small enough to time in a fraction of a second.
LATENCY_BATCH = 256
WARMUP_CALLS = 3
MIN_RUN_TIME = 0.02  # seconds of timing per batch size: some 0.1 s a trial with the warm-up and block sizing


@dataclass(frozen=True)
class Latency:
    """Median milliseconds per forward call at batch 1 and at `batch` rows, on `device` with `threads`."""

    ms: float
    batch_ms: float
    batch: int
    threads: int
    device: str


def measure_latency(
    net: Net,
    preprocessing: Preprocessing,
    n_outputs: int,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    *,
    device: str = "cpu",
    num_threads: int | None = None,
    batch: int = LATENCY_BATCH,
    min_run_time: float = MIN_RUN_TIME,
) -> Latency:
    """Time `net`'s forward pass in eval mode, without gradients, on rows of `preprocessing`'s encoded width.

    The network is built by `build_network`, as the trainer built it (its feature blocks' column selection, its
    embedding, its head), so that the trained `state_dict` loads and what is timed is what was trained.

    Args:
        net: The architecture (`archsearch.spaces.NetSpec`).
        preprocessing: The data's preprocessing: the input width, the numeric columns and the feature blocks.
        state_dict: The trained weights; None times freshly initialised ones (the same work: an MLP's time
            does not depend on its weights' values).
        num_threads: Threads during timing; None: torch's current setting.
    """
    torch_device = resolve_device(device)
    n_inputs = len(preprocessing.encoded_names)
    model = build_network(net, preprocessing, n_outputs)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model = model.to(torch_device).eval()
    threads = num_threads or torch.get_num_threads()

    def median_ms(rows: int) -> float:
        x = torch.zeros(rows, n_inputs, device=torch_device)

        def forward() -> None:
            with torch.inference_mode():
                model(x)

        for _ in range(WARMUP_CALLS):
            forward()
        timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
        return float(timer.blocked_autorange(min_run_time=min_run_time).median * 1000.0)

    return Latency(ms=median_ms(1), batch_ms=median_ms(batch), batch=batch, threads=threads, device=str(torch_device))
