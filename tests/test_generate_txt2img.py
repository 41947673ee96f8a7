"""`generate`: txt2img and img2img on tiny random-weight SD 1.5, checked against the stock diffusers pipelines;
batches, replay, prompts files and the CLI's one-line refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import tiny_sd  # noqa: E402
from PIL import Image  # noqa: E402

from editanything.cli import main  # noqa: E402
from editanything.errors import InvalidInputError  # noqa: E402
from editanything.generate import GenerationParams, sampler_names  # noqa: E402
from editanything.generation import GenerateRequest  # noqa: E402
from editanything.imageio import read_image, read_png_text  # noqa: E402
from editanything.pipeline import Editor  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    """A tiny text-to-image SD 1.5 laid out like checkpoints/sd15/ (fp16 files, StableDiffusionPipeline)."""
    return tiny_sd.save_sd15_base(tmp_path_factory.mktemp("gen") / "sd15")


@pytest.fixture(scope="module")
def editor(sd15):
    return Editor(generator=str(sd15))


def _stock(cls, folder):
    pipe = cls.from_pretrained(folder, variant="fp16", dtype=torch.float32, safety_checker=None,
                               feature_extractor=None, requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    return pipe


def _params(**kw) -> GenerationParams:
    base = dict(prompt="a tiger drinking from a river", negative_prompt="blurry", sampler="Euler", steps=2,
                cfg_scale=6.0, seed=42, width=SIZE, height=SIZE)
    return GenerationParams(**{**base, **kw})


def test_txt2img_matches_the_stock_pipeline(editor, sd15):
    params = _params()
    result = editor.generate(GenerateRequest(params))
    pipe = _stock(diffusers.StableDiffusionPipeline, sd15)
    expected = pipe(prompt=params.prompt, negative_prompt=params.negative_prompt, height=SIZE, width=SIZE,
                    num_inference_steps=2, guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(42)).images[0]
    assert len(result.images) == 1 and result.images[0].shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(result.images[0], np.asarray(expected))
    recipe = result.recipe
    assert recipe.operation == "generate:txt2img" and recipe.seed == 42
    assert recipe.parameters["generation_size"] == [SIZE, SIZE]
    assert recipe.models["generator"]["threads"] == torch.get_num_threads()


def test_img2img_matches_the_stock_pipeline(editor, sd15):
    image, _ = tiny_sd.image_and_mask(SIZE)
    params = _params(strength=0.6, steps=3)
    result = editor.generate(GenerateRequest(params, image=image), source="photo.png")
    pipe = _stock(diffusers.StableDiffusionImg2ImgPipeline, sd15)
    expected = pipe(prompt=params.prompt, negative_prompt=params.negative_prompt, image=Image.fromarray(image),
                    strength=0.6, num_inference_steps=3, guidance_scale=6.0,
                    generator=torch.Generator("cpu").manual_seed(42)).images[0]
    np.testing.assert_array_equal(result.images[0], np.asarray(expected))
    assert result.recipe.operation == "generate:img2img"
    assert result.recipe.inputs["size"] == [SIZE, SIZE] and len(result.recipe.inputs["sha256"]) == 64
    assert "Denoising strength: 0.6" in result.png_text()["parameters"]


@pytest.mark.parametrize("sampler", [s for s in sampler_names() if s != "LCM"])
def test_each_image_of_a_batch_is_its_seed_alone(editor, sampler):
    batch = editor.generate(GenerateRequest(_params(sampler=sampler, steps=1, seed=100, batch_size=3))).images
    assert len(batch) == 3
    alone = editor.generate(GenerateRequest(_params(sampler=sampler, steps=1, seed=102))).images[0]
    np.testing.assert_array_equal(batch[2], alone)
    assert not np.array_equal(batch[0], batch[1])


def test_random_seed_is_drawn_and_recorded(editor):
    result = editor.generate(GenerateRequest(_params(seed=-1)))
    assert 0 <= result.recipe.seed < 2**32
    again = editor.generate(GenerateRequest(_params(seed=result.recipe.seed)))
    np.testing.assert_array_equal(result.images[0], again.images[0])


def test_native_size_and_refusals(editor, sd15):
    generator = editor.text_generator
    from editanything.generation import generation_size

    assert generation_size(generator, GenerationParams(prompt="x"), None) == (512, 512)
    with pytest.raises(InvalidInputError, match="a prompt"):
        GenerateRequest(GenerationParams(prompt="  "))


def test_an_inpainting_model_is_refused_before_loading(tmp_path):
    folder = tiny_sd.save_diffusers(tmp_path / "sd15-inpainting")
    editor = Editor(generator=str(folder))
    with pytest.raises(InvalidInputError, match="cannot generate from a prompt"):
        editor.generate(GenerateRequest(_params()))
    assert not editor.text_generator.loaded


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def test_cli_writes_slug_seed_pngs_with_webui_parameters_and_replays_each_bit_exactly(sd15, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run("generate", "a tiger drinking from a river at sunset", "-o", out, "--model", sd15, "--steps", 1,
                "--sampler", "Euler a", "--seed", 7, "--batch-size", 2, "--width", SIZE, "--height", SIZE, "-q")
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a-tiger-drinking-from-a-river-at-sunset-7.png", "a-tiger-drinking-from-a-river-at-sunset-8.png"]
    text = read_png_text(out / names[1])
    assert text["parameters"].startswith("a tiger drinking from a river at sunset\n")
    assert "Seed: 8" in text["parameters"] and "Size: 32x32" in text["parameters"]
    assert "Denoising strength" not in text["parameters"]
    assert json.loads(text["editanything"])["seed"] == 8
    for name in names:
        replayed = tmp_path / f"re-{name}"
        assert _run("replay", out / name, "-o", replayed, "-q") == 0
        assert "identical to the original" in capsys.readouterr().out
        np.testing.assert_array_equal(read_image(replayed), read_image(out / name))


def test_cli_img2img_one_file_and_replay(sd15, tmp_path, capsys):
    image, _ = tiny_sd.image_and_mask(48)
    Image.fromarray(image).save(tmp_path / "photo.png")
    out = tmp_path / "drawn.png"
    code = _run("generate", "pencil drawing of this street", "--image", tmp_path / "photo.png", "--strength", 0.6,
                "-o", out, "--model", sd15, "--steps", 2, "--sampler", "Euler", "--width", SIZE, "--height", SIZE, "-q")
    assert code == 0, capsys.readouterr().err
    assert read_image(out).shape == (SIZE, SIZE, 3)
    assert _run("replay", out, "-o", tmp_path / "again.png", "-q") == 0
    assert "identical to the original" in capsys.readouterr().out


def test_prompts_file_with_a_bad_line_fails_that_line_by_name(sd15, tmp_path, capsys):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text('prompt,negative,seed\na red apple,blurry,3\n"a cat, sleeping",,4\na dog,,not-a-seed\n')
    out = tmp_path / "out"
    args = ["generate", "--prompts-file", prompts, "-o", out, "--model", sd15, "--steps", 1, "--sampler", "Euler",
            "--width", SIZE, "--height", SIZE, "-q"]
    assert _run(*args) == 1
    err = capsys.readouterr().err
    assert f"{prompts}:4" in err and "not-a-seed" in err
    assert sorted(p.name for p in out.iterdir()) == ["0002-a-red-apple.png", "0003-a-cat-sleeping.png"]
    recipe = json.loads(read_png_text(out / "0003-a-cat-sleeping.png")["editanything"])
    assert recipe["seed"] == 4 and recipe["parameters"]["generation"]["prompt"] == "a cat, sleeping"
    before = (out / "0002-a-red-apple.png").stat().st_mtime_ns
    assert _run(*args) == 1  # resumable: the finished lines are skipped
    assert "2 skipped" in capsys.readouterr().out
    assert (out / "0002-a-red-apple.png").stat().st_mtime_ns == before


@pytest.mark.parametrize("argv, message", [
    (["--width", "100", "--height", "64"], "a multiple of 8"),
    (["--width", "64"], "both --width and --height"),
    (["--strength", "0.5"], "add --image"),
])
def test_cli_bad_options_are_one_line_before_loading(sd15, tmp_path, capsys, argv, message):
    assert _run("generate", "x", "-o", tmp_path / "o", "--model", sd15, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_an_lcm_batch_image_is_its_seed_alone(editor, sd15, tmp_path, isolated_models, monkeypatch):
    """The one sampler the loop above leaves out: LCM needs its LoRA, here a tiny one where the download puts it."""
    pytest.importorskip("peft")
    from model_pins import pin_to_files

    unet = diffusers.UNet2DConditionModel.from_pretrained(sd15, subfolder="unet", variant="fp16")
    dest = isolated_models / "lcm-lora-sd15" / "pytorch_lora_weights.safetensors"
    dest.parent.mkdir()
    tiny_sd.save_kohya_lora(dest, unet, scale=0.3)
    pin_to_files(monkeypatch, isolated_models, "lcm-lora-sd15")
    generator = Editor(generator=str(sd15))
    lcm = dict(sampler="LCM", steps=2, cfg_scale=1.5, seed=200)
    batch = generator.generate(GenerateRequest(_params(**lcm, batch_size=3)))
    alone = generator.generate(GenerateRequest(_params(**{**lcm, "seed": 202})))
    np.testing.assert_array_equal(batch.images[2], alone.images[0])
    assert not np.array_equal(batch.images[0], batch.images[1])
    assert batch.recipe.models["generator"]["lcm_lora"]["path"] == str(dest)
    assert "Sampler: LCM" in batch.png_text()["parameters"]


def test_expand_writes_the_prompt_and_replay_needs_no_expander(sd15, tmp_path, capsys):
    out = tmp_path / "fox.png"
    assert _run("generate", "a fox", "--expand", "--expander", "rules", "--negative", "blurry", "-o", out,
                "--model", sd15, "--steps", 1, "--sampler", "Euler", "--seed", 3, "--width", SIZE, "--height", SIZE,
                "-q") == 0
    err = capsys.readouterr().err
    assert "expanded prompt (rules, for Stable Diffusion 1.5, seed 3): " in err
    recipe = json.loads(read_png_text(out)["editanything"])
    expansion = recipe["parameters"]["prompt_expansion"]
    used = recipe["parameters"]["generation"]
    assert expansion["words"] == "a fox" and expansion["expander"] == "rules"
    assert used["prompt"] == expansion["prompt"] != "a fox" and "fox" in used["prompt"]
    assert used["negative_prompt"] == "blurry"  # the user's negative prompt wins over the expander's
    assert _run("replay", out, "-o", tmp_path / "again.png", "-q") == 0
    assert "identical to the original" in capsys.readouterr().out
    assert _run("generate", "a fox", "--expander", "rules", "-o", tmp_path / "x.png", "--model", sd15) == 2
    assert "--expander, --llm-model and --llm-precision go with --expand" in capsys.readouterr().err


def test_image_folder_is_a_resumable_img2img_batch(sd15, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, offset in (("street.png", 0), ("park.jpg", 40)):
        image, _ = tiny_sd.image_and_mask(48)
        Image.fromarray(np.roll(image, offset, axis=1)).save(photos / name)
    (photos / "notes.txt").write_text("not a picture")
    out = tmp_path / "out"
    args = ["generate", "pencil drawing", "--image", photos, "--strength", 0.5, "--seed", 4, "-o", out, "--model",
            sd15, "--steps", 2, "--sampler", "Euler", "--width", SIZE, "--height", SIZE, "-q"]
    assert _run(*args) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["park.png", "street.png"]
    for name in ("park", "street"):
        recipe = json.loads(read_png_text(out / f"{name}.png")["editanything"])
        assert recipe["operation"] == "generate:img2img" and recipe["inputs"]["image"].endswith(name + (
            ".jpg" if name == "park" else ".png"))
        assert _run("replay", out / f"{name}.png", "-o", tmp_path / f"{name}-again.png", "-q") == 0
        assert "identical to the original" in capsys.readouterr().out
    assert _run(*args) == 0
    assert "2 skipped" in capsys.readouterr().out  # resumable: the finished pictures are not redone
