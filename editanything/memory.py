"""Process memory: giving freed memory back to the system, and when to run the low-memory path.

`trim()` after a model is dropped: Python's collector frees the tensors, but glibc keeps most of what
they occupied in its heap and arenas (blocks under its mmap threshold, which rises to 32 MB as large
blocks are freed), so without `malloc_trim` the process stays as large as it was. Measured on a full
CPU edit: releasing Grounding DINO and SAM gave back 0.5 GB, trimming 1.0 GB more.

`low_memory_default()` is the rule `Editor(low_memory=None)` follows: the low-memory path (each stage's
models released before the next stage loads, Stable Diffusion's text encoder freed after encoding)
as `EDITANYTHING_LOW_MEMORY` (1/0) says, else for a one-shot edit (the CLI's single photo: nothing is
used twice, so releasing each model after its last use costs nothing), else when the memory available
now is below `low_memory_below(needs)`: twice what keeping the chosen models loaded takes (their
files' size on disk plus `WORKING_BYTES`), or `LOW_MEMORY_BELOW` when the models are not known.
Neither path changes a pixel; only when models load differs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
from typing import Callable

from .errors import InvalidInputError

# A full CPU edit with every model kept (Grounding DINO Swin-T, SAM vit_b, SD 1.5 from fp16 files) peaks at
# 5.6 GB, 3.6 GB of it its files on disk: the rest is activations (SAM's image encoder at 1024 px alone
# holds 2.4 GB for a moment) and the runtime. Below twice the peak available, the low-memory path leaves
# room for the rest of the machine.
WORKING_BYTES = 2 * 10**9
LOW_MEMORY_BELOW = 12 * 10**9  # models not known (an instance passed in)
ENV = "EDITANYTHING_LOW_MEMORY"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # glibc has it; musl does not


_LIBC = _libc()


def trim() -> None:
    """Collect garbage and hand freed heap memory back to the system (glibc), and CUDA's cache if in use."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    torch = sys.modules.get("torch")  # only if something imported it: this must not import torch
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def available_bytes() -> int | None:
    """Memory available to new work now (MemAvailable, or psutil where there is no /proc); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def low_memory_below(needs: int | None) -> int:
    """The memory available under which the low-memory path is the default, for models of `needs` bytes on disk."""
    return LOW_MEMORY_BELOW if needs is None else 2 * (needs + WORKING_BYTES)


def low_memory_default(one_shot: bool = False, needs: Callable[[], int | None] | None = None) -> bool:
    """Whether an Editor not told otherwise runs the low-memory path (see the module's docstring);
    `one_shot`: its caller runs one edit (one generation) and nothing after it; `needs()`: the bytes
    on disk of the models it would keep loaded (None: unknown)."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value:
        raise InvalidInputError(f"{ENV}={os.environ[ENV]!r}: set it to 1 (low-memory path) or 0 (keep models loaded), "
                                "or unset it to decide by the memory available")
    if one_shot:
        return True
    available = available_bytes()
    return available is not None and available < low_memory_below(needs() if needs is not None else None)
