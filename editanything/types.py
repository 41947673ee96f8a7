"""The currency between stages: Detections, Prompt, RefineSeed, Recipe and GenerationParams.

Images cross module boundaries as RGB uint8 arrays (H, W, 3); masks as bool arrays (H, W).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
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


def image_key(image: np.ndarray) -> bytes:
    """A content hash of the whole image (any changed pixel gives a new key).

    sha256 over every byte: about 0.6 ms per megapixel here (SHA extensions), a few
    percent of one SAM decoder call, and no stale embedding after a small edit, which
    hashing a subsampled view would risk.
    """
    h = hashlib.sha256(np.ascontiguousarray(image).data)
    h.update(repr((image.shape, image.dtype.str)).encode())
    return h.digest()


@dataclass(frozen=True, eq=False)
class RefineSeed:
    """What one segmenter result leaves for the next click on the same image (see `segment.base`).

    `image` is the image's content key (`image_key`), `backend` the segmenter's name and
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
        except (ValueError, RecursionError) as exc:  # bad JSON, an integer of 100,000 digits, nesting too deep
            raise InvalidInputError(f"not a recipe: invalid JSON ({str(exc)[:120] or type(exc).__name__})") from None
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


# --- generation parameters, in the Stable Diffusion WebUI's vocabulary ------------------------------------

MAX_SEED = 2**32 - 1
MODEL_DEFAULTS = ("sampler", "steps", "cfg_scale")
"""The fields a generator may choose when the caller leaves them None (`Generator.default_params`)."""
SAMPLER_NAMES = ("Euler a", "Euler", "LMS", "DDIM", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras", "UniPC", "LCM")
"""The WebUI's sampler names the generators know (`generate.samplers` maps each to a diffusers scheduler)."""


def canonical_sampler(name: str) -> str:
    """The WebUI spelling of a sampler name (matching ignores case and extra spaces)."""
    if isinstance(name, str):
        key = " ".join(name.split()).lower()
        for known in SAMPLER_NAMES:
            if known.lower() == key:
                return known
    raise InvalidInputError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLER_NAMES)}")


def wrap_seed(seed: int) -> int:
    """A seed past MAX_SEED wraps to 0, so a batch started near the top keeps counting (…, 2**32 - 1, 0, 1)."""
    return seed % (MAX_SEED + 1)


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise InvalidInputError(f"{name} must be an int {bound}; got {value!r}")
    return value


def _check_float(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number; got {value!r}") from None
    if not (lo < v <= hi if lo_open else lo <= v <= hi):
        raise InvalidInputError(f"{name} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]; got {value!r}")
    return v


@dataclass
class GenerationParams:
    """What to generate and how, named as in the WebUI.

    `seed=-1` picks a random seed; `resolve_seed()` gives the real one, and image `i` of a run
    uses `seed + i` (as the WebUI does, wrapping past 2**32 - 1 to 0), so any single image can be
    re-made on its own.
    `resolution` is the long side the crop around the mask is resized to before generating;
    `width` and `height` (both or neither) force an exact generation size instead.
    `sampler`, `steps` and `cfg_scale` left None mean "the model's default": the Editor (and each
    diffusion generator) fills them from the generator's `default_params()` with `with_defaults`
    before generating, so the recipe records the values used (Euler, 4 steps, CFG 1 for the
    step-distilled FLUX.2 klein; the WebUI's DPM++ 2M Karras, 25 steps, CFG 7 for Stable Diffusion).
    """

    prompt: str = ""
    negative_prompt: str = ""
    sampler: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    strength: float = 1.0
    seed: int = -1
    batch_size: int = 1
    batch_count: int = 1
    resolution: int = 512
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise InvalidInputError("prompt and negative_prompt must be strings")
        if self.sampler is not None:
            self.sampler = canonical_sampler(self.sampler)
        if self.steps is not None:
            _check_int("steps", self.steps, 1, 1000)
        if self.cfg_scale is not None:
            self.cfg_scale = _check_float("cfg_scale", self.cfg_scale, 0.0, 100.0)
        self.strength = _check_float("strength (denoising strength)", self.strength, 0.0, 1.0, lo_open=True)
        _check_int("seed", self.seed, -1, MAX_SEED)
        _check_int("batch_size", self.batch_size, 1, 64)
        _check_int("batch_count", self.batch_count, 1, 10_000)
        _check_int("resolution", self.resolution, 8, 8192)
        if self.resolution % 8:
            raise InvalidInputError(f"resolution must be a multiple of 8; got {self.resolution}")
        if (self.width is None) != (self.height is None):
            raise InvalidInputError("give both width and height, or neither (then resolution sets the size)")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (_check_int(name, value, 8, 8192) % 8):
                raise InvalidInputError(f"{name} must be a multiple of 8; got {value}")

    def unset(self) -> list[str]:
        """The fields left to the model (None), of sampler, steps and cfg_scale."""
        return [name for name in MODEL_DEFAULTS if getattr(self, name) is None]

    def with_defaults(self, defaults: dict[str, Any]) -> "GenerationParams":
        """A copy whose unset sampler, steps and cfg_scale come from `defaults` (see `model_defaults`)."""
        missing = self.unset()
        return dataclasses.replace(self, **{n: defaults[n] for n in missing}) if missing else self

    @property
    def n_images(self) -> int:
        return self.batch_size * self.batch_count

    def resolve_seed(self) -> int:
        """The seed to use: `seed` itself, or a fresh random one when it is -1."""
        return self.seed if self.seed != -1 else random.SystemRandom().randrange(MAX_SEED)

    def with_seed(self) -> "GenerationParams":
        """A copy whose seed is resolved, so every later step (and the recipe) sees the real one."""
        return self if self.seed != -1 else dataclasses.replace(self, seed=self.resolve_seed())

    def image_seeds(self) -> list[int]:
        """The seed of every image, batch by batch: seed, seed + 1, … (wrapping past MAX_SEED to 0)."""
        if self.seed == -1:
            raise InvalidInputError("the seed is -1 (random): call with_seed() first")
        return [wrap_seed(self.seed + i) for i in range(self.n_images)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationParams":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
