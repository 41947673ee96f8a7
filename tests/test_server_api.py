"""The WebUI HTTP API (`editanything serve`) driven by the real `webuiapi` client and by raw httpx,
against a live server on 127.0.0.1: weight-free backends (GrabCut, OpenCV) and the tiny deep models."""

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image

from conftest import DEMOS, edit_output
from editanything import read_image
from editanything.cli import main
from editanything.pipeline import Editor
from editanything.recipe import RECIPE_KEY
from editanything.server import ServerConfig, create_app

webuiapi = pytest.importorskip("webuiapi")
uvicorn = pytest.importorskip("uvicorn")

DETECT = {"box_threshold": 0.05, "text_threshold": 0.05, "top_k": 2, "image_size": 320, "max_size": 480}


@contextmanager
def live(editor, config=ServerConfig()):
    server = uvicorn.Server(uvicorn.Config(create_app(editor, config), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def b64png(array) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def pixels(pil) -> np.ndarray:
    return np.asarray(pil.convert("RGB"))


@pytest.fixture
def coffee():
    return read_image(DEMOS / "coffee.jpg")


@pytest.fixture
def light():
    """GrabCut and OpenCV's fill: no weights."""
    with live(Editor(segmenter="grabcut", generator="classical", detector="auto")) as port:
        yield port


def test_sam_heartbeat_models_and_points_through_webuiapi(light, coffee):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=light)
    sam = webuiapi.SegmentAnythingInterface(api)
    assert sam.heartbeat() == {"msg": "Success!"}
    assert sam.get_sam_models() == ["grabcut"]
    result = sam.sam_predict(Image.fromarray(coffee), sam_model_name="grabcut",
                             sam_positive_points=[[380, 200]], sam_negative_points=[[30, 30]])
    mask = np.asarray(result.masks[0]) > 127
    assert mask.shape == coffee.shape[:2] and mask[200, 380] and not mask[30, 30]
    masked = np.asarray(result.masked_images[0])
    assert masked.shape[2] == 4 and (masked[..., 3] > 0).sum() == mask.sum()
    blended = pixels(result.blended_images[0])
    assert not np.array_equal(blended[mask], coffee[mask]) and np.array_equal(blended[~mask], coffee[~mask])


def test_a_sam_model_not_served_is_refused_by_name(light, coffee):
    r = httpx.post(f"http://127.0.0.1:{light}/sam/sam-predict",
                   json={"input_image": b64png(coffee), "sam_model_name": "sam_vit_h_4b8939.pth",
                         "sam_positive_points": [[380, 200]]})
    assert r.status_code == 422
    assert "sam_model_name 'sam_vit_h_4b8939.pth' is not served here" in r.json()["detail"]


def test_dilate_mask_grows_and_answers_blended_image(light, coffee):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=light)
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[100:150, 200:260] = 255
    out = webuiapi.SegmentAnythingInterface(api).dilate_mask(Image.fromarray(coffee), Image.fromarray(mask), 10)
    grown = np.asarray(out.mask) > 127
    assert grown[100:150, 200:260].all() and grown[92, 230] and not grown[80, 230]
    assert pixels(out.blended_image).shape == coffee.shape


def test_a_server_file_path_in_input_image_is_refused_not_read(light, tmp_path, coffee):
    photo = tmp_path / "secret.png"
    Image.fromarray(coffee).save(photo)
    r = httpx.post(f"http://127.0.0.1:{light}/sam/sam-predict",
                   json={"input_image": str(photo), "sam_positive_points": [[10, 10]]})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "InvalidInputError" and "file paths and URLs are not read" in body["detail"]
    assert "\n" not in body["detail"]


def test_a_decompression_bomb_and_an_oversized_body_get_one_line(coffee):
    bomb = io.BytesIO()
    Image.new("L", (20000, 20000)).save(bomb, "PNG")  # 400 MP of zeros: a few hundred kB compressed
    config = ServerConfig(max_body=2_000_000, max_pixels=40_000_000)
    with live(Editor(segmenter="grabcut", generator="classical"), config) as port:
        r = httpx.post(f"http://127.0.0.1:{port}/sam/sam-predict",
                       json={"input_image": base64.b64encode(bomb.getvalue()).decode(),
                             "sam_positive_points": [[10, 10]]})
        assert r.status_code == 422 and "over the limit of 40,000,000 pixels" in r.json()["detail"]
        r = httpx.post(f"http://127.0.0.1:{port}/sam/sam-predict",
                       json={"input_image": "A" * 3_000_000, "sam_positive_points": [[10, 10]]})
        assert r.status_code == 413
        assert r.json()["detail"] == "the request body is over the limit of 2,000,000 bytes; send a smaller image"


def test_unknown_and_unhonoured_fields_are_refused_by_name(light, coffee):
    base = {"init_images": [b64png(coffee)], "mask": b64png(np.full(coffee.shape[:2], 255, np.uint8)),
            "prompt": "x"}
    r = httpx.post(f"http://127.0.0.1:{light}/sdapi/v1/img2img", json={**base, "frobnicate": 1})
    assert r.status_code == 422 and "unknown field 'frobnicate'" in r.json()["detail"]
    r = httpx.post(f"http://127.0.0.1:{light}/sdapi/v1/img2img", json={**base, "restore_faces": True})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("restore_faces=True is not supported: no face restorer runs here")
    r = httpx.post(f"http://127.0.0.1:{light}/sdapi/v1/img2img", json={**base, "batch_size": 8, "n_iter": 3})
    assert r.status_code == 422 and "over this server's limit of 16" in r.json()["detail"]


def test_auth_is_required_when_set(coffee):
    with live(Editor(segmenter="grabcut", generator="classical"), ServerConfig(auth={"me": "pw"})) as port:
        url = f"http://127.0.0.1:{port}/sam/heartbeat"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, auth=("me", "wrong")).status_code == 401
        assert httpx.get(url, auth=("me", "pw")).json() == {"msg": "Success!"}
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 401
        assert "sam-predict" in httpx.get(f"http://127.0.0.1:{port}/docs/openapi.json", auth=("me", "pw")).text


def test_samplers_schedulers_and_txt2img_not_yet(light):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=light)
    assert "Euler a" in api.util_get_sampler_names()
    assert api.util_get_scheduler_names() == ["automatic", "karras"]
    r = httpx.post(f"http://127.0.0.1:{light}/sdapi/v1/txt2img", json={"prompt": "a cat"})
    assert r.status_code == 501 and "Editor.generate" in r.json()["detail"]


# --- the tiny deep models -------------------------------------------------------------------------

@pytest.fixture
def deep_server(deep):
    editor = Editor(detector_options=DETECT)
    with live(editor) as port:
        yield port


def test_img2img_with_a_mask_matches_the_cli_pixel_for_pixel(deep, tmp_path, coffee):
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--mask", str(tmp_path / "mask.png"), "--prompt", "a blue mug",
                 "--seed", "7", "--steps", "2", "--sampler", "Euler a", "--strength", "0.75", "--cfg", "7",
                 "--resolution", "64", "--grow", "0", "--feather", "4", "-o", str(tmp_path / "cli"), "-q"]) == 0
    cli = read_image(edit_output(tmp_path / "cli", "coffee"))
    with live(Editor()) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        out = api.img2img(images=[Image.open(DEMOS / "coffee.jpg")], mask_image=Image.fromarray(mask),
                          prompt="a blue mug", seed=7, steps=2, sampler_name="Euler a", cfg_scale=7,
                          denoising_strength=0.75, inpainting_fill=1, mask_blur=4, width=64, height=64)
        assert np.array_equal(pixels(out.image), cli)
        outside = mask == 0
        assert np.array_equal(pixels(out.image)[outside], coffee[outside])
        assert out.info["seed"] == 7 and out.info["all_seeds"] == [7]
        assert out.info["infotexts"][0].startswith("a blue mug\n") and "Seed: 7" in out.info["infotexts"][0]
        info = api.png_info(out.image)
        assert info.info == out.info["infotexts"][0]
        assert info.parameters["Seed"] == "7" and info.parameters["Prompt"] == "a blue mug"
        assert '"operation": "edit:replace"' in info.json["items"][RECIPE_KEY]
        # the PNG carries the recipe: replay re-makes it from the photo
        out.image.save(tmp_path / "api.png", pnginfo=_pnginfo(out.image))
        Image.open(DEMOS / "coffee.jpg").save(tmp_path / "init_image.png")
        assert main(["replay", str(tmp_path / "api.png"), "-o", str(tmp_path / "again.png"), "-q"]) == 0
        assert np.array_equal(read_image(tmp_path / "again.png"), cli)


def _pnginfo(image):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in image.text.items():
        info.add_text(key, value)
    return info


def test_sam_predict_with_dino_and_dino_predict(deep_server, coffee):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=deep_server)
    sam = webuiapi.SegmentAnythingInterface(api)
    name = sam.get_sam_models()[0]
    assert name == "sam_vit_b_01ec64.pth"
    points = sam.sam_predict(Image.fromarray(coffee), sam_model_name=name, sam_positive_points=[[380, 200]])
    assert len(points.masks) == 3 and all(np.asarray(m).shape == coffee.shape[:2] for m in points.masks)
    with_dino = sam.sam_predict(Image.fromarray(coffee), sam_model_name=name, dino_enabled=True,
                                dino_text_prompt="cup", dino_box_threshold=0.05)
    assert len(with_dino.masks) == 3 and any((np.asarray(m) > 127).any() for m in with_dino.masks)
    boxes = sam.dino_predict(Image.fromarray(coffee), "cup", box_threshold=0.05)
    drawn = pixels(boxes.image_with_box)
    assert drawn.shape == coffee.shape and not np.array_equal(drawn, coffee)
    low = httpx.post(f"http://127.0.0.1:{deep_server}/sam/dino-predict",
                     json={"input_image": b64png(coffee), "text_prompt": "cup", "box_threshold": 0.01})
    assert low.status_code == 422 and "below this server's detector threshold 0.05" in low.json()["detail"]


def test_two_clients_at_once_get_their_own_results(deep_server, coffee):
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255

    def edit(seed):
        body = {"init_images": [b64png(coffee)], "mask": b64png(mask), "prompt": "a mug", "seed": seed,
                "steps": 2, "width": 64, "height": 64, "denoising_strength": 1.0}
        r = httpx.post(f"http://127.0.0.1:{deep_server}/sdapi/v1/img2img", json=body, timeout=300)
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(edit, [1, 2])
    alone = edit(2)
    assert '"seed": 1' in a["info"] and '"seed": 2' in b["info"]
    assert a["images"][0] != b["images"][0]
    assert pixels(Image.open(io.BytesIO(base64.b64decode(b["images"][0])))).tobytes() == \
        pixels(Image.open(io.BytesIO(base64.b64decode(alone["images"][0])))).tobytes()
