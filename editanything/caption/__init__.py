"""Masks → words: the Captioner protocol and its registry (BLIP-2).

`get_captioner("auto")` builds the first captioner whose files are on disk, else raises
ModelNotFound with the `editanything models download …` command. Importing this package loads
neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..models import find_model, find_spec, resolve
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


def _blip2_builder(model: str) -> Callable[..., Captioner]:
    def build(**kwargs: Any) -> Captioner:
        return Blip2Captioner.from_model(model, **kwargs)

    return build


CAPTIONERS: dict[str, Callable[..., Captioner]] = {m: _blip2_builder(m) for m in CAPTIONER_MODELS}
"""Captioner name → builder taking the backend's keyword settings."""

CAPTIONER_BACKENDS: dict[str, Callable[[str], Callable[..., Captioner]]] = {"blip2": _blip2_builder}
"""Manifest backend → builder factory, so a model added through the manifest is a captioner by its name."""


def register_captioner(name: str, builder: Callable[..., Captioner]) -> None:
    CAPTIONERS[name] = builder


def get_captioner(name: str = "auto", **kwargs: Any) -> Captioner:
    """Build a captioner by name; "auto" is the first of CAPTIONER_MODELS whose files are on disk."""
    if name == "auto":
        present = [m for m in CAPTIONER_MODELS if find_model(m) is not None]
        if not present:
            resolve(CAPTIONER_MODELS[0])  # raises ModelNotFound naming the download command
        name = present[0]
    builder = CAPTIONERS.get(name) or _manifest_builder(name)
    if builder is None:
        raise InvalidInputError(f"unknown captioner {name!r}; known: auto, {', '.join(CAPTIONERS)}, or a model of "
                                f"the manifest with one of the backends {', '.join(CAPTIONER_BACKENDS)}")
    return builder(**kwargs)


def _manifest_builder(name: str) -> Callable[..., Captioner] | None:
    spec = find_spec(name)
    factory = CAPTIONER_BACKENDS.get(spec.backend) if spec is not None else None
    return factory(name) if factory is not None else None


__all__ = [
    "CAPTIONERS", "CAPTIONER_BACKENDS", "CAPTIONER_MODELS", "DEFAULT_PROMPT", "Blip2Captioner", "Captioner", "get_captioner",
    "region_box", "region_crop", "register_captioner",
]
