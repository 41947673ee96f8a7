"""The web UI's Generate tab through gradio_client: `/generate` against Editor.generate called directly on the same
tiny random-weight SD 1.5 (the UI adds no logic), the PNGs' recipes, the History, and `/send_to_edit`, which
makes a generated image the Edit tab's photo; hosted generation against the local fake of the services."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import tiny_sd  # noqa: E402
from fake_image_apis import colour_for, start  # noqa: E402

from editanything.generation import GenerateRequest  # noqa: E402
from editanything.imageio import read_image  # noqa: E402
from editanything.pipeline import Editor  # noqa: E402
from editanything.recipe import read_recipe  # noqa: E402
from editanything.types import GenerationParams  # noqa: E402
from editanything.ui.app import build_app, serve  # noqa: E402

SIZE = 32
KEY = "sk-stab-SECRET-ui-0a1b2c3d4e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return tiny_sd.save_sd15_base(tmp_path_factory.mktemp("ui-gen") / "sd15")


@pytest.fixture(scope="module")
def app(sd15):
    demo = build_app(Editor(generator=str(sd15), segmenter="grabcut", detector=None))
    url = serve(demo, port=free_port(), block=False, quiet=True)
    try:
        yield url
    finally:
        demo.close()


def settings(**kw):
    base = dict(prompt="a tiger drinking from a river", negative="blurry", sampler="Euler", steps=2, cfg=6,
                width=SIZE, height=SIZE, seed=42, batch_size=2, generator="This machine")
    return {**base, **kw}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_generate_gives_the_librarys_images_with_their_recipes_and_send_to_edit_opens_one(app, sd15):
    client = Client(app, verbose=False)
    gallery, files, info, history = client.predict(**settings(), api_name="/generate")
    threads = read_recipe(files[0]).models["generator"]["threads"]  # a CPU result's last bits depend on them
    params = GenerationParams(prompt="a tiger drinking from a river", negative_prompt="blurry", sampler="Euler",
                              steps=2, cfg_scale=6, width=SIZE, height=SIZE, seed=42, batch_size=2)
    direct = Editor(generator=str(sd15), generator_options={"threads": threads}).generate(GenerateRequest(params))
    assert len(gallery) == len(files) == 2 and "2 images at 32x32" in info
    for i, (item, png) in enumerate(zip(gallery, files)):
        np.testing.assert_array_equal(read_image(png), direct.images[i])
        np.testing.assert_array_equal(read_image(item["image"]), direct.images[i])
        recipe = read_recipe(png)
        assert recipe.operation == "generate:txt2img" and recipe.seed == 42 + i
        assert recipe.parameters["generation"]["prompt"] == "a tiger drinking from a river"
    assert [e["caption"] for e in gallery] == ["generate · seed 42", "generate · seed 43"]
    assert [e["caption"] for e in history] == ["generate · seed 43", "generate · seed 42"]  # newest first
    # Send to Edit: the second image becomes the Edit tab's photo; an edit made from it names it as its parent
    photo, canvas, *_, message = client.predict(1, False, 8, api_name="/send_to_edit")
    assert photo is None and "editing the result of generate" in message
    shown = read_image(canvas).astype(int)  # the canvas is a JPEG: nearer the second image than the first
    assert np.abs(shown - direct.images[1]).mean() < np.abs(shown - direct.images[0]).mean() / 2
    client.predict(None, "[[16, 16, 1]]", "[]", False, 0, api_name="/segment_points")
    recolored = client.predict(photo=None, chosen=[0], invert=False, grow=0, feather=0, prompt="", negative="",
                               sampler="Euler a", steps=20, cfg=7, seed=1, strength=1, color="#00ff00",
                               api_name="/recolor")
    assert read_recipe(recolored[2]).inputs["parent_sha256"] == sha256(files[1])


def test_generate_refusals_are_messages(app):
    client = Client(app, verbose=False)
    with pytest.raises(AppError, match="nothing generated yet"):
        client.predict(0, False, 8, api_name="/send_to_edit")
    with pytest.raises(AppError, match="greater than maximum value 8"):
        client.predict(**settings(batch_size=9), api_name="/generate")
    with pytest.raises(AppError, match="set both width and height"):
        client.predict(**settings(height=0), api_name="/generate")
    with pytest.raises(AppError, match="a multiple of 8"):
        client.predict(**settings(width=36, height=36), api_name="/generate")
    with pytest.raises(AppError, match="generate needs a prompt"):
        client.predict(**settings(prompt=" "), api_name="/generate")
    client.predict(**settings(batch_size=1, seed=5), api_name="/generate")
    with pytest.raises(AppError, match="no image 1 in the last generation; it made 1"):
        client.predict(1, False, 8, api_name="/send_to_edit")


def test_generate_at_a_hosted_service(app, monkeypatch):
    fake = start(KEY, "sk-unused-0000000000")
    try:
        monkeypatch.setenv("STABILITY_API_KEY", KEY)
        monkeypatch.setenv("STABILITY_BASE_URL", fake.url)
        client = Client(app, verbose=False)
        # the controls as "Generate on" leaves them for a hosted service: the WebUI's values, taken as unset
        gallery, files, info, _ = client.predict(**settings(sampler="DPM++ 2M Karras", steps=25, cfg=7, width=0,
                                                            height=0, seed=9, batch_size=1,
                                                            generator="Stability AI (hosted)"), api_name="/generate")
        assert [r["path"] for r in fake.log] == ["/v2beta/stable-image/generate/core"]
        assert fake.log[0]["fields"]["aspect_ratio"] == "1:1" and fake.log[0]["fields"]["seed"] == "9"
        image = read_image(files[0])
        assert image.shape == (1024, 1024, 3) and "with stability" in info
        assert (image[-1, -1] == colour_for("a tiger drinking from a river|blurry|core|None", 9)).all()
        assert KEY not in read_recipe(files[0]).to_json().__repr__()
        with pytest.raises(AppError, match="has no sampler"):
            client.predict(**settings(sampler="Euler", width=0, height=0, generator="Stability AI (hosted)"),
                           api_name="/generate")
    finally:
        fake.shutdown()
