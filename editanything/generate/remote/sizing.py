"""Fit a crop and its mask to what an endpoint accepts, and map the answer back onto the crop.

Services limit sides, pixel counts, aspect ratios or exact sizes. A crop outside them is padded
(edge pixels repeated, mask False there) to an accepted aspect ratio, then resized; `Fitted.undo`
resizes the answer back and cuts the padding off, so compose.py gets an image the size of its crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Fitted:
    """What is sent (`image`, `mask`), and how the crop was padded (left, top, right, bottom) before resizing."""

    image: np.ndarray
    mask: np.ndarray
    pad: tuple[int, int, int, int]
    crop_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def undo(self, answer: np.ndarray) -> np.ndarray:
        """The service's answer as an RGB image the size of the original crop."""
        left, top, right, bottom = self.pad
        w, h = self.crop_size
        padded = resize(answer, (w + left + right, h + top + bottom))
        return np.ascontiguousarray(padded[top:top + h, left:left + w])


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    # A sent pixel that covers any of the mask is marked: the paste alpha decides what is kept anyway.
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0


def pad_to_ratio(image: np.ndarray, mask: np.ndarray, lo: float, hi: float):
    """Pad so that width / height lies in [lo, hi]; returns image, mask, (left, top, right, bottom)."""
    h, w = mask.shape
    left = top = right = bottom = 0
    if w / h > hi:
        extra = math.ceil(w / hi) - h
        top, bottom = extra // 2, extra - extra // 2
    elif w / h < lo:
        extra = math.ceil(h * lo) - w
        left, right = extra // 2, extra - extra // 2
    if not (left or top or right or bottom):
        return image, mask, (0, 0, 0, 0)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    mask = np.pad(mask, ((top, bottom), (left, right)), constant_values=False)
    return image, mask, (left, top, right, bottom)


def fit_limits(image: np.ndarray, mask: np.ndarray, *, min_side: int, min_pixels: int, max_pixels: int,
               max_ratio: float, scale: float = 1.0) -> Fitted:
    """Pad to an aspect ratio within 1:max_ratio..max_ratio:1, then scale (times `scale`) into the pixel limits."""
    crop_size = (mask.shape[1], mask.shape[0])
    image, mask, pad = pad_to_ratio(image, mask, 1 / max_ratio, max_ratio)
    h, w = mask.shape
    s = scale
    s = min(s, math.sqrt(max_pixels / (w * h)))
    s = max(s, min_side / min(w, h), math.sqrt(min_pixels / (w * h)))
    size = (max(min_side, round(w * s)), max(min_side, round(h * s)))
    while size[0] * size[1] > max_pixels:  # rounding up may overshoot by a row
        size = (size[0] - (size[0] >= size[1]), size[1] - (size[1] > size[0]))
    return Fitted(resize(image, size), resize_mask(mask, size), pad, crop_size)


def fit_exact(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> Fitted:
    """Pad to the aspect ratio of `size` (w, h), then resize to exactly `size`."""
    crop_size = (mask.shape[1], mask.shape[0])
    ratio = size[0] / size[1]
    image, mask, pad = pad_to_ratio(image, mask, ratio, ratio)
    return Fitted(resize(image, size), resize_mask(mask, size), pad, crop_size)


def closest_size(crop_size: tuple[int, int], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The size whose aspect ratio is nearest the crop's (ties: the smaller)."""
    ratio = math.log(crop_size[0] / crop_size[1])
    return min(sizes, key=lambda s: (abs(math.log(s[0] / s[1]) - ratio), s[0] * s[1]))
