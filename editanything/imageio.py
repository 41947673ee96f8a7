"""Reading and writing images at the edges of the program.

`read_image` returns RGB (or grey) uint8 arrays upright (EXIF orientation applied) whatever the
file's mode, and refuses empty, truncated, oversized and non-image files with an `ImageError`
naming the file. `write_image` writes atomically (temp file + rename) and never over an input.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import struct
import tempfile
import threading
import warnings
import zlib
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .storage import RemotePath, check_writable, is_uri, location, same_file, write_atomic

DEFAULT_MAX_PIXELS = 150_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
PARTIAL_SUFFIX = ".partial"  # temp files of atomic writes; a killed run leaves only these
# Measured here: deflate dominates batch time; level 1 + RLE + no filter is ~4x faster than
# PIL's default for files ~30 % larger.
_FAST_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
             cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = b"\0\0\0\0IEND\xaeB`\x82"  # a PNG's last chunk, empty, with its CRC
_IDAT_BYTES = 1 << 24  # per IDAT chunk: readers take up to 2**31 - 1; a few big ones cost them little per chunk
_SAMPLE_ROWS = 32  # rows deflated to choose between deflating and storing


def max_pixels_default() -> int:
    """The pixel limit: $EDITANYTHING_MAX_PIXELS, else 150 MP."""
    value = os.environ.get("EDITANYTHING_MAX_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def read_image(path: str | os.PathLike, *, gray: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as an upright RGB uint8 array (H, W, 3), or (H, W) when `gray`.

    Transparent pixels are composited over white; 16-bit images are scaled to 8 bits.
    Raises ImageError (naming the file) for empty, truncated, oversized or non-image files.
    `path` may be a URI (s3://…, see `editanything.storage`).
    """
    path = location(path)
    img, data = _open(path, max_pixels_default() if max_pixels is None else max_pixels)
    # Fast path for plain JPEGs; data after the end marker (phone "motion photos") goes through
    # Pillow, which still tells real truncation from a trailer.
    if img.format == "JPEG" and img.mode in ("L", "RGB") and b"\xff\xd9" in data[-64:]:
        return _read_jpeg_fast(path, data, gray)
    return _read_with_pillow(path, img, gray)


def read_mask(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """A mask file as bool (H, W), upright: bright pixels are selected, or, in a file with
    transparency, its opaque pixels (a transparent background is not selected)."""
    path = location(path)
    img, _ = _open(path, max_pixels_default() if max_pixels is None else max_pixels)
    return _mask_of(path, img) if _has_alpha(img) else read_image(path, gray=True, max_pixels=max_pixels) > 127


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in _ALPHA_MODES or "transparency" in img.info


def _mask_of(path: Path | RemotePath | str, img: Image.Image) -> np.ndarray:
    """The opaque pixels of an image with transparency, or its bright pixels when it is all opaque."""
    img = _load(path, img)
    alpha = np.asarray(img.convert("RGBA"))[..., 3]
    if alpha.min() < 255:
        return alpha > 127
    return cv2.cvtColor(_to_rgb(img), cv2.COLOR_RGB2GRAY) > 127


def decode_image(data: bytes, name: str, *, gray: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """`read_image` for bytes already in memory (an upload); errors name the upload as `name`."""
    img = _open_bytes(data, name, max_pixels_default() if max_pixels is None else max_pixels)
    if img.format == "JPEG" and img.mode in ("L", "RGB") and b"\xff\xd9" in data[-64:]:
        return _read_jpeg_fast(name, data, gray)
    if _plain_png(img) and data.endswith(_IEND):  # a cut-off file goes to Pillow, which says so
        decoded = _decode_with_opencv(data, gray, grey_file=img.mode == "L")
        if decoded is not None:  # else Pillow names what is wrong with the file
            return decoded
    return _read_with_pillow(name, img, gray)


def _plain_png(img: Image.Image) -> bool:
    """An 8-bit grey or RGB PNG without transparency: OpenCV decodes it to Pillow's very pixels (upright,
    from the eXIf chunk wherever it is), in ~85 % of the time, and with no copies after."""
    return (img.format == "PNG" and img.mode in ("L", "RGB") and bool(img.tile) and img.tile[0].args == img.mode
            and "transparency" not in img.info)


def _decode_with_opencv(data: bytes, gray: bool, *, grey_file: bool) -> np.ndarray | None:
    # a colour file made grey by libpng would round otherwise than `read_image`'s RGB -> grey
    flag = cv2.IMREAD_GRAYSCALE if gray and grey_file else cv2.IMREAD_COLOR
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # applies EXIF orientation
    if arr is None or arr.ndim == 2:
        return arr
    return cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB)


def decode_mask(data: bytes, name: str, *, max_pixels: int | None = None) -> np.ndarray:
    """`read_mask` for bytes already in memory (an upload)."""
    img = _open_bytes(data, name, max_pixels_default() if max_pixels is None else max_pixels)
    return _mask_of(name, img) if _has_alpha(img) else decode_image(data, name, gray=True, max_pixels=max_pixels) > 127


def decode_png_text(data: bytes, name: str) -> dict[str, str]:
    """`read_png_text` for bytes already in memory (an upload)."""
    return _text_chunks(_open_bytes(data, name, max_pixels_default()), name)


def _open_bytes(data: bytes, name: str, limit: int) -> Image.Image:
    if not data:
        raise ImageError(f"{name}: empty image (0 bytes)")
    img = _checked_header(io.BytesIO(data), name, limit)
    w, h = img.size
    if len(data) > max_file_bytes(w, h):
        raise ImageError(f"{name}: {len(data):,} bytes, far more than a {w}x{h} image needs; not read")
    return img


def _open(path: Path | RemotePath, limit: int) -> tuple[Image.Image, bytes]:
    """The file's bytes and its lazily opened image, once its header passed the checks (size limit included).

    The header and the file's size are checked on the open file (ranged reads on an object store)
    before its bytes are read: a huge or disguised file costs no memory.
    """
    try:
        with _open_input(path) as (stream, whole):
            size = stream.size() if isinstance(path, RemotePath) else os.fstat(stream.fileno()).st_size
            if not size:
                raise ImageError(f"{path}: empty file (0 bytes); replace it with a valid image")
            w, h = _checked_header(whole, path, limit).size
            if size > max_file_bytes(w, h):
                raise ImageError(f"{path}: {size:,} bytes, far more than a {w}x{h} image needs; not read (a "
                                 "damaged file, or another file behind an image header)")
            stream.seek(0)
            data = stream.read()
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return _checked_header(io.BytesIO(data), path, limit), data


@contextlib.contextmanager
def _open_input(path: Path | RemotePath):
    """The open file, and a Python file object over it for Pillow (which reads headers line by line)."""
    if isinstance(path, RemotePath):
        if path.info().type.name == "Directory":
            raise IsADirectoryError(str(path))
        with path.open_input() as native:
            yield native, io.BufferedReader(_Ranged(native), 1 << 16)  # 64 KiB ranged reads for the header
    else:
        with path.open("rb") as local:
            yield local, local


class _Ranged(io.RawIOBase):
    """A pyarrow input file as a raw Python stream (reads past the end are empty, as for a local file)."""

    def __init__(self, native) -> None:
        self.native, self.size, self.pos = native, native.size(), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.native.read_at(max(0, min(len(buffer), self.size - self.pos)), self.pos) if self.pos < self.size \
            else b""
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = max(0, offset + (0, self.pos, self.size)[whence])
        return self.pos

    def tell(self) -> int:
        return self.pos


def max_file_bytes(width: int, height: int) -> int:
    """The most bytes an image file of width x height may take: 16-bit RGBA uncompressed, plus room for
    metadata and a trailer (a phone's motion photo keeps its video after the JPEG)."""
    return width * height * 8 + 128 * 1024 * 1024


def _checked_header(stream, path: Path | RemotePath, limit: int) -> Image.Image:
    over = (f"{path}: over the limit of {limit:,} pixels "
            "(raise it with $EDITANYTHING_MAX_PIXELS if the file is trusted)")
    try:
        img = _open_guarded(stream, limit)
    except Image.DecompressionBombError:
        raise ImageError(over) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (unrecognised format); expected JPEG, PNG, WebP, TIFF or BMP") from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise ImageError(f"{path}: broken image header ({exc})") from None
    w, h = img.size
    if w * h > limit:
        raise ImageError(over.replace(": over", f": {w}x{h} is {w * h:,} pixels, over", 1))
    return img


_PILLOW_LIMIT = threading.Lock()


def _open_guarded(stream, limit: int) -> Image.Image:
    """Image.open under Pillow's own pixel guard, which stays on for the whole process.

    Pillow refuses files over twice its MAX_IMAGE_PIXELS; only when our limit (raised on purpose
    with $EDITANYTHING_MAX_PIXELS) is higher is that guard widened to it, for this one open.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning among them: our own limit decides
        try:
            return Image.open(stream)
        except Image.DecompressionBombError:
            guard = Image.MAX_IMAGE_PIXELS
            if guard is None or limit <= 2 * guard:
                raise
        with _PILLOW_LIMIT:
            Image.MAX_IMAGE_PIXELS = limit
            stream.seek(0)
            try:
                return Image.open(stream)
            finally:
                Image.MAX_IMAGE_PIXELS = guard


def _read_jpeg_fast(path: Path, data: bytes, gray: bool) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # applies EXIF orientation
    if arr is None:
        raise ImageError(f"{path}: corrupt JPEG data; the file cannot be decoded")
    return arr if gray else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def _load(path: Path, img: Image.Image) -> Image.Image:
    """Decode an opened image, upright (EXIF orientation applied)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # not a copy of every upright photo
            return img
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as exc:
        raise ImageError(f"{path}: corrupt or truncated {img.format or 'image'} data ({exc})") from None


def _read_with_pillow(path: Path, img: Image.Image, gray: bool) -> np.ndarray:
    white = _white_level(img) if img.mode.startswith("I") or img.mode == "F" else None
    img = _load(path, img)
    if gray and img.mode == "L" and "transparency" not in img.info:
        return np.array(img, dtype=np.uint8)  # what the trip through RGB gives back, for a mask in under half the time
    rgb = _to_rgb(img, white)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray else rgb


def _white_level(img: Image.Image) -> float:
    """The value that means white in a grey image of many bits: its type's maximum, never its content's.

    Read from the file's raw mode (gone once decoded): "I;16B" holds 16 bits, "I;32S" signed 32 bits.
    """
    if img.mode == "F":
        return 1.0  # float images are 0..1
    tile = img.tile[0].args if img.tile else None
    raw = tile if isinstance(tile, str) else tile[0] if tile else img.mode
    found = re.match(r"I;(\d+)(\w*)", raw)
    bits = int(found.group(1)) if found else 16 if img.mode.startswith("I;16") else 32
    signed = img.mode == "I" and bits == 32 and (not found or "S" in found.group(2))
    return float(2 ** (bits - 1) - 1 if signed else 2 ** bits - 1)


def _to_rgb(img: Image.Image, white: float | None = None) -> np.ndarray:
    """RGB uint8; `white` is the grey level of white for images of more than 8 bits (see `_white_level`)."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        white = _white_level(img) if white is None else white
        grey = np.clip(np.rint(arr * (255.0 / white)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("LA")
    elif mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        out = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def encode_image(image: np.ndarray, fmt: str = "png", *, text: Mapping[str, str] | None = None,
                 quality: int = 95, fast: bool = True) -> bytes:
    """Encode an RGB, RGBA (PNG, WebP) or grey uint8 array as PNG or JPEG bytes.

    PNG `text` entries become tEXt chunks (iTXt when not Latin-1), where Stable Diffusion
    tools look for `parameters`. `fast` trades ~30 % larger PNGs for ~5x faster encoding: level 1
    matching runs only, unfiltered; or, when a sample of the rows shows that would save under a
    tenth (a photo: ~5 %, for ~7 ms per 512² image), the pixels stored as they are (`_stored_png`).
    """
    image = np.asarray(image)
    rgba = image.ndim == 3 and image.shape[2] == 4
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ImageError(f"cannot encode an array of {image.dtype} {image.shape}; expected uint8 (H, W), "
                         "(H, W, 3) or (H, W, 4)")
    fmt = fmt.lower().lstrip(".")
    if rgba and fmt not in ("png", "webp"):
        raise ImageError(f"{fmt} has no alpha channel; write RGBA images as png")
    if fmt == "png" and fast and image.size and not _deflate_pays(image):
        return _stored_png(image, text or {})
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if rgba else cv2.COLOR_RGB2BGR)
    if fmt in ("jpg", "jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        ext = ".jpg"
    elif fmt == "png":
        params = _FAST_PNG if fast else [cv2.IMWRITE_PNG_COMPRESSION, 6]
        ext = ".png"
    elif fmt == "webp":
        params, ext = [cv2.IMWRITE_WEBP_QUALITY, int(quality)], ".webp"
    else:
        raise ImageError(f"unsupported output format {fmt!r}; use png or jpg")
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise ImageError(f"could not encode the image as {fmt}")
    data = buf.tobytes()
    if text and ext == ".png":
        data = _png_with_text(data, text)
    return data


def _deflate_pays(image: np.ndarray) -> bool:
    """Whether `_FAST_PNG` would make the image a tenth smaller than its pixels. Runs are all it
    matches, and they stay inside a row, so deflating a sample of the rows the same way foretells it."""
    rows = image.reshape(image.shape[0], -1)
    sample = np.ascontiguousarray(rows[::max(1, len(rows) // _SAMPLE_ROWS)])
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return len(deflate.compress(sample) + deflate.flush()) < 0.9 * sample.nbytes


def _stored_png(image: np.ndarray, text: Mapping[str, str]) -> bytes:
    """A PNG of the pixels stored, not compressed (valid everywhere, the size of the pixels), in IDAT
    chunks of 16 MiB: Pillow handles each chunk in Python, and decodes a 512² photo in under a
    millisecond from one chunk, ~5x slower from libpng's 8 KiB ones."""
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = image.reshape(height, -1)
    data = memoryview(_stored_zlib(memoryview(rows.reshape(-1))))
    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    parts = [_PNG_SIGNATURE, *_chunk(b"IHDR", header), _text_chunks_of(text)]
    for i in range(0, len(data), _IDAT_BYTES):
        parts += _chunk(b"IDAT", data[i:i + _IDAT_BYTES])
    return b"".join(parts + _chunk(b"IEND", b""))  # the pixels copied once, here


def _stored_zlib(data: memoryview) -> bytes:
    """`data` as a zlib stream of stored (not compressed) deflate blocks, in a third of the time
    `zlib.compress(data, 0)` takes: it copies the data through its window."""
    parts = [b"\x78\x01"]  # deflate, 32 KiB window, no dictionary; the header's check bits
    for start in range(0, max(len(data), 1), 0xFFFF):
        block = data[start:start + 0xFFFF]
        last = start + 0xFFFF >= len(data)
        parts += [struct.pack("<BHH", last, len(block), len(block) ^ 0xFFFF), block]
    parts.append(struct.pack(">I", zlib.adler32(data)))
    return b"".join(parts)


def _chunk(kind: bytes, body: bytes | memoryview) -> list[bytes | memoryview]:
    """A chunk's parts: length, type, data, CRC."""
    return [struct.pack(">I", len(body)), kind, body, struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))]


def _text_chunks_of(text: Mapping[str, str]) -> bytes:
    """tEXt chunks, or iTXt (UTF-8) for values that are not Latin-1."""
    parts = []
    for key, value in text.items():
        try:
            parts += _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
        except UnicodeEncodeError:
            parts += _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
    return b"".join(parts)


def _png_with_text(png: bytes, text: Mapping[str, str]) -> bytes:
    ihdr_end = 8 + 8 + 13 + 4  # signature + IHDR header, payload and crc
    return png[:ihdr_end] + _text_chunks_of(text) + png[ihdr_end:]


def read_png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG (empty for other formats)."""
    img, _ = _open(location(path), max_pixels_default())  # sizes checked before the bytes are read
    return _text_chunks(img, path)


def _text_chunks(img: Image.Image, path: str | os.PathLike) -> dict[str, str]:
    try:
        with img:
            img.load()
            return dict(getattr(img, "text", {}) or {})
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # ValueError: Pillow's text-size limits
        raise ImageError(f"{path}: cannot read image metadata ({exc})") from None


def _temp_prefix(name: str) -> str:
    """`.NAME.PID.` for a temp file beside NAME, NAME cut so the whole temp name fits in 255 bytes.

    The writer's pid in the name lets a later run tell a dead writer's leftovers from live work.
    """
    tail = f".{os.getpid()}."
    room = 255 - 1 - len(tail) - 8 - len(PARTIAL_SUFFIX)  # mkstemp adds 8 random characters
    return "." + os.fsencode(name)[:room].decode("utf-8", "ignore") + tail


_WRITE_HINTS = {errno.ENOSPC: "the disk is full; free some space", errno.EDQUOT: "the disk quota is full",
                errno.EACCES: "no permission; choose another output folder",
                errno.EPERM: "no permission; choose another output folder",
                errno.EROFS: "read-only file system; choose another output folder"}


def write_failure(path: Path, exc: OSError, *, folder: bool = False) -> str:
    """One line for a failed write of `path` (a file, or with `folder` a folder): where, why, what to do."""
    blocker = next((p for p in path.parents if p.is_file()), None)
    if blocker is None and folder and path.is_file():
        blocker = path
    if blocker is not None:
        return f"{blocker}: is a file, not a folder; choose another output folder"
    if not folder and path.is_dir():
        return f"{path}: is a folder; cannot write an image over it"
    return f"{path}: cannot write ({exc.strerror or exc}); {_WRITE_HINTS.get(exc.errno, 'check the output folder')}"


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` if needed and prove a file can be written in it; ImageError naming it if not.

    Run before any model loads, so a bad output folder costs nothing. `folder` may be a URI.
    """
    if is_uri(folder) or isinstance(folder, RemotePath):
        return check_writable(location(folder))
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".editanything-write-check.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ImageError(write_failure(folder, exc, folder=True)) from None
    return folder


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Write `data` to `path` through a temp file and a rename, so no reader ever sees half a file
    (a URI: see `storage.write_atomic`)."""
    path = location(path)
    if any(same_file(path, source) for source in inputs):
        raise ImageError(f"{path}: refusing to overwrite an input file; choose another output folder or name")
    if isinstance(path, RemotePath):
        write_atomic(path, data, _temp_prefix(path.name), PARTIAL_SUFFIX)
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=PARTIAL_SUFFIX)
    except OSError as exc:
        raise ImageError(write_failure(path, exc)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename: a crash never leaves an empty file at `path`
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise ImageError(write_failure(path, exc)) from None
        raise
    return path


def write_files_atomic(folder: str | os.PathLike, files: Mapping[str, bytes], *,
                       inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Write a set of files into `folder` all or nothing: a failure (a full disk) leaves no new file.

    They are written to a temp folder first, which a new or empty `folder` becomes with one rename;
    into a folder that holds other files they are then moved one by one (renames need no space).
    """
    folder = Path(folder)
    for name in files:
        target = folder / name
        if any(same_file(target, s) for s in inputs):
            raise ImageError(f"{target}: refusing to overwrite an input file; choose another output folder")
    fresh = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
    try:
        if fresh:
            folder.parent.mkdir(parents=True, exist_ok=True)
        parent = folder.parent if fresh else folder
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=_temp_prefix(folder.name), suffix=PARTIAL_SUFFIX))
    except OSError as exc:
        raise ImageError(write_failure(folder, exc, folder=True)) from None
    name = None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp / name, 0o644)
        name = None
        if fresh:
            os.replace(tmp, folder)
        else:
            for name in files:
                os.replace(tmp / name, folder / name)
            tmp.rmdir()
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            failed = folder if name is None else folder / name
            raise ImageError(write_failure(failed, exc, folder=name is None)) from None
        raise
    return folder


def write_image(path: str | os.PathLike, image: np.ndarray, *, text: Mapping[str, str] | None = None,
                inputs: tuple[str | os.PathLike, ...] = (), quality: int = 95, fast: bool = True) -> Path:
    """Encode `image` by the file's suffix and write it atomically; never over one of `inputs`."""
    path = location(path)
    data = encode_image(image, path.suffix or ".png", text=text, quality=quality, fast=fast)
    return write_bytes_atomic(path, data, inputs=inputs)


def limit_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most `max_side` pixels (area averaging)."""
    if not max_side:
        return image
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
