"""A second look after an edit: does the detector still find (or now find) a phrase in the edited region?

A *remove* of "car" passes when no car is found there any more; a *replace* checked with "a corgi"
passes when a corgi is found there. Only detections whose box lies mostly (≥ half its area) inside the
edited region's box count: a car beside the one removed is not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import masks
from .compose import auto_pad
from .errors import NothingFound

WANTS = ("absent", "present")
INSIDE = 0.5


@dataclass(frozen=True)
class Look:
    """One look: the best-scoring detection of `phrase` in the region (score None: nothing there)."""

    phrase: str
    want: str
    score: float | None
    box: tuple[float, float, float, float] | None

    @property
    def passed(self) -> bool:
        return (self.score is None) == (self.want == "absent")

    def verdict(self) -> str:
        """In words, as the batch report lists it: "still found: car 0.62", "not found: a corgi"."""
        if self.want == "absent":
            return "gone" if self.passed else f"still found: {self.phrase} {self.score:.2f}"
        return f"found: {self.phrase} {self.score:.2f}" if self.passed else f"not found: {self.phrase}"

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "want": self.want, "passed": self.passed,
                "score": None if self.score is None else round(self.score, 4),
                "box": None if self.box is None else [round(v, 1) for v in self.box]}


def look_again(detector: Any, image: np.ndarray, region: np.ndarray, phrase: str, want: str) -> Look:
    """Run `detector` on a crop around `region` (bool, the edited pixels) of the edited `image`."""
    crop_box = masks.crop_around(region, auto_pad(region), image_shape=image.shape)
    x0, y0 = crop_box[:2]
    rx0, ry0, rx1, ry1 = masks.bbox(region)
    try:
        found = detector.detect(masks.crop(image, crop_box), phrase)
    except NothingFound:  # detectors say so when nothing passes their box threshold
        found = None
    best: tuple[float, tuple[float, ...]] | None = None
    for box, score in zip(found.xyxy if found is not None else [], found.scores if found is not None else []):
        bx0, by0, bx1, by1 = (float(box[0]) + x0, float(box[1]) + y0, float(box[2]) + x0, float(box[3]) + y0)
        area = max(bx1 - bx0, 0.0) * max(by1 - by0, 0.0)
        overlap = max(min(bx1, rx1) - max(bx0, rx0), 0.0) * max(min(by1, ry1) - max(by0, ry0), 0.0)
        if area > 0 and overlap >= INSIDE * area and (best is None or score > best[0]):
            best = (float(score), (bx0, by0, bx1, by1))
    return Look(phrase, want, None if best is None else best[0], None if best is None else best[1])
