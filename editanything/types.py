"""The currency between stages: Detections, Prompt, RefineSeed and Recipe.

Images cross module boundaries as RGB uint8 arrays (H, W, 3); masks as bool arrays (H, W).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import InvalidInputError


def _as_array(value: Any, dtype: Any, name: str, shape: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be {shape}; got {type(value).__name__}: {exc}") from exc


def check_rgb(image: Any, *, gray: bool = False) -> np.ndarray:
    """The image as a contiguous RGB uint8 (H, W, 3) array (or grey (H, W) with `gray`), or
    InvalidInputError naming the expected shape. The one image check every stage uses."""
    image = np.asarray(image)
    if gray and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    rgb = image.ndim == 3 and image.shape[2] == 3
    if not (rgb or (gray and image.ndim == 2)) or image.dtype != np.uint8 or 0 in image.shape:
        shape = "RGB (H, W, 3) or grey (H, W)" if gray else "RGB (H, W, 3)"
        raise InvalidInputError(f"image must be an {shape} uint8 array; got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def check_mask(mask: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """The mask as bool (H, W) of the image's height and width, or InvalidInputError naming the expected shape."""
    mask = np.asarray(mask)
    if mask.shape != tuple(image_shape[:2]):
        raise InvalidInputError(f"mask must have shape {tuple(image_shape[:2])} like the image; got {mask.shape}")
    return mask.astype(bool, copy=False)


@dataclass(frozen=True, eq=False)
class RefineSeed:
    """What one segmenter result leaves for the next click on the same image (see `segment.base`).

    `image` is the image's content key (`segment.base.image_key`), `backend` the segmenter's name and
    `data` the backend's own seed, read-only (SAM: the best mask's low-res logits; GrabCut: the mask).
    The caller keeps it (one per user) and hands it back; backends keep none.
    """

    image: bytes
    backend: str
    data: np.ndarray

    def __post_init__(self) -> None:
        data = np.array(self.data)  # a private copy, so no later write by anyone changes a kept seed
        data.setflags(write=False)
        object.__setattr__(self, "data", data)


@dataclass
class Detections:
    """Boxes (xyxy, pixels), scores, phrases and optional masks for N instances.

    `Detections` is shared by the detector, the segmenters, the CLI and the UI. Index it
    with an int, a slice, a list of indices or a bool array: `det[det.scores > 0.5]`.
    A segmenter's single-instance result carries `refine_seed`: pass it back with the next
    prompt on the same image to refine this result (indexing drops it).
    """

    xyxy: np.ndarray
    scores: np.ndarray
    phrases: list[str]
    masks: np.ndarray | None = None
    refine_seed: RefineSeed | None = None

    def __post_init__(self) -> None:
        self.xyxy = _as_array(self.xyxy, np.float32, "xyxy", "an (N, 4) array of x0, y0, x1, y1")
        if self.xyxy.size == 0:
            self.xyxy = self.xyxy.reshape(0, 4)
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise InvalidInputError(f"xyxy must have shape (N, 4); got {self.xyxy.shape}")
        self.scores = _as_array(self.scores, np.float32, "scores", "an (N,) array").reshape(-1)
        if len(self.scores) != n:
            raise InvalidInputError(f"scores must have shape ({n},); got {self.scores.shape}")
        self.phrases = [str(p) for p in self.phrases]
        if len(self.phrases) != n:
            raise InvalidInputError(f"phrases must hold {n} strings; got {len(self.phrases)}")
        if self.masks is not None:
            self.masks = _as_array(self.masks, bool, "masks", "an (N, H, W) bool array")
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise InvalidInputError(f"masks must have shape ({n}, H, W); got {self.masks.shape}")
        if self.refine_seed is not None and not isinstance(self.refine_seed, RefineSeed):
            raise InvalidInputError(f"refine_seed must be a RefineSeed or None; got {type(self.refine_seed).__name__}")

    @classmethod
    def empty(cls, image_shape: tuple[int, int] | None = None) -> "Detections":
        masks = None if image_shape is None else np.zeros((0, *image_shape), bool)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], masks)

    @classmethod
    def from_masks(cls, masks: np.ndarray, scores: Sequence[float], phrases: Sequence[str],
                   refine_seed: RefineSeed | None = None) -> "Detections":
        """Detections whose boxes are the masks' tight boxes (all zeros for an empty mask)."""
        from .masks import bbox

        masks = np.asarray(masks, bool)
        boxes = np.zeros((len(masks), 4), np.float32)
        for i, m in enumerate(masks):
            box = bbox(m)
            if box is not None:
                boxes[i] = box
        return cls(boxes, np.asarray(scores, np.float32), list(phrases), masks, refine_seed)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> "Detections":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        masks = None if self.masks is None else self.masks[idx]
        return Detections(self.xyxy[idx], self.scores[idx], [self.phrases[i] for i in idx], masks)

    def keep(
        self,
        indices: Iterable[int] | None = None,
        phrases: Iterable[str] | None = None,
        min_score: float | None = None,
    ) -> "Detections":
        """Keep the instances the user picked: by index, by phrase (substring match) or by score."""
        selected = np.ones(len(self), bool)
        if indices is not None:
            wanted = list(indices)
            bad = [i for i in wanted if not -len(self) <= i < len(self)]
            if bad:
                raise InvalidInputError(f"instance index {bad[0]} is out of range: {len(self)} instances found (0..{len(self) - 1})")
            chosen = np.zeros(len(self), bool)
            chosen[wanted] = True
            selected &= chosen
        if phrases is not None:
            wanted_phrases = [p.strip().lower() for p in phrases]
            selected &= np.array([any(w in p.lower() for w in wanted_phrases) for p in self.phrases], bool)
        if min_score is not None:
            selected &= self.scores >= min_score
        return self[selected]

    def union_mask(self, image_shape: tuple[int, int] | None = None) -> np.ndarray:
        """The OR of all masks (an all-False mask of `image_shape` when there are none)."""
        if self.masks is not None and len(self.masks):
            return self.masks.any(axis=0)
        if self.masks is not None:
            return np.zeros(self.masks.shape[1:], bool)
        if image_shape is None:
            raise InvalidInputError("these detections carry no masks; pass image_shape to get an empty mask")
        return np.zeros(image_shape, bool)

    def to_json(self) -> list[dict[str, Any]]:
        """Boxes, scores and phrases as plain JSON-ready dicts (masks are written as PNGs elsewhere)."""
        return [
            {"index": i, "phrase": p, "score": round(float(s), 4), "box": [round(float(v), 2) for v in b]}
            for i, (b, s, p) in enumerate(zip(self.xyxy, self.scores, self.phrases))
        ]


@dataclass
class Prompt:
    """What the user pointed at: clicks (x, y, label 1=positive 0=negative), boxes (xyxy) and/or text."""

    points: list[tuple[float, float, int]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    text: str | None = None

    def __post_init__(self) -> None:
        points = []
        for p in self.points:
            if len(p) == 2:
                p = (p[0], p[1], 1)
            if len(p) != 3 or int(p[2]) not in (0, 1):
                raise InvalidInputError(f"a point must be (x, y) or (x, y, label) with label 0 or 1; got {p!r}")
            points.append((float(p[0]), float(p[1]), int(p[2])))
        self.points = points
        boxes = []
        for b in self.boxes:
            if len(b) != 4:
                raise InvalidInputError(f"a box must be (x0, y0, x1, y1); got {b!r}")
            x0, y0, x1, y1 = map(float, b)
            if x1 <= x0 or y1 <= y0:
                raise InvalidInputError(f"a box must have x1 > x0 and y1 > y0; got {b!r}")
            boxes.append((x0, y0, x1, y1))
        self.boxes = boxes

    def is_empty(self) -> bool:
        return not self.points and not self.boxes and not self.text

    def check_inside(self, image_shape: tuple[int, int]) -> None:
        """Raise InvalidInputError when a click or a box lies outside an image of (H, W)."""
        h, w = image_shape[:2]
        for x, y, _ in self.points:
            if not (0 <= x < w and 0 <= y < h):
                raise InvalidInputError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
        for x0, y0, x1, y1 in self.boxes:
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                raise InvalidInputError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {w}x{h} image")


@dataclass
class Recipe:
    """A JSON-serialisable record of one operation, enough to explain and re-run it."""

    operation: str
    inputs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"not a recipe: invalid JSON ({exc})") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or "operation" not in data:
            raise InvalidInputError("not a recipe: a JSON object with an 'operation' key is expected")
        return cls(**{k: v for k, v in data.items() if k in known})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return str(value)
