"""Composites with a known alpha: a soft-edged subject with hair-like strands over varied backgrounds.

Drawn at 4x and averaged down, so strands thinner than a pixel leave fractional alpha as real hair does.
Reproducible from the seed; shared by tests/test_matting.py and benchmarks/matting.py.
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUNDS = ("gradient", "noise", "stripes")


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (x / w * 0.6 + y / h * 0.4)[..., None]
        return c0 * (1 - t) + c1 * t
    if kind == "noise":
        small = rng.uniform(0, 255, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    period = rng.uniform(10, 30)
    s = (np.sin((x + 0.5 * y) / period * 2 * np.pi) > 0)[..., None]
    return np.where(s, rng.uniform(150, 255, 3), rng.uniform(0, 100, 3))


def composite(size: tuple[int, int] = (256, 256), seed: int = 0, background: str = "noise",
              strands: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8 (H, W, 3), true alpha float32 (H, W), true foreground float32 (H, W, 3)) of one composite."""
    w, h = size
    rng = np.random.default_rng(seed)
    s = 4
    big = np.zeros((h * s, w * s), np.uint8)
    cx, cy, r = w * s // 2, h * s // 2, int(min(w, h) * s * 0.25)
    cv2.ellipse(big, (cx, cy), (r, int(r * 1.2)), 0, 0, 360, 255, -1)
    for _ in range(strands):
        angle = rng.uniform(0, 2 * np.pi)
        x, y = cx + np.cos(angle) * r * 0.9, cy + np.sin(angle) * r * 1.1
        length = rng.uniform(0.15, 0.45) * r
        bend = rng.uniform(-0.6, 0.6)
        pts = []
        for t in np.linspace(0, 1, 12):
            a = angle + bend * t
            pts.append((x + np.cos(a) * length * t, y + np.sin(a) * length * t))
        cv2.polylines(big, [np.int32(pts)], False, 255, thickness=int(rng.integers(1, 4)), lineType=cv2.LINE_AA)
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(60, 200, 3).astype(np.float32)
    fg = np.clip(base + 40 * np.stack([np.sin(xx / 17 + i) * np.cos(yy / 23) for i in range(3)], -1), 0, 255)
    bg = _background(background, h, w, rng).astype(np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), alpha.astype(np.float32), fg.astype(np.float32)


def segmenter_mask(alpha: np.ndarray) -> np.ndarray:
    """What a segmenter gives for the subject: its mostly-opaque pixels (strands thinner than a pixel drop out)."""
    return alpha >= 0.5


def feathered_alpha(mask: np.ndarray, grow: float = 8.0, feather: float = 8.0) -> np.ndarray:
    """The subject's alpha under today's background edit: kept inside the mask, fading over the grow ring."""
    from editanything import masks

    return 1.0 - masks.feather(masks.grow(~masks.grow(mask, grow), grow), feather)
