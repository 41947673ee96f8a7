"""The learned sketch styles: HED's contours as pen lines (`edges.hed.hed_lines`, the hed style), or over pencil shading."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..edges.hed import check_runtime, hed_lines, lines_from_edges
from ..errors import InvalidInputError
from .classical import pencil as pencil_style


def check_settings(*, low: float = 0.2, high: float = 0.5, width: float = 1.5, size: int = 0, pencil: float = 0.0,
                   runtime: str = "auto", **pencil_params: Any) -> None:
    """Check the hed and hed-pencil settings given (the defaults here are only valid stand-ins) without
    running HED, so a bad value stops a batch before the network loads."""
    if size < 0:
        raise InvalidInputError(f"sketch parameter size={size} must be >= 0 (0 = full resolution)")
    check_runtime(runtime)
    lines_from_edges(np.zeros((8, 8), np.float32), low=low, high=high, width=width)
    if not 0 <= pencil <= 1:
        raise InvalidInputError(f"sketch parameter pencil={pencil} is out of range; expected a value in [0, 1]")
    if pencil_params:
        pencil_style(np.full((16, 16), 255, np.uint8), **pencil_params)


def hed_pencil(rgb: np.ndarray, *, low: float = 0.2, high: float = 0.5, width: float = 1.5, size: int = 1024,
               pencil: float = 0.7, blur: float = 6.0, gamma: float = 3.0, dark_offset: int = 12,
               shade: float = 0.25, runtime: str = "auto") -> np.ndarray:
    """HED contours drawn over pencil shading.

    pencil: 0..1 strength of the pencil layer (0 = lines only); blur/gamma/dark_offset/shade as
    in the pencil style; low/high/width/size/runtime as in the hed style.
    """
    check_settings(pencil=pencil)
    gray = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    shading = pencil_style(gray, blur=blur, gamma=gamma, dark_offset=dark_offset, shade=shade)
    lines = hed_lines(rgb, low=low, high=high, width=width, size=size, runtime=runtime)
    # Lighten the pencil layer towards paper by (1 - pencil), then multiply the lines over it.
    shading = cv2.addWeighted(shading, pencil, np.full_like(shading, 255), 1 - pencil, 0)
    return cv2.multiply(shading, lines, scale=1 / 255)
