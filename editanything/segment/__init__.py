"""Clicks and boxes to masks: SAM when its weights are present, GrabCut otherwise.

`get_segmenter("auto")` picks the best SAM whose checkpoint is on disk, else GrabCut,
whose `describe()` then says which command fetches SAM. Importing this package loads
neither torch nor segment_anything.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from ..errors import InvalidInputError
from ..models import download_command, find_model
from ..types import RefineSeed
from .base import Segmenter
from .grabcut import GrabCutSegmenter
from .sam import SAM_VARIANTS, SamSegmenter, register_sam_variant

SAM_MODELS = ("sam-vit-h", "sam-vit-l", "sam-vit-b")  # best first


def _sam_builder(model: str) -> Callable[..., Segmenter]:
    def build(**kwargs: Any) -> Segmenter:
        return SamSegmenter.from_model(model, **kwargs)

    return build


SEGMENTERS: dict[str, Callable[..., Segmenter]] = {
    **{m: _sam_builder(m) for m in SAM_MODELS},
    "grabcut": GrabCutSegmenter,
}
"""Segmenter name → builder taking the backend's keyword settings."""


def register_segmenter(name: str, builder: Callable[..., Segmenter]) -> None:
    SEGMENTERS[name] = builder


def get_segmenter(name: str = "auto", **kwargs: Any) -> Segmenter:
    """Build a segmenter by name; "auto" is the best SAM on disk, else GrabCut saying why.

    With "auto", `kwargs` go to SAM; a GrabCut fallback takes its defaults.
    """
    if name == "auto":
        return _auto(**kwargs)
    if name not in SEGMENTERS:
        raise InvalidInputError(f"unknown segmenter {name!r}; known: auto, {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)


def _auto(**kwargs: Any) -> Segmenter:
    present = [m for m in SAM_MODELS if find_model(m) is not None]
    if not present:
        reason = f"SAM weights not found — run `{download_command('sam-vit-b')}`"
    elif importlib.util.find_spec("segment_anything") is None or importlib.util.find_spec("torch") is None:
        reason = "segment-anything is not installed — pip install 'editanything[sam]'"
    else:
        return SEGMENTERS[present[0]](**kwargs)
    return GrabCutSegmenter(note=reason)


__all__ = [
    "SAM_MODELS", "SAM_VARIANTS", "SEGMENTERS", "GrabCutSegmenter", "RefineSeed", "SamSegmenter", "Segmenter",
    "get_segmenter", "register_sam_variant", "register_segmenter",
]
