"""Hostile inputs through every command: each is refused in one line that says what was wrong and names
the file, never "unexpected …" (a raw exception that got out). One table per way in: the CLI's
commands (recipes, manifests, checkpoints, photos, addresses, a service's broken answers), the UI's
zips, and the HTTP API's bodies.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from conftest import DEMOS
from editanything.cli import main
from editanything.errors import InvalidInputError
from editanything.models import MODELS

PHOTO = DEMOS / "coffee.jpg"
KEY = "sk-hostile-0123456789"


def _png_with_recipe(path: Path, text: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("editanything", text)
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)
    return path


def _manifest(tmp: Path, monkeypatch, entries: list[dict]) -> None:
    root = tmp / "models"
    root.mkdir(exist_ok=True)
    (tmp / "manifest.json").write_text(json.dumps(entries))
    monkeypatch.setenv("EDITANYTHING_MANIFEST", str(tmp / "manifest.json"))
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(root))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp / "home"))
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")


def _sam_entry(path: str, **loader) -> dict:
    from tiny_models import TINY_SAM, register_tiny_sam

    register_tiny_sam()
    return {"name": "hostile-sam", "loader": {"backend": "sam", "sam_type": TINY_SAM, **loader},
            "files": [{"path": path, "sources": [{"url": "https://example.invalid/" + path}]}]}


def _sam_checkpoint(write):
    """A SAM model whose checkpoint file is whatever `write(path)` puts there."""
    def setup(tmp, monkeypatch):
        pytest.importorskip("torch")
        _manifest(tmp, monkeypatch, [_sam_entry("sam.pth")])
        write(tmp / "models" / "sam.pth")
        return ["segment", str(PHOTO), "--point", "100,100", "--segmenter", "hostile-sam", "-o", str(tmp / "out")]
    return setup


def _pickle_of_objects(path: Path) -> None:
    import torch

    torch.save({"model": argparse.Namespace(weights=torch.zeros(2))}, path)


def _manifest_case(entries: list[dict], argv=("models", "list")):
    def setup(tmp, monkeypatch):
        _manifest(tmp, monkeypatch, entries)
        return [*argv]
    return setup


_HF_FILES = [{"path": "hf/config.json", "sources": [{"url": "https://example.invalid/c.json"}]}]


def _hf_no_class(tmp, monkeypatch):
    pytest.importorskip("transformers")
    _manifest(tmp, monkeypatch, [{"name": "hostile-hf", "files": _HF_FILES, "loader": {
        "backend": "sam2-hf", "model_class": "NoSuchModel", "processor_class": "Sam2Processor",
        "image_processor_class": "Sam2ImageProcessor"}}])
    (tmp / "models" / "hf").mkdir()
    (tmp / "models" / "hf" / "config.json").write_text('{"model_type": "sam2"}')
    return ["segment", str(PHOTO), "--point", "100,100", "--segmenter", "hostile-hf", "-o", str(tmp / "out")]


def _replay_of(make):
    def setup(tmp, monkeypatch):
        return ["replay", str(make(tmp)), "-o", str(tmp / "out")]
    return setup


def _long_name(tmp):
    return tmp / ("b" * 300 + ".png")


def _jpeg_named_png(tmp):
    shutil.copy(PHOTO, tmp / "photo.png")
    return tmp / "photo.png"


def _photos(tmp) -> Path:
    photos = tmp / "photos"
    photos.mkdir(exist_ok=True)
    shutil.copy(PHOTO, photos / "cat.jpg")
    return photos


def _output_is_input(tmp, monkeypatch):
    photos = _photos(tmp)
    return ["sketch", str(photos), "-o", str(photos)]


def _ray_http(tmp, monkeypatch):
    pytest.importorskip("ray")
    return ["sketch", str(_photos(tmp)), "-o", str(tmp / "out"), "--engine", "ray",
            "--ray-address", "http://127.0.0.1:8265"]


def _broken_photo(tmp, monkeypatch):
    photos = _photos(tmp)
    (photos / "cut.jpg").write_bytes(PHOTO.read_bytes()[:2000])
    (photos / "cat.jpg").unlink()
    return ["sketch", str(photos), "-o", str(tmp / "out")]


def _text_as_mask(tmp, monkeypatch):
    return ["edit", str(PHOTO), "--mask", "/etc/passwd", "--recolor", "red", "-o", str(tmp / "out")]


def _styles_file(text: str):
    def setup(tmp, monkeypatch):
        (tmp / "styles.json").write_text(text)
        return ["edit", str(PHOTO), "--box", "1,1,50,50", "--segmenter", "grabcut", "--prompt", "x", "--style", "x",
                "--styles-file", str(tmp / "styles.json"), "-o", str(tmp / "out")]
    return setup


def _service_cuts_its_answer_short(tmp, monkeypatch):
    """Stability answers 200 with a Content-Length it never sends (http.client's IncompleteRead)."""
    from fake_image_apis import start
    from editanything.generate.remote import http

    server = start(KEY, KEY)
    _SERVERS.append(server)
    server.script += [(200, {"Content-Length": 100_000}, b'{"image": "iVBORw0KGgo')] * 8
    monkeypatch.setenv("STABILITY_API_KEY", KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", server.url)
    monkeypatch.setattr(http.time, "sleep", lambda s: None)  # retries at once
    return ["edit", str(PHOTO), "--box", "180,20,410,270", "--segmenter", "grabcut", "--prompt", "a corgi",
            "--generator", "stability", "-o", str(tmp / "out")]


_SERVERS: list = []

CLI_CASES = {
    "a text file as a SAM checkpoint": (_sam_checkpoint(lambda p: p.write_text("hello world\n")),
                                         r"sam\.pth is not a SAM checkpoint: not a file torch\.save wrote"),
    "/etc/passwd as a SAM checkpoint": (_sam_checkpoint(lambda p: shutil.copy("/etc/passwd", p)),
                                         r"sam\.pth is not a SAM checkpoint"),
    "a zip pickle of objects as a checkpoint": (_sam_checkpoint(_pickle_of_objects),
                                                 r"sam\.pth is not a readable SAM checkpoint \(it holds Python objects"),
    "a truncated checkpoint": (_sam_checkpoint(lambda p: p.write_bytes(b"PK\x03\x04" + bytes(40))),
                               r"sam\.pth is not a readable SAM checkpoint"),
    "a manifest loader option missing": (_manifest_case([{**_sam_entry("x.pth"), "loader": {"backend": "sam"}}]),
                                         r"manifest\.json: model 'hostile-sam': backend 'sam' needs the loader "
                                         r"option 'sam_type'"),
    "a manifest class option missing": (
        _manifest_case([{"name": "hostile-hf", "files": _HF_FILES,
                         "loader": {"backend": "sam2-hf", "model_class": "Sam2Model"}}]),
        r"manifest\.json: model 'hostile-hf': backend 'sam2-hf' needs the loader option 'processor_class'"),
    "a manifest tracker that is no object": (
        _manifest_case([{"name": "hostile-hf", "files": _HF_FILES, "loader": {"backend": "sam3-hf", "tracker": 5}}]),
        r"loader option 'tracker' must be an object"),
    "a manifest class option naming no class": (_hf_no_class, r"model_class 'NoSuchModel' names no class of "
                                                              r"transformers"),
    "a manifest whose entries are not objects": (_manifest_case([{"name": "m", "files": ["x"]}]),
                                                  r"manifest\.json: not a valid model manifest"),
    "a manifest nested past the recursion limit": (_manifest_case(json.loads("[" * 50 + "]" * 50)),
                                                    r"manifest\.json: not a valid model manifest"),
    "replay of a 300-byte name": (_replay_of(_long_name), r"b{300}\.png: cannot read file \(File name too long\)"),
    "replay of a JPEG named .png": (_replay_of(_jpeg_named_png), r"photo\.png: no editanything recipe"),
    "replay of a recipe that is not JSON": (_replay_of(lambda t: _png_with_recipe(t / "r.png", "{not json")),
                                            r"r\.png: not a recipe: invalid JSON"),
    "replay of a recipe with a 100,000-digit number": (
        _replay_of(lambda t: _png_with_recipe(t / "r.png", "9" * 100_000)), r"r\.png: not a recipe: invalid JSON"),
    "replay of a recipe nested 100,000 deep": (_replay_of(lambda t: _png_with_recipe(t / "r.png", "[" * 100_000)),
                                               r"r\.png: not a recipe: invalid JSON"),
    "replay of a recipe of the wrong shape": (_replay_of(lambda t: _png_with_recipe(t / "r.png", "[1, 2]")),
                                              r"r\.png: not a recipe"),
    "an output folder that is the input folder": (_output_is_input, r"is also an input folder"),
    "an http:// Ray address": (_ray_http, r"--ray-address 'http://127\.0\.0\.1:8265': expected HOST:PORT"),
    "a truncated photo": (_broken_photo, r"^failed: .*cut\.jpg: "),
    "a text file as a mask": (_text_as_mask, r"/etc/passwd: not an image"),
    "a styles file that is not JSON": (_styles_file("[[["), r"styles\.json: not a styles file"),
    "a styles file nested past the recursion limit": (_styles_file("[" * 100_000), r"styles\.json: not a styles "
                                                                                   r"file"),
    "a service that cuts its answer short": (_service_cuts_its_answer_short,
                                             r"coffee\.jpg: .*Stability AI broke off its answer after 22 bytes"),
    "a text file to caption": (lambda tmp, mp: ["caption", "/etc/passwd"], r"^/etc/passwd: not an image"),
    "a text file as the photo to prompt for": (lambda tmp, mp: ["prompt", "a cat", "--image", "/etc/passwd"],
                                               r"^/etc/passwd: not an image"),
    "a styles file nested past the recursion limit, to prompt": (
        lambda tmp, mp: (tmp / "s.json").write_text("[" * 100_000) and
        ["prompt", "a cat", "--style", "x", "--styles-file", str(tmp / "s.json")], r"s\.json: not a styles file"),
}


@pytest.fixture
def no_leftovers():
    before = set(MODELS)
    yield
    for name in set(MODELS) - before:
        MODELS.pop(name, None)
    while _SERVERS:
        _SERVERS.pop().shutdown()


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_a_hostile_input_to_a_command_is_one_line_never_unexpected(case, tmp_path, monkeypatch, capsys,
                                                                   no_leftovers):
    setup, expected = CLI_CASES[case]
    argv = setup(tmp_path, monkeypatch)
    status = main([*argv, "-q"] if argv[0] != "models" else argv)
    out, err = capsys.readouterr()
    assert not [line for line in (out + err).splitlines() if "unexpected" in line.lower()], err
    assert status in (1, 2), (status, out, err)
    problems = [line for line in err.splitlines() if line.startswith(("error:", "failed:"))]
    assert len(problems) == 1, err
    assert re.search(expected, problems[0].removeprefix("error: ")), problems[0]
    assert KEY not in out + err


def _zip_of_photo(tmp: Path) -> tuple[Path, bytearray]:
    archive = tmp / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(PHOTO, "a.jpg")
    return archive, bytearray(archive.read_bytes())


def _lie_offset(data: bytearray) -> None:
    """The central directory points the member at the wrong place (no local header there)."""
    entry = data.index(b"PK\x01\x02")
    data[entry + 42:entry + 46] = (10).to_bytes(4, "little")


def _damage_data(data: bytearray) -> None:
    """The member's bytes change under an unchanged CRC."""
    data[200:210] = bytes(10)


def _no_end_record(data: bytearray) -> None:
    del data[data.index(b"PK\x05\x06"):]


ZIP_CASES = {"a central directory that points elsewhere": (_lie_offset, r"a\.jpg cannot be unpacked"),
             "damaged data under its CRC": (_damage_data, r"a\.jpg cannot be unpacked"),
             "no end of central directory": (_no_end_record, r"not a readable zip file")}


@pytest.mark.parametrize("case", list(ZIP_CASES))
def test_a_zip_that_lies_is_one_line_and_leaves_nothing(case, tmp_path):
    pytest.importorskip("gradio")
    from editanything.ui.uploads import unzip_images

    damage, expected = ZIP_CASES[case]
    archive, data = _zip_of_photo(tmp_path)
    damage(data)
    archive.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=r"^photos\.zip: " + expected) as refused:
        unzip_images(archive, tmp_path / "out", limit=10)
    assert "\n" not in str(refused.value)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _mask_b64() -> str:
    import io

    buffer = io.BytesIO()
    Image.new("L", Image.open(PHOTO).size, 255).save(buffer, "PNG")
    return _b64(buffer.getvalue())


MASK = _mask_b64()
API_CASES = {
    "a body that is not JSON": ("/sdapi/v1/img2img", b"{not json"),
    "a body nested past the recursion limit": ("/sdapi/v1/img2img", b"[" * 100_000),
    "a 100,000-digit number": ("/sdapi/v1/img2img", b'{"steps": ' + b"9" * 100_000 + b"}"),
    "images that are not a list": ("/sdapi/v1/img2img", json.dumps({"init_images": 5}).encode()),
    "an image that is not base64": ("/sdapi/v1/img2img", json.dumps({"init_images": ["%%%"], "mask": MASK}).encode()),
    "an image that is a text file": ("/sdapi/v1/img2img", json.dumps({
        "init_images": [_b64(Path("/etc/passwd").read_bytes())], "mask": MASK}).encode()),
    "a truncated photo": ("/sdapi/v1/img2img",
                          json.dumps({"init_images": [_b64(PHOTO.read_bytes()[:3000])], "mask": MASK}).encode()),
    "a mask that is not base64": ("/sdapi/v1/img2img", json.dumps({
        "init_images": [_b64(PHOTO.read_bytes())], "mask": "%%%"}).encode()),
    "points that are not pairs": ("/sam/sam-predict", json.dumps({
        "input_image": _b64(PHOTO.read_bytes()), "sam_positive_points": [[1, 2, 3], "x"]}).encode()),
    "png-info of a recipe nested 100,000 deep": ("/sdapi/v1/png-info", b""),
}


@pytest.fixture(scope="module")
def api():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from editanything.pipeline import Editor
    from editanything.server import create_app

    with TestClient(create_app(Editor(segmenter="grabcut", generator="classical", detector=None))) as client:
        yield client


@pytest.mark.parametrize("case", list(API_CASES))
def test_a_hostile_api_body_is_a_4xx_that_says_why_never_unexpected(case, api, tmp_path):
    path, body = API_CASES[case]
    if case.startswith("png-info"):
        import io

        buffer = io.BytesIO()
        _png_with_recipe(tmp_path / "r.png", "[" * 100_000)
        buffer.write((tmp_path / "r.png").read_bytes())
        body = json.dumps({"image": _b64(buffer.getvalue())}).encode()
    response = api.post(path, content=body, headers={"Content-Type": "application/json"})
    text = response.text
    assert "unexpected" not in text.lower() and "Traceback" not in text
    if case.startswith("png-info"):  # a PNG whose recipe is no recipe: no information, or a refusal
        assert response.status_code in (200, 400, 422), (response.status_code, text[:300])
    else:
        assert 400 <= response.status_code < 500, (response.status_code, text[:300])
        assert len(text) < 2000
