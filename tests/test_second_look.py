"""The check after an edit: the detector looks again in the edited region; a failed look is retried with
the next remover or seed, recorded in the recipe, replayed as the passing attempt, and counted in the batch
report. The detector here answers what the test tells it to."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import DEMOS, edit_output
from editanything import Detections
from editanything.check import look_again
from editanything.cli import main
from editanything.detect import DETECTORS
from editanything.errors import InvalidInputError, NothingFound
from editanything.generate import GENERATORS, Generated
from editanything.imageio import read_image
from editanything.pipeline import EditRequest
from editanything.recipe import read_recipe
from model_pins import pin_to_files

CUP = (180, 20, 410, 270)
SELECT = "select"


class ScriptedDetector:
    """Answers each call with the next of `answers`: SELECT (the cup, for the selection), None (nothing
    found), or a score for a box in the middle of the image it is shown (the edited region)."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def detect(self, image, text):
        self.calls.append((image.shape, text))
        answer = self.answers.pop(0)
        if answer == SELECT:
            return Detections([CUP], [0.9], [text])
        if answer is None:
            raise NothingFound(f"no {text!r} above box_threshold 0.35")
        h, w = image.shape[:2]
        return Detections([(0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h)], [answer], [text])


class SeededNoise:
    """A stand-in sampler: its pixels follow the seed, as a diffusion model's do."""

    name = "seeded-noise"

    def __init__(self, **_):
        pass

    def inpaint(self, image, mask, params, **_):
        seeds = params.image_seeds()
        return Generated([np.random.default_rng(s).integers(0, 256, image.shape, dtype=np.uint8) for s in seeds],
                         seeds, model=self.model_info())

    def model_info(self):
        return {"name": self.name}


@pytest.fixture
def detector(monkeypatch):
    def install(*answers):
        scripted = ScriptedDetector(answers)
        monkeypatch.setitem(DETECTORS.builders, "scripted", lambda **_: scripted)
        return scripted

    return install


@pytest.fixture
def removers(isolated_models, tmp_path_factory, monkeypatch):
    """Tiny LaMa and MI-GAN where the models layer looks for the real ones (no Stable Diffusion)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from tiny_removers import save_tiny_lama, save_tiny_migan

    root = tmp_path_factory.mktemp("removers")
    for path in (save_tiny_lama(root / "lama" / "lama_fp32.onnx"),
                 save_tiny_migan(root / "migan" / "migan_pipeline_v2.onnx")):
        (isolated_models / path.parent.name).mkdir()
        (isolated_models / path.parent.name / path.name).symlink_to(path)
    pin_to_files(monkeypatch, isolated_models, "lama", "migan")
    return isolated_models


def _edit(tmp_path, *args, photos=("coffee.jpg",)):
    for name in photos:
        shutil.copy(DEMOS / "coffee.jpg", tmp_path / name)
    return main(["edit", *(str(tmp_path / n) for n in photos), "--select", "cup", "--detector", "scripted",
                 "--segmenter", "grabcut", "-q", "-o", str(tmp_path / "out"), *args])


def test_a_remove_still_found_is_retried_with_the_next_remover_and_replays_the_passing_one(
        removers, detector, tmp_path, capsys):
    scripted = detector(SELECT, 0.62, 0.55, None)  # LaMa and MI-GAN leave a cup; OpenCV's fill does not
    assert _edit(tmp_path, "--remove") == 0
    recipe = read_recipe(edit_output(tmp_path / "out", "coffee"))
    check = recipe.parameters["check"]
    assert [(a["model"], a["score"], a["passed"]) for a in check["attempts"]] == [
        ("lama", 0.62, False), ("migan", 0.55, False), ("classical-telea", None, True)]
    assert check["phrase"] == "cup" and check["want"] == "absent" and check["passed"]
    assert check["attempts"][0]["box"] is not None
    assert recipe.models["generator"]["name"] == "classical-telea"
    # every look is at a crop around the edited region, not at the whole photo
    assert [text for _, text in scripted.calls] == ["cup"] * 4
    assert all(shape[:2] != (400, 600) for shape, _ in scripted.calls[1:])
    capsys.readouterr()
    # no detector runs in a replay
    assert main(["replay", str(edit_output(tmp_path / "out", "coffee")), "--beside"]) == 0
    assert "identical to the original" in capsys.readouterr().out and not scripted.answers


def test_still_found_after_the_retries_is_written_but_fails_the_batch(removers, detector, tmp_path, capsys):
    detector(SELECT, None, SELECT, 0.62, 0.62)  # a.jpg passes; b.jpg keeps its cup through LaMa and MI-GAN
    assert _edit(tmp_path, "--remove", "--retries", "1", photos=("a.jpg", "b.jpg")) == 1
    out = capsys.readouterr()
    assert "1 done, 0 skipped (already done), 0 failed, 1 failed the check" in out.out
    assert f"failed: {tmp_path / 'b.jpg'}: failed the check: still found: cup 0.62 (2 attempts)" in out.err
    written = read_recipe(edit_output(tmp_path / "out", "b")).parameters["check"]
    assert not written["passed"] and [a["model"] for a in written["attempts"]] == ["lama", "migan"]


def test_a_replace_must_find_its_phrase_and_retries_with_the_next_seed(isolated_models, detector, tmp_path,
                                                                       capsys, monkeypatch):
    monkeypatch.setitem(GENERATORS.builders, "seeded-noise", SeededNoise)
    detector(SELECT, None, 0.71)
    assert _edit(tmp_path, "--prompt", "a corgi", "--check", "a corgi", "--model", "seeded-noise",
                 "--seed", "41") == 0
    recipe = read_recipe(edit_output(tmp_path / "out", "coffee"))
    attempts = recipe.parameters["check"]["attempts"]
    assert [(a["seed"], a["passed"]) for a in attempts] == [(41, False), (42, True)] and recipe.seed == 42
    assert attempts[1]["phrase"] == "a corgi" and attempts[1]["score"] == 0.71
    capsys.readouterr()
    assert main(["replay", str(edit_output(tmp_path / "out", "coffee")), "--beside"]) == 0
    assert "identical to the original" in capsys.readouterr().out


def test_no_check_turns_the_second_look_off(removers, detector, tmp_path):
    scripted = detector(SELECT)
    assert _edit(tmp_path, "--remove", "--no-check") == 0
    assert len(scripted.calls) == 1
    assert "check" not in read_recipe(edit_output(tmp_path / "out", "coffee")).parameters


@pytest.mark.parametrize("args, message", [
    (["--remove", "--check", "a cup"], "is for a replace"),
    (["--prompt", "x", "--check", "a dog", "--no-check"], "contradict"),
    (["--remove", "--retries", "-1"], "0..20"),
])
def test_check_options_that_mean_nothing_are_refused(isolated_models, detector, tmp_path, capsys, args, message):
    detector()
    assert _edit(tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_a_detection_outside_the_edited_region_does_not_count():
    class Beside:
        def detect(self, image, text):
            return Detections([(0, 0, 20, 20), (40, 40, 60, 60)], [0.9, 0.4], [text, text])

    region = np.zeros((200, 200), bool)
    region[80:120, 80:120] = True
    look = look_again(Beside(), np.zeros((200, 200, 3), np.uint8), region, "car", "absent")
    # the crop starts at (48, 48): the 0.9 box is at (48..68) outside the region, the 0.4 one inside it
    assert look.score == pytest.approx(0.4) and not look.passed and look.verdict() == "still found: car 0.40"
    with pytest.raises(InvalidInputError, match="replace"):
        EditRequest(mode="background", mask=region, check="car")
