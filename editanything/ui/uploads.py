"""Uploads and their limits: the photo component, reading a photo under the pixel limit, unpacking zips.

Untrusted uploads are checked before they cost anything: a photo's pixel count before it is
decoded (`read_image`), a zip's member count and declared sizes from its central directory
before a byte is extracted.
"""

from __future__ import annotations

import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import gradio as gr
import numpy as np

from ..errors import ImageError, InvalidInputError
from ..imageio import IMAGE_SUFFIXES, read_image

DEFAULT_MAX_PIXELS = 40_000_000  # a web upload gets a tighter limit than a trusted local file
DEFAULT_MAX_FILE_SIZE = "50mb"


@dataclass(frozen=True)
class ZipLimits:
    """What one uploaded zip may hold, checked on its central directory before extracting.

    members: entries of any kind (each costs memory and a file-system call).
    total_bytes: declared uncompressed size of the photos in it, all together.
    ratio: photos hardly compress, so photos whose uncompressed size is over `ratio` x their
        compressed size (and over `ratio_floor` bytes) are a zip bomb, not photos.
    """

    members: int = 10_000
    total_bytes: int = 1 << 30
    ratio: float = 20.0
    ratio_floor: int = 16 << 20


def photo_upload(**options: Any) -> gr.Image:
    """An image upload whose file goes to `read_image` as it is (our format checks, pixel limit and messages).

    The stock component opens the file with Pillow first, so a non-image upload would fail there
    with a generic error. gradio has already checked that the path lies in its upload folder. The
    instance's `preprocess` is replaced rather than subclassed: gradio writes a `.pyi` stub beside
    the source of every Image subclass.
    """
    component = gr.Image(type="filepath", image_mode=None, **options)
    stock = component.preprocess

    def preprocess(payload):
        if payload is None or payload.path is None:
            return stock(payload)
        return str(payload.path)

    component.preprocess = preprocess
    return component


def read_photo(path: str, max_pixels: int, *, gray: bool = False) -> np.ndarray:
    """read_image with the UI's pixel limit; messages name the uploaded file, not the server path."""
    try:
        return read_image(path, gray=gray, max_pixels=max_pixels)
    except ImageError as exc:
        raise ImageError(str(exc).replace(str(path), Path(path).name)) from None


def unzip_images(archive: Path, dest: Path, limit: int, limits: ZipLimits = ZipLimits(), *,
                 first_only: bool = False) -> list[Path]:
    """Write the zip's image members under `dest` (never outside it); at most `limit` photos.

    The central directory is checked against `limits` first, so an oversized zip is refused before
    a byte is written; extraction cannot exceed the declared sizes (zipfile stops each member at its
    declared size and checks its CRC). `first_only`: stop after the first photo (a preview needs no more).
    """
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"{archive.name}: not a readable zip file ({exc})") from None
    with z:
        members = z.infolist()
        if len(members) > limits.members:
            raise InvalidInputError(f"{archive.name}: {len(members):,} entries, over the limit of "
                                    f"{limits.members:,}; upload fewer files per zip")
        photos = [(info, parts) for info in members if (parts := _photo_parts(info))]
        if first_only:
            photos = photos[:1]
        elif len(photos) > limit:
            raise InvalidInputError(f"{archive.name}: {len(photos)} photos, too many; at most {limit} per run")
        _check_sizes(archive, [info for info, _ in photos], limits)
        out: list[Path] = []
        for info, parts in photos:
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with z.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            # the central directory lied (offsets, sizes, CRCs), the data is damaged, or it is encrypted
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                target.unlink(missing_ok=True)
                raise InvalidInputError(f"{archive.name}: {info.filename} cannot be unpacked ({exc}); the zip is "
                                        "damaged or encrypted: zip the photos again") from None
            out.append(target)
    return out


def _photo_parts(info: zipfile.ZipInfo) -> list[str]:
    """The member's cleaned path parts when it is a photo to extract ([] to skip it)."""
    name = PurePosixPath(info.filename.replace("\\", "/"))
    parts = [p for p in name.parts if p not in ("", ".", "..", "/")]
    if info.is_dir() or not parts or name.suffix.lower() not in IMAGE_SUFFIXES or parts[0] == "__MACOSX":
        return []
    return parts


def _check_sizes(archive: Path, photos: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    total = sum(info.file_size for info in photos)
    packed = sum(info.compress_size for info in photos)
    if total > limits.total_bytes:
        raise InvalidInputError(f"{archive.name}: its photos unpack to {total >> 20:,} MiB, over the limit of "
                                f"{limits.total_bytes >> 20:,} MiB; upload it in parts")
    if total > limits.ratio_floor and total > limits.ratio * max(packed, 1):
        raise InvalidInputError(f"{archive.name}: {packed:,} bytes unpack to {total:,} (over {limits.ratio:g}x); "
                                "photos hardly compress, so this is not a zip of photos")
