"""Crop around the mask, generate at model resolution, paste back with a feathered blend.

The pasted alpha is `masks.feather(grown mask)`: exactly 0 outside the grown mask, so every pixel
outside it is bit-identical to the input, whatever the generator did to the rest of its crop
(a VAE round trip shifts colours everywhere). In "crop" mode the work (grow, feather, resize,
generation) happens on a window around the mask, so its cost does not grow with the photo;
"full" mode hands the whole image to the generator, for global edits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from . import masks
from .errors import InvalidInputError, NothingFound
from .generate.generated import Generated
from .types import GenerationParams, check_mask, check_rgb

MODES = ("crop", "full")
MIN_SIDE = 64


@dataclass(frozen=True)
class Plan:
    """Where the generator works: `box` (x0, y0, x1, y1) of the input, resized to `size` (w, h)."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]

    @property
    def box_size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


@dataclass(frozen=True)
class Edited:
    """What `edit_region` did: full-size `images`, what the generator returned for them, and the `plan` it used."""

    images: list[np.ndarray]
    generated: Generated
    plan: Plan


def auto_pad(mask: np.ndarray) -> int:
    """Context around the mask: 32 px (the WebUI's "only masked padding"), or a quarter of the mask's long side."""
    box = masks.bbox(mask)
    return 32 if box is None else max(32, round(0.25 * max(box[2] - box[0], box[3] - box[1])))


def model_size(width: int, height: int, params: GenerationParams) -> tuple[int, int]:
    """Generation size for a crop: params' width/height, else long side = resolution, aspect kept, sides % 8 == 0."""
    if params.width is not None and params.height is not None:
        return params.width, params.height
    scale = params.resolution / max(width, height)
    shortest = min(MIN_SIDE, params.resolution)  # a thin crop still gives the model some pixels across

    def side(v: int) -> int:
        return max(shortest, int(round(v * scale / 8)) * 8)

    return side(width), side(height)


def plan(image_shape: tuple[int, ...], mask: np.ndarray, params: GenerationParams, *, grow_px: float = 8,
         pad: int | None = None, mode: str = "crop", any_size: bool = False) -> Plan:
    """The crop box and generation size `edit_region` uses (the recipe records them)."""
    if mode not in MODES:
        raise InvalidInputError(f"unknown compose mode {mode!r}; choose one of: {', '.join(MODES)}")
    h, w = image_shape[:2]
    if mode == "full":
        box = (0, 0, w, h)
    else:
        pad = auto_pad(mask) if pad is None else pad
        # +1: the grown mask keeps a ring of background inside the crop, so feathering there matches the full image.
        box = masks.crop_around(mask, int(math.ceil(max(grow_px, 0))) + 1 + pad, image_shape=image_shape)
    bw, bh = box[2] - box[0], box[3] - box[1]
    return Plan(box, (bw, bh) if any_size else model_size(bw, bh, params))


def _resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    if nearest:
        return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    # Any model pixel that covers some of the mask is repainted; the paste alpha stays exact anyway.
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0


def edit_region(image: np.ndarray, mask: np.ndarray, generator, params: GenerationParams, *,
                grow_px: float = 8, feather_px: float = 8, pad: int | None = None, mode: str = "crop",
                control: Mapping[str, np.ndarray] | None = None) -> Edited:
    """Regenerate `mask` in `image` with `generator`: batch_size × batch_count full-size images, with what made them.

    grow_px:    the mask is grown by this much first (covers halos the segmenter missed).
    feather_px: the blend ramps from 0 at the grown mask's edge to 1 this far inside it.
    pad:        context kept around the mask in crop mode (default `auto_pad`).
    control:    full-size control images for ControlNets that cannot be derived from the image (seg).
    """
    image = check_rgb(image)
    mask = check_mask(mask, image.shape)
    if not mask.any():
        raise NothingFound("the mask is empty: there is nothing to edit")
    params = params.with_seed()
    p = plan(image.shape, mask, params, grow_px=grow_px, pad=pad, mode=mode,
             any_size=getattr(generator, "works_at_any_size", False))
    window = masks.crop(image, p.box)
    grown = masks.grow(masks.crop(mask, p.box), grow_px)
    alpha = masks.feather(grown, feather_px)
    kwargs = {}
    if control:
        # Nearest: control maps such as segmentations hold labels, not colours to blend.
        kwargs["control"] = {k: _resize(masks.crop(np.asarray(v), p.box), p.size, nearest=True)
                             for k, v in control.items()}
    generated = generator.inpaint(_resize(window, p.size), _resize_mask(grown, p.size), params, **kwargs)
    images = [masks.paste(image, _resize(np.asarray(r, np.uint8), p.box_size), p.box, alpha) for r in generated.images]
    return Edited(images, generated, p)
