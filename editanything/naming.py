"""Output names that say what was asked: `photo.recolor-2255cc.png` is the input's stem, the
operation and a short hash of the request (selection, prompts, settings, models asked for).

Resuming means "the same job again": the same request gives the same name, so a re-run skips what
is done, and a different request (another colour, prompt, seed or selection) gives a new name, so
it writes beside the old result instead of being taken for finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .recipe import array_sha256

TAG_HEX = 6  # 24 bits: two different requests for one photo in one folder never meet in practice

# Editor settings that change which pixels come out (not low_memory, which only changes when models load).
_EDITOR_KEYS = ("detector", "segmenter", "generator", "remover", "matter", "detector_options",
                "segmenter_options", "generator_options")


def output_tag(request: Any, editor: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> str:
    """`MODE-HASH` for an EditRequest run by an Editor built from `editor` (its keyword arguments);
    `extra`: anything else the caller asked that changes the pixels (how a prompt is to be expanded)."""
    asked = {
        "mode": request.mode, "color": request.color,
        "selection": {"text": request.selection.text, "points": request.selection.points,
                      "boxes": request.selection.boxes},
        "mask": None if request.mask is None else array_sha256(np.asarray(request.mask, bool)),
        "params": request.params.to_dict(), "keep": request.keep, "keep_phrases": request.keep_phrases,
        "prompt_for": request.prompt_for, "grow": request.grow, "feather": request.feather,
        "full_image": request.full_image, "matte": request.matte, "matte_band": request.matte_band,
        "control": {kind: array_sha256(np.asarray(a)) for kind, a in sorted(request.control.items())},
        "steps": [[array_sha256(np.asarray(m, bool)), p] for m, p in request.steps],
        "editor": {k: (editor or {}).get(k) for k in _EDITOR_KEYS if (editor or {}).get(k) is not None},
        **({"extra": extra} if extra else {}),
        # a check may keep another attempt (another remover or seed) than the first
        **({"check": request.check, "retries": request.retries} if request.check is not None else {}),
    }
    text = json.dumps(asked, sort_keys=True, default=_spec)
    return f"{request.mode}-{hashlib.sha256(text.encode()).hexdigest()[:TAG_HEX]}"


def _spec(value: Any) -> str:
    """What JSON can't hold: a path as its text, a backend instance by its `name` (or class)."""
    if isinstance(value, Path):
        return str(value)
    return str(getattr(value, "name", type(value).__name__))
