"""Builders of the awkward files users really have: truncated, empty, mislabelled, 16-bit, CMYK…"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import DEMOS


def photo(name: str = "coffee.jpg") -> np.ndarray:
    return np.asarray(Image.open(DEMOS / name).convert("RGB"))


def truncated_jpeg(path: Path) -> Path:
    data = (DEMOS / "coffee.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_as_jpeg(path: Path) -> Path:
    path.write_text("this is not a picture\n")
    return path


def png16(path: Path) -> tuple[Path, np.ndarray]:
    """A 16-bit greyscale PNG and the 8-bit values it should read as."""
    ramp = (np.linspace(0, 65535, 256, dtype=np.float64)[None, :].repeat(32, 0)).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return path, np.rint(ramp / 257.0).astype(np.uint8)


def cmyk_jpeg(path: Path) -> tuple[Path, np.ndarray]:
    rgb = photo()
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    return path, rgb


def palette_png_with_transparency(path: Path) -> Path:
    """Left half transparent, right half opaque red."""
    img = Image.new("P", (40, 20), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    px = np.zeros((20, 40), np.uint8)
    px[:, 20:] = 1
    img.putdata(px.flatten().tolist())
    img.info["transparency"] = 0
    img.save(path, transparency=0)
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored landscape 60x30 with the bright square top-left; EXIF 6 = rotate 90° clockwise to view."""
    stored = np.zeros((30, 60, 3), np.uint8)
    stored[:10, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return path


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def nested_corpus(root: Path, every_kind: bool = True) -> Path:
    """`root/photos`: two good photos (one in `trip/`) and a paletted PNG, two corrupt files (a truncated
    JPEG, text named .jpg) and, with `every_kind`, a CMYK JPEG, a 16-bit PNG and an EXIF-rotated JPEG."""
    import shutil

    src = root / "photos"
    (src / "trip").mkdir(parents=True)
    shutil.copy(DEMOS / "coffee.jpg", src / "coffee.jpg")
    shutil.copy(DEMOS / "chelsea.jpg", src / "trip" / "chelsea.jpg")
    if every_kind:
        cmyk_jpeg(src / "trip" / "cmyk.jpg")
        png16(src / "ramp16.png")
        exif_rotated_jpeg(src / "rotated.jpg")
    palette_png_with_transparency(src / "palette.png")
    truncated_jpeg(src / "broken.jpg")
    text_as_jpeg(src / "trip" / "notes.jpg")
    return src


def file_tree(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file below `folder`, to compare two runs' outputs byte for byte."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
