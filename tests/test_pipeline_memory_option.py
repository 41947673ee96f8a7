"""Editor(low_memory=True): the detector and segmenter are freed before generation, and Stable
Diffusion's text encoder once the prompt is encoded and its UNet before the VAE decodes; results unchanged. low_memory=None follows
the memory available (memory.low_memory_default).

Runs on tiny random-weight Grounding DINO, SAM and SD 1.5 inpainting files found by the models layer
under their official names, so the backends are built by name exactly as with real weights.
"""

import gc
import weakref

import numpy as np
import pytest

from conftest import DEMOS
from editanything import Prompt, memory, read_image
from editanything.errors import InvalidInputError
from editanything.generate import GenerationParams
from editanything.pipeline import Editor, EditRequest

# A small detector input keeps the (full-size) Swin-T backbone of the tiny Grounding DINO quick.
DETECT = {"box_threshold": 0.05, "text_threshold": 0.05, "top_k": 2, "image_size": 320, "max_size": 480}


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _request(text: str = "cup") -> EditRequest:
    return EditRequest(selection=Prompt(text=text),
                       params=GenerationParams(prompt="a mug", steps=2, seed=0, resolution=64))


def _loaded_selection_models(editor: Editor) -> tuple[weakref.ref, ...]:
    """Weak references to the detector, segmenter and their torch modules, built now by the editor."""
    detector, segmenter = editor.detector, editor.segmenter
    return tuple(weakref.ref(x) for x in (detector, detector.model, segmenter, segmenter.model))


def test_low_memory_frees_detector_and_segmenter_and_keeps_the_result(deep, coffee):
    lean, full = Editor(detector_options=DETECT, low_memory=True), Editor(detector_options=DETECT, low_memory=False)
    lean_refs, full_refs = _loaded_selection_models(lean), _loaded_selection_models(full)
    lean_parts, full_parts = ([weakref.ref(e.generator.load().text_encoder), weakref.ref(e.generator.load().unet)]
                              for e in (lean, full))

    lean_result = lean.edit(coffee, _request())
    full_result = full.edit(coffee, _request())
    gc.collect()

    assert all(ref() is None for ref in lean_refs)  # nothing else kept them alive: their memory is back
    assert all(ref() is not None for ref in full_refs)  # the default editor keeps them for the next edit
    assert lean.generator.loaded  # the generator stays loaded: it is what the next edit needs first
    # freed once the prompt was encoded, and after the last denoising step
    assert all(ref() is None for ref in lean_parts)
    assert lean.generator.load().text_encoder is None and lean.generator.load().unet is None
    assert [full.generator.load().text_encoder, full.generator.load().unet] == [ref() for ref in full_parts]
    assert np.array_equal(lean_result.mask, full_result.mask)
    assert len(lean_result.images) == len(full_result.images) == 1
    assert np.array_equal(lean_result.images[0], full_result.images[0])
    assert lean_result.recipe.models == full_result.recipe.models
    assert {"detector", "segmenter", "generator"} <= set(lean_result.recipe.models)

    # builds them again from the files on disk, the text encoder too, for another prompt
    again = lean.edit(coffee, _request())
    assert np.array_equal(again.images[0], lean_result.images[0])
    # another prompt, two images: the UNet freed after the first image's last step loads again for the second
    other = EditRequest(selection=Prompt(text="cup"),
                        params=GenerationParams(prompt="a red bowl", steps=2, seed=0, resolution=64, batch_size=2))
    lean_images, full_images = lean.edit(coffee, other).images, full.edit(coffee, other).images
    assert len(lean_images) == len(full_images) == 2
    assert all(np.array_equal(a, b) for a, b in zip(lean_images, full_images))


@pytest.mark.parametrize("env, available, expected", [
    (None, 3 * 10**9, True), (None, 32 * 10**9, False), (None, None, False),
    ("1", 32 * 10**9, True), ("0", 3 * 10**9, False), ("off", 3 * 10**9, False)])
def test_low_memory_default_follows_the_memory_available_unless_the_environment_says(monkeypatch, env, available,
                                                                                      expected):
    if env is None:
        monkeypatch.delenv(memory.ENV, raising=False)
    else:
        monkeypatch.setenv(memory.ENV, env)
    monkeypatch.setattr(memory, "available_bytes", lambda: available)
    assert memory.low_memory_default() is expected
    editor = Editor(segmenter="grabcut", detector=None, generator="classical")
    assert editor.low_memory is expected
    assert Editor(generator="classical", low_memory=not expected).low_memory is (not expected)  # an explicit value wins


def test_the_low_memory_threshold_is_twice_what_the_chosen_models_take_on_disk(deep, monkeypatch):
    from editanything.generate import ClassicalGenerator
    from editanything.models import find_model

    monkeypatch.delenv(memory.ENV, raising=False)
    files = {p for name in ("groundingdino-swint-ogc", "bert-base-uncased", "sam-vit-b", "sd15-inpainting")
             for p in find_model(name).files.values()}
    needs = sum(p.stat().st_size for p in files)
    assert Editor(low_memory=False)._weights_on_disk() == needs > 0  # what "auto" picks, found without loading it
    below = 2 * (needs + memory.WORKING_BYTES)
    for available, expected in ((below - 1, True), (below + 1, False)):
        monkeypatch.setattr(memory, "available_bytes", lambda: available)
        assert Editor().low_memory is expected
    # a generator named by its folder counts the files in it; one passed in built is of unknown size
    folder = deep / "sd15-inpainting"
    assert Editor(detector=None, segmenter="grabcut", generator=str(folder), low_memory=False)._weights_on_disk() == sum(
        p.stat().st_size for p in folder.rglob("*") if p.is_file())
    monkeypatch.setattr(memory, "available_bytes", lambda: memory.LOW_MEMORY_BELOW - 1)
    assert Editor(detector=None, segmenter="grabcut", generator=ClassicalGenerator()).low_memory


def test_a_bad_low_memory_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(memory.ENV, "maybe")
    with pytest.raises(InvalidInputError, match="EDITANYTHING_LOW_MEMORY='maybe'"):
        Editor(generator="classical")


def test_memory_available_is_read_from_the_system():
    available = memory.available_bytes()
    assert available is not None and 0 < available



def _anon_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))


@pytest.mark.skipif(memory._LIBC is None, reason="malloc_trim is glibc's")
def test_trim_hands_freed_heap_back_to_the_system():
    import ctypes

    libc = memory._LIBC
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 64 * 1024, 2048  # 128 MiB in blocks under glibc's mmap threshold: they come from the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)  # resident
    for block in blocks[:-1]:  # the last one pins the heap's top, so free() alone gives nothing back
        libc.free(block)
    before = _anon_bytes()
    memory.trim()
    after = _anon_bytes()
    libc.free(blocks[-1])
    assert before - after > 64 * 2**20


def _cli_editors(monkeypatch) -> list[Editor]:
    """Every Editor the CLI builds, kept for inspection; the memory rule left to the CLI (no environment
    setting, plenty of memory available)."""
    from editanything import pipeline

    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 10**9)
    built, init = [], pipeline.Editor.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(pipeline.Editor, "__init__", recording)
    return built


CLI_EDIT = ["--select", "cup", "--box-threshold", "0.05", "--text-threshold", "0.05", "--prompt", "a mug",
            "--steps", "2", "--seed", "3", "--resolution", "64", "-q"]


def test_the_cli_edit_of_one_photo_releases_each_model_after_its_last_use_with_the_same_pixels(deep, tmp_path,
                                                                                              monkeypatch):
    from conftest import edit_output
    from editanything.cli import main

    editors = _cli_editors(monkeypatch)
    photo = str(DEMOS / "coffee.jpg")
    assert main(["edit", photo, *CLI_EDIT, "-o", str(tmp_path / "one-shot")]) == 0
    one_shot = editors[-1]
    assert one_shot.low_memory
    assert not {"detector", "segmenter"} & set(one_shot._built)  # released once the masks were made
    pipe = one_shot.generator.load()
    assert pipe.text_encoder is None and pipe.unet is None  # after the prompt was encoded / the last step

    assert main(["edit", photo, *CLI_EDIT, "--no-low-memory", "-o", str(tmp_path / "kept")]) == 0
    kept = editors[-1]
    assert not kept.low_memory and {"detector", "segmenter"} <= set(kept._built)
    assert kept.generator.load().unet is not None
    assert np.array_equal(read_image(edit_output(tmp_path / "one-shot", "coffee")),
                          read_image(edit_output(tmp_path / "kept", "coffee")))


# Weight-free: the rule is the CLI's, whatever the models.
SPOON = ["--box", "318,62,428,330", "--segmenter", "grabcut", "--remove", "--model", "classical", "-q"]


@pytest.mark.parametrize("more, one_shot", [([], True), (["--batch-size", "2"], False), (["EXTRA_PHOTO"], False),
                                            (["--low-memory"], True), (["--no-low-memory"], False)])
def test_the_cli_releases_models_only_when_none_is_used_again(tmp_path, monkeypatch, more, one_shot):
    from editanything.cli import main

    editors = _cli_editors(monkeypatch)
    photos = [str(DEMOS / "coffee.jpg")]
    if more == ["EXTRA_PHOTO"]:  # a second photo reuses every model
        photos.append(str(tmp_path / "coffee2.jpg"))
        (tmp_path / "coffee2.jpg").write_bytes((DEMOS / "coffee.jpg").read_bytes())
        more = []
    assert main(["edit", *photos, *SPOON, *more, "-o", str(tmp_path / "out")]) == 0
    assert editors[-1].low_memory is one_shot
