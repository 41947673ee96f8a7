"""The "LCM" sampler: LCM-LoRA + LCMScheduler, against the diffusers pipeline called directly.

A tiny random LoRA for the tiny SD 1.5 inpainting UNet sits where `editanything models download
lcm-lora-sd15` puts the real one, so the models layer finds it as it would the real file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")

import tiny_sd  # noqa: E402
from model_pins import pin_to_files  # noqa: E402
from PIL import Image  # noqa: E402

from editanything.errors import ModelNotFound  # noqa: E402
from editanything.generate import GenerationParams, canonical_name  # noqa: E402
from editanything.generate.diffusion import DiffusionGenerator, Lora  # noqa: E402
from editanything.models.store import cached_sha256  # noqa: E402

SIZE = 32
LCM = GenerationParams(prompt="a red apple", negative_prompt="blurry", sampler="LCM", steps=2, cfg_scale=1.5,
                       seed=9, resolution=SIZE)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-lcm")


@pytest.fixture(scope="module")
def folder(work):
    return tiny_sd.save_diffusers(work / "sd15-inpainting")


def _reference(folder):
    pipe = diffusers.StableDiffusionInpaintPipeline.from_pretrained(
        folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def lcm_file(work, folder):
    return tiny_sd.save_kohya_lora(work / "lcm.safetensors", _reference(folder).unet, scale=0.3)


@pytest.fixture
def lcm_present(isolated_models, lcm_file, monkeypatch):
    dest = isolated_models / "lcm-lora-sd15" / "pytorch_lora_weights.safetensors"
    dest.parent.mkdir()
    dest.symlink_to(lcm_file)
    pin_to_files(monkeypatch, isolated_models, "lcm-lora-sd15")
    return dest


def _direct(pipe, params, image, mask):
    out = pipe(prompt=params.prompt, negative_prompt=params.negative_prompt, image=Image.fromarray(image),
               mask_image=Image.fromarray(mask.astype(np.uint8) * 255), height=SIZE, width=SIZE,
               num_inference_steps=params.steps, guidance_scale=params.cfg_scale, strength=params.strength,
               generator=torch.Generator("cpu").manual_seed(params.seed), output_type="np")
    return (out.images[0] * 255).round().astype(np.uint8)


def test_sampler_name_is_the_webuis():
    assert canonical_name("lcm") == "LCM"


def test_lcm_matches_diffusers_with_the_lora_and_scheduler_then_turns_off(folder, lcm_present, lcm_file):
    image, mask = tiny_sd.image_and_mask(SIZE)
    ours = DiffusionGenerator(folder)
    ran = ours.inpaint(image, mask, LCM)
    generated = ran.images[0]

    pipe = _reference(folder)
    pipe.load_lora_weights(str(lcm_file), adapter_name="lcm")
    pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
    np.testing.assert_array_equal(generated, _direct(pipe, LCM, image, mask))
    assert ran.model["lcm_lora"] == {"path": str(lcm_present), "sha256": cached_sha256(lcm_file)}

    # Another sampler on the same generator: the LoRA is off and the model is the stock one again.
    ddim = GenerationParams(prompt="a red apple", sampler="DDIM", steps=2, seed=3, resolution=SIZE)
    fresh = DiffusionGenerator(folder).inpaint(image, mask, ddim).images[0]
    off = ours.inpaint(image, mask, ddim)
    np.testing.assert_array_equal(off.images[0], fresh)
    assert not off.model["lcm"] and "lcm_lora" not in off.model
    assert not np.array_equal(generated, fresh)


def test_lcm_keeps_the_users_lora_at_its_scale(folder, lcm_present, lcm_file, work):
    image, mask = tiny_sd.image_and_mask(SIZE)
    user = tiny_sd.save_kohya_lora(work / "user.safetensors", _reference(folder).unet, scale=0.5)
    generated = DiffusionGenerator(folder, loras=[Lora(user, 0.5)]).inpaint(image, mask, LCM).images[0]

    pipe = _reference(folder)
    pipe.load_lora_weights(str(user), adapter_name="user")
    pipe.load_lora_weights(str(lcm_file), adapter_name="lcm")
    pipe.set_adapters(["user", "lcm"], adapter_weights=[0.5, 1.0])
    pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
    np.testing.assert_array_equal(generated, _direct(pipe, LCM, image, mask))


def test_lcm_without_its_lora_says_how_to_fetch_it(folder, isolated_models):
    image, mask = tiny_sd.image_and_mask(SIZE)
    with pytest.raises(ModelNotFound, match="editanything models download lcm-lora-sd15"):
        DiffusionGenerator(folder).inpaint(image, mask, LCM)


def test_lcm_on_fp16_files_loads_the_unet_as_fp32_for_its_lora_with_the_same_pixels(work, lcm_present):
    """fp16 files keep their UNet in fp16 (generate/upcast.py) until the LCM-LoRA is asked for: PEFT builds
    its layers in the dtype of the weights they wrap, so the UNet is loaded again as fp32 first."""
    from editanything.generate.upcast import stored_half

    released = tiny_sd.save_diffusers(work / "released" / "sd15-inpainting", variant="fp16")
    image, mask = tiny_sd.image_and_mask(SIZE)
    ddim = GenerationParams(prompt="a red apple", sampler="DDIM", steps=2, seed=3, resolution=SIZE)
    lean, upcast = DiffusionGenerator(released), DiffusionGenerator(released, layerwise_upcast=False)
    np.testing.assert_array_equal(lean.inpaint(image, mask, ddim).images[0], upcast.inpaint(image, mask, ddim).images[0])
    assert stored_half(lean.load().unet)
    np.testing.assert_array_equal(lean.inpaint(image, mask, LCM).images[0], upcast.inpaint(image, mask, LCM).images[0])
    assert not stored_half(lean.load().unet) and stored_half(lean.load().vae)
