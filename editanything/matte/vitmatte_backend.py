"""ViTMatte on transformers (`VitMatteForImageMatting`, Apache-2.0 weights): image + trimap → alpha.

The model folder is a `save_pretrained` one (config.json, model.safetensors, preprocessor_config.json), as
`hustvl/vitmatte-small-composition-1k` publishes it. Its processor normalises the crop, appends the trimap as
a fourth channel and pads both to a multiple of 32; the alpha comes back padded and is cut to the crop.
The subject's colours in the band come from the same foreground estimation as the pymatting backend.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import require
from ..models.transformers_folder import FolderModel
from .pymatting_backend import estimate_foreground

BACKEND = "vitmatte-hf"
# ViTMatte's global-attention blocks cost memory in the square of the token count (one per 16x16 patch): a
# crop above this many pixels is matted at a reduced size and its alpha brought back to the crop's.
MAX_PIXELS = 1536 * 1536


class VitMatte(FolderModel):
    """Alpha from transformers' ViTMatte; settings: `max_pixels` (the largest crop the model sees at full size)."""

    model_class = "VitMatteForImageMatting"
    processor_class = "VitMatteImageProcessor"
    backend = BACKEND
    default_model = "vitmatte-small"
    extra = "matte"
    family = "ViTMatte"

    def __init__(self, model: Any, processor: Any, *, name: str = "vitmatte", source: str = "",
                 max_pixels: int = MAX_PIXELS) -> None:
        self._torch = require("torch", "matte")
        self._bind(model, processor, name, source)
        self.max_pixels = int(max_pixels)

    @classmethod
    def _dtype(cls, device: str) -> Any:
        """fp32 on every device: the alpha is a fine-grained regression."""
        return require("torch", "matte").float32

    def alpha(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        """The model's alpha (float32 (h, w) in [0, 1]) for an RGB uint8 crop and its uint8 trimap."""
        h, w = trimap.shape
        scale = min(1.0, (self.max_pixels / float(h * w)) ** 0.5)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
        inputs = self.processor(images=image, trimaps=trimap, return_tensors="pt")
        with self._torch.inference_mode():
            alphas = self.model(pixel_values=inputs["pixel_values"].to(self.device)).alphas
        alpha = alphas[0, 0, : trimap.shape[0], : trimap.shape[1]].float().cpu().numpy()
        if scale < 1.0:
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32)

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        trimap = np.asarray(trimap, np.uint8)
        alpha = self.alpha(np.asarray(image, np.uint8), trimap)
        # The network's alpha is free on the known regions too; the colours are estimated under the matte
        # the photo gets, which is exactly 1 and 0 there.
        alpha = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, alpha)).astype(np.float32)
        return alpha, estimate_foreground(image, alpha)
