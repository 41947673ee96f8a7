"""Replay holds for every output: batches, worker threads, per-instance prompts, ControlNet maps,
wrapped seeds; what the recipe records; and tampered or foreign recipes refused in one line.

Deep path: the tiny random-weight SD inpainting model (tests/tiny_sd.py) through the real loaders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import tiny_sd  # noqa: E402

from conftest import DEMOS, edit_output  # noqa: E402
from editanything import Prompt, read_image  # noqa: E402
from editanything.cli import main  # noqa: E402
from editanything.errors import InvalidInputError  # noqa: E402
from editanything.generate import GenerationParams, sampler_names  # noqa: E402
from editanything.generate.diffusion import DiffusionGenerator, Embedding, Lora  # noqa: E402
from editanything.types import MAX_SEED  # noqa: E402
from editanything.imageio import read_png_text, write_image  # noqa: E402
from editanything.models import MODELS  # noqa: E402
from editanything.pipeline import Editor, EditRequest  # noqa: E402
from editanything.recipe import RECIPE_KEY, decode_mask, read_recipe  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("replay-sd")


@pytest.fixture(scope="module")
def folder(work):
    return tiny_sd.save_diffusers(work / "tiny-sd")


@pytest.fixture(scope="module")
def generator(folder):
    return DiffusionGenerator(folder)


@pytest.fixture
def threads():
    """Restore the process's torch thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# ---- the generator: each image depends only on its own seed --------------------------------------

@pytest.mark.parametrize("sampler", sampler_names())
def test_each_image_of_a_batch_is_what_its_seed_alone_gives(generator, sampler, work, tmp_path, monkeypatch):
    if sampler == "LCM":  # the LCM sampler turns on LCM-LoRA: a tiny one, where the models layer looks
        from model_pins import pin_to_files

        monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(tmp_path))
        (tmp_path / "lcm-lora-sd15").mkdir()
        tiny_sd.save_kohya_lora(tmp_path / "lcm-lora-sd15" / "pytorch_lora_weights.safetensors",
                                generator.load().unet, scale=0.3)
        pin_to_files(monkeypatch, tmp_path, "lcm-lora-sd15")
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler=sampler, steps=2, seed=40, batch_size=2, resolution=SIZE)
    batch = generator.inpaint(image, mask, params)
    assert batch.seeds == [40, 41] and not np.array_equal(batch.images[0], batch.images[1])
    alone = generator.inpaint(image, mask, GenerationParams(prompt="x", sampler=sampler, steps=2, seed=41,
                                                            resolution=SIZE))
    np.testing.assert_array_equal(batch.images[1], alone.images[0])


def test_seeds_near_the_top_wrap_around(generator):
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler="Euler a", steps=2, seed=MAX_SEED, batch_size=2, batch_count=2,
                              resolution=SIZE)
    assert params.image_seeds() == [MAX_SEED, 0, 1, 2]
    batch = generator.inpaint(image, mask, params)
    assert batch.seeds == [MAX_SEED, 0, 1, 2]
    alone = generator.inpaint(image, mask, GenerationParams(prompt="x", sampler="Euler a", steps=2, seed=0,
                                                            resolution=SIZE))
    np.testing.assert_array_equal(batch.images[1], alone.images[0])


def test_generation_runs_with_the_threads_it_is_given_whatever_the_process_uses(folder, threads):
    image, mask = tiny_sd.image_and_mask(64)
    params = GenerationParams(prompt="x", sampler="Euler a", steps=3, seed=5, resolution=64)
    torch.set_num_threads(1)
    free = DiffusionGenerator(folder)
    ran = free.inpaint(image, mask, params)
    one = ran.images[0]
    assert ran.threads == 1 and ran.recipe_model()["threads"] == 1
    torch.set_num_threads(2)
    # the process's count changes the last bits (which is why the recipe records it) ...
    assert not np.array_equal(free.inpaint(image, mask, params).images[0], one)
    # ... and a generator told the recorded count gives the same bits in a 2-thread process
    np.testing.assert_array_equal(DiffusionGenerator(folder, threads=1).inpaint(image, mask, params).images[0], one)
    assert torch.get_num_threads() == 2  # the process's setting is restored
    with pytest.raises(InvalidInputError, match="threads"):
        DiffusionGenerator(folder, threads=0)


# ---- edit → replay through the CLI -------------------------------------------------------------------

def _edit(out, *extra):
    args = ["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--prompt", "a plant", "--steps", "2",
            "--resolution", "64", "-o", str(out), "-q", *extra]
    assert main(args) == 0


def _replays_exactly(result, tmp_path, capsys, *extra):
    capsys.readouterr()
    again = tmp_path / f"again-{result.stem}.png"
    status = main(["replay", str(result), "-o", str(again), *extra])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "identical to the original" in captured.out
    assert np.array_equal(read_image(result), read_image(again))


def test_image_i_of_a_batch_size_run_replays_bit_exactly_even_past_the_top_seed(deep, tmp_path, capsys):
    out = tmp_path / "out"
    _edit(out, "--batch-size", "2", "--seed", str(MAX_SEED), "--sampler", "Euler a")
    assert [read_recipe(edit_output(out, "coffee", i)).seed for i in (0, 1)] == [MAX_SEED, 0]
    assert "Seed: 0," in read_png_text(edit_output(out, "coffee", 1))["parameters"]
    _replays_exactly(edit_output(out, "coffee", 1), tmp_path, capsys)


def test_an_edit_made_with_one_thread_replays_in_a_process_with_two(deep, tmp_path, capsys, threads):
    out = tmp_path / "out"
    torch.set_num_threads(1)  # as in an `edit --workers 2` worker on two cores
    _edit(out, "--seed", "11", "--sampler", "Euler a")
    assert read_recipe(edit_output(out, "coffee")).models["generator"]["threads"] == 1
    torch.set_num_threads(2)
    _replays_exactly(edit_output(out, "coffee"), tmp_path, capsys)


class _FixedDetector:
    """A detector that always finds the same two things."""

    name = "fixed"
    box_threshold = 0.3

    def detect(self, image, text):
        from editanything import Detections

        return Detections([(180, 20, 410, 270), (318, 200, 410, 330)], [0.9, 0.8], ["cup", "spoon"])


def test_per_instance_prompts_replay(deep, tmp_path, capsys):
    coffee = read_image(DEMOS / "coffee.jpg")
    editor = Editor(detector=_FixedDetector(), segmenter="grabcut")
    request = EditRequest(selection=Prompt(text="cup . spoon"), params=GenerationParams(steps=2, seed=5, resolution=128),
                          prompt_for={"cup": "a blue mug", "spoon": "a fork"})
    sizes, inpaint = [], DiffusionGenerator.inpaint

    def spy(self, image, mask, params, **kwargs):
        sizes.append([image.shape[1], image.shape[0]])
        return inpaint(self, image, mask, params, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DiffusionGenerator, "inpaint", spy)
        result = editor.edit(coffee, request, source=str(DEMOS / "coffee.jpg"))
    saved = result.save(tmp_path / "instances.png")
    recipe = read_recipe(saved)
    steps = recipe.parameters["steps"]
    assert [s["prompt"] for s in steps] == ["a blue mug", "a fork"]
    # each step records the crop it actually generated at (the cup's and the spoon's differ), not the first one's
    assert [s["generation_size"] for s in steps] == sizes and sizes[0] != sizes[1]
    for step in steps:
        ys, xs = np.nonzero(decode_mask(step["mask"]))
        x0, y0, x1, y1 = step["box"]
        assert x0 <= xs.min() and y0 <= ys.min() and xs.max() < x1 and ys.max() < y1
    assert recipe.models["detector"] == {"name": "fixed", "box_threshold": 0.3}
    assert 'Instance prompts: "cup: a blue mug; spoon: a fork"' in read_png_text(saved)["parameters"]
    _replays_exactly(saved, tmp_path, capsys)


def test_seg_controlnet_edit_replays_with_its_control_image(folder, work, tmp_path, capsys):
    coffee = read_image(DEMOS / "coffee.jpg")
    net = tiny_sd.save_controlnet(work / "control_v11p_sd15_seg")
    seg = np.zeros_like(coffee)
    seg[20:270, 180:410] = (120, 120, 80)
    seg_path = tmp_path / "seg.png"
    write_image(seg_path, seg)
    editor = Editor(generator=DiffusionGenerator(folder, controlnets=[("seg", net)]), segmenter="grabcut")
    request = EditRequest(selection=Prompt(boxes=[(180, 20, 410, 270)]), control={"seg": seg},
                          control_files={"seg": str(seg_path)},
                          params=GenerationParams(prompt="a plant", steps=2, seed=3, resolution=64))
    saved = editor.edit(coffee, request, source=str(DEMOS / "coffee.jpg")).save(tmp_path / "out" / "seg-edit.png")
    recipe = read_recipe(saved)
    assert recipe.parameters["control"] == {"seg": {"path": str(seg_path.resolve()),
                                                    "sha256": recipe.parameters["control"]["seg"]["sha256"]}}
    net_sha = hashlib.sha256((net / "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()
    assert (f'ControlNet 0: "Module: none, Model: control_v11p_sd15_seg [{net_sha[:8]}], Weight: 1"'
            in read_png_text(saved)["parameters"])
    _replays_exactly(saved, tmp_path, capsys)

    moved = tmp_path / "elsewhere.png"
    seg_path.rename(moved)
    capsys.readouterr()
    assert main(["replay", str(saved), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--control-image seg=PNG" in err and len(err.strip().splitlines()) == 1
    _replays_exactly(saved, tmp_path, capsys, "--control-image", f"seg={moved}")
    write_image(tmp_path / "other.png", np.zeros_like(coffee))
    assert main(["replay", str(saved), "-o", str(tmp_path / "x.png"), "--control-image",
                 f"seg={tmp_path / 'other.png'}"]) == 2
    assert "not the seg control image" in capsys.readouterr().err


def test_controlnet_seg_without_its_control_image_is_a_usage_error_before_any_model_loads(isolated_models, capsys):
    start = time.perf_counter()
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--prompt", "a plant",
                   "--controlnet", "seg", "-o", "/tmp/unused-replay-out"])
    err = capsys.readouterr().err
    assert status == 2 and "--control-image seg=PNG" in err and "Traceback" not in err
    assert time.perf_counter() - start < 5


# ---- what the recipe records ------------------------------------------------------------------------

def test_recipe_records_input_path_selection_models_and_generation_size(deep, tmp_path, capsys, monkeypatch):
    photo = tmp_path / "in" / "coffee.jpg"
    photo.parent.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photo)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["edit", "in/coffee.jpg", "--select", "cup", "--box-threshold", "0.05", "--text-threshold", "0.06",
                 "--prompt", "a mug", "--steps", "2", "--seed", "3", "--resolution", "64", "-o", str(out), "-q"]) == 0
    recipe = read_recipe(edit_output(out, "coffee"))
    assert recipe.inputs["image"] == str(photo.resolve())
    detector, segmenter = recipe.models["detector"], recipe.models["segmenter"]
    assert (detector["box_threshold"], detector["text_threshold"]) == (0.05, 0.06)
    # downloaded files: the checksum the manifest (or the download) vouches for, no hashing per run
    assert detector["files"] == [{"path": str(deep / "groundingdino_swint_ogc.pth"),
                                  "sha256": MODELS["groundingdino-swint-ogc"].files[0].sha256}]
    assert segmenter["files"] == [{"path": str(deep / "sam_vit_b_01ec64.pth"),
                                   "sha256": MODELS["sam-vit-b"].files[0].sha256}]
    w, h = recipe.parameters["generation_size"]
    assert max(w, h) == 64 and f"Size: {w}x{h}," in read_png_text(edit_output(out, "coffee"))["parameters"]

    # the input moved next to the output: replay finds it there
    shutil.move(photo, out / "coffee.jpg")
    _replays_exactly(edit_output(out, "coffee"), tmp_path, capsys)
    (out / "coffee.jpg").unlink()
    capsys.readouterr()
    assert main(["replay", str(edit_output(out, "coffee")), "-o", str(tmp_path / "x.png")]) == 2
    assert "pass it with --image" in capsys.readouterr().err


def test_loras_embeddings_and_controlnets_appear_in_parameters_as_the_webui_writes_them(folder, work):
    pipe = tiny_sd.build_pipeline(work / "lora-src")
    lora = tiny_sd.save_kohya_lora(work / "detail-tweaker.safetensors", pipe.unet)
    emb = tiny_sd.save_embedding(work / "tiny-style.safetensors")
    net = tiny_sd.save_controlnet(work / "control_v11p_sd15_inpaint")
    gen = DiffusionGenerator(folder, loras=[Lora(lora, 0.7)], embeddings=[Embedding(emb, "<tiny>")],
                             controlnets=[("inpaint", net)], controlnet_scale=0.8)
    coffee = read_image(DEMOS / "coffee.jpg")
    mask = np.zeros(coffee.shape[:2], bool)
    mask[100:200, 200:300] = True
    result = Editor(generator=gen).edit(coffee, EditRequest(mask=mask, params=GenerationParams(
        prompt="a <tiny> plant", steps=2, seed=9, resolution=64)))
    text = result.png_text()["parameters"]

    def sha(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    net_sha = sha(net / "diffusion_pytorch_model.safetensors")
    assert text.splitlines()[0] == "a <tiny> plant <lora:detail-tweaker:0.7>"
    assert f'Lora hashes: "detail-tweaker: {sha(lora)[:12]}"' in text
    assert f'TI hashes: "<tiny>: {sha(emb)[:12]}"' in text
    assert f'ControlNet 0: "Module: inpaint_only, Model: control_v11p_sd15_inpaint [{net_sha[:8]}], Weight: 0.8"' in text


def test_a_recolor_claims_no_sampler_steps_cfg_or_seed(isolated_models):
    coffee = read_image(DEMOS / "coffee.jpg")
    mask = np.zeros(coffee.shape[:2], bool)
    mask[100:200, 200:300] = True
    for request in (EditRequest(mode="recolor", color="blue", mask=mask), EditRequest(mode="remove", mask=mask)):
        result = Editor(generator="classical").edit(coffee, request)
        text = result.png_text()["parameters"]
        for key in ("Steps:", "Sampler:", "CFG scale:", "Seed:", "Denoising strength:"):
            assert key not in text, (request.mode, key)
        assert result.recipe.parameters["sampled"] is False


def test_the_generator_hash_is_computed_once_and_cached_by_size_and_mtime(folder, work, monkeypatch):
    from editanything.models import store

    checkpoint = tiny_sd.save_single_file(work / "cached.safetensors", dict(tiny_sd.build_pipeline(work / "c").components))
    calls = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda path, *a: calls.append(path) or real(path, *a))
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    gen = DiffusionGenerator(checkpoint, config=folder)
    assert gen.weights_sha256() == expected and len(calls) == 1
    assert gen.model_info()["sha256"] == expected and len(calls) == 1
    monkeypatch.setattr(store, "_HASHES", {})  # a new process: only the cache on disk is left
    assert DiffusionGenerator(checkpoint, config=folder).model_info()["hash"] == expected[:10] and len(calls) == 1
    stat = checkpoint.stat()
    import os

    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again
    assert DiffusionGenerator(checkpoint, config=folder).weights_sha256() == expected and len(calls) == 2


# ---- tampered or foreign recipes ---------------------------------------------------------------------

@pytest.fixture
def classical_output(tmp_path, isolated_models):
    coffee = read_image(DEMOS / "coffee.jpg")
    mask = np.zeros(coffee.shape[:2], bool)
    mask[100:200, 200:300] = True
    result = Editor(generator="classical").edit(coffee, EditRequest(mode="remove", mask=mask),
                                                 source=str(DEMOS / "coffee.jpg"))
    return result.save(tmp_path / "removed.png")


def _tamper(path, change):
    text = read_png_text(path)
    data = json.loads(text[RECIPE_KEY])
    change(data)
    text[RECIPE_KEY] = json.dumps(data)
    write_image(path, read_image(path), text=text)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


TAMPERED = {
    "input name with a folder": _set("inputs", "name", "../../secret.jpg"),
    "input name not a string": _set("inputs", "name", 7),
    "huge mask": _set("parameters", "mask", {"size": [80000, 80000], "runs": [6_400_000_000]}),
    "huge image and mask": lambda d: (_set("inputs", "size", [80000, 80000])(d),
                                      _set("parameters", "mask", {"size": [80000, 80000], "runs": [6_400_000_000]})(d)),
    "runs short": _set("parameters", "mask", "runs", [5, 7]),
    "negative run": _set("parameters", "mask", "runs", [240_001, -1]),
    "mask not an object": _set("parameters", "mask", [1, 2, 3]),
    "absurd grow": _set("parameters", "grow", 1e9),
    "nan feather": _set("parameters", "feather", float("nan")),
    "parameters not an object": _set("parameters", 5),
    "generation not an object": _set("parameters", "generation", []),
    "steps not a number": _set("parameters", "generation", {"steps": "many"}),
    "generator not an object": _set("models", "generator", "sd"),
    "lora without a path": _set("models", "generator", "loras", [{"scale": 1}]),
    "seed a string": _set("seed", "abc"),
    "seed too big": _set("seed", 2**40),
    "unknown mode": _set("operation", "edit:explode"),
    "not an edit": _set("operation", "sketch"),
    "bad sha": _set("inputs", "sha256", 17),
    "size of three": _set("inputs", "size", [1, 2, 3]),
    "threads absurd": _set("models", "generator", "threads", 10**9),
    "per-instance without step masks": _set("parameters", "prompt_for", {"cup": "a mug"}),
    "unknown matting backend": _set("parameters", "matte", {"backend": "nope", "band": 5, "box": [0, 0, 9, 9]}),
    "a detector as matting backend": _set("parameters", "matte", {"backend": "grounding-dino-tiny", "band": 5,
                                                                  "box": [0, 0, 9, 9]}),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_recipe_gets_one_line_invalid_input_error(classical_output, tmp_path, capsys, case):
    _tamper(classical_output, TAMPERED[case])
    capsys.readouterr()
    start = time.perf_counter()
    status = main(["replay", str(classical_output), "-o", str(tmp_path / "again.png")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "unexpected" not in err and "error:" in err
    assert time.perf_counter() - start < 3  # refused before anything big is allocated


def test_the_untampered_classical_output_replays(classical_output, tmp_path, capsys):
    _replays_exactly(classical_output, tmp_path, capsys)


def test_replay_api_checks_before_allocating(classical_output):
    from editanything.replay import check_recipe

    recipe = read_recipe(classical_output)
    recipe.parameters["mask"] = {"size": [80000, 80000], "runs": [6_400_000_000]}
    with pytest.raises(InvalidInputError, match="80000x80000, the input image 600x400"):
        check_recipe(recipe)

