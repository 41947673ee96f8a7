"""Weight-free recolouring: give the masked area a new hue and chroma, keep its shading and texture."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..types import GenerationParams, check_mask, check_rgb
from .generated import Generated, changed

NAMED_COLORS = {
    "red": (200, 30, 30), "orange": (240, 130, 20), "yellow": (240, 210, 30), "green": (40, 160, 60),
    "teal": (0, 128, 128), "cyan": (40, 200, 220), "blue": (30, 70, 200), "navy": (20, 30, 110),
    "purple": (120, 40, 160), "pink": (240, 120, 170), "magenta": (200, 40, 170), "brown": (120, 70, 30),
    "gold": (212, 175, 55), "white": (245, 245, 245), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "black": (20, 20, 20),
}


def parse_color(text: str) -> tuple[int, int, int]:
    """A colour name (red, navy, …) or #rrggbb."""
    value = text.strip().lower()
    if value in NAMED_COLORS:
        return NAMED_COLORS[value]
    hexa = value.lstrip("#")
    if len(hexa) == 6:
        try:
            return tuple(int(hexa[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            pass
    raise InvalidInputError(f"unknown colour {text!r}; use #rrggbb or one of: {', '.join(NAMED_COLORS)}")


class RecolorGenerator:
    """Sets the a*b* (colour) channels of CIELAB to the target's and keeps L* (lightness), so
    folds, shadows and texture survive; `lightness` (0..1) also pulls L* toward the target's."""

    works_at_any_size = True
    takes_prompt = False

    def __init__(self, color: str, lightness: float = 0.3):
        self.color = color
        self.rgb = parse_color(color)
        if not 0 <= lightness <= 1:
            raise InvalidInputError(f"lightness must be in [0, 1]; got {lightness}")
        self.lightness = float(lightness)

    @property
    def name(self) -> str:
        return "recolor"

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams | None = None) -> Generated:
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        target = cv2.cvtColor(np.asarray([[self.rgb]], np.float32) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]
        region = mask.astype(bool)
        lab[..., 0][region] = (1 - self.lightness) * lab[..., 0][region] + self.lightness * target[0]
        lab[..., 1][region] = target[1]
        lab[..., 2][region] = target[2]
        rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        out = image.copy()  # the Lab round trip is not exact: only the selection takes its pixels
        out[region] = np.clip(np.rint(rgb[region] * 255.0), 0, 255).astype(np.uint8)
        n = params.n_images if params else 1
        return Generated(changed(image, [out.copy() for _ in range(n)], self.name), model=self.model_info())

    def model_info(self) -> dict[str, Any]:
        return {"name": self.name, "color": self.color, "rgb": list(self.rgb), "lightness": self.lightness}

    def release(self) -> None:
        """No model to free."""
