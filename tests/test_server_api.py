"""The WebUI HTTP API (`editanything serve`) driven by the real `webuiapi` client and by raw httpx,
against a live server on 127.0.0.1: weight-free backends (GrabCut, OpenCV) and the tiny deep models."""

import base64
import json
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
    with live_app(create_app(editor, config)) as port:
        yield port


@contextmanager
def live_app(app):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
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


def test_any_sam_model_name_is_answered_by_the_servers_segmenter_which_the_answer_names(light, coffee):
    r = httpx.post(f"http://127.0.0.1:{light}/sam/sam-predict",
                   json={"input_image": b64png(coffee), "sam_model_name": "sam_vit_h_4b8939.pth",
                         "sam_positive_points": [[380, 200]]})
    assert r.status_code == 200
    assert r.json()["msg"] == ("Mask prediction successful: 1 candidates by grabcut (asked for sam_model_name "
                               "'sam_vit_h_4b8939.pth': this server has grabcut)")


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


def test_samplers_schedulers_and_txt2img_with_a_model_that_only_inpaints(light):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=light)
    assert "Euler a" in api.util_get_sampler_names()
    assert api.util_get_scheduler_names() == ["automatic", "karras"]
    r = httpx.post(f"http://127.0.0.1:{light}/sdapi/v1/txt2img", json={"prompt": "a cat"})
    assert r.status_code == 422 and "cannot generate from a prompt" in r.json()["detail"]


@pytest.fixture(scope="module")
def sd15_base(tmp_path_factory):
    import tiny_sd

    return tiny_sd.save_sd15_base(tmp_path_factory.mktemp("gen") / "sd15")


@pytest.fixture
def one_thread(monkeypatch):
    """One thread on both sides of a comparison: the server's through the thread policy, the in-process CLI's
    as torch is left (the policy's environment comes too late for a torch already loaded). On a CPU the bits
    depend on the thread count, which each recipe records."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("EDITANYTHING_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_txt2img_and_img2img_without_a_mask_are_the_generate_commands_images(sd15_base, tmp_path, coffee,
                                                                             one_thread):
    """webuiapi's txt2img and img2img (no mask) against `editanything generate`, same seed: the same pixels,
    and the API's PNG replays."""
    photo = tmp_path / "photo.png"
    Image.fromarray(coffee).save(photo)
    common = ["--model", str(sd15_base), "--steps", "2", "--sampler", "Euler a", "--seed", "7", "--width", "32",
              "--height", "32", "-q"]
    assert main(["generate", "a tiger", "-o", str(tmp_path / "t2i.png"), *common]) == 0
    assert main(["generate", "a pencil drawing", "--image", str(photo), "--strength", "0.6",
                 "-o", str(tmp_path / "i2i.png"), *common]) == 0
    with live(Editor(generator=str(sd15_base))) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        out = api.txt2img(prompt="a tiger", seed=7, steps=2, sampler_name="Euler a", width=32, height=32,
                          batch_size=2)
        assert out.info["all_seeds"] == [7, 8] and len(out.images) == 2
        assert np.array_equal(pixels(out.images[0]), read_image(tmp_path / "t2i.png"))
        assert "Denoising strength" not in out.info["infotexts"][0]
        assert out.info["is_using_inpainting_conditioning"] is False
        out.images[1].save(tmp_path / "api-t2i.png", pnginfo=_pnginfo(out.images[1]))
        assert main(["replay", str(tmp_path / "api-t2i.png"), "-o", str(tmp_path / "again.png"), "-q"]) == 0
        assert np.array_equal(read_image(tmp_path / "again.png"), pixels(out.images[1]))
        out = api.img2img(images=[Image.fromarray(coffee)], prompt="a pencil drawing", seed=7, steps=2,
                          sampler_name="Euler a", width=32, height=32, denoising_strength=0.6)
        assert np.array_equal(pixels(out.image), read_image(tmp_path / "i2i.png"))
        assert "Denoising strength: 0.6" in out.info["infotexts"][0]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", json={"prompt": "a tiger", "enable_hr": True})
        assert r.status_code == 422 and r.json()["detail"].startswith("enable_hr=True is not supported")
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", json={"prompt": ""})
        assert r.status_code == 422 and "generate needs a prompt" in r.json()["detail"]


# --- the tiny deep models -------------------------------------------------------------------------

@pytest.fixture
def deep_server(deep):
    editor = Editor(detector_options=DETECT)
    with live(editor) as port:
        yield port


def test_img2img_with_a_mask_matches_the_cli_pixel_for_pixel(deep, tmp_path, coffee, one_thread):
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


def test_inpaint_full_res_false_generates_over_the_whole_photo(deep, coffee, one_thread):
    """inpaint_full_res is our crop mode; without it the edit is Editor.edit(full_image=True)."""
    from editanything.pipeline import EditRequest
    from editanything.types import GenerationParams

    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    editor = Editor()
    params = GenerationParams(prompt="a mug", sampler="Euler a", steps=2, cfg_scale=7.0, strength=1.0, seed=3,
                              resolution=64)
    expected = {full: editor.edit(coffee, EditRequest(mode="replace", mask=mask > 0, params=params, grow=0.0,
                                                      feather=4.0, full_image=full)).images[0]
                for full in (False, True)}
    with live(editor) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        for full in (False, True):
            out = api.img2img(images=[Image.fromarray(coffee)], mask_image=Image.fromarray(mask), prompt="a mug",
                              seed=3, steps=2, sampler_name="Euler a", cfg_scale=7, denoising_strength=1.0,
                              mask_blur=4, width=64, height=64, inpaint_full_res=not full)
            assert np.array_equal(pixels(out.image), expected[full])
            assert np.array_equal(pixels(out.image)[mask == 0], coffee[mask == 0])
    assert not np.array_equal(expected[False], expected[True])


def test_options_switch_the_model_and_sd_models_lists_those_on_disk(deep, coffee):
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    with live(Editor(segmenter="grabcut", generator="classical")) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        models = api.get_sd_models()
        assert [m["title"] for m in models] == ["sd15-inpainting"]
        assert models[0]["sha256"] and models[0]["hash"] == models[0]["sha256"][:10]
        assert api.util_get_current_model() == "classical-telea"
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/options", json={"sd_model_checkpoint": "sdxl-inpainting"})
        assert r.status_code == 422 and "'sdxl-inpainting' is not on disk here" in r.json()["detail"]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 2})
        assert r.status_code == 422 and "option 'CLIP_stop_at_last_layers' is not supported" in r.json()["detail"]
        api.util_set_model("sd15-inpainting")
        assert api.util_get_current_model() == "sd15-inpainting"
        out = api.img2img(images=[Image.fromarray(coffee)], mask_image=Image.fromarray(mask), prompt="a mug", seed=1,
                          steps=2, denoising_strength=1.0, width=64, height=64)
        assert out.info["sd_model_name"] == "sd15-inpainting" and out.info["sampler_name"]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img",
                       json={"init_images": [b64png(coffee)], "mask": b64png(mask), "prompt": "x", "width": 64,
                             "height": 64, "denoising_strength": 1.0,
                             "override_settings": {"sd_model_checkpoint": "classical"}})
        assert r.status_code == 422 and "switch models with POST /sdapi/v1/options" in r.json()["detail"]


def test_loras_and_embeddings_list_what_the_generator_loaded(deep, tmp_path):
    import tiny_sd

    from editanything.generate.diffusion import DiffusionGenerator

    unet = DiffusionGenerator(deep / "sd15-inpainting").load().unet
    lora = tiny_sd.save_kohya_lora(tmp_path / "tiny-lora.safetensors", unet)
    embedding = tiny_sd.save_embedding(tmp_path / "tiny-style.safetensors")
    editor = Editor(segmenter="grabcut", generator="sd15-inpainting",
                    generator_options={"loras": [f"{lora}:0.7"], "embeddings": [(str(embedding), "<tiny>")]})
    with live(editor) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        loras = api.get_loras()
        assert [(x["name"], x["path"], x["metadata"]["scale"]) for x in loras] == [("tiny-lora", str(lora), 0.7)]
        assert loras[0]["metadata"]["sha256"]
        assert api.get_embeddings()["loaded"]["<tiny>"]["path"] == str(embedding)


def test_interrogate_answers_with_the_servers_captioner(coffee, tmp_path):
    pytest.importorskip("transformers")
    from tiny_detect_models import build_tiny_blip2

    from editanything.caption import Blip2Captioner

    captioner = Blip2Captioner.from_pretrained(build_tiny_blip2(tmp_path / "blip2-opt-2.7b"), device="cpu",
                                               max_new_tokens=6)
    expected = captioner.caption(coffee)
    with live(Editor(segmenter="grabcut", generator="classical", captioner=captioner)) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        assert api.interrogate(Image.fromarray(coffee)).info == expected
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/interrogate",
                       json={"image": b64png(coffee), "model": "deepdanbooru"})
        assert r.status_code == 422 and "interrogate model 'deepdanbooru' is not served here" in r.json()["detail"]


class GatedGenerator:
    """OpenCV's fill after `steps` steps reported through editanything.progress, each one let through by the test."""

    def __init__(self, steps: int = 4) -> None:
        from editanything.generate import ClassicalGenerator

        self.fill, self.steps, self.gate = ClassicalGenerator(), steps, threading.Semaphore(0)
        self.name, self.takes_prompt = "gated", True  # a stand-in for a diffusion model, which reads prompts

    def __getattr__(self, name):
        return getattr(self.fill, name)

    def inpaint(self, image, mask, params=None):
        from editanything.progress import Step, report

        for i in range(self.steps):
            assert self.gate.acquire(timeout=120), "the test never let the step through"
            report(Step(0, 1, i, self.steps))
        return self.fill.inpaint(image, mask, params)


def test_progress_interrupt_and_a_full_queue(coffee):
    """A running edit shows its steps in /progress; one more finds the queue full; /interrupt stops it."""
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    body = {"init_images": [b64png(coffee)], "mask": b64png(mask), "prompt": "a mug", "seed": 1,
            "denoising_strength": 1.0}
    generator = GatedGenerator()
    with live(Editor(segmenter="grabcut", generator=generator), ServerConfig(queue_size=1)) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        assert api.get_progress()["progress"] == 0 and api.get_progress()["state"]["job"] == ""
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(httpx.post, f"http://127.0.0.1:{port}/sdapi/v1/img2img", json=body, timeout=300)
            generator.gate.release(2)
            deadline = time.time() + 120
            while (progress := api.get_progress())["state"]["sampling_step"] < 2:
                assert time.time() < deadline and not running.done(), running.result().text if running.done() else ""
                time.sleep(0.05)
            assert progress["progress"] == 0.5 and progress["state"]["job"] == "img2img"
            assert progress["state"]["sampling_steps"] == 4 and progress["eta_relative"] > 0
            full = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json=body, timeout=60)
            assert full.status_code == 429 and "queue is full (1 requests)" in full.json()["detail"]
            api.interrupt()
            generator.gate.release(2)
            stopped = running.result()
        assert stopped.status_code == 409 and stopped.json()["error"] == "Cancelled"
        assert api.get_progress()["progress"] == 0
        generator.gate.release(4)  # the next edit runs to the end
        done = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json=body, timeout=120)
        assert done.status_code == 200 and len(done.json()["images"]) == 1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def command(args, tmp_path, ready_path):
    """`python -m editanything ARGS` on a free port (weight-free backends), until `ready_path` answers."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDITANYTHING_CHECKPOINTS": str(tmp_path / "ckpt"),
           "EDITANYTHING_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")}
    server = subprocess.Popen([sys.executable, "-m", "editanything", *args, "--port", str(port), "--segmenter",
                               "grabcut", "--detector", "none", "--model", "classical"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_serve_is_the_api_alone_with_auth(tmp_path, coffee):
    with command(["serve", "--api-auth", "me:pw,you:pw2"], tmp_path, "/sam/heartbeat") as port:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/sam/heartbeat").status_code == 401
        assert httpx.get(f"{base}/sam/heartbeat", auth=("you", "pw2")).json() == {"msg": "Success!"}
        assert httpx.get(f"{base}/", auth=("me", "pw")).status_code == 404  # no page
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port, username="me", password="pw")
        result = webuiapi.SegmentAnythingInterface(api).sam_predict(Image.fromarray(coffee),
                                                                    sam_positive_points=[[380, 200]])
        assert (np.asarray(result.masks[0]) > 127)[200, 380]


def test_ui_api_serves_the_api_beside_the_page(tmp_path, coffee):
    pytest.importorskip("gradio")
    with command(["ui", "--api", "--api-auth", "me:pw"], tmp_path, "/") as port:
        base = f"http://127.0.0.1:{port}"
        assert "gradio" in httpx.get(f"{base}/").text.lower()  # the page, without the API's auth
        assert httpx.get(f"{base}/sdapi/v1/samplers").status_code == 401
        assert "sam-predict" in httpx.get(f"{base}/docs/openapi.json", auth=("me", "pw")).text
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port, username="me", password="pw")
        mask = np.zeros(coffee.shape[:2], np.uint8)
        mask[100:150, 200:260] = 255
        out = webuiapi.SegmentAnythingInterface(api).dilate_mask(Image.fromarray(coffee), Image.fromarray(mask), 5)
        assert (np.asarray(out.mask) > 127)[97, 230]


def test_api_options_without_api_are_refused(capsys):
    assert main(["ui", "--api-auth", "me:pw"]) != 0
    assert "--api-auth is an option of the API: add --api" in capsys.readouterr().err


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    pytest.importorskip("transformers")
    from tiny_hf_models import build_tiny_edgetam, build_tiny_grounding_dino_hf, build_tiny_sam2

    root = tmp_path_factory.mktemp("hf-models")
    return {"grounding-dino-tiny": build_tiny_grounding_dino_hf(root / "grounding-dino-tiny"),
            "sam2.1-hiera-tiny": build_tiny_sam2(root / "sam2.1-hiera-tiny"),
            "edgetam": build_tiny_edgetam(root / "edgetam")}


@pytest.mark.parametrize("segmenter", ["sam2.1-hiera-tiny", "edgetam"])
def test_sam_routes_answer_with_sam2_edgetam_and_grounding_dino_on_transformers(isolated_models, hf_models, coffee,
                                                                                  segmenter):
    """webuiapi's defaults name SAM vit_h and GroundingDINO_SwinT_OGC; our backends answer, as the editor would."""
    from editanything.types import Prompt

    if segmenter == "edgetam":
        pytest.importorskip("timm")
    for name in ("grounding-dino-tiny", segmenter):
        (isolated_models / name).symlink_to(hf_models[name], target_is_directory=True)
    editor = Editor(segmenter=segmenter, detector="grounding-dino-tiny", detector_options={"box_threshold": 0.0})
    click = editor.segmenter.segment(coffee, Prompt(points=[(380, 200, 1)]), multimask=True)
    boxes = editor.detector.detect(coffee, "cup")
    boxes = boxes[boxes.scores > 0.01]
    by_box = editor.segmenter.segment(coffee, Prompt(boxes=[tuple(b) for b in boxes.xyxy.tolist()]), multimask=True)
    with live(editor) as port:
        sam = webuiapi.SegmentAnythingInterface(webuiapi.WebUIApi(host="127.0.0.1", port=port))
        assert sam.get_sam_models() == [segmenter]
        points = sam.sam_predict(Image.fromarray(coffee), sam_positive_points=[[380, 200]])
        assert f"by {segmenter} (asked for sam_model_name 'sam_vit_h_4b8939.pth'" in points.message
        assert len(points.masks) == 3
        for got, expected in zip(points.masks, click.masks):
            assert np.array_equal(np.asarray(got) > 127, expected)
        dino = sam.sam_predict(Image.fromarray(coffee), dino_enabled=True, dino_text_prompt="cup",
                               dino_box_threshold=0.01)
        assert "on the boxes of grounding-dino-tiny" in dino.message
        for rank, got in enumerate(dino.masks):
            union = np.any([m for m, p in zip(by_box.masks, by_box.phrases) if p.endswith(f"#{rank}")], axis=0)
            assert np.array_equal(np.asarray(got) > 127, union)
        assert "boxes found by grounding-dino-tiny" in sam.dino_predict(Image.fromarray(coffee), "cup", box_threshold=0.01).message


def test_styles_name_the_servers_saved_styles(tmp_path, coffee):
    from editanything.generate import load_styles

    (tmp_path / "styles.csv").write_text('name,prompt,negative_prompt\nVivid,"{prompt}, vivid colours",dull\n'
                                         'Film,grain,\n', encoding="utf-8")
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    body = {"init_images": [b64png(coffee)], "mask": b64png(mask), "prompt": "a mug", "negative_prompt": "blur",
            "denoising_strength": 1.0}
    config = ServerConfig(styles=load_styles(tmp_path / "styles.csv"))
    with live(Editor(segmenter="grabcut", generator=GatedGenerator(steps=0)), config) as port:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        assert [s["name"] for s in api.get_prompt_styles()] == ["Vivid", "Film"]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json={**body, "styles": ["Vivid", "Film"]})
        assert r.status_code == 200, r.text
        info = json.loads(r.json()["info"])
        assert info["prompt"] == "a mug, vivid colours, grain" and info["negative_prompt"] == "blur, dull"
        assert info["styles"] == ["Vivid", "Film"]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json={**body, "styles": ["Noir"]})
        assert r.status_code == 422 and r.json()["detail"] == "unknown style 'Noir'; known styles: Film, Vivid"
    with live(Editor(segmenter="grabcut", generator=GatedGenerator(steps=0))) as port:
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json={**body, "styles": ["Vivid"]})
        assert r.status_code == 422 and "this server has no saved styles (start it with --styles-file" in r.text


def test_serve_listens_on_loopback_unless_told(capsys):
    from editanything.cli import build_parser
    from editanything.cli.api_opts import host_of

    parser = build_parser()
    assert host_of(parser.parse_args(["serve"])) == "127.0.0.1" and capsys.readouterr().err == ""
    assert host_of(parser.parse_args(["serve", "--listen"])) == "0.0.0.0"
    assert "warning: listening on 0.0.0.0: other machines can reach this server" in capsys.readouterr().err
    assert host_of(parser.parse_args(["ui", "--host", "10.1.2.3"]), "app") == "10.1.2.3"
    assert "other machines can reach this app" in capsys.readouterr().err


def test_serve_honours_the_dino_thresholds_clients_send(deep, monkeypatch, coffee):
    """`serve` keeps boxes from 0.05 up, so a request's own threshold (webuiapi's 0.3 by default) is honoured;
    the detector's 0.35, which `ui` keeps for its text selection, would refuse it."""
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    assert main(["serve", "--port", str(free_port()), "--segmenter", "sam-vit-b",
                 "--detector", "groundingdino-swint-ogc"]) == 0
    with live_app(apps[0]) as port:
        sam = webuiapi.SegmentAnythingInterface(webuiapi.WebUIApi(host="127.0.0.1", port=port))
        found = sam.sam_predict(Image.fromarray(coffee), dino_enabled=True, dino_text_prompt="cup",
                                dino_box_threshold=0.06)
        assert len(found.masks) == 3 and "on the boxes of groundingdino_swint_ogc.pth" in found.message
        r = httpx.post(f"http://127.0.0.1:{port}/sam/dino-predict",
                       json={"input_image": b64png(coffee), "text_prompt": "cup", "box_threshold": 0.01})
        assert r.status_code == 422 and "below this server's detector threshold 0.05" in r.json()["detail"]


def test_an_img2img_answer_is_the_webuis_json_with_pngs_that_carry_the_recipe(deep, coffee):
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[120:260, 300:430] = 255
    body = {"init_images": [b64png(coffee)], "mask": "data:image/png;base64," + b64png(mask), "prompt": "x",
            "inpainting_fill": 1, "seed": 3, "steps": 2, "width": 64, "height": 64}
    with live(Editor()) as port:
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json=body, timeout=300)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        answer = json.loads(r.content)
        assert list(answer) == ["images", "parameters", "info"]
        assert answer["parameters"]["init_images"] is None and answer["parameters"]["seed"] == 3
        png = Image.open(io.BytesIO(base64.b64decode(answer["images"][0], validate=True)))
        assert np.array_equal(pixels(png)[mask == 0], coffee[mask == 0])
        assert json.loads(png.text[RECIPE_KEY])["operation"] == "edit:replace"
        assert png.text["parameters"] == json.loads(answer["info"])["infotexts"][0]
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img", json={**body, "send_images": False}, timeout=300)
        assert r.json()["images"] == [] and json.loads(r.json()["info"])["all_seeds"] == [3]
        # diffusers would run int(1 x 0.75) = 0 steps: a one-line 422, not a 500 from inside the pipeline
        r = httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/img2img",
                       json={**body, "steps": 1, "denoising_strength": 0.75}, timeout=300)
        assert r.status_code == 422 and r.json()["detail"].startswith("1 step(s) at strength 0.75 leave no denoising")


@pytest.mark.parametrize("value", ["iVBORw0K\nGgo=", "iVBORw0KGgo", "iVBO Rw0KGgo=", "iVBORw0KGgo==",
                                   "AAAAdata:image/png;base64,iVBORw0KGgo=", "/etc/passwd", "é"])
def test_image_data_is_strict_base64_or_a_data_uri_at_the_start(value):
    from editanything.errors import InvalidInputError
    from editanything.server.images import image_bytes

    with pytest.raises(InvalidInputError, match="not base64 image data"):
        image_bytes(value, "input_image")
    assert image_bytes(" data:image/png;base64,iVBORw0KGgo= ", "x") == b"\x89PNG\r\n\x1a\n"
    assert image_bytes("DATA:image/webp;base64,iVBORw0KGgo=", "x") == b"\x89PNG\r\n\x1a\n"


def test_json_with_images_is_what_a_json_encoder_writes():
    from editanything.server.images import json_with_images

    rest = {"parameters": {"a": [1, 2.5, None], "é": "\"q\"\n"}, "info": json.dumps({"x": 1})}
    images = [base64.b64encode(bytes(range(256)) * 3), b""]
    assert json.loads(json_with_images(images, rest)) == {"images": [i.decode() for i in images], **rest}
    assert json.loads(json_with_images([], {})) == {"images": []}
    assert json.loads(json_with_images([b"QQ=="], {"n": float("inf")})) == {"images": ["QQ=="], "n": None}
