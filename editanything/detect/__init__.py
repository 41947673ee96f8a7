"""Text → boxes: the Detector protocol and its registry (Grounding DINO).

`get_detector("auto")` builds the first Grounding DINO whose files are on disk, else raises
ModelNotFound with the `editanything models download …` command. Importing this package loads
neither torch nor groundingdino.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..models import find_model, get_spec, resolve
from ..types import Detections
from .grounding_dino import GroundingDinoDetector, load_grounding_dino, normalize_caption


@runtime_checkable
class Detector(Protocol):
    """Phrases ("dog . red car") → one instance per box: xyxy in pixels, score, phrase; best first.

    Raises NothingFound when nothing passes the backend's threshold.
    """

    name: str

    def detect(self, image: np.ndarray, text: str) -> Detections: ...

    def describe(self) -> str: ...


DETECTOR_MODELS = ("groundingdino-swint-ogc", "groundingdino-swinb")  # "auto" tries them in this order


def _grounding_dino_builder(model: str) -> Callable[..., Detector]:
    def build(**kwargs: Any) -> Detector:
        return GroundingDinoDetector.from_model(model, **kwargs)

    return build


DETECTORS: dict[str, Callable[..., Detector]] = {m: _grounding_dino_builder(m) for m in DETECTOR_MODELS}
"""Detector name → builder taking the backend's keyword settings."""


def register_detector(name: str, builder: Callable[..., Detector]) -> None:
    DETECTORS[name] = builder


def _present(model: str) -> bool:
    spec = get_spec(model)
    return all(find_model(m) is not None for m in (model, *spec.requires))


def get_detector(name: str = "auto", **kwargs: Any) -> Detector:
    """Build a detector by name; "auto" is the first of DETECTOR_MODELS whose files (and BERT) are on disk."""
    if name == "auto":
        present = [m for m in DETECTOR_MODELS if _present(m)]
        if not present:
            first = DETECTOR_MODELS[0]
            for model in (first, *get_spec(first).requires):
                resolve(model)  # raises ModelNotFound naming the download command
        name = present[0]
    if name not in DETECTORS:
        raise InvalidInputError(f"unknown detector {name!r}; known: auto, {', '.join(DETECTORS)}")
    return DETECTORS[name](**kwargs)


__all__ = [
    "DETECTORS", "DETECTOR_MODELS", "Detector", "GroundingDinoDetector", "get_detector", "load_grounding_dino",
    "normalize_caption", "register_detector",
]
