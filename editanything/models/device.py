"""Device and dtype choice for every deep backend: CUDA fp16 when present, else CPU fp32."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Device nodes a GPU torch could use needs on Linux: NVIDIA's driver, AMD's compute driver (ROCm), WSL's GPU.
GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def pick_device(requested: str | None = None) -> str:
    """`requested` if given, else $EDITANYTHING_DEVICE, else cuda when available, else cpu."""
    requested = requested or os.environ.get("EDITANYTHING_DEVICE")
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_device_cheaply(requested: str | None = None) -> str:
    """`pick_device`, without importing torch (two seconds) where it could find no GPU anyway: on Linux
    with none of the `GPU_NODES` present, "cpu"."""
    if not (requested or os.environ.get("EDITANYTHING_DEVICE")) and sys.platform.startswith("linux") \
            and not any(Path(node).exists() for node in GPU_NODES):
        return "cpu"
    return pick_device(requested)


def pick_dtype(device: str):
    """fp16 on CUDA (half the memory, tensor cores), fp32 on CPU (fp16 matmuls are slow or missing there)."""
    import torch

    return torch.float16 if str(device).startswith("cuda") else torch.float32
