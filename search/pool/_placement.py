"""Where worker processes run: a pure function from the machine's resources to worker slots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from archsearch.base import ArchsearchError

__all__ = ["WorkerSlot", "PlacementError", "plan_workers", "MAX_WORKERS"]

# Each worker is a process with its own database connections; beyond this a typo is likelier than a plan.
MAX_WORKERS = 1024


class PlacementError(ArchsearchError, ValueError):
    """Workers that cannot be placed on this machine as asked."""


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: its index, the device its trials train on, and its torch thread count."""

    index: int
    device: str  # "cpu" or "cuda" (the worker sees only its GPU, as cuda:0)
    gpu: int | None  # physical GPU index, exported as CUDA_VISIBLE_DEVICES
    threads: int

    @property
    def env(self) -> dict[str, str]:
        """Environment set in the worker before torch loads."""
        return {"CUDA_VISIBLE_DEVICES": "" if self.gpu is None else str(self.gpu)}


def plan_workers(
    *,
    cpu_count: int,
    visible_gpus: int,
    workers: int | None = None,
    gpus: Sequence[int] | None = None,
    trials_per_gpu: int = 1,
    device: str = "auto",
) -> list[WorkerSlot]:
    """Place workers: one per GPU (times `trials_per_gpu`), else one per CPU core with one thread each.

    Args:
        cpu_count: CPU cores of this machine.
        visible_gpus: CUDA devices visible to the controller.
        workers: Number of workers; default: every GPU slot, or one per core.
        gpus: Physical GPU indices to use; default: all visible GPUs when the device allows CUDA.
        trials_per_gpu: Workers sharing each GPU (small MLPs leave a GPU mostly idle).
        device: The config's [train] device ("auto", "cpu", "cuda", "cuda:N").

    Example:
        >>> [s.gpu for s in plan_workers(cpu_count=16, visible_gpus=2, trials_per_gpu=3)]
        [0, 1, 0, 1, 0, 1]
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS
    ):
        raise PlacementError(
            f"The 'workers' parameter must be an int in the range [1, {MAX_WORKERS}]. Got {workers!r} instead."
        )
    if isinstance(trials_per_gpu, bool) or not isinstance(trials_per_gpu, int) or trials_per_gpu < 1:
        raise PlacementError(f"The 'trials_per_gpu' parameter must be an int >= 1. Got {trials_per_gpu!r} instead.")
    if cpu_count < 1:
        raise PlacementError(f"The 'cpu_count' parameter must be an int >= 1. Got {cpu_count!r} instead.")
    wants_cuda = device.startswith("cuda") or gpus is not None
    if gpus is None and device.startswith("cuda:"):
        gpus = [int(device.split(":")[1])]
    if wants_cuda and visible_gpus == 0:
        if gpus is not None:
            fix = "Leave out --gpus to train on the CPU cores"
            asked = f"--gpus {','.join(map(str, gpus))}"
        else:
            fix = "Set [train] device to 'auto' or 'cpu'"
            asked = f"device {device!r}"
        raise PlacementError(
            f"CUDA was asked for ({asked}) but no GPU is visible on this machine. {fix}, or run on a machine with a GPU."
        )
    if gpus is not None:
        if not gpus:
            raise PlacementError("The 'gpus' parameter must list at least one GPU index. Got [] instead.")
        for gpu in gpus:
            if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu < visible_gpus:
                raise PlacementError(
                    f"The 'gpus' parameter must list GPU indices from 0 to {visible_gpus - 1} "
                    f"({visible_gpus} visible). Got {gpu!r} instead."
                )
        if len(set(gpus)) != len(gpus):
            raise PlacementError(f"The 'gpus' parameter must not repeat an index. Got {list(gpus)} instead.")
    elif device != "cpu" and visible_gpus > 0:
        gpus = list(range(visible_gpus))
    if gpus:
        count = workers if workers is not None else len(gpus) * trials_per_gpu
        # Round-robin keeps the GPUs balanced: worker i goes to gpus[i % n].
        threads = max(1, cpu_count // count)
        return [WorkerSlot(index=i, device="cuda", gpu=gpus[i % len(gpus)], threads=threads) for i in range(count)]
    count = workers if workers is not None else cpu_count
    # Small MLPs gain more from trials in parallel than from intra-op threads, so workers share the
    # cores and each gets an equal share (at least one thread; more workers than cores time-share).
    threads = max(1, cpu_count // count)
    return [WorkerSlot(index=i, device="cpu", gpu=None, threads=threads) for i in range(count)]
