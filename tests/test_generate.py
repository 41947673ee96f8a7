"""Generators on tiny random-weight Stable Diffusion models, checked against the stock diffusers pipelines."""

from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import tiny_sd  # noqa: E402
from PIL import Image  # noqa: E402

from editanything import compose  # noqa: E402
from editanything.errors import InvalidInputError, ModelNotFound  # noqa: E402
from editanything.generate import ClassicalGenerator, GenerationParams, Generator, get_generator  # noqa: E402
from editanything.generate.diffusion import CONFIGS, DiffusionGenerator, Embedding, Lora, parse_lora  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-sd")


@pytest.fixture(scope="module")
def folder(work):
    return tiny_sd.save_diffusers(work / "sd15-inpainting")


@pytest.fixture(scope="module")
def released(work):
    """The layout of the released SD 1.5 inpainting repo: fp16 safetensors only."""
    return tiny_sd.save_diffusers(work / "released" / "sd15-inpainting", variant="fp16")


@pytest.fixture(scope="module")
def reference(folder):
    """The stock diffusers pipeline, loaded from the same folder without our code."""
    pipe = diffusers.StableDiffusionInpaintPipeline.from_pretrained(
        folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def ours(folder):
    return get_generator(str(folder))


@pytest.fixture(scope="module")
def baseline(ours):
    image, mask = tiny_sd.image_and_mask(SIZE)
    return ours.inpaint(image, mask, PARAMS).images[0]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


PARAMS = GenerationParams(prompt="a red apple <tiny>", negative_prompt="blurry", sampler="DDIM", steps=2,
                          cfg_scale=7.0, seed=1234, resolution=SIZE)


def _direct(pipe, scheduler_cls, params, image, mask, **options):
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **options)
    out = pipe(prompt=params.prompt, negative_prompt=params.negative_prompt, image=Image.fromarray(image),
               mask_image=Image.fromarray(mask.astype(np.uint8) * 255), height=image.shape[0], width=image.shape[1],
               num_inference_steps=params.steps, guidance_scale=params.cfg_scale, strength=params.strength,
               generator=torch.Generator("cpu").manual_seed(params.seed))
    return np.asarray(out.images[0])


@pytest.mark.parametrize("sampler, cls, options", [
    ("DDIM", diffusers.DDIMScheduler, {}),
    ("Euler a", diffusers.EulerAncestralDiscreteScheduler, {}),
    ("DPM++ 2M Karras", diffusers.DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
])
def test_full_image_mode_matches_the_diffusers_pipeline(ours, reference, sampler, cls, options):
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="a red apple", negative_prompt="blurry", sampler=sampler, steps=2,
                              cfg_scale=6.5, seed=77, resolution=SIZE)
    expected = _direct(reference, cls, params, image, mask, **options)
    generated = ours.inpaint(image, mask, params)
    assert len(generated.images) == 1 and generated.seeds == [77]
    np.testing.assert_array_equal(generated.images[0], expected)
    # through compose in full-image mode (no grow, no feather): generated pixels inside, input outside
    edited = compose.edit_region(image, mask, ours, params, mode="full", grow_px=0, feather_px=0).images[0]
    np.testing.assert_array_equal(edited, np.where(mask[..., None], expected, image))


def test_strength_below_one_matches_too(ours, reference):
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler="Euler", steps=4, cfg_scale=7.0, strength=0.5, seed=5,
                              resolution=SIZE)
    expected = _direct(reference, diffusers.EulerDiscreteScheduler, params, image, mask, use_karras_sigmas=False)
    np.testing.assert_array_equal(ours.inpaint(image, mask, params).images[0], expected)


def test_batches_and_seeds(ours):
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler="Euler a", steps=2, seed=10, batch_size=2, batch_count=2,
                              resolution=SIZE)
    ran = ours.inpaint(image, mask, params)
    images = ran.images
    assert len(images) == 4 and ran.seeds == [10, 11, 12, 13]
    assert all(im.shape == image.shape and im.dtype == np.uint8 for im in images)
    assert len({im.tobytes() for im in images}) == 4
    # batch_count runs are independent: the second batch is what a run seeded 12 gives
    again = ours.inpaint(image, mask, GenerationParams(prompt="x", sampler="Euler a", steps=2, seed=12, batch_size=2,
                                                       resolution=SIZE))
    np.testing.assert_array_equal(images[2], again.images[0])
    np.testing.assert_array_equal(images[3], again.images[1])


def test_random_seed_is_recorded_and_replays(ours):
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler="DDIM", steps=2, seed=-1, resolution=SIZE)
    ran = ours.inpaint(image, mask, params)
    first, seed = ran.images[0], ran.seeds[0]
    assert 0 <= seed < 2**32
    again = ours.inpaint(image, mask, GenerationParams(prompt="x", sampler="DDIM", steps=2, seed=seed, resolution=SIZE))
    np.testing.assert_array_equal(first, again.images[0])


def test_sizes_must_be_multiples_of_8(ours):
    image, mask = tiny_sd.image_and_mask(SIZE)
    with pytest.raises(InvalidInputError, match="multiples of 8"):
        ours.inpaint(image[:SIZE - 4], mask[:SIZE - 4], PARAMS)


def test_release_frees_and_reloads(folder, baseline):
    gen = DiffusionGenerator(folder)
    assert not gen.loaded
    image, mask = tiny_sd.image_and_mask(SIZE)
    first = gen.inpaint(image, mask, PARAMS).images[0]
    gen.release()
    assert not gen.loaded
    np.testing.assert_array_equal(gen.inpaint(image, mask, PARAMS).images[0], first)
    np.testing.assert_array_equal(first, baseline)


# ---- checkpoints ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_checkpoint_loads_offline_with_a_local_config(reference, folder, work, baseline, suffix, no_network):
    path = tiny_sd.save_single_file(work / f"tiny-webui{suffix}", dict(reference.components))
    gen = get_generator(str(path), config=folder)
    image, mask = tiny_sd.image_and_mask(SIZE)
    np.testing.assert_array_equal(gen.inpaint(image, mask, PARAMS).images[0], baseline)
    info = gen.model_info()
    assert info["format"] == "single-file" and info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["hash"] == info["sha256"][:10]


def test_single_file_uses_the_sd15_folder_from_checkpoints_by_default(isolated_models, released, reference, work,
                                                                         baseline, no_network):
    shutil.copytree(released, isolated_models / "sd15-inpainting")
    path = tiny_sd.save_single_file(work / "default-config.safetensors", dict(reference.components))
    image, mask = tiny_sd.image_and_mask(SIZE)
    np.testing.assert_array_equal(DiffusionGenerator(path).inpaint(image, mask, PARAMS).images[0], baseline)


def test_four_channel_checkpoint_with_an_inpainting_config(folder, work, no_network):
    components = tiny_sd.build_components(work / "four", in_channels=4)
    path = tiny_sd.save_single_file(work / "four-channel.safetensors", components)
    gen = DiffusionGenerator(path, config=folder)
    image, mask = tiny_sd.image_and_mask(SIZE)
    out = gen.inpaint(image, mask, PARAMS)
    unet = gen.load().unet
    assert unet.config.in_channels == 4
    for key, value in components["unet"].state_dict().items():
        torch.testing.assert_close(unet.state_dict()[key], value, rtol=0, atol=0)
    assert out.images[0].shape == image.shape


def test_single_file_with_an_original_yaml_and_the_hf_cache(work, monkeypatch, no_network):
    components = tiny_sd.build_components(work / "legacy")
    path = tiny_sd.save_single_file(work / "legacy.safetensors", components)
    yaml = tiny_sd.save_original_config(work / "tiny-v1-inpainting.yaml")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(work / "hf-empty" / "hub"))
    with pytest.raises(ModelNotFound, match="clip-vit-large-patch14"):
        DiffusionGenerator(path, original_config=yaml).load()
    hf = work / "hf"
    tiny_sd.fake_clip_cache(hf, components)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf / "hub"))
    pipe = DiffusionGenerator(path, original_config=yaml).load()
    for name in ("unet", "vae", "text_encoder"):
        loaded, original = getattr(pipe, name).state_dict(), components[name].state_dict()
        assert loaded.keys() == original.keys()
        for key in original:
            torch.testing.assert_close(loaded[key], original[key], rtol=0, atol=0)


@pytest.mark.parametrize("name, in_channels", [("v1-inpainting-inference.yaml", 9), ("v1-inference.yaml", 4)])
def test_shipped_original_configs_describe_sd15(name, in_channels):
    import yaml
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm, create_vae_diffusers_config_from_ldm

    config = yaml.safe_load((CONFIGS / name).read_text())
    unet = create_unet_diffusers_config_from_ldm(config, {})
    assert unet["in_channels"] == in_channels and unet["cross_attention_dim"] == 768
    assert list(unet["block_out_channels"]) == [320, 640, 1280, 1280] and unet["layers_per_block"] == 2
    assert unet["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    vae = create_vae_diffusers_config_from_ldm(config, {})
    assert list(vae["block_out_channels"]) == [128, 256, 512, 512] and vae["scaling_factor"] == 0.18215


def test_named_model_resolves_through_the_models_layer(isolated_models, released):
    with pytest.raises(ModelNotFound, match="editanything models download sd15-inpainting"):
        DiffusionGenerator("sd15-inpainting")
    assert isinstance(get_generator("auto"), ClassicalGenerator)
    shutil.copytree(released, isolated_models / "sd15-inpainting")
    gen = get_generator("auto")
    assert isinstance(gen, DiffusionGenerator) and gen.name == "sd15-inpainting"
    # fp16 files, loaded as diffusers loads them with variant="fp16", upcast to float32 on the CPU
    stock = diffusers.StableDiffusionInpaintPipeline.from_pretrained(
        released, variant="fp16", dtype=torch.float32, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False, local_files_only=True)
    stock.set_progress_bar_config(disable=True)
    image, mask = tiny_sd.image_and_mask(SIZE)
    expected = _direct(stock, diffusers.DDIMScheduler, PARAMS, image, mask)
    assert gen.load().unet.dtype == torch.float32
    np.testing.assert_array_equal(gen.inpaint(image, mask, PARAMS).images[0], expected)


def test_weights_that_do_not_fit_the_config_are_one_line(folder, tmp_path):
    import json

    broken = tmp_path / "mixed"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "unet" / "config.json").read_text())
    config["cross_attention_dim"] *= 2  # a UNet config of another model beside these weights
    (broken / "unet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="the weights do not fit the config") as err:
        DiffusionGenerator(broken).load()
    message = str(err.value)
    assert "\n" not in message and str(broken) in message and "has shape [64, 32]" in message


def test_registry_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="classical"):
        get_generator("no-such-generator")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="safetensors"):
        get_generator(str(tmp_path / "notes.txt"))
    with pytest.raises(InvalidInputError, match="model_index.json"):
        get_generator(str(tmp_path))
    with pytest.raises(InvalidInputError, match="segmenter"):
        DiffusionGenerator("sam-vit-b")


# ---- LoRA, textual inversion, ControlNet ----------------------------------------------------------

def test_lora_loads_with_its_scale(folder, reference, work, baseline):
    path = tiny_sd.save_kohya_lora(work / "tiny-lora.safetensors", reference.unet)
    image, mask = tiny_sd.image_and_mask(SIZE)
    off = DiffusionGenerator(folder, loras=[Lora(path, 0.0)]).inpaint(image, mask, PARAMS).images[0]
    full_gen = DiffusionGenerator(folder, loras=[f"{path}:1.0"])
    full = full_gen.inpaint(image, mask, PARAMS).images[0]
    half = DiffusionGenerator(folder, loras=[Lora(path, 0.5)]).inpaint(image, mask, PARAMS).images[0]
    np.testing.assert_array_equal(off, baseline)
    assert np.abs(full.astype(int) - baseline).mean() > 1
    assert np.abs(half.astype(int) - baseline).mean() < np.abs(full.astype(int) - baseline).mean()
    assert any("lora" in n for n, _ in full_gen.load().unet.named_modules())
    assert full_gen.model_info()["loras"] == [{"path": str(path), "scale": 1.0,
                                               "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]


def test_parse_lora():
    assert parse_lora("a/b.safetensors:0.7") == Lora(Path("a/b.safetensors"), 0.7)
    assert parse_lora("C:/x/b.safetensors") == Lora(Path("C:/x/b.safetensors"), 1.0)


def test_textual_inversion_embedding_loads_and_changes_the_output(folder, work, baseline):
    path = tiny_sd.save_embedding(work / "tiny-style.safetensors")
    gen = DiffusionGenerator(folder, embeddings=[Embedding(path, "<tiny>")])
    image, mask = tiny_sd.image_and_mask(SIZE)
    out = gen.inpaint(image, mask, PARAMS).images[0]  # PARAMS' prompt uses <tiny>
    pipe = gen.load()
    from safetensors.torch import load_file

    vectors = load_file(str(path))["emb_params"]
    ids = pipe.tokenizer.convert_tokens_to_ids(["<tiny>", "<tiny>_1"])
    torch.testing.assert_close(pipe.text_encoder.get_input_embeddings().weight[ids], vectors, rtol=0, atol=0)
    assert np.abs(out.astype(int) - baseline).mean() > 0.5


@pytest.fixture(scope="module")
def controlnet(work):
    return tiny_sd.save_controlnet(work / "controlnet-inpaint")


def test_controlnet_inpaint_matches_the_diffusers_pipeline(folder, controlnet, reference, baseline):
    gen = DiffusionGenerator(folder, controlnets=[("inpaint", controlnet)])
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="a red apple", sampler="DDIM", steps=2, cfg_scale=7.0, seed=3, resolution=SIZE)
    ours_out = gen.inpaint(image, mask, params).images[0]
    # diffusers' documented control image for ControlNet inpaint: pixels in [0, 1], masked ones at -1
    cond = image.astype(np.float32) / 255.0
    cond[mask] = -1.0
    net = diffusers.ControlNetModel.from_pretrained(controlnet, local_files_only=True)
    pipe = diffusers.StableDiffusionControlNetInpaintPipeline(**reference.components, controlnet=net)
    pipe.scheduler = diffusers.DDIMScheduler.from_config(reference.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(prompt="a red apple", image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                    control_image=torch.from_numpy(cond.transpose(2, 0, 1).copy())[None], height=SIZE, width=SIZE,
                    num_inference_steps=2, guidance_scale=params.cfg_scale, controlnet_conditioning_scale=1.0,
                    generator=torch.Generator().manual_seed(3)).images[0]
    np.testing.assert_array_equal(ours_out, np.asarray(expected))


def test_second_controlnet_from_the_image_or_a_given_map(folder, controlnet, work):
    image, mask = tiny_sd.image_and_mask(SIZE)
    one = DiffusionGenerator(folder, controlnets=[("inpaint", controlnet)]).inpaint(image, mask, PARAMS).images[0]
    two = DiffusionGenerator(folder, controlnets=[("inpaint", controlnet), ("canny", controlnet)],
                             controlnet_scale=[1.0, 0.8])
    assert type(two.load().controlnet).__name__ == "MultiControlNetModel"
    assert not np.array_equal(two.inpaint(image, mask, PARAMS).images[0], one)
    seg = DiffusionGenerator(folder, controlnets=[("seg", controlnet)])
    with pytest.raises(InvalidInputError, match="control"):
        seg.inpaint(image, mask, PARAMS)
    seg_map = np.zeros_like(image)
    seg_map[mask] = (120, 120, 80)
    assert seg.inpaint(image, mask, PARAMS, control={"seg": seg_map}).images[0].shape == image.shape
    with pytest.raises(InvalidInputError, match="ControlNet"):
        DiffusionGenerator(folder, controlnets=["depth"])
    with pytest.raises(InvalidInputError, match="controlnet_kinds"):
        DiffusionGenerator.from_pipeline(seg.load())
    with pytest.raises(InvalidInputError, match="controlnet_scale"):
        DiffusionGenerator(folder, controlnets=[("inpaint", controlnet)], controlnet_scale=[1.0, 1.0])


# ---- the protocol, shared by every backend --------------------------------------------------------

@pytest.mark.parametrize("make", [lambda f: ClassicalGenerator(), lambda f: ClassicalGenerator("ns", radius=3),
                                  lambda f: get_generator(str(f))], ids=["telea", "ns", "diffusion"])
def test_generator_contract(make, folder):
    gen = make(folder)
    assert isinstance(gen, Generator)
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="x", sampler="DDIM", steps=2, seed=4, batch_size=2, resolution=SIZE)
    out = gen.inpaint(image, mask, params).images
    assert len(out) == 2 and all(o.shape == image.shape and o.dtype == np.uint8 for o in out)
    info = gen.model_info()
    assert info["name"] == gen.name
    with pytest.raises(InvalidInputError):
        gen.inpaint(image, mask[:10], params)
    gen.release()



def test_lines_controlnet_uses_hed_lines_inverted(folder, controlnet, monkeypatch):
    from editanything.edges import hed

    image, mask = tiny_sd.image_and_mask(SIZE)
    drawing = np.full(image.shape[:2], 255, np.uint8)
    drawing[SIZE // 2, :] = 0  # a dark line on white, as hed_lines draws
    calls = []
    monkeypatch.setattr(hed, "hed_lines", lambda img, runtime: calls.append((img.shape, runtime)) or drawing)
    gen = DiffusionGenerator(folder, controlnets=[("lines", controlnet)])
    auto = gen.inpaint(image, mask, PARAMS).images[0]
    # PyTorch's HED, as before the runtime setting: an edit's recipe records none, and replays to the same bits
    assert calls == [(image.shape, "torch")]
    given = gen.inpaint(image, mask, PARAMS, control={"lines": np.repeat((255 - drawing)[..., None], 3, 2)}).images[0]
    np.testing.assert_array_equal(auto, given)


def test_wrapped_pipeline_is_not_reloaded_after_release(reference):
    gen = DiffusionGenerator.from_pipeline(reference, name="mine")
    assert gen.load() is reference and gen.name == "mine"
    gen.release()
    with pytest.raises(InvalidInputError, match="released"):
        gen.load()


def _half_fraction(module) -> float:
    """The share of `module`'s weight bytes held in fp16."""
    sizes = [(p.numel() * p.element_size(), p.dtype == torch.float16) for p in module.parameters()]
    return sum(n for n, half in sizes if half) / sum(n for n, _ in sizes)


def test_fp16_files_keep_their_weights_in_fp16_on_a_cpu_with_the_pixels_of_upcasting_them_at_load(released, folder):
    from editanything.generate.upcast import stored_half

    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(prompt="a (red:1.2) apple", negative_prompt="blurry", sampler="Euler a", steps=3,
                              cfg_scale=6.0, seed=5, batch_size=2, resolution=SIZE)
    lean, upcast = DiffusionGenerator(released), DiffusionGenerator(released, layerwise_upcast=False)
    pipe = lean.load()
    loaded = {c: [p.data_ptr() for p in getattr(pipe, c).parameters()] for c in ("unet", "vae", "text_encoder")}
    got, want = lean.inpaint(image, mask, params).images, upcast.inpaint(image, mask, params).images
    assert len(got) == len(want) == 2 and all(np.array_equal(a, b) for a, b in zip(got, want))
    for component in ("unet", "vae", "text_encoder"):
        module = getattr(pipe, component)
        assert stored_half(module) and module.dtype == torch.float32  # what the pipeline casts its inputs to
        # the layers hold the tensors they were loaded with, not copies made on each call
        assert [p.data_ptr() for p in module.parameters()] == loaded[component]
        assert not stored_half(getattr(upcast.load(), component))
    assert _half_fraction(pipe.unet) > 0.95 and _half_fraction(pipe.vae) > 0.95
    encoder = {n: p.dtype for n, p in pipe.text_encoder.named_parameters()}
    assert {d for n, d in encoder.items() if n.startswith("encoder.") and "norm" not in n} == {torch.float16}
    assert encoder["embeddings.token_embedding.weight"] == torch.float32  # the dtype transformers reports
    assert all(p.dtype == torch.float32 for p in upcast.load().unet.parameters())
    # fp32 files are never kept narrower
    assert all(p.dtype == torch.float32 for p in DiffusionGenerator(folder).load().unet.parameters())
    # the low-memory path loads a freed UNet and text encoder again the same way
    lean.low_memory = True
    again = lean.inpaint(image, mask, params).images
    assert all(np.array_equal(a, b) for a, b in zip(again, want))
    lean.restore("unet"), lean.restore("text_encoder")
    assert stored_half(pipe.unet) and stored_half(pipe.text_encoder)


def test_with_a_controlnet_the_unet_still_holds_fp16_weights(released, controlnet):
    """diffusers' from_pipe casts the whole pipeline to fp32 as it adds the ControlNet: the hooked layers get
    their fp16 weights back, or the memory saved would be lost."""
    import torch

    unet = DiffusionGenerator(released, controlnets=[("inpaint", controlnet)]).load().unet
    weights = {p.dtype for m in unet.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters(recurse=False)}
    assert weights == {torch.float16}


def test_fp16_files_with_a_controlnet_keep_the_pixels_of_upcasting_at_load(released, controlnet):
    from editanything.generate.upcast import stored_half

    image, mask = tiny_sd.image_and_mask(SIZE)
    lean = DiffusionGenerator(released, controlnets=[("inpaint", controlnet)])
    upcast = DiffusionGenerator(released, controlnets=[("inpaint", controlnet)], layerwise_upcast=False)
    np.testing.assert_array_equal(lean.inpaint(image, mask, PARAMS).images[0], upcast.inpaint(image, mask, PARAMS).images[0])
    assert stored_half(lean.load().unet) and not stored_half(lean.load().controlnet)
