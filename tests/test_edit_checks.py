"""The Editor refuses edits that would silently do nothing or go wrong."""

from pathlib import Path

import numpy as np
import pytest

from editanything.errors import BadOutput, InvalidInputError, NothingFound
from editanything.generate import GenerationParams
from editanything.pipeline import Editor, EditRequest
from editanything.types import Detections, Prompt


def test_prompt_for_matches_whole_phrases():
    shape = (40, 60)
    dog, hot_dog = np.zeros(shape, bool), np.zeros(shape, bool)
    dog[5:15, 5:15] = True
    hot_dog[20:30, 30:50] = True
    found = Detections.from_masks(np.stack([dog, hot_dog]), [0.9, 0.8], ["dog", "hot dog"])
    params = GenerationParams(prompt="a bun")
    request = EditRequest(mask=dog | hot_dog, prompt_for={"Dog": "a corgi"}, params=params)
    steps = Editor()._instance_steps(found, dog | hot_dog, request, params)
    assert [p.prompt for _, p in steps] == ["a corgi", "a bun"]
    assert np.array_equal(steps[0][0], dog) and np.array_equal(steps[1][0], hot_dog)


def test_prompt_for_skips_a_phrase_the_photo_lacks_and_fails_only_when_none_matches():
    shape = (40, 60)
    dog = np.zeros(shape, bool)
    dog[5:15, 5:15] = True
    only_dog = Detections.from_masks(dog[None], [0.9], ["dog"])
    params = GenerationParams()
    request = EditRequest(mask=dog, prompt_for={"dog": "a corgi", "cat": "a fox"}, params=params)
    steps = Editor()._instance_steps(only_dog, dog, request, params)
    assert [p.prompt for _, p in steps] == ["a corgi"] and np.array_equal(steps[0][0], dog)
    from editanything.pipeline import _skipped_phrases

    assert _skipped_phrases(request, only_dog) == ["--prompt-for 'cat': no such instance in this photo; skipped "
                                                   "(the others were edited)"]
    with pytest.raises(NothingFound, match="no selected instance has any of the phrases 'cat'.*found: dog"):
        Editor()._instance_steps(only_dog, dog, EditRequest(mask=dog, prompt_for={"cat": "a fox"}), params)
    for empty in ({" ": "a fox"}, {"cat": ""}):
        with pytest.raises(InvalidInputError, match="--prompt-for needs a phrase and a prompt"):
            EditRequest(mask=dog, prompt_for=empty)


def test_a_batch_edits_each_photo_with_the_phrases_it_has(isolated_models, tmp_path, caplog):
    from test_compose import NoiseGenerator

    from editanything.batch import edit_folder

    class PhraseDetector:
        """Finds a dog in every photo, and a cat only in photos whose name says so."""

        name = "phrases"

        def detect(self, image, text):
            h, w = image.shape[:2]
            masks = np.zeros((2, h, w), bool)
            masks[0, 10:60, 10:60] = masks[1, 100:160, 100:160] = True
            found = Detections.from_masks(masks, [0.9, 0.8], ["dog", "cat"])
            return found if image[0, 0, 0] == 255 else found[[0]]

    photos = tmp_path / "photos"
    photos.mkdir()
    from editanything.imageio import write_image

    for name, corner in (("dog-and-cat", 255), ("only-dog", 0)):
        image = np.full((200, 200, 3), 128, np.uint8)
        image[0, 0] = corner
        write_image(photos / f"{name}.png", image)
    request = EditRequest(selection=Prompt(text="dog . cat"), prompt_for={"dog": "a corgi", "cat": "a fox"})
    editor = {"detector": PhraseDetector(), "generator": NoiseGenerator(), "segmenter": "grabcut"}
    report = edit_folder([photos], tmp_path / "out", request, editor=editor, progress=False)
    assert report.ok and len(report.done) == 2
    lines = [r.getMessage() for r in caplog.records if "--prompt-for" in r.getMessage()]
    assert lines == [f"{photos / 'only-dog.png'}: --prompt-for 'cat': no such instance in this photo; skipped "
                     "(the others were edited)"]


def _coffee():
    from conftest import DEMOS

    from editanything import read_image

    return read_image(DEMOS / "coffee.jpg")


CUP = Prompt(boxes=[(180, 20, 410, 270)])


@pytest.mark.parametrize("request_, why", [
    (dict(mode="remove", mask="full"), "nothing is left around it to fill from"),
    (dict(mode="remove", selection=CUP, grow=100000), "nothing is left around it to fill from"),
    (dict(mode="remove", selection=CUP, feather=10000), "--feather 10000 is wider"),
    (dict(mode="recolor", color="red", selection=CUP, feather=10000), "--feather 10000 is wider"),
])
def test_an_edit_that_changes_nothing_is_an_error(isolated_models, request_, why):
    image = _coffee()
    if request_.get("mask") == "full":
        request_ = {**request_, "mask": np.ones(image.shape[:2], bool)}
    with pytest.raises(BadOutput, match=f"^the edit changed no pixel: .*{why}"):
        Editor(generator="classical").edit(image, EditRequest(**request_))


def test_cli_reports_an_unchanged_edit_as_a_failure(isolated_models, tmp_path, capsys):
    from conftest import DEMOS

    from editanything.cli import main

    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--remove", "--feather", "10000",
                   "-o", str(tmp_path), "-q"])
    captured = capsys.readouterr()
    assert status == 1 and "0 done" in captured.out and "changed no pixel" in captured.err
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("option", [["--grow", "nan"], ["--feather", "inf"], ["--grow", "-inf"]])
def test_non_finite_mask_sizes_are_refused_in_one_line(isolated_models, tmp_path, capsys, option):
    from conftest import DEMOS

    from editanything.cli import main

    status = main(["edit", str(DEMOS / "coffee.jpg"), "--box", "180,20,410,270", "--remove", *option,
                   "-o", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "finite" in err


def test_non_finite_weights_and_scales_are_refused():
    from editanything.generate.base import Lora, parse_lora, to_uint8
    from editanything.generate.prompts import parse_prompt_attention

    with pytest.raises(InvalidInputError, match="out of range"):
        parse_prompt_attention("(" * 8000 + "cat")
    with pytest.raises(InvalidInputError, match="out of range"):
        parse_prompt_attention("(cat:1000)")
    assert parse_prompt_attention("((cat:1.5))") == [("cat", pytest.approx(1.65))]
    for text in ("style.safetensors:nan", "style.safetensors:inf"):
        with pytest.raises(InvalidInputError, match="finite"):
            parse_lora(text)
    with pytest.raises(InvalidInputError, match="finite"):
        Lora(Path("style.safetensors"), float("-inf"))
    with pytest.raises(BadOutput, match="non-finite"):
        to_uint8(np.full((1, 8, 8, 3), np.nan, np.float32))
