"""Masks → words: the Captioner protocol and its registry (BLIP-2).

`get_captioner("auto")` builds the first captioner whose files are on disk, else raises
ModelNotFound with the `editanything models download …` command. Importing this package loads
neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..registry import Registry, for_model
from .blip2 import DEFAULT_PROMPT, Blip2Captioner, region_box, region_crop


@runtime_checkable
class Captioner(Protocol):
    """An image, or the region a mask selects, → a caption (or the answer to `prompt`)."""

    name: str

    def caption(self, image: np.ndarray, mask: np.ndarray | None = None, prompt: str | None = None) -> str: ...

    def caption_regions(self, image: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray,
                        prompt: str | None = None) -> list[str]: ...

    def describe(self) -> str: ...


CAPTIONER_MODELS = ("blip2-opt-2.7b",)  # "auto" tries them in this order


_blip2 = for_model(Blip2Captioner.from_model)
CAPTIONERS: Registry[Captioner] = Registry("captioner", {m: _blip2(m) for m in CAPTIONER_MODELS},
                                           backends={"blip2": _blip2}, order=CAPTIONER_MODELS)
"""Captioner name → builder taking the backend's keyword settings; manifest backend → builder factory."""
CAPTIONER_BACKENDS = CAPTIONERS.backends
register_captioner = CAPTIONERS.register


def get_captioner(name: str = "auto", **kwargs: Any) -> Captioner:
    """Build a captioner by name; "auto" is the first of CAPTIONER_MODELS whose files are on disk."""
    return CAPTIONERS.get(name, **kwargs)


__all__ = [
    "CAPTIONERS", "CAPTIONER_BACKENDS", "CAPTIONER_MODELS", "DEFAULT_PROMPT", "Blip2Captioner", "Captioner", "get_captioner",
    "region_box", "region_crop", "register_captioner",
]
