"""GrabCut (OpenCV) behind the Segmenter protocol: boxes and clicks to masks with no weights.

Used when SAM's weights are absent. Each box is cut inside a window around it (the
colour models need some background), scaled down to `work_size` for speed; clicks
become definite foreground/background seeds. The result keeps the connected pieces
touching a positive click or the mask being refined (else the largest piece), with holes
filled except where a negative click lies.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .. import masks as M
from ..errors import InvalidInputError
from ..types import Detections, Prompt, RefineSeed, check_rgb, image_key
from .base import check_prompt, instance_phrases, seed_data

Rect = tuple[int, int, int, int]


class GrabCutSegmenter:
    """Weight-free segmenter: one GrabCut per box, or per set of clicks."""

    name = "grabcut"

    def __init__(self, iterations: int = 5, *, work_size: int = 512, context: float = 0.25,
                 click_margin: float = 0.2, seed: int = 0, note: str = "") -> None:
        """
        iterations: GrabCut rounds (colour models re-fitted each round).
        work_size: long side, in pixels, of the window the cut runs on.
        context: background margin around a box, as a fraction of the box's long side.
        click_margin: with clicks only, the margin of the box around the positive clicks,
            as a fraction of the image's long side.
        seed: OpenCV's RNG seed (GrabCut's k-means), so the same input gives the same mask.
        note: why this backend was chosen, shown by `describe()`.
        """
        if not isinstance(iterations, int) or iterations < 1:
            raise InvalidInputError(f"iterations must be an int >= 1; got {iterations!r}")
        if not isinstance(work_size, int) or work_size < 32:
            raise InvalidInputError(f"work_size must be an int >= 32 pixels; got {work_size!r}")
        self.iterations = iterations
        self.work_size = work_size
        self.context = float(context)
        self.click_margin = float(click_margin)
        self.seed = seed
        self.note = note

    def describe(self) -> str:
        return f"GrabCut ({self.note})" if self.note else "GrabCut (weight-free)"

    def prepare(self, image: np.ndarray) -> None:
        """GrabCut has no per-image work to do ahead of a prompt."""

    def segment(self, image: np.ndarray, prompt: Prompt, *, multimask: bool = False,
                refine: RefineSeed | None = None) -> Detections:
        """Masks for the prompt's clicks and boxes. GrabCut gives one mask per instance and no
        confidence: `multimask` is ignored and scores are 1. `refine` (a previous result's
        `refine_seed`, which is its mask) starts the cut from that mask."""
        image = check_rgb(image)
        check_prompt(prompt, image.shape)
        key, single = image_key(image), len(prompt.boxes) <= 1
        previous = seed_data(refine, key, self.name)
        if previous is not None and (previous.shape != image.shape[:2] or previous.dtype != bool):
            raise InvalidInputError(f"a GrabCut refine seed is the previous mask, bool {image.shape[:2]}; "
                                    f"got {previous.dtype} {previous.shape}")
        if not single:
            previous = None  # several boxes are cut afresh, as they give several instances
        positives = [(x, y) for x, y, label in prompt.points if label == 1]
        negatives = [(x, y) for x, y, label in prompt.points if label == 0]
        boxes = prompt.boxes or [None]
        results = [self._cut(image, box, positives, negatives, previous) for box in boxes]
        seed = RefineSeed(key, self.name, results[0]) if single else None
        return Detections.from_masks(np.stack(results), np.ones(len(results)), instance_phrases(prompt), seed)

    def _cut(self, image: np.ndarray, box, positives: list, negatives: list,
             previous: np.ndarray | None) -> np.ndarray:
        h, w = image.shape[:2]
        rect = self._rect(box, positives, previous, (h, w))
        window = self._window(rect, positives, previous, (h, w))
        wx0, wy0, wx1, wy1 = window
        scale = min(1.0, self.work_size / max(wx1 - wx0, wy1 - wy0))
        size = (max(1, round((wx1 - wx0) * scale)), max(1, round((wy1 - wy0) * scale)))
        crop = cv2.cvtColor(image[wy0:wy1, wx0:wx1], cv2.COLOR_RGB2BGR)
        work = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if scale < 1 else crop

        def to_work(x: float, y: float) -> tuple[int, int]:
            return (min(size[0] - 1, max(0, int((x - wx0) * scale))), min(size[1] - 1, max(0, int((y - wy0) * scale))))

        labels = np.full(size[::-1], cv2.GC_BGD, np.uint8)
        (rx0, ry0), (rx1, ry1) = to_work(rect[0], rect[1]), to_work(rect[2] - 1, rect[3] - 1)
        if previous is None:
            labels[ry0:ry1 + 1, rx0:rx1 + 1] = cv2.GC_PR_FGD
        else:
            prev = cv2.resize(previous[wy0:wy1, wx0:wx1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            inside = np.zeros_like(prev, bool)
            inside[ry0:ry1 + 1, rx0:rx1 + 1] = True
            labels[inside] = np.where(prev[inside] > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
        if not np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            # The box fills the whole image: let the frame's pixels model the background.
            labels[[0, -1], :] = cv2.GC_PR_BGD
            labels[:, [0, -1]] = cv2.GC_PR_BGD
        radius = max(2, round(0.012 * max(size)))
        for pts, value in ((negatives, cv2.GC_BGD), (positives, cv2.GC_FGD)):
            for x, y in pts:
                cv2.circle(labels, to_work(x, y), radius, int(value), -1)

        cv2.setRNGSeed(self.seed)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(work, labels, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        fg = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8) * 255
        if scale < 1:
            fg = cv2.resize(fg, (wx1 - wx0, wy1 - wy0), interpolation=cv2.INTER_LINEAR)
        seeds = np.zeros((wy1 - wy0, wx1 - wx0), bool)
        if previous is not None:
            seeds |= previous[wy0:wy1, wx0:wx1]
        for x, y in positives:
            seeds[int(y) - wy0, int(x) - wx0] = True
        piece = _fill_holes_but(_keep_touching(fg > 127, seeds), [(int(x) - wx0, int(y) - wy0) for x, y in negatives])
        out = np.zeros((h, w), bool)
        out[wy0:wy1, wx0:wx1] = piece
        return out

    def _rect(self, box, positives: list, previous: np.ndarray | None, shape: tuple[int, int]) -> Rect:
        """The box the object lies in, in whole pixels inside the image."""
        h, w = shape
        if box is None:
            xs = [x for x, _ in positives]
            ys = [y for _, y in positives]
            prev_box = M.bbox(previous) if previous is not None else None
            if prev_box is not None:
                xs += [prev_box[0], prev_box[2] - 1]
                ys += [prev_box[1], prev_box[3] - 1]
            if not xs:
                raise InvalidInputError("GrabCut needs a box or at least one positive click (label 1)")
            margin = self.click_margin * max(h, w)
            box = (min(xs) - margin, min(ys) - margin, max(xs) + 1 + margin, max(ys) + 1 + margin)
        x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
        x1, y1 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def _window(self, rect: Rect, positives: list, previous: np.ndarray | None, shape: tuple[int, int]) -> Rect:
        """The rect plus background context, widened to hold every click and the previous mask."""
        h, w = shape
        pad = max(16, round(self.context * max(rect[2] - rect[0], rect[3] - rect[1])))
        boxes = [(rect[0] - pad, rect[1] - pad, rect[2] + pad, rect[3] + pad)]
        boxes += [(math.floor(x), math.floor(y), math.floor(x) + 1, math.floor(y) + 1) for x, y in positives]
        if previous is not None and previous.any():
            boxes.append(M.bbox(previous))
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _keep_touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of the mask that touch a seed pixel; the largest piece when none does."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    keep = np.zeros(n, bool)
    keep[np.unique(labels[seeds & mask])] = True
    keep[0] = False
    if not keep.any():
        keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    return keep[labels]


def _fill_holes_but(mask: np.ndarray, negatives: list[tuple[int, int]]) -> np.ndarray:
    """Fill the mask's holes, except those holding a negative click: the user said that is not the object."""
    filled = M.fill_holes(mask)
    holes = filled & ~mask
    if not negatives or not holes.any():
        return filled
    n, labels = cv2.connectedComponents(holes.astype(np.uint8), connectivity=4)
    clicked = {int(labels[y, x]) for x, y in negatives if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]}
    clicked.discard(0)
    return filled & ~np.isin(labels, list(clicked)) if clicked else filled
