"""What the device machinery of a worker needs: GPU count and freeing memory after a failed trial."""

from __future__ import annotations

import gc

import torch


def cuda_device_count() -> int:
    """GPUs visible to this process (0 without CUDA); does not create a CUDA context."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def release_memory() -> None:
    """Collect garbage and return cached CUDA blocks, so the next trial starts from a clean device."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
