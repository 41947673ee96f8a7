"""Text → boxes: the Detector protocol and its registry (Grounding DINO on transformers or groundingdino-py, SAM 3).

`get_detector("auto")` builds the first detector of DETECTOR_MODELS whose files are on disk, else
raises ModelNotFound with the `editanything models download …` command. Importing this package
loads neither torch, transformers nor groundingdino.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..models import find_model, find_spec, get_spec, resolve
from ..types import Detections
from .grounding_dino import GroundingDinoDetector, load_grounding_dino, normalize_caption
from .grounding_dino_hf import GroundingDinoHFDetector


@runtime_checkable
class Detector(Protocol):
    """Phrases ("dog . red car") → one instance per box: xyxy in pixels, score, phrase; best first.

    Raises NothingFound when nothing passes the backend's threshold.
    """

    name: str

    def detect(self, image: np.ndarray, text: str) -> Detections: ...

    def describe(self) -> str: ...


HF_DETECTOR_MODELS = ("grounding-dino-tiny", "grounding-dino-base")
GDINO_PY_MODELS = ("groundingdino-swint-ogc", "groundingdino-swinb")
# "auto" tries them in this order: transformers first (no BERT download, no groundingdino-py), then
# groundingdino-py, then SAM 3 (gated, 3.4 GB) last.
DETECTOR_MODELS = (*HF_DETECTOR_MODELS, *GDINO_PY_MODELS, "sam3")


def _builder(factory: Callable[..., Detector], model: str) -> Callable[..., Detector]:
    def build(**kwargs: Any) -> Detector:
        return factory(model, **kwargs)

    return build


def _sam3(model: str, **kwargs: Any) -> Detector:
    from .sam3 import Sam3Detector

    return Sam3Detector.from_model(model, **kwargs)


DETECTORS: dict[str, Callable[..., Detector]] = {
    **{m: _builder(GroundingDinoHFDetector.from_model, m) for m in HF_DETECTOR_MODELS},
    **{m: _builder(GroundingDinoDetector.from_model, m) for m in GDINO_PY_MODELS},
    "sam3": _builder(_sam3, "sam3"),
}
"""Detector name → builder taking the backend's keyword settings."""

DETECTOR_BACKENDS: dict[str, Callable[[str], Callable[..., Detector]]] = {
    "groundingdino": lambda m: _builder(GroundingDinoDetector.from_model, m),
    "grounding-dino-hf": lambda m: _builder(GroundingDinoHFDetector.from_model, m),
    "sam3-hf": lambda m: _builder(_sam3, m),
}
"""Manifest backend → builder factory, so a model added through the manifest is a detector by its name."""


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
            # A detector half on disk (a groundingdino checkpoint without its BERT) names what it lacks.
            partial = [m for m in DETECTOR_MODELS if find_model(m) is not None]
            first = partial[0] if partial else DETECTOR_MODELS[0]
            for model in (first, *get_spec(first).requires):
                resolve(model)  # raises ModelNotFound naming the download command
        name = present[0]
    builder = DETECTORS.get(name) or _manifest_builder(name)
    if builder is None:
        raise InvalidInputError(f"unknown detector {name!r}; known: auto, {', '.join(DETECTORS)}, or a model of "
                                f"the manifest with one of the backends {', '.join(DETECTOR_BACKENDS)}")
    return builder(**kwargs)


def _manifest_builder(name: str) -> Callable[..., Detector] | None:
    spec = find_spec(name)
    factory = DETECTOR_BACKENDS.get(spec.backend) if spec is not None else None
    return factory(name) if factory is not None else None


__all__ = [
    "DETECTORS", "DETECTOR_BACKENDS", "DETECTOR_MODELS", "Detector", "GroundingDinoDetector", "GroundingDinoHFDetector",
    "get_detector", "load_grounding_dino",
    "normalize_caption", "register_detector",
]
