"""Device and dtype choice for every deep backend: CUDA fp16 when present, else CPU fp32."""

from __future__ import annotations

import os


def pick_device(requested: str | None = None) -> str:
    """`requested` if given, else $EDITANYTHING_DEVICE, else cuda when available, else cpu."""
    requested = requested or os.environ.get("EDITANYTHING_DEVICE")
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str):
    """fp16 on CUDA (half the memory, tensor cores), fp32 on CPU (fp16 matmuls are slow or missing there)."""
    import torch

    return torch.float16 if str(device).startswith("cuda") else torch.float32
