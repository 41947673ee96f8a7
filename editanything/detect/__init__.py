"""Text → boxes: the Detector protocol and its registry (Grounding DINO on transformers or groundingdino-py,
MM-Grounding-DINO / LLMDet on transformers, SAM 3, Florence-2 phrase grounding).

`get_detector("auto")` builds the first detector of DETECTOR_MODELS whose files are on disk, else
raises ModelNotFound with the `editanything models download …` command. Importing this package
loads neither torch, transformers nor groundingdino.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..registry import Registry, for_model
from ..types import Detections
from .grounding_dino import GroundingDinoDetector, load_grounding_dino, normalize_caption
from .grounding_dino_hf import GroundingDinoHFDetector
from .florence2 import Florence2Detector
from .mm_grounding_dino import MMGroundingDinoDetector

FLORENCE2_DETECTORS = ("florence-2-base",)  # by name only: grounding gives no calibrated score (see detect/florence2.py)


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


def _sam3(model: str, **kwargs: Any) -> Detector:
    from .sam3 import Sam3Detector

    return Sam3Detector.from_model(model, **kwargs)


_gdino_py, _gdino_hf, _sam3_model = (for_model(GroundingDinoDetector.from_model),
                                     for_model(GroundingDinoHFDetector.from_model), for_model(_sam3))
# MM-Grounding-DINO / LLMDet models (llmdet-tiny, a user's manifest entry) are usable by name; "auto" tries none
# until a hub revision is checked there (llmdet-tiny's pin is second-hand).
_mm_gdino = for_model(MMGroundingDinoDetector.from_model)
_florence2 = for_model(Florence2Detector.from_model)
DETECTORS: Registry[Detector] = Registry(
    "detector",
    {**{m: _gdino_hf(m) for m in HF_DETECTOR_MODELS}, **{m: _gdino_py(m) for m in GDINO_PY_MODELS},
     "sam3": _sam3_model("sam3"), **{m: _florence2(m) for m in FLORENCE2_DETECTORS}},
    backends={"groundingdino": _gdino_py, "grounding-dino-hf": _gdino_hf, "mm-grounding-dino-hf": _mm_gdino,
              "sam3-hf": _sam3_model, "florence2": _florence2},
    order=DETECTOR_MODELS,
)
"""Detector name → builder taking the backend's keyword settings; manifest backend → builder factory."""
DETECTOR_BACKENDS = DETECTORS.backends
register_detector = DETECTORS.register


def get_detector(name: str = "auto", **kwargs: Any) -> Detector:
    """Build a detector by name; "auto" is the first of DETECTOR_MODELS whose files (and BERT) are on disk."""
    return DETECTORS.get(name, **kwargs)


__all__ = [
    "DETECTORS", "DETECTOR_BACKENDS", "DETECTOR_MODELS", "Detector", "Florence2Detector", "GroundingDinoDetector", "GroundingDinoHFDetector",
    "MMGroundingDinoDetector", "get_detector", "load_grounding_dino",
    "normalize_caption", "register_detector",
]
