"""The contract every registered generator keeps, in the style of diffusers' PipelineTesterMixin.

Every name in the registry (and the two generators built outside it: recolor, and the sd-lineart sketch
style's SD 1.5 img2img) runs here on tiny random-weight models under their official names, the hosted
ones against the local fakes of their APIs (tests/fake_image_apis.py). For each:
- image i of a batch is what its seed gives alone (a seedless generator says so with no seeds);
- replay is bit-exact: the generator rebuilt from what a call returned makes the same pixels;
- a NaN output is `BadOutput`, and so is an output equal to its input;
- the CPU threads a call ran with are recorded, and a count asked for is used and then restored;
- the model info the recipe records is complete;
- two threads calling one generator at once each get what they get alone.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import tiny_flux2  # noqa: E402
import tiny_sd  # noqa: E402
import tiny_sdxl  # noqa: E402
from fake_image_apis import start  # noqa: E402
from model_pins import pin_to_files  # noqa: E402
from tiny_removers import save_tiny_lama, save_tiny_migan  # noqa: E402

from editanything.errors import BadOutput, Cancelled, InvalidInputError, UnchangedOutput  # noqa: E402
from editanything.generate import GENERATORS, Generated, GenerationParams, get_generator  # noqa: E402
from editanything.generate.recolor import RecolorGenerator  # noqa: E402
from editanything.models import find_model  # noqa: E402
from editanything.progress import listening  # noqa: E402
from editanything.replay import generator_from_recipe  # noqa: E402
from editanything.types import Recipe  # noqa: E402

REAL_HED = find_model("hed")  # before the test points the models layer at its own folder
KEYS = {"STABILITY_API_KEY": "sk-stab-contract", "OPENAI_API_KEY": "sk-oai-contract"}
# Manifest models the tiny files stand in for, pinned to them as the real ones are pinned.
PINNED = ("sd15-inpainting", "sd2-inpainting", "sdxl-inpainting", "flux2-klein-4b", "lama", "migan", "sd15",
          "controlnet-lineart")


@dataclass(frozen=True)
class Case:
    """How to build a generator and call it. kind: "denoiser" (a diffusers loop: seeds, threads, steps),
    "fill" (deterministic: no seed), "remote" (a hosted service, here its fake)."""

    build: Callable[..., Any]
    kind: str
    size: int = 64
    call: Callable[..., Generated] = lambda gen, image, mask, params: gen.inpaint(image, mask, params)
    nan: str | None = None  # why a NaN cannot reach the output, where it cannot

    @property
    def seeded(self) -> bool:
        return self.kind == "denoiser"


def _lineart(threads: int | None = None):
    from editanything.sketch.generative import LineartSketcher

    if REAL_HED is None:
        pytest.skip("HED weights not downloaded: run `editanything models download hed`")
    return LineartSketcher("sd15", threads=threads)


UINT8 = "its output is uint8 all the way (no float stage a NaN could come from)"
CASES: dict[str, Case] = {
    "classical": Case(lambda **kw: get_generator("classical"), "fill", nan=UINT8),
    "classical-telea": Case(lambda **kw: get_generator("classical-telea"), "fill", nan=UINT8),
    "classical-ns": Case(lambda **kw: get_generator("classical-ns"), "fill", nan=UINT8),
    "recolor": Case(lambda **kw: RecolorGenerator("teal"), "fill", nan=UINT8),
    "sd15-inpainting": Case(lambda **kw: get_generator("sd15-inpainting", **kw), "denoiser", 32),
    "sd2-inpainting": Case(lambda **kw: get_generator("sd2-inpainting", **kw), "denoiser", 32),
    "sdxl-inpainting": Case(lambda **kw: get_generator("sdxl-inpainting", **kw), "denoiser"),
    "flux2-klein-4b": Case(lambda **kw: get_generator("flux2-klein-4b", **kw), "denoiser"),
    "sd-lineart": Case(_lineart, "denoiser", 32,
                       call=lambda gen, image, mask, params: gen.draw(image, params, 0.8)),
    "lama": Case(lambda **kw: get_generator("lama", **kw), "fill"),
    "migan": Case(lambda **kw: get_generator("migan", **kw), "fill", nan=UINT8),
    "stability": Case(lambda **kw: get_generator("stability"), "remote", nan="the service answers a PNG"),
    "openai": Case(lambda **kw: get_generator("openai"), "remote", nan="the service answers a PNG"),
}
SEEDED_REMOTE = {"stability"}  # OpenAI's image edits take no seed


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny models under every official name, the fake services, and the environment pointing at both."""
    root = tmp_path_factory.mktemp("contract-models")
    tiny_sd.write_tokenizer_files(tiny_sd.save_diffusers(root / "sd15-inpainting", variant="fp16") / "tokenizer")
    tiny_sd.save_diffusers(root / "sd2-inpainting")
    tiny_sdxl.save_sdxl(root / "sdxl-inpainting")
    tiny_flux2.save_klein(root / "flux2-klein-4b")
    save_tiny_lama(root / "lama" / "lama_fp32.onnx")
    save_tiny_migan(root / "migan" / "migan_pipeline_v2.onnx")
    tiny_sd.save_sd15_base(root / "sd15")
    tiny_sd.save_controlnet(root / "controlnet-lineart", variant="fp16")
    if REAL_HED is not None:
        (root / "hed").symlink_to(REAL_HED.folder)
    fake = start(KEYS["STABILITY_API_KEY"], KEYS["OPENAI_API_KEY"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDITANYTHING_CHECKPOINTS", str(root))
        mp.setenv("EDITANYTHING_HOME", str(root / "home"))
        for name, value in KEYS.items():
            mp.setenv(name, value)
        mp.setenv("STABILITY_BASE_URL", fake.url)
        mp.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        pin_to_files(mp, root, *PINNED)
        yield root
    fake.shutdown()


_BUILT: dict[str, Any] = {}


@pytest.fixture(params=list(CASES))
def case(request, env) -> tuple[str, Case, Any]:
    """(name, case, generator): one generator per name, built once (loading is the slow part)."""
    name = request.param
    if name not in _BUILT:
        _BUILT[name] = CASES[name].build()
    return name, CASES[name], _BUILT[name]


def _inputs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return tiny_sd.image_and_mask(case.size)


def _params(case: Case, **kw) -> GenerationParams:
    base = dict(prompt="a red apple", sampler="Euler" if case.kind == "denoiser" else None,
                steps=2 if case.kind == "denoiser" else None, seed=11, resolution=case.size)
    return GenerationParams(**{**base, **kw})


def _run(case: Case, gen, image, mask, **kw) -> Generated:
    out = case.call(gen, image, mask, _params(case, **kw))
    assert isinstance(out, Generated)
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in out.images)
    return out


def test_every_registered_generator_has_a_case():
    assert set(GENERATORS) <= set(CASES), f"add a contract case for: {sorted(set(GENERATORS) - set(CASES))}"


def test_image_i_of_a_batch_is_its_seed_alone(case):
    name, c, gen = case
    image, mask = _inputs(c)
    batch = _run(c, gen, image, mask, batch_size=2, batch_count=2)
    assert len(batch.images) == 4
    if c.seeded or name in SEEDED_REMOTE:
        assert batch.seeds == [11, 12, 13, 14]
        assert len({im.tobytes() for im in batch.images}) == 4  # each image has its own noise
        for i in (1, 2, 3):
            alone = _run(c, gen, image, mask, seed=batch.seeds[i])
            np.testing.assert_array_equal(batch.images[i], alone.images[0], err_msg=f"{name}: image {i}")
    else:
        assert batch.seeds == []  # the recipe then claims no seed
        if c.kind == "fill":  # deterministic: every image is the one a single call gives
            alone = _run(c, gen, image, mask)
            assert all(np.array_equal(im, alone.images[0]) for im in batch.images)


def _rebuild(name: str, c: Case, generated: Generated):
    if name == "sd-lineart":  # the sketch recipe keeps its parameters; the style builds its own generator
        return c.build()
    if name == "recolor":  # the Editor builds it from the request's colour
        return RecolorGenerator(generated.model["color"])
    return generator_from_recipe(Recipe("edit:replace", models={"generator": generated.recipe_model()}))


def test_replay_from_what_a_call_returned_is_bit_exact(case):
    name, c, gen = case
    image, mask = _inputs(c)
    first = _run(c, gen, image, mask, seed=21, batch_size=2)
    again = _run(c, _rebuild(name, c, first), image, mask, seed=21, batch_size=2)
    for a, b in zip(first.images, again.images, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (again.seeds, again.threads) == (first.seeds, first.threads)


@pytest.mark.parametrize("case", [n for n, c in CASES.items() if not c.nan], indirect=True)
def test_a_nan_output_is_bad_output(case, env, tmp_path):
    name, c, _ = case
    image, mask = _inputs(c)
    if c.kind == "denoiser":
        gen = c.build()  # a fresh one: its weights are poisoned below
        parts = gen.load()
        with torch.no_grad():
            for p in parts.vae.decoder.conv_out.parameters():
                p.fill_(float("nan"))
    else:
        gen = get_generator(_poisoned_onnx(env, tmp_path))
    with pytest.raises(BadOutput, match="non-finite"):
        _run(c, gen, image, mask)


def _poisoned_onnx(root: Path, tmp_path: Path) -> Path:
    """The tiny LaMa with its last convolution's weights set to NaN."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(root / "lama" / "lama_fp32.onnx"))
    last = model.graph.initializer[-1]
    for tensor in model.graph.initializer:
        if tensor.name.endswith("_w"):
            last = tensor
    last.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(last).shape, np.nan, np.float32), last.name))
    path = tmp_path / "lama_nan.onnx"
    onnx.save(model, str(path))
    return path


def test_an_unchanged_output_is_bad_output(case, monkeypatch):
    name, c, gen = case
    image, mask = _inputs(c)
    if c.kind == "denoiser":
        # The pipeline hands back the very image it was given (FLUX.2's padded one, cut back by the generator).
        def same(pipe, **kwargs):
            return type("Out", (), {"images": (np.asarray(kwargs["image"], np.float64) / 255.0)[None]})

        monkeypatch.setattr(type(gen.load()), "__call__", same)
    elif c.kind == "remote":  # the service's answer, fitted back to the crop, is the crop itself
        monkeypatch.setattr(type(gen), "_generate", lambda self, crop, *args: [crop.copy()])
    else:
        mask = np.zeros_like(mask)  # nothing to fill: the input comes back
    with pytest.raises(UnchangedOutput, match="unchanged"):
        _run(c, gen, image, mask)


def test_the_threads_a_call_ran_with_are_recorded_and_a_count_asked_for_is_restored(case):
    name, c, gen = case
    image, mask = _inputs(c)
    ran = _run(c, gen, image, mask)
    if c.kind != "denoiser":
        assert ran.threads is None and "threads" not in ran.recipe_model()  # no torch model ran
        return
    process = torch.get_num_threads()
    assert ran.threads == process and ran.recipe_model()["threads"] == process
    other = 2 if process == 1 else 1
    pinned = c.build(threads=other)
    again = _run(c, pinned, image, mask)
    assert again.threads == other and torch.get_num_threads() == process


def test_the_model_info_is_complete(case):
    name, c, gen = case
    image, mask = _inputs(c)
    info = _run(c, gen, image, mask).model
    assert info["name"] == gen.name
    if c.kind == "denoiser":
        assert {"file", "sha256", "hash", "family", "loras", "embeddings", "controlnets", "lcm"} <= set(info)
        assert len(info["sha256"]) == 64 and info["lcm"] is False and "lcm_lora" not in info
        assert Path(info["file"]).exists()
    elif c.kind == "remote":
        assert {"service", "endpoint", "options"} <= set(info) and len(info["requests"]) == 1
        assert info["requests"][0]["request_id"]
    elif name in ("lama", "migan"):
        assert Path(info["file"]).is_file() and len(info["sha256"]) == 64
    else:
        assert len(info) > 1  # the settings that decide its pixels (method and radius, colour)


def _attributes(gen) -> dict[str, tuple]:
    """What is bound on the generator: each attribute's object, and the value of the plain ones."""
    plain = (bool, int, float, str, bytes, tuple, type(None))
    return {k: (id(v), v if isinstance(v, plain) else None) for k, v in vars(gen).items()}


def test_a_call_leaves_nothing_on_the_generator(case):
    """Seeds, threads and add-ons come back in Generated: a call binds no attribute (after the first call,
    which loads the model once) and rebinds none, so the recipe cannot read a stale one back."""
    name, c, gen = case
    image, mask = _inputs(c)
    _run(c, gen, image, mask)
    before = _attributes(gen)
    _run(c, gen, image, mask, seed=99, batch_size=2, prompt="a blue boat")
    assert _attributes(gen) == before


def test_two_threads_calling_one_generator_get_what_each_gets_alone(case):
    name, c, gen = case
    image, mask = _inputs(c)
    jobs = [dict(seed=5, prompt="a red apple"), dict(seed=6, prompt="a blue boat", batch_size=2)]
    alone = [_run(c, gen, image, mask, **job).images for job in jobs]
    barrier = threading.Barrier(2)

    def run(job):
        barrier.wait()
        return _run(c, gen, image, mask, **job).images

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(run, jobs))
    for a, b in zip(alone, together, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("case", [n for n, c in CASES.items() if c.kind == "denoiser"], indirect=True)
def test_each_step_is_reported_and_a_cancel_leaves_nothing_half_made(case):
    name, c, gen = case
    image, mask = _inputs(c)
    seen = []
    with listening(seen.append):
        first = _run(c, gen, image, mask, batch_size=2)
    assert [(s.image, s.images, s.step, s.steps) for s in seen] == [(i, 2, k, 2) for i in range(2) for k in range(2)]

    process = torch.get_num_threads()
    pinned = c.build(threads=2 if process == 1 else 1)

    def cancel(step):
        if (step.image, step.step) == (1, 0):
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled), listening(cancel):
        _run(c, pinned, image, mask, batch_size=2)
    assert torch.get_num_threads() == process  # the pinned count was given back
    np.testing.assert_array_equal(_run(c, gen, image, mask, batch_size=2).images[1], first.images[1])



@pytest.mark.parametrize("case", [n for n, c in CASES.items() if c.kind == "denoiser"], indirect=True)
def test_steps_times_strength_below_one_is_refused_in_one_line_before_the_model_loads(case):
    name, c, _ = case
    gen = c.build()  # a fresh one, not loaded yet
    image, mask = _inputs(c)
    with pytest.raises(InvalidInputError, match=r"^1 step\(s\) at strength 0.75 leave no denoising step .*at least 2 "):
        _run(c, gen, image, mask, steps=1, strength=0.75)
    assert not gen.loaded
    assert len(_run(c, gen, image, mask, steps=2, strength=0.75).images) == 1  # one step: it runs
