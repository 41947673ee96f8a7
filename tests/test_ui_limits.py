"""The UI's guards and house rules: zip limits checked before extracting, the work folder removed
when the server is stopped (SIGTERM as Ctrl-C), and the UI's layering (no batch runner for a resize)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from editanything.errors import ImageError, InvalidInputError  # noqa: E402
from editanything.ui.uploads import ZipLimits, unzip_images  # noqa: E402
from conftest import DEMOS, ROOT  # noqa: E402

PHOTO = DEMOS / "coffee.jpg"


def declare_size(archive: Path, size: int) -> None:
    """Make the zip's central directory claim `size` uncompressed bytes for its first member."""
    data = bytearray(archive.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 24:entry + 28] = size.to_bytes(4, "little")
    archive.write_bytes(bytes(data))


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_zip_declaring_a_huge_size_is_refused_before_a_byte_is_written(tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(PHOTO, "a.jpg")
    declare_size(archive, 0xFFFF_FFF0)  # ~4 GiB
    dest = tmp_path / "out"
    refused = r"^photos\.zip: its photos unpack to 4,095 MiB, over the limit of 1,024 MiB"
    with pytest.raises(InvalidInputError, match=refused):
        unzip_images(archive, dest, limit=10)
    assert files_under(dest) == []


def test_a_zip_bomb_within_the_byte_limit_is_refused_by_its_ratio(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.png", bytes(64 << 20))  # 64 MiB of zeros pack into ~64 KiB
    assert archive.stat().st_size < 1 << 20
    dest = tmp_path / "out"
    refused = r"^bomb\.zip: \d[\d,]* bytes unpack to 67,108,864 .*not a zip of photos"
    with pytest.raises(InvalidInputError, match=refused):
        unzip_images(archive, dest, limit=10)
    assert files_under(dest) == []
    # The same photos within the limits unpack.
    assert len(unzip_images(archive, dest, limit=10, limits=ZipLimits(ratio=10_000))) == 1


def test_the_sketch_tab_refuses_a_bomb_in_one_line_and_keeps_nothing(tmp_path):
    from editanything.pipeline import Editor
    from editanything.ui.app import Handlers

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(PHOTO, "real.jpg")
        z.writestr("zeros.png", bytes(64 << 20))
    h = Handlers.create(Editor(segmenter="grabcut", detector=None, generator="classical"))
    try:
        with pytest.raises(InvalidInputError, match=r"^bomb\.zip: .* not a zip of photos$"):
            h.sketching.sketch_all([], [str(archive)], "pencil", "", progress=lambda *a, **k: None)
        assert files_under(h.workspace.root) == []
        # A good run keeps its sketches and zip, not the unpacked photos.
        with zipfile.ZipFile(archive, "w") as z:
            z.write(PHOTO, "real.jpg")
        runs, gallery, zipped, info = h.sketching.sketch_all([], [str(archive)], "pencil", "",
                                                             progress=lambda *a, **k: None)
        assert "1 done" in info and len(gallery) == 1
        assert sorted(p.relative_to(runs[0]).as_posix() for p in files_under(Path(runs[0]))) == [
            "pencil/real.png", "sketches-pencil.zip"]
    finally:
        h.workspace.cleanup()


def test_cancel_stops_a_sketch_run_between_photos_and_keeps_nothing(tmp_path):
    from types import SimpleNamespace

    from editanything.errors import Cancelled
    from editanything.pipeline import Editor
    from editanything.ui.app import Handlers

    h = Handlers.create(Editor(segmenter="grabcut", detector=None, generator="classical"))
    browser = SimpleNamespace(session_hash="the-browser")
    shown = []

    def progress(value, desc=None, unit=None):
        if isinstance(value, tuple):
            shown.append(value)
            h.jobs.cancel("someone-else")  # another session's Cancel changes nothing here
            if value == (2, 4):
                h.cancel(browser)  # this session's Cancel, pressed while the third photo waits
    try:
        photos = [str(DEMOS / name) for name in ("coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg")]
        with pytest.raises(Cancelled):
            h.sketching.sketch_all([], photos, "pencil", "", progress=progress, request=browser)
        assert shown == [(1, 4), (2, 4)]  # stopped after the photo sketched when Cancel came
        assert files_under(h.workspace.root) == []
        assert h.cancel(browser) == "Nothing was running."
    finally:
        h.workspace.cleanup()


def test_member_count_and_photo_count_are_capped_before_extracting(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(6):
            z.writestr(f"notes/{i}.txt", b"x")
        z.write(PHOTO, "a.jpg")
        z.write(PHOTO, "b.jpg")
    dest = tmp_path / "out"
    with pytest.raises(InvalidInputError, match=r"^many\.zip: 8 entries, over the limit of 5"):
        unzip_images(archive, dest, limit=10, limits=ZipLimits(members=5))
    with pytest.raises(InvalidInputError, match=r"^many\.zip: 2 photos, too many; at most 1 per run"):
        unzip_images(archive, dest, limit=1)
    assert files_under(dest) == []
    assert [p.name for p in unzip_images(archive, dest, limit=1, first_only=True)] == ["a.jpg"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_the_server_leaves_no_upload_or_result_on_disk(tmp_path, signum):
    """A real `editanything ui`: an upload, an edit and a sketch, then the signal; its temp folder is empty again."""
    import httpx
    from gradio_client import Client, handle_file

    tmp, models = tmp_path / "tmp", tmp_path / "models"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), "EDITANYTHING_CHECKPOINTS": str(models / "ckpt"),
           "EDITANYTHING_HOME": str(models / "home"), "HF_HOME": str(models / "hf")}
    env.pop("GRADIO_TEMP_DIR", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "editanything", "ui", "--port", str(port), "--segmenter",
                               "grabcut", "--detector", "none", "--model", "classical"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        client.predict(handle_file(str(PHOTO)), "[[290, 60, 1]]", "[]", False, 8, api_name="/segment_points")
        client.predict(photo=None, chosen=[0], invert=False, grow=8, feather=8, prompt="", negative="",
                       sampler="Euler a", steps=20, cfg=7, seed=1, strength=1, color="#ff0000", api_name="/remove")
        client.predict([handle_file(str(PHOTO))], "ink", "{}", api_name="/sketch")
        written = files_under(tmp)
        assert any(p.suffix == ".jpg" and p.name == PHOTO.name for p in written)  # the upload was in there
        server.send_signal(signum)
        server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert list(tmp.rglob("*")) == []  # nor a folder


def test_the_ui_takes_only_batch_sketching_from_the_batch_runner():
    """Resizing for the canvas or a preview is imageio's job; only the Sketch tab runs batches."""
    import ast

    taken = {}
    for module in sorted((ROOT / "editanything" / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "batch" and node.level == 2:
                taken[module.name] = sorted(alias.name for alias in node.names)
    assert taken == {"sketching.py": ["sketch_folder"]}


def test_sketch_all_applies_the_upload_pixel_limit_like_every_other_path(tmp_path):
    from editanything.pipeline import Editor
    from editanything.ui.app import Handlers

    import cv2
    import numpy as np

    big = tmp_path / "flat.png"
    cv2.imwrite(str(big), np.zeros((3000, 2000), np.uint8))  # 6 MP of one grey compresses to a few KB
    h = Handlers.create(Editor(segmenter="grabcut", detector=None, generator="classical"), max_pixels=5_000_000)
    try:
        with pytest.raises(ImageError, match="flat.png: 2000x3000 is 6,000,000 pixels, over the limit of 5,000"):
            h.sketching.preview([str(big)], "pencil", "")
        with pytest.raises(InvalidInputError, match="no sketch was made: flat.png: 2000x3000 is 6,000,000 pixels"):
            h.sketching.sketch_all([], [str(big)], "pencil", "", progress=lambda *a, **k: None)
    finally:
        h.workspace.cleanup()
