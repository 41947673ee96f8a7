"""Mask algebra on bool (H, W) arrays: grow/shrink, feather, set operations, clean-up, boxes, crop/paste.

Pure numpy/OpenCV, no model. Distances are Euclidean between pixel centres, so `grow(m, 3)`
adds every pixel within 3 px of the mask. The image border counts as inside a mask that
touches it: a mask cut by the frame is not eroded or feathered from the edge, because the
object goes on beyond it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .errors import InvalidInputError

Box = tuple[int, int, int, int]


def _mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be an (H, W) bool array; got shape {arr.shape}")
    return arr if arr.dtype == bool else arr != 0


def _pixels(px: float, name: str = "px") -> float:
    if not isinstance(px, (int, float, np.integer, np.floating)) or not math.isfinite(px):
        raise InvalidInputError(f"{name} must be a finite number of pixels; got {px!r}")
    return float(px)


def _distance_to(zeros_of: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance from each pixel to the nearest False pixel of `zeros_of`."""
    return cv2.distanceTransform(zeros_of.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def grow(mask: np.ndarray, px: float) -> np.ndarray:
    """Add every pixel within `px` pixels of the mask (a negative `px` shrinks)."""
    m, px = _mask(mask), _pixels(px)
    if px < 0:
        return shrink(m, -px)
    if px == 0 or not m.any() or m.all():
        return m.copy()
    return _distance_to(~m) <= px


def shrink(mask: np.ndarray, px: float) -> np.ndarray:
    """Remove every mask pixel within `px` pixels of the outside (a negative `px` grows)."""
    m, px = _mask(mask), _pixels(px)
    if px < 0:
        return grow(m, -px)
    if px == 0 or not m.any() or m.all():
        return m.copy()
    return _distance_to(m) > px


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """A soft float32 alpha in [0, 1]: 0 outside the mask, rising smoothly to 1 at `px` pixels inside.

    The alpha never leaves the mask, so blending with it cannot touch pixels outside;
    grow the mask first to feather across its edge.
    """
    m, px = _mask(mask), _pixels(px)
    if px < 0:
        raise InvalidInputError(f"feather width must be >= 0 pixels; got {px:g}")
    if px == 0 or not m.any() or m.all():
        return m.astype(np.float32)
    t = np.clip(_distance_to(m) / np.float32(px), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def invert(mask: np.ndarray) -> np.ndarray:
    return ~_mask(mask)


def _same_shape(masks: tuple[np.ndarray, ...], op: str) -> list[np.ndarray]:
    if not masks:
        raise InvalidInputError(f"{op} needs at least one (H, W) mask")
    arrays = [_mask(m, f"mask {i}") for i, m in enumerate(masks)]
    for i, a in enumerate(arrays[1:], 1):
        if a.shape != arrays[0].shape:
            raise InvalidInputError(f"{op}: mask {i} has shape {a.shape}, expected {arrays[0].shape} like mask 0")
    return arrays


def union(*masks: np.ndarray) -> np.ndarray:
    return np.logical_or.reduce(_same_shape(masks, "union"))


def intersect(*masks: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce(_same_shape(masks, "intersect"))


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels of `a` that are not in `b`."""
    a, b = _same_shape((a, b), "subtract")
    return a & ~b


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not reach the image border."""
    m = _mask(mask)
    # 4-connected background is the dual of 8-connected foreground: a diagonal gap does not let a hole out.
    n, labels = cv2.connectedComponents((~m).astype(np.uint8), connectivity=4)
    if n <= 1:
        return m.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    return ~outside


def drop_islands(mask: np.ndarray, min_px: int) -> np.ndarray:
    """Remove 8-connected pieces of the mask smaller than `min_px` pixels."""
    m = _mask(mask)
    if _pixels(min_px, "min_px") <= 1 or not m.any():
        return m.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False
    return keep[labels]


def bbox(mask: np.ndarray) -> Box | None:
    """The tight box (x0, y0, x1, y1) of the mask, ends exclusive; None for an empty mask."""
    m = _mask(mask)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _span(lo: int, hi: int, size: int, multiple: int) -> tuple[int, int]:
    """Widen [lo, hi) to a multiple of `multiple` (or the whole axis when that is shorter), inside [0, size)."""
    lo, hi = max(lo, 0), min(hi, size)
    target = min(-(-(hi - lo) // multiple) * multiple, size)
    lo -= (target - (hi - lo)) // 2
    lo = min(max(lo, 0), size - target)
    return lo, lo + target


def crop_around(
    mask: np.ndarray, pad: int, multiple: int = 1, image_shape: tuple[int, ...] | None = None
) -> Box:
    """The mask's box widened by `pad` pixels a side, each side length a multiple of `multiple`, inside the image.

    When the image is shorter than the rounded length the box spans that whole axis.
    `image_shape` (H, W, ...) defaults to the mask's shape.
    """
    box = bbox(mask)
    if box is None:
        raise InvalidInputError("the mask is empty: there is nothing to crop around")
    if not isinstance(pad, (int, np.integer)) or pad < 0:
        raise InvalidInputError(f"pad must be an int >= 0; got {pad!r}")
    if not isinstance(multiple, (int, np.integer)) or multiple < 1:
        raise InvalidInputError(f"multiple must be an int >= 1; got {multiple!r}")
    h, w = (image_shape or np.shape(mask))[:2]
    x0, x1 = _span(box[0] - pad, box[2] + pad, w, multiple)
    y0, y1 = _span(box[1] - pad, box[3] + pad, h, multiple)
    return x0, y0, x1, y1


def _check_box(box: Box, shape: tuple[int, ...]) -> Box:
    try:
        x0, y0, x1, y1 = (int(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"box must be (x0, y0, x1, y1) ints; got {box!r}") from exc
    h, w = shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidInputError(f"box ({x0}, {y0}, {x1}, {y1}) must be non-empty and inside the {w}x{h} image")
    return x0, y0, x1, y1


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """A copy of the box's pixels of an (H, W) or (H, W, C) array."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InvalidInputError(f"image must be (H, W) or (H, W, C); got shape {image.shape}")
    x0, y0, x1, y1 = _check_box(box, image.shape)
    return image[y0:y1, x0:x1].copy()


def paste(canvas: np.ndarray, patch: np.ndarray, box: Box, alpha: np.ndarray | None = None) -> np.ndarray:
    """A copy of `canvas` with `patch` put into `box`, optionally blended by a float alpha in [0, 1].

    `alpha` is (h, w) like the patch or (H, W) like the canvas. Pixels where alpha is 0
    keep the canvas value exactly; where it is 1 they take the patch value exactly.
    """
    canvas, patch = np.asarray(canvas), np.asarray(patch)
    if canvas.ndim not in (2, 3):
        raise InvalidInputError(f"canvas must be (H, W) or (H, W, C); got shape {canvas.shape}")
    x0, y0, x1, y1 = _check_box(box, canvas.shape)
    expected = (y1 - y0, x1 - x0, *canvas.shape[2:])
    if patch.shape != expected:
        raise InvalidInputError(f"patch must have shape {expected} to fill box {(x0, y0, x1, y1)}; got {patch.shape}")
    out = canvas.copy()
    if alpha is None:
        out[y0:y1, x0:x1] = patch
        return out
    if canvas.dtype == bool:
        raise InvalidInputError("alpha blending needs a numeric canvas; paste bool masks without alpha")
    a = np.asarray(alpha, np.float32)
    if a.shape == canvas.shape[:2]:
        a = a[y0:y1, x0:x1]
    if a.shape != expected[:2]:
        raise InvalidInputError(
            f"alpha must have shape {expected[:2]} (the box) or {canvas.shape[:2]} (the canvas); got {a.shape}"
        )
    if canvas.ndim == 3:
        a = a[..., None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1.0 - a) + patch.astype(np.float32) * a
    if np.issubdtype(canvas.dtype, np.integer):
        info = np.iinfo(canvas.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    out[y0:y1, x0:x1] = blended.astype(canvas.dtype)
    return out
