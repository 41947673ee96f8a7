"""FLUX.2 [klein] inpainting on a tiny random FLUX.2 klein saved in the Hub repo's layout, against diffusers called directly."""

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
from model_pins import pin_to_files  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import DEMOS, edit_output  # noqa: E402
from editanything import compose  # noqa: E402
from editanything.cli import main  # noqa: E402
from editanything.errors import InvalidInputError, ModelNotFound  # noqa: E402
from editanything.generate import GenerationParams, get_generator  # noqa: E402
from editanything.generate.flux2 import Flux2Generator  # noqa: E402
from editanything.imageio import read_png_text  # noqa: E402
from editanything.recipe import read_recipe  # noqa: E402

SIZE = 64
PARAMS = GenerationParams(prompt="a cat on a sofa", sampler="Euler", steps=2, cfg_scale=1.0, seed=11, resolution=SIZE)


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    return tiny_flux2.save_klein(tmp_path_factory.mktemp("tiny-flux2") / "flux2-klein-4b")


@pytest.fixture(scope="session")
def generator(folder):
    """One loaded generator for the tests that only call it (loading is the slow part)."""
    return get_generator(str(folder))


def _direct(folder: Path, image: np.ndarray, mask: np.ndarray, seed: int, prompt: str = PARAMS.prompt,
            steps: int = PARAMS.steps, **extra) -> np.ndarray:
    """The same inpaint with diffusers' pipeline called directly on the same folder."""
    pipe = _pipe(folder)
    out = pipe(prompt=prompt, image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
               height=image.shape[0], width=image.shape[1], strength=1.0, num_inference_steps=steps,
               generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **extra)
    return (out.images[0] * 255).round().astype(np.uint8)


_PIPES: dict[Path, object] = {}


def _pipe(folder: Path):
    if folder not in _PIPES:
        pipe = diffusers.Flux2KleinInpaintPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        _PIPES[folder] = pipe
    return _PIPES[folder]


def test_matches_the_diffusers_pipeline_and_each_batch_image_replays_alone(folder, generator):
    assert isinstance(generator, Flux2Generator) and generator.distilled
    image, mask = tiny_sd.image_and_mask(SIZE)
    params = GenerationParams(**{**PARAMS.to_dict(), "batch_size": 2, "batch_count": 1})
    generated = generator.inpaint(image, mask, params)
    assert len(generated.images) == 2 and generated.seeds == [11, 12]
    for out, seed in zip(generated.images, (11, 12)):
        np.testing.assert_array_equal(out, _direct(folder, image, mask, seed))
    assert not np.array_equal(generated.images[0], generated.images[1])  # each image has its own noise
    info = generated.model
    assert info["family"] == "flux2-klein" and info["distilled"] and len(info["sha256"]) == 64


def test_sides_not_multiples_of_16_are_padded_and_cut_back(generator):
    image, mask = tiny_sd.image_and_mask(SIZE)
    image, mask = image[:, :40], mask[:, :40]  # 40 px wide: the pipeline would round it down to 32
    out = generator.inpaint(image, mask, GenerationParams(**{**PARAMS.to_dict(), "seed": 4})).images[0]
    assert out.shape == image.shape and out.dtype == np.uint8 and out.std() > 0


def test_outside_the_mask_stays_bit_exact_after_compose(generator):
    image = np.asarray(Image.open(DEMOS / "chelsea.jpg").convert("RGB"))[:200, :240].copy()
    mask = np.zeros(image.shape[:2], bool)
    mask[60:140, 80:170] = True
    out = compose.edit_region(image, mask, generator, GenerationParams(**{**PARAMS.to_dict(), "seed": 2}),
                              grow_px=4, feather_px=4).images[0]
    kept = ~compose.masks.grow(mask, 4)
    np.testing.assert_array_equal(out[kept], image[kept])
    assert not np.array_equal(out[mask], image[mask])


def test_what_the_model_cannot_do_is_a_one_line_error_before_loading(folder):
    generator = Flux2Generator(folder)
    image, mask = tiny_sd.image_and_mask(SIZE)
    cases = {
        "DPM++ 2M Karras": ("sampler must be Euler; got 'DPM++ 2M Karras' (use --sampler Euler, or leave", {}),
        "weights": ("prompt weights such as (word:1.3) do not work", {"prompt": "a (red:1.3) apple"}),
        "negative": ("step-distilled: it has no classifier-free guidance", {"negative_prompt": "blurry"}),
    }
    for sampler, (message, change) in cases.items():
        params = GenerationParams(**{**PARAMS.to_dict(), **change,
                                     "sampler": sampler if sampler.startswith("DPM") else "Euler"})
        with pytest.raises(InvalidInputError) as info:
            generator.inpaint(image, mask, params)
        assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match="up to 1024x1024"):
        generator.inpaint(np.zeros((1040, 1024, 3), np.uint8), np.ones((1040, 1024), bool), PARAMS)
    assert generator._pipe is None  # refused before the pipeline loaded


def test_an_undistilled_folder_takes_cfg_and_the_negative_prompt_like_diffusers(tmp_path):
    base = tiny_flux2.save_klein(tmp_path / "klein-base", distilled=False)
    image, mask = tiny_sd.image_and_mask(SIZE)
    ours = get_generator(str(base))
    assert not ours.distilled and "sampler Euler, 50 steps, CFG 4 by default; CFG and negative prompt work" in ours.describe()
    params = GenerationParams(**{**PARAMS.to_dict(), "negative_prompt": "blurry", "cfg_scale": 3.0})
    generated = ours.inpaint(image, mask, params).images[0]
    pipe = _pipe(base)
    negative = pipe.encode_prompt("blurry")[0]
    np.testing.assert_array_equal(generated, _direct(base, image, mask, 11, guidance_scale=3.0,
                                                     negative_prompt_embeds=negative))
    assert not np.array_equal(generated, _direct(base, image, mask, 11, guidance_scale=3.0))  # it made a difference


def test_named_model_without_weights_names_the_download_command(isolated_models):
    with pytest.raises(ModelNotFound, match="editanything models download flux2-klein-4b"):
        get_generator("flux2-klein-4b")


def test_named_model_resolves_from_the_manifest_layout(folder, isolated_models, monkeypatch):
    (isolated_models / "flux2-klein-4b").symlink_to(folder, target_is_directory=True)
    pin_to_files(monkeypatch, isolated_models, "flux2-klein-4b")
    generator = get_generator("flux2-klein-4b")
    assert generator.name == "flux2-klein-4b" and generator.folder == isolated_models / "flux2-klein-4b"
    from editanything.models.store import sha256_file

    assert generator.model_info()["sha256"] == sha256_file(folder / "transformer/diffusion_pytorch_model.safetensors")


def test_cli_edit_takes_the_models_defaults_refuses_a_wrong_sampler_and_replays_bit_exactly(
        folder, isolated_models, monkeypatch, tmp_path, capsys):
    # the only diffusion model on disk: a plain edit with --model auto (the default) runs FLUX.2
    (isolated_models / "flux2-klein-4b").symlink_to(folder, target_is_directory=True)
    pin_to_files(monkeypatch, isolated_models, "flux2-klein-4b")
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    out = tmp_path / "out"
    args = ["edit", str(DEMOS / "chelsea.jpg"), "--box", "100,40,330,260", "--prompt", "a fox",
            "--segmenter", "grabcut", "--seed", "3", "--resolution", str(SIZE), "-o", str(out), "-q"]
    assert main([*args, "--sampler", "DPM++ 2M Karras"]) != 0  # asked for explicitly: refused, in one line
    last = capsys.readouterr().err.strip().splitlines()[-1]  # one error line
    assert last.startswith("error: ") and "sampler must be Euler; got 'DPM++ 2M Karras'" in last
    assert not list(out.glob("chelsea*.png"))
    assert main(args) == 0  # no --sampler, --steps or --cfg: the model's own
    err = capsys.readouterr().err
    assert "generator: flux2-klein-4b" in err
    assert "settings: sampler Euler, 4 steps, CFG 1 (the model's defaults)" in err
    recipe = read_recipe(edit_output(out, "chelsea"))
    generation = recipe.parameters["generation"]
    assert recipe.models["generator"]["family"] == "flux2-klein" and recipe.seed == 3
    assert (generation["sampler"], generation["steps"], generation["cfg_scale"]) == ("Euler", 4, 1.0)
    assert "Steps: 4, Sampler: Euler, CFG scale: 1, Seed: 3" in read_png_text(edit_output(out, "chelsea"))["parameters"]
    assert main(["replay", str(edit_output(out, "chelsea"))]) == 0
    assert "identical to the original" in capsys.readouterr().out
    # what the user gives is kept, the rest comes from the model, resolved once for every worker process
    first = edit_output(out, "chelsea")
    assert main([*args, "--steps", "2", "--workers", "2"]) == 0
    assert "settings: sampler Euler, CFG 1 (the model's defaults)" in capsys.readouterr().err
    (second,) = [p for p in out.glob("chelsea.*.png") if p != first]  # another request: beside the first
    generation = read_recipe(second).parameters["generation"]
    assert (generation["sampler"], generation["steps"], generation["cfg_scale"]) == ("Euler", 2, 1.0)


def test_auto_takes_flux2_on_cuda_but_not_over_sd15_on_a_cpu(folder, isolated_models, monkeypatch):
    (isolated_models / "flux2-klein-4b").symlink_to(folder, target_is_directory=True)
    pin_to_files(monkeypatch, isolated_models, "flux2-klein-4b")
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    only = get_generator("auto")
    assert only.name == "flux2-klein-4b" and "only diffusion model present" in only.describe()
    tiny_sd.save_diffusers(isolated_models / "sd15-inpainting", variant="fp16")
    on_cpu = get_generator("auto")
    assert on_cpu.name == "sd15-inpainting" and "FLUX.2 klein needs about 32 GB" in on_cpu.describe()
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cuda")
    on_cuda = get_generator("auto")  # nothing loads: the choice alone
    assert on_cuda.name == "flux2-klein-4b" and "sampler Euler, 4 steps, CFG 1 by default" in on_cuda.describe()


def test_models_list_says_the_4b_is_apache_and_the_9b_is_not(capsys):
    assert main(["models", "list"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("flux2-klein-4b "))
    row = lines[at] + lines[at + 1]  # a model's row and its source line
    assert "Apache-2.0" in row and "hf:black-forest-labs/FLUX.2-klein-4B" in row and "e7b7dc27f91d" in row
    assert " pinned " in row  # every file's sha256 is pinned
    assert "flux2-klein-9b" not in out  # the table on stdout has model rows only
    notes = captured.err.replace("\n  ", " ").splitlines()  # notes wrap at 100 columns onto indented lines
    nine = next(line for line in notes if "flux2-klein-9b" in line)
    assert nine.startswith("note: flux2-klein-9b is not listed: ") and "NOT Apache-2.0" in nine
    assert "Non-Commercial" in nine


def test_remove_with_the_distilled_model_sends_no_negative_prompt(generator):
    from editanything.pipeline import EditRequest, Editor

    image = np.asarray(Image.open(DEMOS / "chelsea.jpg").convert("RGB"))[:160, :192].copy()
    mask = np.zeros(image.shape[:2], bool)
    mask[50:110, 60:130] = True
    params = GenerationParams(seed=5, resolution=SIZE)  # sampler, steps and CFG left to the model
    result = Editor(generator=generator, remover=None).edit(image, EditRequest(mode="remove", mask=mask, params=params))
    generation = result.recipe.parameters["generation"]
    assert generation["prompt"] and generation["negative_prompt"] == ""  # remove's prompt, none of its negatives
    assert (generation["sampler"], generation["steps"], generation["cfg_scale"]) == ("Euler", 4, 1.0)
    assert result.images[0].shape == image.shape


def test_ui_controls_start_at_the_models_defaults_and_an_untouched_edit_uses_them(generator):
    pytest.importorskip("gradio_client")
    import socket

    from gradio_client import Client, handle_file

    from editanything.pipeline import Editor
    from editanything.ui.app import build_app, serve
    from editanything.ui.remote import LOCAL

    demo = build_app(Editor(segmenter="grabcut", detector=None, generator=generator))
    shown = {c["props"].get("elem_id"): c["props"].get("value") for c in demo.config["components"]}
    assert (shown["sampler"], shown["steps"], shown["cfg"]) == ("Euler", 4, 1.0)
    # choosing where to generate puts the controls at that generator's defaults (hosted: the WebUI's)
    (switch,) = [f.fn for f in demo.fns.values() if any(t[1] == "input" for t in f.targets)
                 and [c.elem_id for c in f.outputs] == ["sampler", "steps", "cfg"]]
    assert switch("Stability AI (hosted)") == ("DPM++ 2M Karras", 25, 7.0)
    assert switch(LOCAL) == ("Euler", 4, 1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = serve(demo, port=port, block=False, quiet=True)
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(DEMOS / "chelsea.jpg")), "[]", "[[100, 40, 330, 260]]", False, 8,
                       api_name="/segment_points")
        # sampler, steps and cfg left out: the endpoint's defaults are the controls' starting values
        _, _, png, _, _ = client.predict(photo=None, chosen=[0], invert=False, grow=8, feather=8, prompt="a fox",
                                      negative="", seed=3, strength=1, color="#ff0000", api_name="/replace")
    finally:
        demo.close()
    generation = read_recipe(png).parameters["generation"]
    assert (generation["sampler"], generation["steps"], generation["cfg_scale"]) == ("Euler", 4, 1.0)
