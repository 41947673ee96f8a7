"""Images in and out of JSON: base64 or data URIs in (never a server path), base64 PNG out."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import numpy as np
import pydantic_core

from ..errors import InvalidInputError
from ..imageio import decode_image, decode_mask, encode_image

_DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,", re.IGNORECASE)


def image_bytes(value: object, field: str) -> bytes:
    """The bytes of a base64 image or data URI. Anything else (a file path, a URL) is refused, not read."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{field}: send the image as base64 or a data:image/…;base64 URI")
    text = value.strip()
    prefix = _DATA_URI.match(text)  # anchored: a search would scan the whole upload for a prefix
    if prefix:
        text = text[prefix.end():]
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
    return png_b64_bytes(image, text).decode("ascii")


def png_b64_bytes(image: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    return base64.b64encode(encode_image(image, "png", text=text))


def json_with_images(images: list[bytes], rest: dict[str, Any]) -> bytes:
    """`{"images": [...], **rest}` as JSON bytes, the images (base64, ASCII bytes) put in as they are.

    Base64's alphabet needs no escaping in JSON, so nothing is lost by not passing megabytes of it
    through a JSON encoder (which scans every character: ~2 ms per MB here). `rest` is encoded as
    FastAPI encodes a route's answer (pydantic; NaN and infinities as null)."""
    parts = [b'{"images":[']
    for i, image in enumerate(images):
        parts += [b',"' if i else b'"', image, b'"']
    parts += [b"],", pydantic_core.to_json(rest, inf_nan_mode="null")[1:]] if rest else [b"]}"]
    return b"".join(parts)  # one copy of the images


def rgba_png_b64(image: np.ndarray, alpha: np.ndarray) -> str:
    """An RGB image with `alpha` (bool: opaque where True) as a base64 PNG."""
    return png_b64(np.dstack([image, np.where(alpha, 255, 0).astype(np.uint8)]))
