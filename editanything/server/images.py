"""Images in and out of JSON: base64 or data URIs in (never a server path), base64 PNG out."""

from __future__ import annotations

import base64
import binascii
import re

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..imageio import decode_image, decode_mask, encode_image

_DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,", re.IGNORECASE)


def image_bytes(value: object, field: str) -> bytes:
    """The bytes of a base64 image or data URI. Anything else (a file path, a URL) is refused, not read."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{field}: send the image as base64 or a data:image/…;base64 URI")
    text = _DATA_URI.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{field}: not base64 image data (file paths and URLs are not read; send the "
                                "image itself as base64 or a data URI)") from None
    if not data:
        raise InvalidInputError(f"{field}: empty image")
    return data


def read_b64_image(value: object, field: str, max_pixels: int) -> np.ndarray:
    return decode_image(image_bytes(value, field), field, max_pixels=max_pixels)


def read_b64_mask(value: object, field: str, max_pixels: int) -> np.ndarray:
    """A mask upload as bool (H, W): white (or, with transparency, opaque) pixels are selected."""
    return decode_mask(image_bytes(value, field), field, max_pixels=max_pixels)


def png_b64(image: np.ndarray, text: dict[str, str] | None = None) -> str:
    return base64.b64encode(encode_image(image, "png", text=text)).decode("ascii")


def rgba_png_b64(image: np.ndarray, alpha: np.ndarray) -> str:
    """An RGB image with `alpha` (bool: opaque where True) as a base64 PNG."""
    bgra = cv2.cvtColor(image, cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = np.where(alpha, 255, 0).astype(np.uint8)
    ok, buf = cv2.imencode(".png", bgra)
    if not ok:
        raise InvalidInputError("could not encode the masked image as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")
