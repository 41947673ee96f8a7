"""Previews of a selection drawn over the photo: tinted masks, boxes, labels, clicks, outlines.

Shared by `editanything segment` (overlay.png) and the web UI (the click-to-mask canvas).
Every function returns a new RGB uint8 array; pixels far from what is drawn are left as they were.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .masks import bbox
from .types import Detections

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]
POSITIVE, NEGATIVE, BOX = (40, 220, 60), (235, 40, 40), (255, 215, 0)


def _thickness(shape: tuple[int, ...]) -> int:
    return max(1, round(max(shape[:2]) / 400))


def overlay(image: np.ndarray, detections: Detections, opacity: float = 0.45, *,
            numbers: Sequence[int] | None = None, labels: Sequence[str] | None = None) -> np.ndarray:
    """The photo with each instance's mask tinted, its box drawn and labelled (default `i phrase score`).

    `numbers` are the instance numbers shown and used to pick colours (default 0..N-1), so a
    subset of detections keeps the colours and numbers it had in the full list. `labels` replace
    the default labels, one per detection. A label sits on its box's top-left corner, moved inwards
    where that would cut it at the image's edge.
    """
    out = image.copy()
    h, w = image.shape[:2]
    thickness = _thickness(image.shape)
    numbers = range(len(detections)) if numbers is None else numbers
    labels = labels or [f"{n} {p} {s:.2f}" for n, p, s in zip(numbers, detections.phrases, detections.scores)]
    for i, n, box, label in zip(range(len(detections)), numbers, detections.xyxy, labels):
        color = PALETTE[n % len(PALETTE)]
        if detections.masks is not None:
            _blend(out, detections.masks[i], color, opacity)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness)
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        lx = max(0, min(x0, w - tw - 4))
        ty = min(max(y0, th + 4), h)
        cv2.rectangle(out, (lx, ty - th - 4), (lx + tw + 4, ty), color, -1)
        cv2.putText(out, label, (lx + 2, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)
    return out


def tint(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = PALETTE[0],
         opacity: float = 0.45) -> np.ndarray:
    """The photo with `mask` tinted in `color` (no box or label)."""
    out = image.copy()
    _blend(out, np.asarray(mask, bool), color, opacity)
    return out


def _blend(out: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], opacity: float) -> None:
    """Tint `out` towards `color` where `mask`, in place.

    Only the mask's box is touched, and one `cv2.transform` pass (a 3x4 affine colour map)
    replaces building a solid colour image to blend with: together ~10x faster than blending the
    whole frame, which keeps a click's redraw cheap on a large canvas.
    """
    box = bbox(mask)
    if box is None:
        return
    x0, y0, x1, y1 = box
    window = out[y0:y1, x0:x1]
    affine = np.hstack([np.eye(3) * (1 - opacity), np.asarray(color, np.float64)[:, None] * opacity])
    cv2.copyTo(cv2.transform(window, affine), np.ascontiguousarray(mask[y0:y1, x0:x1]).view(np.uint8), window)


def outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """The photo with the border of `mask` drawn as a line (e.g. the grown area an edit may change).

    Plain 8-connected lines: anti-aliasing costs 3-20x more on a ragged mask's long border.
    """
    out = image.copy()
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, _thickness(image.shape), cv2.LINE_8)
    return out


def clicks(image: np.ndarray, points: Sequence[tuple[float, float, int]] = (),
           boxes: Sequence[tuple[float, float, float, float]] = (),
           corner: tuple[float, float] | None = None) -> np.ndarray:
    """The photo with clicks (green = positive, red = negative), boxes and a box's pending first corner."""
    out = image.copy()
    t = _thickness(image.shape)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (round(x0), round(y0)), (round(x1), round(y1)), BOX, 2 * t, cv2.LINE_AA)
    radius = 4 * t + 2
    for x, y, label in points:
        center = (round(x), round(y))
        cv2.circle(out, center, radius + t, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, center, radius, POSITIVE if label else NEGATIVE, -1, cv2.LINE_AA)
    if corner is not None:
        x, y = round(corner[0]), round(corner[1])
        cv2.drawMarker(out, (x, y), BOX, cv2.MARKER_CROSS, 6 * radius, 2 * t, cv2.LINE_AA)
    return out
