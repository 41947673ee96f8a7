"""Text → boxes: the Detector protocol and its registry (Grounding DINO on transformers or groundingdino-py,
MM-Grounding-DINO / LLMDet on transformers, SAM 3, Florence-2 phrase grounding).

`get_detector("auto")` builds the first detector of DETECTOR_MODELS whose files are on disk, else
raises ModelNotFound with the `editanything models download …` command. Importing this package
loads neither torch, transformers nor groundingdino.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..registry import Registry, for_model, name_missing
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
# "auto" tries them in this order, by published zero-shot LVIS AP where there is one (README: which model auto
# takes): LLMDet Swin-T (val 1.0 34.9) before Grounding DINO Swin-T (20.1); those with no published LVIS figure
# keep their place: transformers first (no BERT download, no groundingdino-py), then groundingdino-py, then
# SAM 3 (gated, 3.4 GB). Only catalogue entries whose revisions are pinned and whose licence allows commercial
# use belong here (mm-grounding-dino-tiny follows main: by name only).
DETECTOR_MODELS = ("llmdet-tiny", *HF_DETECTOR_MODELS, *GDINO_PY_MODELS, "sam3")
# With none on disk, the download named is Grounding DINO Swin-T's: its revision and weights' sha256 were read on
# the hub's own pages, llmdet-tiny's in other projects' records (a wrong pin would fail a first download).
FETCH_FIRST = "grounding-dino-tiny"


def _none_found(registry: Registry, **settings: Any) -> Detector:
    name_missing((FETCH_FIRST, *(m for m in DETECTOR_MODELS if m != FETCH_FIRST)))
    raise InvalidInputError(f"no detector of {', '.join(DETECTOR_MODELS)} can be built here")


def _sam3(model: str, **kwargs: Any) -> Detector:
    from .sam3 import Sam3Detector

    return Sam3Detector.from_model(model, **kwargs)


_gdino_py, _gdino_hf, _sam3_model = (for_model(GroundingDinoDetector.from_model),
                                     for_model(GroundingDinoHFDetector.from_model), for_model(_sam3))
_mm_gdino = for_model(MMGroundingDinoDetector.from_model)
_florence2 = for_model(Florence2Detector.from_model)
DETECTORS: Registry[Detector] = Registry(
    "detector",
    {**{m: _gdino_hf(m) for m in HF_DETECTOR_MODELS}, **{m: _gdino_py(m) for m in GDINO_PY_MODELS},
     "sam3": _sam3_model("sam3"), **{m: _florence2(m) for m in FLORENCE2_DETECTORS}},
    backends={"groundingdino": _gdino_py, "grounding-dino-hf": _gdino_hf, "mm-grounding-dino-hf": _mm_gdino,
              "sam3-hf": _sam3_model, "florence2": _florence2},
    order=DETECTOR_MODELS, none_found=_none_found,
)
"""Detector name → builder taking the backend's keyword settings; manifest backend → builder factory."""
DETECTOR_BACKENDS = DETECTORS.backends
register_detector = DETECTORS.register


def get_detector(name: str = "auto", **kwargs: Any) -> Detector:
    """Build a detector by name; "auto" is the first of DETECTOR_MODELS whose files (and BERT) are on disk."""
    return DETECTORS.get(name, **kwargs)


__all__ = [
    "DETECTORS", "DETECTOR_BACKENDS", "DETECTOR_MODELS", "FETCH_FIRST", "Detector", "Florence2Detector",
    "GroundingDinoDetector", "GroundingDinoHFDetector", "MMGroundingDinoDetector", "get_detector", "load_grounding_dino",
    "normalize_caption", "register_detector",
]
