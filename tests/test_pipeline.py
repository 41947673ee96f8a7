"""The Editor and the `edit` / `replay` commands, end to end.

Deep path: tiny random-weight Grounding DINO, SAM and SD inpainting saved under the official
file names in a temp checkpoints folder, loaded through the models layer as real weights are.
Weight-free path: GrabCut + OpenCV fill on a real photo.
"""


import dataclasses

import cv2
import numpy as np
import pytest
from sd_parsers import ParserManager
from PIL import Image

from conftest import DEMOS, edit_output
from editanything import Prompt, read_image
from editanything.cli import main
from editanything.errors import InvalidInputError, ModelNotFound, NothingFound
from editanything.generate import GenerationParams
from editanything.pipeline import Editor, EditRequest
from editanything.recipe import decode_mask, encode_mask, read_recipe

SPOON = dict(points=[(365, 290, 1), (395, 150, 1)], boxes=[(318, 62, 428, 330)])


@pytest.fixture
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _outside_identical(before, after, mask, grow):
    from editanything import masks

    outside = ~masks.grow(mask, grow + 1)
    return np.array_equal(before[outside], after[outside])


def test_cli_text_edit_on_tiny_models_writes_image_and_recipe(deep, tmp_path):
    out = tmp_path / "out"
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--select", "cup", "--box-threshold", "0.05",
                   "--text-threshold", "0.05", "--prompt", "a (blue:1.2) mug", "--negative", "blurry",
                   "--steps", "2", "--seed", "42", "--sampler", "Euler a", "--resolution", "64", "-o", str(out), "-q"])
    assert status == 0
    result = edit_output(out, "coffee")
    recipe = read_recipe(result)
    assert recipe.operation == "edit:replace" and recipe.seed == 42
    assert recipe.models["generator"]["name"] == "sd15-inpainting"
    assert recipe.models["segmenter"]["name"].startswith("sam") and "detector" in recipe.models
    assert recipe.parameters["selection"]["text"] == "cup" and recipe.parameters["detections"]
    before, after = read_image(DEMOS / "coffee.jpg"), read_image(result)
    mask = decode_mask(recipe.parameters["mask"])
    assert not np.array_equal(before[mask], after[mask])
    assert _outside_identical(before, after, mask, recipe.parameters["grow"])


def test_recipe_is_readable_by_sd_parsers_and_replay_is_bit_exact(deep, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "chelsea.jpg"), "--box", "100,40,330,260", "--prompt", "a fox",
                 "--negative", "lowres, bad anatomy", "--steps", "3", "--cfg", "5.5", "--seed", "1234",
                 "--sampler", "DPM++ 2M Karras", "--resolution", "64", "-o", str(out), "-q"]) == 0
    info = ParserManager().parse(Image.open(edit_output(out, "chelsea")))
    sampler = info.samplers[0]
    assert sampler.name == "DPM++ 2M Karras"
    assert sampler.parameters == {"cfg_scale": "5.5", "seed": "1234", "steps": "3"}
    assert [p.value for p in sampler.prompts] == ["a fox"]
    assert [p.value for p in sampler.negative_prompts] == ["lowres, bad anatomy"]
    assert sampler.model.name == "sd15-inpainting"

    capsys.readouterr()
    assert main(["replay", str(edit_output(out, "chelsea")), "-o", str(tmp_path / "again.png")]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert np.array_equal(read_image(edit_output(out, "chelsea")), read_image(tmp_path / "again.png"))


def test_batch_count_gives_one_file_per_image_with_its_seed(deep, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--prompt", "a plant",
                 "--steps", "2", "--seed", "7", "--batch-count", "2", "--resolution", "64", "-o", str(out), "-q"]) == 0
    first, second = read_recipe(edit_output(out, "coffee")), read_recipe(edit_output(out, "coffee", 1))
    assert (first.seed, second.seed) == (7, 8)
    # no --sampler or --cfg: Stable Diffusion keeps the WebUI's defaults, as before, and says nothing about them
    assert (first.parameters["generation"]["sampler"], first.parameters["generation"]["cfg_scale"]) == (
        "DPM++ 2M Karras", 7.0)
    assert "settings:" not in capsys.readouterr().err
    assert not np.array_equal(read_image(edit_output(out, "coffee")), read_image(edit_output(out, "coffee", 1)))
    assert main(["replay", str(edit_output(out, "coffee", 1)), "-o", str(tmp_path / "again.png")]) == 0
    assert np.array_equal(read_image(edit_output(out, "coffee", 1)), read_image(tmp_path / "again.png"))


def test_remove_with_weight_free_backends_fills_plausibly(coffee, isolated_models):
    editor = Editor()
    assert editor.describe()["segmenter"].startswith("GrabCut")
    result = editor.edit(coffee, EditRequest(mode="remove", selection=Prompt(**SPOON), grow=6))
    after, mask = result.images[0], result.mask
    assert 3000 < mask.sum() < 20000  # the spoon, not the cup or the saucer
    assert _outside_identical(coffee, after, mask, 6)
    from editanything import masks

    grown = masks.grow(mask, 6)
    ring = masks.grow(grown, 12) & ~grown
    lab_after = cv2.cvtColor(after, cv2.COLOR_RGB2LAB).astype(float)
    lab_before = cv2.cvtColor(coffee, cv2.COLOR_RGB2LAB).astype(float)
    # colour as chroma (a*, b*): shading (L*) legitimately varies around the saucer's rim
    filled_gap = np.linalg.norm(lab_after[grown][:, 1:].mean(0) - lab_before[ring][:, 1:].mean(0))
    spoon_gap = np.linalg.norm(lab_before[mask][:, 1:].mean(0) - lab_before[ring][:, 1:].mean(0))
    assert filled_gap < 6 and filled_gap < spoon_gap / 3  # the fill has the surroundings' colour, not the spoon's


def test_background_regenerates_everything_but_the_selection(deep, coffee):
    editor = Editor(segmenter="grabcut")
    box = Prompt(boxes=[(180, 20, 410, 270)])
    selected = editor.select(coffee, box).union_mask()
    params = GenerationParams(prompt="a beach", steps=2, seed=3, resolution=64)
    result = editor.edit(coffee, EditRequest(mode="background", selection=box, params=params))
    from editanything import masks

    assert np.array_equal(result.mask, ~masks.grow(selected, 8))
    assert np.array_equal(coffee[selected], result.images[0][selected])  # the subject is never repainted
    assert not np.array_equal(coffee[~selected], result.images[0][~selected])
    with pytest.raises(InvalidInputError, match="needs a prompt"):
        editor.edit(coffee, EditRequest(mode="replace", selection=box))


def test_recolor_keeps_the_right_pixels(coffee, isolated_models):
    editor = Editor(segmenter="grabcut", generator="classical")
    box = Prompt(boxes=[(180, 20, 410, 270)])
    selected = editor.select(coffee, box).union_mask()
    recolored = editor.edit(coffee, EditRequest(mode="recolor", color="blue", selection=box))
    after = recolored.images[0]
    assert np.array_equal(coffee[~selected], after[~selected])  # no tint spills outside the selection
    inside = after[selected].astype(int)
    assert (inside[:, 2] - inside[:, 0]).mean() > (coffee[selected][:, 2].astype(int) - coffee[selected][:, 0]).mean() + 30


def test_mask_request_and_errors(coffee, isolated_models):
    editor = Editor(generator="classical")
    with pytest.raises(InvalidInputError, match="say what to edit"):
        EditRequest(mode="remove")
    with pytest.raises(InvalidInputError, match="600x400"):
        editor.edit(coffee, EditRequest(mode="remove", mask=np.ones((10, 10), bool)))
    with pytest.raises(NothingFound):
        editor.edit(coffee, EditRequest(mode="remove", mask=np.zeros(coffee.shape[:2], bool)))
    with pytest.raises(ModelNotFound, match="editanything models download sd15-inpainting"):
        editor.edit(coffee, EditRequest(mode="replace", selection=Prompt(boxes=[(180, 20, 410, 270)]),
                                        params=GenerationParams(prompt="a mug")))
    with pytest.raises(InvalidInputError, match="outside"):
        editor.edit(coffee, EditRequest(mode="remove", selection=Prompt(points=[(700, 10, 1)])))


def test_cli_select_without_detector_weights_names_the_download(isolated_models, capsys):
    status = main(["edit", str(DEMOS / "coffee.jpg"), "--select", "cup", "--remove", "-o", "/tmp/unused"])
    err = capsys.readouterr().err
    assert status == 2 and "editanything models download grounding-dino-tiny" in err
    assert "Traceback" not in err


def test_mask_rle_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (5, 7), (40, 30)]:
        for density in (0.0, 0.3, 1.0):
            mask = rng.random(shape) < density
            assert np.array_equal(decode_mask(encode_mask(mask)), mask)


class _FixedDetector:
    """A detector that always finds the same two things (the test's ground truth)."""

    name = "fixed"

    def detect(self, image, text):
        from editanything import Detections

        return Detections([(180, 20, 410, 270), (318, 200, 410, 330)], [0.9, 0.8], ["cup", "spoon"])


def test_prompt_for_edits_each_instance_with_its_own_prompt(deep, coffee):
    from editanything import compose
    from editanything.generate import get_generator

    editor = Editor(detector=_FixedDetector(), segmenter="grabcut")
    params = GenerationParams(steps=2, seed=5, resolution=64)
    request = EditRequest(selection=Prompt(text="cup . spoon"), params=params,
                          prompt_for={"cup": "a blue mug", "spoon": "a fork"})
    result = editor.edit(coffee, request)
    found = editor.select(coffee, Prompt(text="cup . spoon"))
    generator = get_generator("sd15-inpainting")
    expected = coffee
    for i, prompt in enumerate(["a blue mug", "a fork"]):
        step = GenerationParams(prompt=prompt, steps=2, seed=5, resolution=64)
        expected = compose.edit_region(expected, found.masks[i], generator, step).images[0]
    assert np.array_equal(result.images[0], expected)
    with pytest.raises(NothingFound, match="'dog'"):
        editor.edit(coffee, dataclasses.replace(request, prompt_for={"dog": "a corgi"}))
    with pytest.raises(InvalidInputError, match="spoon"):  # an instance left without a prompt
        editor.edit(coffee, dataclasses.replace(request, prompt_for={"cup": "a blue mug"}))
    with pytest.raises(InvalidInputError, match="does not combine with background"):
        EditRequest(mode="background", selection=Prompt(text="cup"), prompt_for={"cup": "a mug"})


def test_two_sessions_asking_for_a_backend_at_once_build_it_once(monkeypatch):
    """The UI's sessions share one Editor: a model both ask for while it loads must load once, not twice."""
    import threading
    import time

    from editanything import pipeline

    builds = []

    def slow_matter(name, **options):
        builds.append(name)
        time.sleep(0.2)  # long enough for the other thread to arrive while this one builds
        return object()

    monkeypatch.setitem(pipeline._BUILDERS, "matter", slow_matter)
    editor = pipeline.Editor(matter="pymatting-fast", low_memory=False)
    got = []
    threads = [threading.Thread(target=lambda: got.append(editor.matter)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["pymatting-fast"]
    assert got[0] is got[1]
    editor.release()
    assert editor.matter is not got[0] and builds == ["pymatting-fast"] * 2  # released, built again on next use
