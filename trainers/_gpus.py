"""How many GPUs this process sees, without importing torch where the answer is known without it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Present on Linux whenever the NVIDIA driver is loaded (the /dev nodes also under container runtimes).
_NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0")


def cuda_device_count() -> int:
    """GPUs visible to this process (0 without CUDA); does not create a CUDA context.

    Importing torch takes seconds and so does tearing it down at exit; a controller on a Linux machine
    without the NVIDIA driver, or with CUDA_VISIBLE_DEVICES hiding every GPU, knows the answer is 0 first.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    if sys.platform.startswith("linux") and not any(Path(p).exists() for p in _NVIDIA_DRIVER_PATHS):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
