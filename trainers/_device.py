"""Freeing memory after a failed trial, so that the next trial starts from a clean device."""

from __future__ import annotations

import gc

import torch


def release_memory() -> None:
    """Collect garbage and return cached CUDA blocks, so the next trial starts from a clean device."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
