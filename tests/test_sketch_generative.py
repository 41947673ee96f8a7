"""The sd-lineart sketch style: SD 1.5 img2img + the line-art ControlNet on the photo's HED lines.

Tiny random SD 1.5 and ControlNet models sit where `editanything models download sd15
controlnet-lineart` puts the real ones (fp16 files, pinned to the tiny files), so the models layer
finds and checks them as it would the real weights; HED is the real detector (`make test` fetches
it). The CLI runs end to end over real photos; the result is checked against the diffusers
pipeline called directly, and replayed from its PNG.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_sd  # noqa: E402
from model_pins import pin_to_files  # noqa: E402
from PIL import Image  # noqa: E402

from editanything.cli import main  # noqa: E402
from editanything.engines import get_engine  # noqa: E402
from editanything.errors import InvalidInputError  # noqa: E402
from editanything.imageio import read_image, read_png_text  # noqa: E402
from editanything.models import find_model  # noqa: E402
from editanything.sketch import generative, sketch, style_params  # noqa: E402

DEMOS = Path(__file__).resolve().parents[1] / "demos"
REAL_HED = find_model("hed")
FAST = ["--param", "steps=2", "--param", "resolution=64"]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def diffusers(torch):
    return pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory, diffusers):
    if REAL_HED is None:
        pytest.skip("HED weights not downloaded: run `editanything models download hed`")
    root = tmp_path_factory.mktemp("lineart-models")
    tiny_sd.save_sd15_base(root / "sd15")
    tiny_sd.save_controlnet(root / "controlnet-lineart", variant="fp16")
    (root / "hed").symlink_to(REAL_HED.folder)
    return root


@pytest.fixture
def models(tiny_root, monkeypatch, tmp_path):
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(tiny_root))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    pin_to_files(monkeypatch, tiny_root, "sd15", "controlnet-lineart")
    yield tiny_root
    generative.release()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two real photos at small, odd sizes (not multiples of 8), one of them PNG."""
    folder = tmp_path_factory.mktemp("photos")
    for name, size, ext in (("coffee", (90, 70), ".jpg"), ("rocket", (61, 83), ".png")):
        rgb = cv2.resize(read_image(DEMOS / f"{name}.jpg"), size, interpolation=cv2.INTER_AREA)
        Image.fromarray(rgb).save(folder / f"{name}{ext}", quality=95)
    return folder


def _reference_pipeline(root: Path, torch, diffusers):
    net = diffusers.ControlNetModel.from_pretrained(root / "controlnet-lineart", variant="fp16", dtype=torch.float32)
    pipe = diffusers.StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
        root / "sd15", controlnet=net, variant="fp16", dtype=torch.float32, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_style_and_its_parameters():
    params = style_params("sd-lineart")
    assert params["preset"] == "pencil" and params["seed"] == -1 and params["prompt"] == ""
    assert set(generative.PRESETS) == {"pencil", "anime"}
    assert generative.generation_size(90, 70, 64) == (64, 48)
    assert generative.generation_size(61, 83, 64) == (48, 64)
    pencil = generative.generation_params(prompt="", negative_prompt="", preset="pencil")
    anime = generative.generation_params(prompt="", negative_prompt="", preset="anime")
    assert "pencil" in pencil.prompt and "anime" in anime.prompt and pencil.negative_prompt != anime.negative_prompt
    given = generative.generation_params(prompt="ink wash", negative_prompt="", preset="anime")
    # a prompt given replaces the preset's
    assert (given.prompt, given.negative_prompt) == ("ink wash", anime.negative_prompt)
    with pytest.raises(InvalidInputError, match="unknown sd-lineart preset 'oil'.*pencil, anime"):
        generative.generation_params(prompt="", negative_prompt="", preset="oil")


def test_matches_the_diffusers_pipeline_called_directly(models, torch, diffusers):
    rgb = cv2.resize(read_image(DEMOS / "chelsea.jpg"), (64, 48), interpolation=cv2.INTER_AREA)
    ours = sketch(rgb, "sd-lineart", prompt="pencil drawing, cross-hatching", negative_prompt="color",
                  sampler="Euler a", steps=3, cfg_scale=6.0, strength=0.8, control_scale=0.9, seed=1234,
                  resolution=64)

    pipe = _reference_pipeline(models, torch, diffusers)
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    lines = sketch(rgb, "hed", runtime="torch")  # the photo's own HED lines (the ControlNet's runtime), white on black
    out = pipe(prompt="pencil drawing, cross-hatching", negative_prompt="color", image=Image.fromarray(rgb),
               control_image=Image.fromarray(255 - lines).convert("RGB"), height=48, width=64, strength=0.8,
               num_inference_steps=3, guidance_scale=6.0, controlnet_conditioning_scale=0.9,
               generator=torch.Generator("cpu").manual_seed(1234), output_type="np")
    expected = cv2.cvtColor((out.images[0] * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(ours, expected)
    # the lines steer the drawing: without their weight it is another one
    assert not np.array_equal(ours, sketch(rgb, "sd-lineart", sampler="Euler a", steps=3, seed=1234, resolution=64,
                                           prompt="pencil drawing, cross-hatching", negative_prompt="color",
                                           cfg_scale=6.0, strength=0.8, control_scale=0.0))


def test_cli_batch_draws_grey_sketches_of_each_size_and_replays_them_exactly(models, photos, tmp_path, capsys,
                                                                              monkeypatch):
    from editanything import batch

    engines = []
    monkeypatch.setattr(batch, "get_engine", lambda *a, **kw: engines.append(kw) or get_engine(*a, **kw))
    out = tmp_path / "out"
    argv = ["sketch", str(photos), "-o", str(out), "--style", "sd-lineart", "--prompt",
            "pencil drawing, cross-hatching", *FAST, "-q"]
    assert main(argv) == 0
    assert engines[0]["workers"] == 1  # one model in one process by default: it takes every core
    seeds = set()
    for name, ext in (("coffee", ".jpg"), ("rocket", ".png")):
        source = photos / f"{name}{ext}"
        result = out / f"{name}.png"
        drawing = np.asarray(Image.open(result))
        photo = read_image(source)
        assert drawing.dtype == np.uint8 and drawing.shape == photo.shape[:2]  # grey, the photo's size
        assert drawing.std() > 2  # not a blank page
        assert not np.array_equal(drawing, cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))  # not the photo unchanged
        text = read_png_text(result)
        recipe = json.loads(text["editanything"])
        assert recipe["operation"] == "sketch:sd-lineart"  # the same Recipe an edit writes, of kind sketch
        settings = recipe["parameters"]["sketch"]
        assert settings["prompt"] == "pencil drawing, cross-hatching"
        assert recipe["inputs"]["image"] == str(source) and settings["threads"] >= 1
        seed = settings["seed"]
        assert 0 <= seed < 2**32 and recipe["seed"] == seed  # -1 became a real seed, recorded
        seeds.add(seed)
        assert {m["kind"] for m in recipe["models"]["generator"]["controlnets"]} == {"lines"}
        assert recipe["models"]["generator"]["name"] == "sd15" and recipe["models"]["edges"]["files"]
        assert text["parameters"].startswith("pencil drawing, cross-hatching\nNegative prompt: color")
        assert f"Seed: {seed}," in text["parameters"] and "ControlNet 0: " in text["parameters"]

        capsys.readouterr()
        assert main(["replay", str(result), "-q", "--beside"]) == 0
        assert "identical to the original" in capsys.readouterr().out
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{name}.replay.png")), drawing)
    assert len(seeds) == 2  # a random seed per photo

    # resumable as every batch: a re-run skips both
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out


def test_replay_finds_a_moved_photo_and_refuses_a_different_one(models, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sketch", str(photos / "rocket.png"), "-o", str(out), "--style", "sd-lineart", "--preset", "anime",
                 "--seed", "42", *FAST, "-q"]) == 0
    settings = json.loads(read_png_text(out / "rocket.png")["editanything"])["parameters"]["sketch"]
    assert settings["seed"] == 42 and settings["preset"] == "anime"
    assert settings["prompt"] == generative.PRESETS["anime"][0]  # the words it ran with
    moved = tmp_path / "moved.png"
    moved.write_bytes((photos / "rocket.png").read_bytes())
    capsys.readouterr()
    assert main(["replay", str(out / "rocket.png"), "--image", str(moved), "-o", str(tmp_path / "again.png")]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["replay", str(out / "rocket.png"), "--image", str(photos / "coffee.jpg")]) == 2
    assert "not the image this sketch was made from" in capsys.readouterr().err


def _old_format(recipe: dict) -> dict:
    """A sketch recipe as the code before one Recipe format wrote it (style, max_side and prompt_expansion
    beside the fields, the style's settings as `parameters`): users keep PNGs written so."""
    p = recipe["parameters"]
    return {"operation": "sketch", "style": recipe["operation"].split(":")[1], "parameters": p["sketch"],
            "inputs": recipe["inputs"], "max_side": p["max_side"], "models": recipe["models"],
            "seed": recipe["seed"], "versions": recipe["versions"],
            **({"prompt_expansion": p["prompt_expansion"]} if p.get("prompt_expansion") else {})}


def test_an_old_format_sketch_png_still_replays_bit_exactly(models, photos, tmp_path, capsys):
    from editanything.imageio import write_image

    out = tmp_path / "out"
    assert main(["sketch", str(photos / "rocket.png"), "-o", str(out), "--style", "sd-lineart", "--seed", "7",
                 "--max-side", "48", *FAST, "-q"]) == 0
    drawing = read_image(out / "rocket.png", gray=True)
    text = read_png_text(out / "rocket.png")
    old = tmp_path / "old.png"
    write_image(old, drawing, text={**text, "editanything": json.dumps(_old_format(json.loads(text["editanything"])),
                                                                        sort_keys=True)})
    assert json.loads(read_png_text(old)["editanything"])["style"] == "sd-lineart"  # the old chunk, as on disk
    capsys.readouterr()
    assert main(["replay", str(old), "-o", str(tmp_path / "again.png")]) == 0
    assert "replayed sketch:sd-lineart" in capsys.readouterr().out
    again = read_image(tmp_path / "again.png", gray=True)
    assert again.shape == drawing.shape and again.std() > 2
    np.testing.assert_array_equal(again, drawing)
    # the replay is written in today's format
    assert json.loads(read_png_text(tmp_path / "again.png")["editanything"])["operation"] == "sketch:sd-lineart"


def test_a_tampered_old_format_sketch_recipe_is_one_line(models, photos, tmp_path, capsys):
    from editanything.imageio import write_image

    out = tmp_path / "out"
    assert main(["sketch", str(photos / "rocket.png"), "-o", str(out), "--style", "sd-lineart", *FAST, "-q"]) == 0
    text = read_png_text(out / "rocket.png")
    old = _old_format(json.loads(text["editanything"]))
    old["parameters"]["threads"] = 10**9
    write_image(tmp_path / "bad.png", read_image(out / "rocket.png", gray=True),
                text={**text, "editanything": json.dumps(old)})
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parameters.sketch.threads" in err[0], err


def test_edits_and_sketches_replay_through_the_same_function(models, photos, tmp_path, monkeypatch):
    from editanything import replay as replaying
    from editanything.pipeline import EditRequest, Editor

    out = tmp_path / "out"
    assert main(["sketch", str(photos / "rocket.png"), "-o", str(out), "--style", "sd-lineart", "--seed", "3",
                 *FAST, "-q"]) == 0
    coffee = read_image(photos / "coffee.jpg")
    mask = np.zeros(coffee.shape[:2], bool)
    mask[10:60, 10:60] = True
    edit = Editor(generator="classical").edit(coffee, EditRequest(mode="remove", mask=mask),
                                              source=str(photos / "coffee.jpg"))
    edited = edit.save(out / "coffee-removed.png")
    ran = []
    monkeypatch.setattr(replaying, "check_recipe", lambda r, f=replaying.check_recipe: ran.append(r.operation) or f(r))
    for result in (out / "rocket.png", edited):
        pixels, recipe = replaying.replay(result)
        np.testing.assert_array_equal(pixels, read_image(result, gray=pixels.ndim == 2))
    assert list(dict.fromkeys(ran)) == ["sketch:sd-lineart", "edit:remove"]  # one check for both kinds


def test_missing_weights_stop_before_any_photo_with_one_download_command(isolated_models, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sketch", str(photos), "-o", str(out), "--style", "sd-lineart", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].endswith("editanything models download sd15 controlnet-lineart hed")
    assert not any(out.rglob("*.png"))


def test_bad_settings_stop_before_any_photo(isolated_models, photos, tmp_path, capsys):
    assert main(["sketch", str(photos), "-o", str(tmp_path / "a"), "--style", "sd-lineart", "--param", "steps=0"]) == 2
    assert "steps must be an int in 1..1000" in capsys.readouterr().err
    assert main(["sketch", str(photos), "-o", str(tmp_path / "b"), "--style", "pencil", "--prompt", "x"]) == 2
    assert "has no parameter 'prompt'" in capsys.readouterr().err


def test_a_classical_sketch_is_not_replayed_as_an_edit(photos, tmp_path, capsys):
    assert main(["sketch", str(photos / "coffee.jpg"), "-o", str(tmp_path), "-q"]) == 0
    assert main(["replay", str(tmp_path / "coffee.png")]) == 2
    assert "run `editanything sketch --style pencil`" in capsys.readouterr().err
