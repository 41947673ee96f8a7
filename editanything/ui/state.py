"""What one browser session has selected: its photo, clicks, boxes, detections, refine seed, and its results.

Plain data plus the small rules of the click-to-mask loop; no gradio and no model here, so the
rules are testable on their own and the app's handlers stay thin.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import masks
from ..errors import InvalidInputError
from ..imageio import limit_size
from ..types import Detections, Prompt, RefineSeed

CLICK_MODES = ("add (+)", "exclude (−)", "box (2 clicks)")
HISTORY_SIZE = 20  # results a session keeps (the oldest file goes when one more is made)


@dataclass(frozen=True)
class HistoryEntry:
    """One result of the session: its PNG (with the recipe), a thumbnail, and what made it."""

    png: str
    thumbnail: str
    operation: str  # "remove", "recolor", …
    seed: int | None  # None when no sampler ran (OpenCV's fill, LaMa, a recolor)
    sha256: str  # of the PNG file: an edit continued from it records this as its parent

    @property
    def caption(self) -> str:
        return self.operation if self.seed is None else f"{self.operation} · seed {self.seed}"


@dataclass
class Session:
    """One session's selection on one photo (coordinates in the photo's pixels)."""

    source: str | None = None  # the photo's file: an upload (inside gradio's upload folder) or a result
    title: str | None = None  # the uploaded file's name (results made from it go on being named after it)
    image: np.ndarray | None = None
    display: np.ndarray | None = None  # the photo shrunk for the canvas
    points: list[tuple[float, float, int]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    corner: tuple[float, float] | None = None  # first corner of a box being drawn
    text: str | None = None
    detections: Detections | None = None
    segmented: Prompt | None = None  # the prompt `detections` came from, to know when a click refines it
    seed: RefineSeed | None = None  # what `detections` leaves the segmenter for a refining click
    history: list[HistoryEntry] = field(default_factory=list)  # newest first
    parent: HistoryEntry | None = None  # the result the photo is, when editing goes on from one
    made: int = 0  # results made so far (numbers their files)
    generated: list[str] = field(default_factory=list)  # the last generation's PNGs (Send to Edit picks one)
    expansion: dict[str, Any] | None = None  # the Generate tab's last Expand (`Expansion.to_dict()`)
    key: str | None = None  # names the session's folder of shown files; set on first use

    @property
    def scale(self) -> float:
        """Canvas pixels per photo pixel."""
        if self.image is None or self.display is None:
            return 1.0
        return self.display.shape[1] / self.image.shape[1]

    def set_image(self, source: str, image: np.ndarray, display_size: int,
                  parent: HistoryEntry | None = None) -> None:
        """A new photo (an upload, or the result `parent`): forget the previous selection, keep the history."""
        self.display = limit_size(image, display_size)
        self.source, self.image, self.parent = source, image, parent
        if parent is None:
            self.title = Path(source).name
        self.clear()

    def add_result(self, entry: HistoryEntry) -> list[HistoryEntry]:
        """Put `entry` first in the history; returns the entries that fell off its end (their files can go)."""
        self.history.insert(0, entry)
        dropped, self.history = self.history[HISTORY_SIZE:], self.history[:HISTORY_SIZE]
        return dropped

    def entry(self, index: int) -> HistoryEntry:
        """History entry `index` (0 = the newest), or InvalidInputError."""
        if not self.history:
            raise InvalidInputError("no result yet: make an edit first")
        if not 0 <= index < len(self.history):
            raise InvalidInputError(f"no result {index} in the history; there are {len(self.history)} (0 = newest)")
        return self.history[index]

    @contextmanager
    def change(self):
        """Edit the selection as one step: on an error it is put back as it was (the UI still shows it)."""
        saved = (list(self.points), list(self.boxes), self.corner, self.text, self.detections, self.segmented,
                 self.seed)
        try:
            yield self
        except BaseException:
            (self.points, self.boxes, self.corner, self.text, self.detections, self.segmented,
             self.seed) = saved
            raise

    def clear(self) -> None:
        self.points, self.boxes, self.corner, self.text = [], [], None, None
        self.detections, self.segmented, self.seed = None, None, None

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """A canvas click in photo pixels (clamped inside the photo)."""
        h, w = self.image.shape[:2]
        s = self.scale
        return min(max(x / s, 0.0), w - 1.0), min(max(y / s, 0.0), h - 1.0)

    def click(self, x: float, y: float, mode: str) -> bool:
        """Record a click at photo pixel (x, y); True when the selection changed and must be segmented."""
        if mode == CLICK_MODES[2]:
            if self.corner is None:
                self.corner = (x, y)
                return False
            (cx, cy), self.corner = self.corner, None
            if abs(cx - x) < 2 or abs(cy - y) < 2:
                raise InvalidInputError("that box is too thin: click two opposite corners of the object")
            box = (min(cx, x), min(cy, y), max(cx, x), max(cy, y))
            self.boxes = [*self._after_text(self.boxes), box]
        else:
            self.points = [*self._after_text(self.points), (x, y, 0 if mode == CLICK_MODES[1] else 1)]
        return True

    def _after_text(self, items: list) -> list:
        """Clicks after a text selection start a new selection."""
        if self.text:
            self.text, self.points, self.boxes = None, [], []
            return []
        return items

    def set_prompt(self, points_text: str, boxes_text: str) -> None:
        """Clicks and boxes typed (or sent through the API) as JSON lists."""
        self.points = [tuple(p) for p in _json_list(points_text, "clicks", "[[x, y, 1], [x, y, 0]]")]
        self.boxes = [tuple(b) for b in _json_list(boxes_text, "boxes", "[[x0, y0, x1, y1]]")]
        self.corner, self.text = None, None

    def prompt(self) -> Prompt:
        return Prompt(points=list(self.points), boxes=list(self.boxes), text=self.text)

    def refine_seed(self, prompt: Prompt) -> RefineSeed | None:
        """The seed to segment `prompt` from: the last result's, when `prompt` adds clicks to its prompt."""
        last = self.segmented
        extends = (last is not None and not prompt.text and last.boxes == prompt.boxes
                   and len(prompt.points) > len(last.points) and prompt.points[:len(last.points)] == last.points)
        return self.seed if extends else None

    def segmented_by(self, prompt: Prompt, detections: Detections | None) -> None:
        """Record a segmenter's result for `prompt` (None: nothing is selected)."""
        self.detections, self.segmented = detections, None if detections is None else prompt
        self.seed = None if detections is None else detections.refine_seed

    def mask(self, chosen: list[int] | None = None, invert: bool = False) -> np.ndarray | None:
        """The union of the chosen instances (all when None), inverted on request; None before any selection."""
        if self.detections is None or self.image is None:
            return None
        kept = self.detections if chosen is None else self.detections.keep(indices=chosen)
        union = kept.union_mask(self.image.shape[:2])
        return masks.invert(union) if invert else union

    def points_json(self) -> str:
        return json.dumps([[round(x, 1), round(y, 1), label] for x, y, label in self.points])

    def boxes_json(self) -> str:
        return json.dumps([[round(v, 1) for v in b] for b in self.boxes])


def _json_list(text: str, what: str, example: str) -> list:
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(
            isinstance(v, list) and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in v)
            for v in value):
        raise InvalidInputError(f"{what} must be a JSON list of number lists like {example}; got {text[:80]!r}")
    return value
