"""MM-Grounding-DINO and LLMDet on transformers (`MMGroundingDinoForObjectDetection`) behind the Detector protocol.

Both publish `save_pretrained` folders of one transformers class that shares Grounding DINO's
processor and grounded post-processing (the contrastive class head and unshared decoder layers are
inside the model), so everything around the model is the Grounding DINO backend's.
"""

from __future__ import annotations

from .grounding_dino_hf import GroundingDinoHFDetector


class MMGroundingDinoDetector(GroundingDinoHFDetector):
    """Text → boxes with an MM-Grounding-DINO or LLMDet folder; settings as `GroundingDinoHFDetector`."""

    model_class = "MMGroundingDinoForObjectDetection"
    backend = "mm-grounding-dino-hf"
    family = "MM-Grounding-DINO"
