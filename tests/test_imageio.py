import io
import os

import numpy as np
import pytest
from PIL import Image

import bad_images as bad
from editanything import ImageError, read_image, write_image
from editanything.imageio import read_png_text


@pytest.mark.parametrize("make, message", [
    (bad.truncated_jpeg, "truncated"),
    (bad.empty_file, "empty file"),
    (bad.text_as_jpeg, "not an image"),
])
def test_broken_files_raise_image_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path / "photo.jpg")
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_png_raises(tmp_path):
    src = tmp_path / "full.png"
    Image.fromarray(bad.photo()).save(src)
    data = src.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        read_image(cut)


def test_pixel_limit_refuses_large_images_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    with pytest.raises(ImageError, match="120,000 pixels, over the limit of 100,000"):
        read_image(path, max_pixels=100_000)
    assert read_image(path, max_pixels=120_000).shape == (300, 400, 3)


def test_pixel_limit_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    monkeypatch.setenv("EDITANYTHING_MAX_PIXELS", "1000")
    with pytest.raises(ImageError, match="big.png"):
        read_image(path)


def test_16bit_png_scales_to_8bit(tmp_path):
    path, expected = bad.png16(tmp_path / "deep.png")
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (*expected.shape, 3)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    path, rgb = bad.cmyk_jpeg(tmp_path / "print.jpg")
    out = read_image(path)
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 12  # lossy round-trip through CMYK, not inverted


def test_palette_png_transparency_becomes_white(tmp_path):
    out = read_image(bad.palette_png_with_transparency(tmp_path / "p.png"))
    assert (out[:, :20] == 255).all()
    assert (out[:, 20:] == (255, 0, 0)).all()


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255
    rgba[2:, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert (out[:2] == (200, 0, 0)).all() and (out[2:] == 255).all()


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    path = bad.exif_rotated_jpeg(tmp_path / "rot.jpg")
    for gray in (False, True):
        out = read_image(path, gray=gray)
        assert out.shape[:2] == (60, 30)
        # rotating 90° clockwise moves the stored top-left square to the top-right
        assert out[:10, -10:].mean() > 200 and out[:10, :10].mean() < 50


def test_gray_read_matches_color_read(demo_photo):
    color = read_image(demo_photo)
    gray = read_image(demo_photo, gray=True)
    assert gray.shape == color.shape[:2]
    expected = color @ np.array([0.299, 0.587, 0.114])
    assert np.abs(gray - expected).mean() < 2


def test_write_is_atomic_and_keeps_text_chunks(tmp_path):
    img = bad.photo()
    out = write_image(tmp_path / "sub" / "out.png", img, text={"parameters": "a cat\nSteps: 20", "note": "café ✓"})
    assert np.array_equal(read_image(out), img)
    assert read_png_text(out) == {"parameters": "a cat\nSteps: 20", "note": "café ✓"}
    assert sorted(os.listdir(tmp_path / "sub")) == ["out.png"]  # no temp files left


def test_write_refuses_to_overwrite_an_input(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(bad.photo()).save(src)
    before = src.read_bytes()
    with pytest.raises(ImageError, match="overwrite an input"):
        write_image(src, np.zeros((8, 8, 3), np.uint8), inputs=(src,))
    assert src.read_bytes() == before


def test_write_failure_leaves_nothing(tmp_path):
    with pytest.raises(ImageError):
        write_image(tmp_path / "out.png", np.zeros((8, 8, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_jpeg_with_data_after_the_end_marker_reads(tmp_path):
    """Phone "motion photos" append a video after the JPEG; the photo itself is whole."""
    src = (bad.DEMOS / "coffee.jpg").read_bytes()
    path = tmp_path / "motion.jpg"
    path.write_bytes(src + b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    assert np.array_equal(read_image(path), read_image(bad.DEMOS / "coffee.jpg"))


def test_atomic_write_syncs_the_data_before_the_rename(tmp_path, monkeypatch):
    from editanything import imageio

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(imageio.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(imageio.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    write_image(tmp_path / "out.png", np.zeros((8, 8, 3), np.uint8))
    assert calls == ["fsync", "replace"]


def test_write_errors_are_one_line_naming_the_path(tmp_path, monkeypatch):
    import errno

    from editanything import imageio

    image = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "taken").write_bytes(b"a file where a folder should be")
    with pytest.raises(ImageError, match=r"taken: is a file, not a folder"):
        write_image(tmp_path / "taken" / "out.png", image)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match=r"dir.png: is a folder"):
        write_image(tmp_path / "dir.png", image)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(imageio.os, "fsync", full)
    with pytest.raises(ImageError) as err:
        write_image(tmp_path / "full.png", image)
    assert str(err.value).startswith(f"{tmp_path / 'full.png'}: cannot write") and "disk is full" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "taken"]  # no temp file left


def test_an_unwritable_output_folder_is_found_before_any_work(tmp_path):
    from editanything.imageio import check_writable_folder

    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ImageError, match=r"file: is a file, not a folder"):
        check_writable_folder(tmp_path / "file")
    with pytest.raises(ImageError, match=r"file: is a file, not a folder"):
        check_writable_folder(tmp_path / "file" / "sub")
    assert check_writable_folder(tmp_path / "new" / "sub").is_dir()
    assert list((tmp_path / "new" / "sub").iterdir()) == []


def test_pillow_keeps_its_pixel_guard_and_our_limit_applies_per_read(tmp_path, monkeypatch):
    from editanything import imageio  # noqa: F401  (importing it must not switch Pillow's guard off)

    assert Image.MAX_IMAGE_PIXELS is not None
    path = tmp_path / "big.png"
    Image.fromarray(bad.photo()[:64, :64]).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 64x64 file is over twice Pillow's limit now
    assert read_image(path).shape == (64, 64, 3)  # our limit (150 MP) allows it
    assert Image.MAX_IMAGE_PIXELS == 1000  # and Pillow's guard is back for every other reader
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    monkeypatch.setenv("EDITANYTHING_MAX_PIXELS", "1500")
    with pytest.raises(ImageError, match=r"over the limit of 1,500 pixels"):
        read_image(path)


def test_32_bit_integer_images_scale_by_their_type_not_their_content(tmp_path):
    ramp = np.tile(np.arange(256), (4, 1))
    Image.fromarray((ramp * 2**23).astype(np.int32)).save(tmp_path / "int32.tif")
    grey = read_image(tmp_path / "int32.tif", gray=True)
    assert np.abs(grey[0].astype(int) - ramp[0]).max() <= 1
    Image.fromarray((ramp[:, :100] * 8).astype(np.int32)).save(tmp_path / "dark.tif")  # 0..792 of 2^31: black
    assert read_image(tmp_path / "dark.tif", gray=True).max() == 0
    Image.fromarray((ramp * 257).astype(np.uint16)).save(tmp_path / "u16.png")
    assert np.array_equal(read_image(tmp_path / "u16.png", gray=True)[0], ramp[0])


def test_a_mask_with_transparency_selects_its_opaque_pixels(tmp_path):
    from editanything.imageio import read_mask

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, as many editors save a cut-out's background
    rgba[5:15, 10:20, 3] = 255  # only this part is opaque
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    expected = np.zeros((20, 30), bool)
    expected[5:15, 10:20] = True
    assert np.array_equal(read_mask(tmp_path / "cutout.png"), expected)
    grey = (expected * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "plain.png")
    assert np.array_equal(read_mask(tmp_path / "plain.png"), expected)
    Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 255)])).save(tmp_path / "opaque.png")
    assert np.array_equal(read_mask(tmp_path / "opaque.png"), expected)


def test_a_huge_file_behind_a_small_header_is_refused_before_its_bytes_are_read(tmp_path):
    """A 1 GiB file (sparse: no disk used) that starts as a 64x64 PNG is refused from its header and size."""
    import subprocess
    import sys

    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
    with open(path, "r+b") as f:
        f.truncate(1 << 30)
    with pytest.raises(ImageError, match=r"huge.png: 1,073,741,824 bytes, far more than a 64x64 image needs"):
        read_image(path)
    # VmHWM, the process's peak RSS (ru_maxrss would carry the forking pytest's over the exec)
    code = ("import re, sys\nfrom editanything import read_image\ntry:\n    read_image(sys.argv[1])\n"
            "except Exception as e:\n    print(e)\n"
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert "far more than a 64x64 image needs" in out and int(out.split()[-1]) < 400 * 1024, out  # KiB, not 1 GiB


def _png_chunk_bytes(data: bytes) -> list[bytes]:
    """Each chunk of a PNG, length to CRC."""
    import struct

    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append(data[pos:pos + 12 + length])
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("shape", [(37, 23), (37, 23, 3), (37, 23, 4), (1, 1, 3)])
@pytest.mark.parametrize("flat", [False, True])
def test_fast_png_stored_or_deflated_round_trips_every_layout_with_its_text_in_pillow_and_opencv(shape, flat):
    import cv2

    from editanything.imageio import encode_image

    rng = np.random.default_rng(1)
    image = np.full(shape, 200, np.uint8) if flat else rng.integers(0, 256, shape, dtype=np.uint8)
    data = encode_image(image, "png", text={"parameters": "a cat\nSteps: 2", "note": "café ✓"})
    png = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(png), image)
    assert png.text == {"parameters": "a cat\nSteps: 2", "note": "café ✓"}
    other = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image.ndim == 3:
        other = cv2.cvtColor(other, cv2.COLOR_BGRA2RGBA if shape[2] == 4 else cv2.COLOR_BGR2RGB)
    assert np.array_equal(other, image)


def test_fast_png_stores_a_photo_in_one_idat_chunk_and_still_deflates_a_mask(tmp_path):
    from editanything.imageio import encode_image

    photo = bad.photo()
    raw = photo.nbytes + photo.shape[0]  # a filter byte per row
    data = encode_image(photo, "png")
    assert [chunk[4:8] for chunk in _png_chunk_bytes(data)] == [b"IHDR", b"IDAT", b"IEND"]
    assert raw < len(data) < raw * 1.01  # stored: deflate saves a photo's runs too little to pay for itself
    assert np.array_equal(read_image(write_image(tmp_path / "x.png", photo)), photo)
    mask = np.zeros((384, 512), np.uint8)
    mask[100:300, 50:400] = 255
    assert len(encode_image(mask, "png")) < mask.nbytes / 50
    assert len(encode_image(np.dstack([photo, photo[..., :1]]), "png")) > photo.nbytes  # RGBA photo: stored


def test_a_grey_png_reads_as_grey_without_the_trip_through_rgb(tmp_path):
    from editanything.imageio import decode_image, decode_mask

    grey = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 48)
    Image.fromarray(grey).save(tmp_path / "g.png")
    data = (tmp_path / "g.png").read_bytes()
    assert np.array_equal(decode_image(data, "g.png", gray=True), grey)
    assert np.array_equal(read_image(tmp_path / "g.png", gray=True), grey)
    assert np.array_equal(decode_mask(data, "g.png"), grey > 127)
    # a grey PNG with a transparent level still composites over white
    Image.fromarray(grey).save(tmp_path / "t.png", transparency=0)
    assert decode_image((tmp_path / "t.png").read_bytes(), "t.png", gray=True)[0, 0] == 255


@pytest.mark.parametrize("gray", [False, True])
def test_plain_pngs_decode_to_pillows_pixels_upright(tmp_path, gray):
    """decode_image hands 8-bit grey and RGB PNGs to OpenCV: the pixels must be Pillow's, EXIF applied."""
    from editanything.imageio import _read_with_pillow, decode_image

    photo = bad.photo()
    cases = {"rgb": (photo, {}), "grey": (photo[..., 1], {}), "rotated": (photo, {"exif": _orientation(6)})}
    for name, (pixels, options) in cases.items():
        Image.fromarray(pixels).save(tmp_path / f"{name}.png", **options)
    # the orientation after the pixels, where Pillow finds it only once it has decoded them
    chunks = _png_chunk_bytes((tmp_path / "rotated.png").read_bytes())
    exif = [c for c in chunks if c[4:8] == b"eXIf"]
    rest = [c for c in chunks if c[4:8] != b"eXIf"]
    (tmp_path / "rotated-late.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(rest[:-1] + exif + rest[-1:]))
    for name in (*cases, "rotated-late"):
        data = (tmp_path / f"{name}.png").read_bytes()
        expected = _read_with_pillow(name, Image.open(io.BytesIO(data)), gray)
        assert np.array_equal(decode_image(data, name, gray=gray), expected), name
    for name in ("rotated", "rotated-late"):
        assert decode_image((tmp_path / f"{name}.png").read_bytes(), name).shape[:2] == photo.shape[1::-1]
    with pytest.raises(ImageError, match="truncated"):
        decode_image((tmp_path / "rgb.png").read_bytes()[:20000], "cut.png")


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 3 * 65535 + 7])
def test_stored_zlib_streams_inflate_to_their_data(size):
    import zlib

    from editanything.imageio import _stored_zlib

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    stream = _stored_zlib(memoryview(data))
    assert zlib.decompress(stream) == data.tobytes()
    assert len(stream) == size + 6 + 5 * max(1, -(-size // 65535))  # header, adler32, 5 bytes a block
