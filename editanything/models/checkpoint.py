"""Reading a torch checkpoint (`.pth`, `.pt`, `.ckpt`) that may be any file a user put under that name."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, first_line

# torch.save writes a zip (since torch 1.6) or, before that, a pickle (protocol 2+ starts with 0x80)
_MAGIC = (b"PK\x03\x04", b"\x80")


def load_torch_state(path: str | Path, what: str, *, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """torch.load(`path`) of tensors and plain containers only (weights_only); InvalidInputError in one
    line naming the file and `what` it should be ("SAM checkpoint") for anything else: a text file,
    a zip of something else, a pickle of objects, a truncated download."""
    import torch

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it as a {what} ({exc.strerror or exc})") from None
    if not head.startswith(_MAGIC):
        raise InvalidInputError(f"{path} is not a {what}: not a file torch.save wrote (it starts with {head!r}); "
                                "download it again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, OSError) as exc:  # what torch raises on a damaged or foreign file, or refuses to run
        why = first_line(exc)
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
            # torch's own 6 lines invite loading it anyway; a file of objects can run code when unpickled
            why = "it holds Python objects besides tensors, which could run code; only plain weights are loaded"
        raise InvalidInputError(f"{path} is not a readable {what} ({why}); download it again") from None
