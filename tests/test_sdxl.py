"""SDXL inpainting on a tiny random SDXL saved in the Hub repo's fp16 layout, against diffusers called directly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import tiny_sd  # noqa: E402
import tiny_sdxl  # noqa: E402
from model_pins import pin_to_files  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import DEMOS, edit_output  # noqa: E402
from editanything.cli import main  # noqa: E402
from editanything.errors import InvalidInputError  # noqa: E402
from editanything.generate import GenerationParams, get_generator  # noqa: E402
from editanything.generate.sdxl import SDXLGenerator  # noqa: E402
from editanything.recipe import read_recipe  # noqa: E402

SIZE = 64
PARAMS = GenerationParams(prompt="a cat on a sofa", negative_prompt="blurry", sampler="Euler a", steps=2,
                          cfg_scale=5.0, seed=11, resolution=SIZE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_sdxl.save_sdxl(tmp_path_factory.mktemp("tiny-sdxl") / "sdxl-inpainting")


def test_matches_the_diffusers_pipeline_loaded_from_the_fp16_files(folder):
    image, mask = tiny_sd.image_and_mask(SIZE)
    ours = get_generator(str(folder))
    assert isinstance(ours, SDXLGenerator)
    generated = ours.inpaint(image, mask, PARAMS)

    pipe = diffusers.StableDiffusionXLInpaintPipeline.from_pretrained(
        folder, variant="fp16", dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    out = pipe(prompt=PARAMS.prompt, negative_prompt=PARAMS.negative_prompt, image=Image.fromarray(image),
               mask_image=Image.fromarray(mask.astype(np.uint8) * 255), height=SIZE, width=SIZE, strength=1.0,
               num_inference_steps=PARAMS.steps, guidance_scale=PARAMS.cfg_scale,
               generator=torch.Generator("cpu").manual_seed(PARAMS.seed), output_type="np")
    assert len(generated.images) == 1 and generated.seeds == [11]
    np.testing.assert_array_equal(generated.images[0], (out.images[0] * 255).round().astype(np.uint8))
    assert generated.model["family"] == "sdxl" and generated.threads >= 1


def test_named_model_resolves_and_prompt_weights_are_refused(folder, isolated_models):
    (isolated_models / "sdxl-inpainting").symlink_to(folder, target_is_directory=True)
    generator = get_generator("sdxl-inpainting")
    assert generator.name == "sdxl-inpainting" and generator.folder == isolated_models / "sdxl-inpainting"
    image, mask = tiny_sd.image_and_mask(SIZE)
    with pytest.raises(InvalidInputError, match="prompt weights"):
        generator.inpaint(image, mask, GenerationParams(prompt="a (red:1.3) apple", steps=1, resolution=SIZE))


def test_cli_edit_with_sdxl_replays_bit_exactly(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "chelsea.jpg"), "--box", "100,40,330,260", "--prompt", "a fox",
                 "--model", str(folder), "--segmenter", "grabcut", "--steps", "2", "--seed", "3",
                 "--resolution", str(SIZE), "-o", str(out), "-q"]) == 0
    recipe = read_recipe(edit_output(out, "chelsea"))
    assert recipe.models["generator"]["family"] == "sdxl" and recipe.seed == 3
    assert main(["replay", str(edit_output(out, "chelsea"))]) == 0
    assert "identical to the original" in capsys.readouterr().out


def test_lcm_sampler_loads_the_sdxl_lcm_lora_like_diffusers(folder, isolated_models, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    pipe = diffusers.StableDiffusionXLInpaintPipeline.from_pretrained(
        folder, variant="fp16", dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    lora = tiny_sdxl.save_lora(isolated_models / "lcm-lora-sdxl", pipe.unet)
    pin_to_files(monkeypatch, isolated_models, "lcm-lora-sdxl")
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="a cat", sampler="LCM", steps=2, cfg_scale=1.5, seed=5, resolution=SIZE)
    ours = SDXLGenerator(folder)
    ran = ours.inpaint(image, mask, params)
    generated = ran.images[0]

    pipe.load_lora_weights(str(lora), adapter_name="lcm")
    pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
    out = pipe(prompt="a cat", image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
               height=SIZE, width=SIZE, strength=1.0, num_inference_steps=2, guidance_scale=1.5,
               generator=torch.Generator("cpu").manual_seed(5), output_type="np")
    np.testing.assert_array_equal(generated, (out.images[0] * 255).round().astype(np.uint8))
    assert ran.model["lcm"] and ran.model["lcm_lora"]["path"] == str(lora)


def test_auto_prefers_sd15_on_a_cpu_and_says_why(folder, isolated_models, monkeypatch):
    (isolated_models / "sdxl-inpainting").symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    only_sdxl = get_generator("auto")
    assert only_sdxl.name == "sdxl-inpainting" and "only Stable Diffusion model" in only_sdxl.describe()
    tiny_sd.save_diffusers(isolated_models / "sd15-inpainting", variant="fp16")
    on_cpu = get_generator("auto")
    assert on_cpu.name == "sd15-inpainting" and "on a CPU" in on_cpu.describe()
    assert "fetch lcm-lora-sd15" in on_cpu.describe()
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cuda")
    assert get_generator("auto").name == "sdxl-inpainting"  # nothing loads: the choice alone


def test_auto_without_stable_diffusion_is_opencv_and_says_so(isolated_models):
    generator = get_generator("auto")
    assert generator.name == "classical-telea" and "no Stable Diffusion weights" in generator.describe()
