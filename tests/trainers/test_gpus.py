"""Tests of archsearch.trainers._gpus: counting GPUs without importing torch when there can be none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archsearch.trainers import _gpus
from archsearch.trainers._gpus import cuda_device_count

COUNT_AND_REPORT_TORCH = (
    "import sys; from archsearch.trainers import cuda_device_count; print(cuda_device_count(), 'torch' in sys.modules)"
)


def _count_in_fresh_process(**env: str) -> tuple[int, bool]:
    out = subprocess.run(
        [sys.executable, "-c", COUNT_AND_REPORT_TORCH],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return int(out[0]), out[1] == "True"


def test_cuda_device_count_hidden_gpus_need_no_torch() -> None:
    """Check that CUDA_VISIBLE_DEVICES='' (or -1) gives 0 without importing torch."""
    for hidden in ("", "-1"):
        assert _count_in_fresh_process(CUDA_VISIBLE_DEVICES=hidden) == (0, False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the driver check is Linux-only")
def test_cuda_device_count_without_a_driver_needs_no_torch() -> None:
    """Check that a Linux machine without the NVIDIA driver answers 0 without importing torch."""
    if any(Path(p).exists() for p in _gpus._NVIDIA_DRIVER_PATHS):
        pytest.skip("this machine has the NVIDIA driver")
    environment = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run(
        [sys.executable, "-c", COUNT_AND_REPORT_TORCH],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == ["0", "False"]


def test_cuda_device_count_with_a_driver_asks_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Check that where a driver path exists, torch's own count is the answer."""
    import torch

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(_gpus, "_NVIDIA_DRIVER_PATHS", (str(tmp_path),))
    expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert cuda_device_count() == expected
