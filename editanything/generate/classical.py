"""Weight-free inpainting with OpenCV (Telea's fast marching or Navier–Stokes), for *remove* without models."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..types import GenerationParams, check_mask, check_rgb
from .generated import Generated, changed

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class ClassicalGenerator:
    """Fills the mask from its surroundings; deterministic, so every image of a batch is the same.

    It ignores the prompt and sampler and works at the size it is given (no resize needed).
    """

    works_at_any_size = True
    takes_prompt = False
    note = ""  # why "auto" chose it, shown by describe()

    def __init__(self, method: str = "telea", radius: float = 5.0):
        if method not in METHODS:
            raise InvalidInputError(f"unknown classical inpaint method {method!r}; choose one of: {', '.join(METHODS)}")
        if not radius > 0:
            raise InvalidInputError(f"inpaint radius must be > 0 pixels; got {radius!r}")
        self.method, self.radius = method, float(radius)

    @property
    def name(self) -> str:
        return f"classical-{self.method}"

    def describe(self) -> str:
        return f"{self.name} ({self.note})" if self.note else self.name

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams | None = None) -> Generated:
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        params = params or GenerationParams()
        filled = cv2.inpaint(image, mask.astype(np.uint8) * 255, self.radius, METHODS[self.method])
        return Generated(changed(image, [filled.copy() for _ in range(params.n_images)], self.name),
                         model=self.model_info())

    def model_info(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "radius": self.radius, "opencv": cv2.__version__}

    def release(self) -> None:
        """Nothing to free: there is no model."""
