"""Soft edges: a selection's hard mask → a trimap → an alpha matte and the subject's own colours.

    matte = compute_matte(photo, mask)          # ViTMatte when its weights are on disk, else pymatting
    rgba = matte.cutout(photo)                  # the subject on transparency, no halo of the old background

Backends (`get_matter`): pymatting-fast and pymatting (closed-form matting, no weights; see
pymatting_backend) and ViTMatte on transformers (`vitmatte-small`, a manifest model). ViTMatte and
pymatting estimate the subject's colours in the band by pymatting's multilevel estimation,
pymatting-fast by blur fusion.

The trimap keeps the mask's interior as sure foreground and everything beyond a band around its edge
as sure background; only the band is solved. The band's width scales with the object (`auto_band`),
and all the work happens on a crop around the band, so a tiny object in a 40 MP photo costs what the
object costs. Alpha is exactly 1 on the sure foreground and 0 on the sure background, so a matte
changes no pixel outside the band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from .. import masks
from ..errors import InvalidInputError, NothingFound
from ..registry import Registry, for_model, on_disk
from ..types import check_mask, check_rgb

# The band grows with the object's size (sqrt of its box's area): hair on a portrait needs tens of pixels,
# the edge of a small object a few.
BAND_FRACTION = 0.035
MIN_BAND, MAX_BAND = 3.0, 64.0
# Known pixels kept around the band inside the crop, for the solver's neighbourhoods to see both sides.
MARGIN = 8
UNKNOWN = 128


@runtime_checkable
class Matter(Protocol):
    """An RGB crop and its trimap (uint8: 0 background, 128 unknown, 255 foreground) → alpha and foreground.

    Returns (alpha float32 (h, w) in [0, 1], foreground colour uint8 (h, w, 3)).
    """

    name: str

    def estimate(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Matte:
    """An alpha matte over `box` (x0, y0, x1, y1) of the photo; 0 outside it.

    `trimap` (uint8, as Matter takes it), `alpha` (float32) and `foreground` (uint8 RGB, equal to the photo on
    the sure foreground) cover the box. `band` is the unknown band's width in pixels on each side of the
    mask's edge (`inner` on the inside: less for an object thinner than two bands); `backend` the Matter's name.
    """

    box: tuple[int, int, int, int]
    trimap: np.ndarray
    alpha: np.ndarray
    foreground: np.ndarray
    band: float
    inner: float
    backend: str

    @property
    def unknown(self) -> np.ndarray:
        return self.trimap == UNKNOWN

    def _full(self, crop: np.ndarray, shape: tuple[int, ...], fill: Any = 0) -> np.ndarray:
        out = np.full((*shape[:2], *crop.shape[2:]), fill, crop.dtype)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = crop
        return out

    def sure_foreground(self, shape: tuple[int, ...]) -> np.ndarray:
        """The pixels kept as they are (bool, full size)."""
        return self._full(self.trimap == 255, shape, False)

    def reach(self, shape: tuple[int, ...]) -> np.ndarray:
        """Every pixel the matte may make non-zero: the sure foreground and the band (bool, full size)."""
        return self._full(self.trimap != 0, shape, False)

    def alpha_image(self, shape: tuple[int, ...]) -> np.ndarray:
        """The alpha as a full-size uint8 (H, W) picture: 255 opaque."""
        return self._full(_to_u8(self.alpha), shape)

    def cutout(self, image: np.ndarray) -> np.ndarray:
        """The subject as RGBA uint8 (H, W, 4): its estimated colours in the band, the photo's inside."""
        image = check_rgb(image)
        x0, y0, x1, y1 = self.box
        rgb = image.copy()
        rgb[y0:y1, x0:x1] = self.foreground
        return np.dstack([rgb, self.alpha_image(image.shape)])

    def composite(self, front: np.ndarray, back: np.ndarray) -> np.ndarray:
        """`front` over `back` (both full-size RGB) by the alpha; outside the band, each pixel is exactly
        `front`'s (sure foreground) or `back`'s (the rest)."""
        front, back = check_rgb(front), check_rgb(back)
        x0, y0, x1, y1 = self.box
        out = np.where(self.sure_foreground(back.shape)[..., None], front, back)
        band = self.unknown
        a = self.alpha[band][:, None]
        mixed = a * front[y0:y1, x0:x1][band].astype(np.float32) + (1 - a) * back[y0:y1, x0:x1][band].astype(np.float32)
        out[y0:y1, x0:x1][band] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        return out

    def over(self, image: np.ndarray, background: np.ndarray) -> np.ndarray:
        """The subject of `image` (its decontaminated colours in the band) over a new `background`."""
        x0, y0, x1, y1 = self.box
        front = check_rgb(image).copy()
        front[y0:y1, x0:x1] = self.foreground
        return self.composite(front, background)

    def record(self) -> dict[str, Any]:
        """What the recipe keeps: enough to make the same matte again from the same mask."""
        return {"backend": self.backend, "band": self.band, "box": list(self.box)}


def _to_u8(alpha: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)


def auto_band(mask: np.ndarray) -> float:
    """The unknown band's width for this object: 3.5 % of the square root of its box's area, in 3..64 px."""
    box = masks.bbox(mask)
    if box is None:
        raise NothingFound("the mask is empty: there is no edge to matte")
    side = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    return float(min(MAX_BAND, max(MIN_BAND, round(BAND_FRACTION * side))))


def check_band(band: Any) -> float | None:
    """None (automatic) or a finite band width in pixels, 1..512."""
    if band is None:
        return None
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not math.isfinite(band) \
            or not 1 <= band <= 512:
        raise InvalidInputError(f"the matte band must be a number of pixels in 1..512; got {band!r}")
    return float(band)


def trimap(mask: np.ndarray, band: float) -> tuple[np.ndarray, float]:
    """The trimap of a mask (uint8: 0 background, 128 unknown, 255 foreground) and the inner width used.

    Inside, the band never takes more than half the object's depth, so a thin object keeps a core of
    sure foreground for the solver to start from."""
    m = np.asarray(mask, bool)
    depth = float(cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5).max())
    inner = min(band, max(depth / 2.0, 0.5))
    out = np.zeros(m.shape, np.uint8)
    out[masks.grow(m, band)] = UNKNOWN
    out[masks.shrink(m, inner)] = 255
    return out, inner


def compute_matte(image: np.ndarray, mask: np.ndarray, matter: Matter | None = None, *,
                  band: float | None = None) -> Matte:
    """The alpha matte of `mask`'s object in `image`, solved on a crop around the band only."""
    image = check_rgb(image)
    mask = check_mask(mask, image.shape)
    if not mask.any():
        raise NothingFound("the mask is empty: there is no edge to matte")
    band = auto_band(mask) if check_band(band) is None else float(band)
    matter = matter if matter is not None else get_matter()
    box = masks.crop_around(mask, int(math.ceil(band)) + MARGIN, image_shape=image.shape)
    crop = masks.crop(image, box)
    tri, inner = trimap(masks.crop(mask, box), band)
    if (tri == UNKNOWN).any():
        alpha, fg = matter.estimate(crop, tri)
        alpha = np.asarray(alpha, np.float32)
        if alpha.shape != tri.shape or not np.isfinite(alpha).all():
            raise InvalidInputError(f"the {matter.name} matte came back {alpha.shape} or non-finite, "
                                    f"for a {tri.shape} crop")
        fg = np.asarray(fg, np.uint8)
    else:
        alpha, fg = np.zeros(tri.shape, np.float32), crop
    sure = tri == 255
    alpha = np.where(sure, 1.0, np.where(tri == 0, 0.0, np.clip(alpha, 0.0, 1.0))).astype(np.float32)
    fg = np.where(sure[..., None], crop, fg)  # the kept subject is the photo's own pixels
    return Matte(box, tri, alpha, fg, band, inner, matter.name)


# --- backends ---------------------------------------------------------------------------------------------------

def _pymatting(**settings: Any) -> Matter:
    from .pymatting_backend import PyMatting

    return PyMatting(**settings)


def _pymatting_fast(**settings: Any) -> Matter:
    return _pymatting(fast=True, **settings)


def _vitmatte_model(model: str, **settings: Any) -> Matter:
    from .vitmatte_backend import VitMatte

    return VitMatte.from_model(model, **settings)


VITMATTE_MODELS = ("vitmatte-small",)
_vitmatte = for_model(_vitmatte_model)


WEIGHT_FREE = ("pymatting-fast", "pymatting")


def _usable(name: str) -> bool:
    return name in WEIGHT_FREE or on_disk(name)


MATTERS: Registry[Matter] = Registry(
    "matting backend",
    {"pymatting-fast": _pymatting_fast, "pymatting": _pymatting, **{m: _vitmatte(m) for m in VITMATTE_MODELS}},
    backends={"vitmatte-hf": _vitmatte}, order=(*VITMATTE_MODELS, "pymatting-fast"), usable=_usable)
"""Matting backend name → builder; "auto" is ViTMatte when its weights are on disk, else pymatting-fast (no
weights). `pymatting` is the exact solve that --matte used before: recipes that name it replay with it."""


def get_matter(name: str = "auto", **settings: Any) -> Matter:
    return MATTERS.get(name, **settings)


def check_matter(name: str) -> str:
    """A matting backend's name as `get_matter` takes it (InvalidInputError naming the known ones), before
    anything loads."""
    if name != "auto":
        MATTERS.builder(name)
    return name


__all__ = ["MATTERS", "VITMATTE_MODELS", "Matte", "Matter", "auto_band", "check_band", "check_matter", "compute_matte",
           "get_matter", "trimap"]
