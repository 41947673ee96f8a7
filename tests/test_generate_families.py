"""`generate` with SDXL and FLUX.2 [klein]: txt2img and img2img against the stock diffusers pipelines on tiny
random-weight models in the official layouts; batches are each seed alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import tiny_flux2  # noqa: E402
import tiny_sd  # noqa: E402
import tiny_sdxl  # noqa: E402
from PIL import Image  # noqa: E402

from editanything.errors import InvalidInputError  # noqa: E402
from editanything.generate import GenerationParams  # noqa: E402
from editanything.generation import GenerateRequest, generation_size  # noqa: E402
from editanything.pipeline import Editor  # noqa: E402

SIZE = 32
SEED = 21


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="module")
def sdxl(work):
    return tiny_sdxl.save_sdxl_base(work / "sdxl-base")


@pytest.fixture(scope="module")
def flux(work):
    return tiny_flux2.save_klein(work / "flux2-klein-4b")


def _call(pipe, **kw):
    pipe.set_progress_bar_config(disable=True)
    return np.asarray(pipe(**kw, generator=torch.Generator("cpu").manual_seed(SEED)).images[0])


def test_sdxl_txt2img_and_img2img_match_the_stock_pipelines(sdxl):
    editor = Editor(generator=str(sdxl))
    params = GenerationParams(prompt="a red apple", negative_prompt="blurry", sampler="Euler", steps=2, cfg_scale=5.0,
                              seed=SEED, width=SIZE, height=SIZE, strength=0.7)
    assert generation_size(editor.text_generator, GenerationParams(prompt="x"), None) == (1024, 1024)
    ours = editor.generate(GenerateRequest(params)).images[0]
    stock = diffusers.StableDiffusionXLPipeline.from_pretrained(sdxl, variant="fp16", dtype=torch.float32,
                                                                local_files_only=True)
    common = dict(prompt="a red apple", negative_prompt="blurry", num_inference_steps=2, guidance_scale=5.0)
    np.testing.assert_array_equal(ours, _call(stock, height=SIZE, width=SIZE, **common))
    image, _ = tiny_sd.image_and_mask(SIZE)
    ours = editor.generate(GenerateRequest(params, image=image)).images[0]
    stock = diffusers.StableDiffusionXLImg2ImgPipeline.from_pretrained(sdxl, variant="fp16", dtype=torch.float32,
                                                                       local_files_only=True)
    np.testing.assert_array_equal(ours, _call(stock, image=Image.fromarray(image), strength=0.7, **common))


def test_sdxl_batch_image_is_its_seed_alone(sdxl):
    editor = Editor(generator=str(sdxl))
    params = GenerationParams(prompt="x", sampler="Euler a", steps=1, seed=5, batch_size=3, width=SIZE, height=SIZE)
    batch = editor.generate(GenerateRequest(params)).images
    alone = editor.generate(GenerateRequest(GenerationParams(prompt="x", sampler="Euler a", steps=1, seed=7,
                                                             width=SIZE, height=SIZE))).images[0]
    np.testing.assert_array_equal(batch[2], alone)


def test_sdxl_inpainting_model_is_refused(work):
    folder = tiny_sdxl.save_sdxl(work / "sdxl-inpainting")
    with pytest.raises(InvalidInputError, match="cannot generate"):
        Editor(generator=str(folder)).generate(GenerateRequest(GenerationParams(prompt="x")))


def test_flux2_txt2img_and_img2img_match_the_stock_pipelines(flux):
    editor = Editor(generator=str(flux))
    generator = editor.text_generator
    assert generation_size(generator, GenerationParams(prompt="x"), None) == (1024, 1024)
    params = GenerationParams(prompt="a red apple", steps=2, seed=SEED, width=SIZE, height=SIZE, strength=0.6)
    ours = editor.generate(GenerateRequest(params))
    assert ours.recipe.parameters["generation"]["sampler"] == "Euler"  # the model's own default
    stock = diffusers.Flux2KleinPipeline.from_pretrained(flux, dtype=torch.float32, local_files_only=True)
    np.testing.assert_array_equal(ours.images[0], _call(stock, prompt="a red apple", height=SIZE, width=SIZE,
                                                        num_inference_steps=2, guidance_scale=1.0))
    image, _ = tiny_sd.image_and_mask(SIZE)
    ours = editor.generate(GenerateRequest(params, image=image)).images[0]
    stock = diffusers.Flux2KleinInpaintPipeline.from_pretrained(flux, dtype=torch.float32, local_files_only=True)
    full = Image.fromarray(np.full((SIZE, SIZE), 255, np.uint8))
    np.testing.assert_array_equal(ours, _call(stock, prompt="a red apple", image=Image.fromarray(image),
                                              mask_image=full, height=SIZE, width=SIZE, strength=0.6,
                                              num_inference_steps=2, guidance_scale=1.0))


def test_flux2_sizes_are_multiples_of_16(flux):
    editor = Editor(generator=str(flux))
    with pytest.raises(InvalidInputError, match="multiples of 16"):
        editor.generate(GenerateRequest(GenerationParams(prompt="x", width=40, height=32)))
    assert not editor.text_generator.loaded


def test_auto_picks_a_text_to_image_model_by_device_and_names_the_download(sdxl, flux, work, isolated_models,
                                                                          monkeypatch):
    from model_pins import pin_to_files

    from editanything.errors import ModelNotFound
    from editanything.generate import auto

    with pytest.raises(ModelNotFound, match="editanything models download sd15"):
        Editor().text_generator
    sd15 = tiny_sd.save_sd15_base(work / "sd15")
    for name, folder in (("sd15", sd15), ("sdxl-base", sdxl), ("flux2-klein-4b", flux)):
        (isolated_models / name).symlink_to(folder, target_is_directory=True)
    pin_to_files(monkeypatch, isolated_models, "sd15", "sdxl-base", "flux2-klein-4b")
    assert Editor().text_generator.name == "sd15"  # a CPU: SD 1.5 first
    monkeypatch.setattr("editanything.models.pick_device", lambda *a: "cuda")
    assert auto.pick_text()[0] == "flux2-klein-4b"
    (isolated_models / "flux2-klein-4b").unlink()
    assert auto.pick_text()[0] == "sdxl-base"
    monkeypatch.undo()  # a CPU again, and the manifest's own pins
    pin_to_files(monkeypatch, isolated_models, "sdxl-base")
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(isolated_models))
    # the named manifest model loads and generates through the SDXL backend
    editor = Editor(generator="sdxl-base")
    out = editor.generate(GenerateRequest(GenerationParams(prompt="x", sampler="Euler", steps=1, seed=1, width=SIZE,
                                                           height=SIZE)))
    assert out.recipe.models["generator"]["name"] == "sdxl-base" and out.images[0].shape == (SIZE, SIZE, 3)
