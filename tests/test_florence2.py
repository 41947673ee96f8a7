"""Florence-2 on transformers: captions and phrase grounding give exactly what transformers' own recipe gives on
the same tiny random weights (saved with `save_pretrained`, as `florence-community/Florence-2-base` is), the
catalogue entry loads through the real path, and "auto" picks the captioner the device and the disk call for."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import DEMOS, assert_segment_names_download, models_list_row

from editanything import read_image
from editanything.caption import (CAPTIONERS, Blip2Captioner, Florence2Captioner, auto_candidates, get_captioner,
                                  region_crop)
from editanything.detect import Florence2Detector, get_detector
from editanything.errors import InvalidInputError, ModelNotFound, NothingFound
from editanything.models import MODELS, get_spec

torch = pytest.importorskip("torch")
MAX_NEW = 24
NAME = "florence-2-base"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from tiny_florence2 import build_tiny_florence2

    return build_tiny_florence2(tmp_path_factory.mktemp("florence") / NAME)


@pytest.fixture(scope="module")
def blip2_folder(tmp_path_factory):
    from tiny_detect_models import build_tiny_blip2

    return build_tiny_blip2(tmp_path_factory.mktemp("blip2") / "blip2-opt-2.7b")


@pytest.fixture(scope="module")
def reference(tiny_folder):
    """The model and processor straight from transformers, as its Florence-2 docs use them."""
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    model = Florence2ForConditionalGeneration.from_pretrained(str(tiny_folder), local_files_only=True).eval()
    return model, AutoProcessor.from_pretrained(str(tiny_folder), local_files_only=True)


@pytest.fixture(scope="module")
def captioner(tiny_folder):
    return Florence2Captioner.from_folder(tiny_folder, device="cpu", max_new_tokens=MAX_NEW)


@pytest.fixture(scope="module")
def photos():
    return [read_image(DEMOS / "coffee.jpg"), read_image(DEMOS / "rocket.jpg")]


def reference_run(reference, image: np.ndarray, prompt: str, task: str, max_new_tokens: int) -> object:
    from PIL import Image

    model, processor = reference
    pil = Image.fromarray(image)
    inputs = processor(text=prompt, images=pil, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=3, do_sample=False)
    text = processor.batch_decode(out, skip_special_tokens=False)[0]
    return processor.post_process_generation(text, task=task, image_size=pil.size)[task]


@pytest.fixture
def catalogue_model(tiny_folder, isolated_models, monkeypatch):
    """The tiny folder as the catalogue's florence-2-base; only the weights' size pin is lifted (not 463 MB here)."""
    spec = get_spec(NAME)
    files = tuple(dataclasses.replace(f, size=None) for f in spec.files)
    monkeypatch.setitem(MODELS, NAME, dataclasses.replace(spec, files=files))
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    (isolated_models / NAME).symlink_to(tiny_folder, target_is_directory=True)
    return isolated_models


# --- captions: parity with transformers ---------------------------------------------------------------------

def test_caption_matches_transformers(captioner, reference, photos):
    ours = [captioner.caption(im) for im in photos]
    assert ours == [reference_run(reference, im, "<CAPTION>", "<CAPTION>", MAX_NEW) for im in photos]
    assert ours[0] != ours[1], "the tiny model should read the image"
    detailed = captioner.caption(photos[0], prompt="<DETAILED_CAPTION>")
    assert detailed == reference_run(reference, photos[0], "<DETAILED_CAPTION>", "<DETAILED_CAPTION>", MAX_NEW)


def test_region_captions_match_transformers_on_the_masked_crop(captioner, reference, photos):
    image = photos[0]
    h, w = image.shape[:2]
    masks = [np.zeros((h, w), bool), np.zeros((h, w), bool)]
    masks[0][h // 4: h // 2, w // 4: w // 2] = True
    masks[1][h // 2:, w // 2:] = True
    fill = tuple(int(round(255 * m)) for m in (0.485, 0.456, 0.406))  # ImageNet mean: the processor's
    assert captioner.fill == fill
    expected = [reference_run(reference, region_crop(image, m, 0.1, fill)[0], "<CAPTION>", "<CAPTION>", MAX_NEW)
                for m in masks]
    assert captioner.caption_regions(image, masks) == expected
    assert captioner.caption(image, mask=masks[1]) == expected[1]


def test_a_question_is_refused_before_the_model_runs(captioner, photos):
    with pytest.raises(InvalidInputError, match="Florence-2 answers no questions.*blip2-opt-2.7b"):
        captioner.caption(photos[0], prompt="Question: what is this? Answer:")
    with pytest.raises(InvalidInputError, match="task must be one of"):
        Florence2Captioner(captioner.model, captioner.processor, task="<OD>")


# --- phrase grounding: parity with transformers -----------------------------------------------------------

def test_grounding_boxes_and_phrases_match_transformers(tiny_folder, reference, photos):
    detector = Florence2Detector.from_folder(tiny_folder, device="cpu", nms_iou=None)
    results = []
    for image in photos:
        found = detector.detect(image, "Cup. Red  car")
        expected = reference_run(reference, image, "<CAPTION_TO_PHRASE_GROUNDING>cup, red car",
                                 "<CAPTION_TO_PHRASE_GROUNDING>", 256)
        assert len(found) == len(expected["bboxes"]) > 0
        results.append(ours := sorted(zip(found.xyxy.tolist(), found.phrases)))
        h, w = image.shape[:2]
        clipped = np.clip(np.asarray(expected["bboxes"], np.float32), 0, [w, h, w, h])
        assert ours == sorted(zip(clipped.tolist(), [label.strip() for label in expected["labels"]]))
        assert list(found.scores) == sorted(found.scores, reverse=True)
        assert all(0 < s <= 1 for s in found.scores)
    assert results[0] != results[1], "the tiny model should read the image"


def test_box_threshold_top_k_and_nothing_found(tiny_folder, photos):
    every = Florence2Detector.from_folder(tiny_folder, device="cpu", nms_iou=None).detect(photos[0], "cup")
    cut = float(np.median(every.scores))
    kept = Florence2Detector.from_folder(tiny_folder, device="cpu", nms_iou=None, box_threshold=cut,
                                         top_k=3).detect(photos[0], "cup")
    assert 0 < len(kept) <= 3 and all(kept.scores > cut)
    np.testing.assert_array_equal(kept.scores, every.scores[: len(kept)])
    with pytest.raises(NothingFound, match=r"no 'cup' above box_threshold 1; best score 0\.\d\d"):
        Florence2Detector.from_folder(tiny_folder, device="cpu", box_threshold=1.0).detect(photos[0], "cup")
    with pytest.raises(InvalidInputError, match=r"too long for Florence-2: .* at most 512; use fewer"):
        Florence2Detector.from_folder(tiny_folder, device="cpu").detect(photos[0], " . ".join(["red car"] * 80))


# --- the catalogue entry through the real loading path ---------------------------------------------------

def test_catalogue_entry_is_pinned_mit_and_both_a_captioner_and_a_detector(catalogue_model, photos):
    spec = get_spec(NAME)
    assert (spec.kind, spec.license, spec.loader["backend"]) == ("captioner", "MIT", "florence2")
    weights = next(f for f in MODELS[NAME].files if f.path.endswith("model.safetensors"))
    assert weights.pinned and all(s.pinned for f in spec.files for s in f.sources)
    captioner = get_captioner(NAME, max_new_tokens=MAX_NEW)
    assert isinstance(captioner, Florence2Captioner) and captioner.describe().startswith(f"Florence-2 {NAME} on cpu")
    detector = get_detector(NAME, nms_iou=None)
    assert isinstance(detector, Florence2Detector) and len(detector.detect(photos[0], "cup")) > 0


def test_missing_weights_name_the_download_command(catalogue_model, tmp_path):
    (catalogue_model / NAME).unlink()
    for build in (lambda: get_captioner(NAME), lambda: get_detector(NAME)):
        with pytest.raises(ModelNotFound, match=f"editanything models download {NAME}"):
            build()
    assert_segment_names_download(NAME, tmp_path / "out")


def test_models_list_shows_florence_and_its_licence(isolated_models):
    line = models_list_row(NAME)
    assert "captioner" in line and "MIT" in line


# --- "auto": the captioner for each combination of weights on disk, on a CPU and on CUDA -------------------

@pytest.mark.parametrize("on_disk,device,picked", [
    ((), "cpu", None), ((), "cuda", None),
    ((NAME,), "cpu", NAME), ((NAME,), "cuda", NAME),
    (("blip2-opt-2.7b",), "cpu", "blip2-opt-2.7b"), (("blip2-opt-2.7b",), "cuda", "blip2-opt-2.7b"),
    ((NAME, "blip2-opt-2.7b"), "cpu", NAME), ((NAME, "blip2-opt-2.7b"), "cuda", "blip2-opt-2.7b"),
])
def test_auto_captioner_for_each_combination_on_disk(catalogue_model, blip2_folder, on_disk, device, picked):
    if NAME not in on_disk:
        (catalogue_model / NAME).unlink()
    if "blip2-opt-2.7b" in on_disk:
        (catalogue_model / "blip2-opt-2.7b").symlink_to(blip2_folder, target_is_directory=True)
    assert CAPTIONERS.pick(device) == picked
    if picked is None:
        first = NAME if device == "cpu" else "blip2-opt-2.7b"
        assert auto_candidates(device)[0] == first
        with pytest.raises(ModelNotFound, match=f"editanything models download {first}"):
            get_captioner("auto", device=device)
    elif device == "cpu":  # CUDA is not here to build on: the choice above is what "auto" would build
        built = get_captioner("auto", device=device)
        assert isinstance(built, Florence2Captioner if picked == NAME else Blip2Captioner)


def test_caption_command_uses_florence_and_sends_questions_to_blip2(catalogue_model, photos, capsys):
    from editanything.cli import main

    assert main(["caption", str(DEMOS / "coffee.jpg")]) == 0
    expected = get_captioner(NAME, device="cpu").caption(photos[0])
    assert capsys.readouterr().out.strip() == expected.strip()
    assert main(["caption", str(DEMOS / "coffee.jpg"), "--question", "what is it?"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "editanything models download blip2-opt-2.7b" in err[0], err


def test_box_scores_are_the_mean_probability_of_their_location_tokens(tiny_folder, reference, photos):
    """Recomputed from scratch: one teacher-forced pass over transformers' own answer gives each generated
    token's log-probability; a box's score is exp(mean) over the four location tokens that dequantize to it."""
    import re

    from PIL import Image

    detector = Florence2Detector.from_folder(tiny_folder, device="cpu", nms_iou=None)
    found = detector.detect(photos[0], "cup")
    model, processor = reference
    pil = Image.fromarray(photos[0])
    inputs = processor(text="<CAPTION_TO_PHRASE_GROUNDING>cup", images=pil, return_tensors="pt")
    with torch.no_grad():
        sequence = model.generate(**inputs, max_new_tokens=256, num_beams=3, do_sample=False)
        logits = model(**inputs, decoder_input_ids=sequence[:, :-1]).logits[0]
    logp = torch.log_softmax(logits.float(), -1).gather(1, sequence[0, 1:, None])[:, 0]
    tokens = processor.tokenizer.convert_ids_to_tokens(sequence[0, 1:].tolist())
    keep = [i for i, t in enumerate(tokens) if t not in ("<s>", "</s>", "<pad>")]
    w, h = pil.size
    windows = {}
    for a in range(len(keep) - 3):
        quad = [re.fullmatch(r"<loc_(\d+)>", tokens[keep[a + k]]) for k in range(4)]
        if all(quad):
            bins = [int(m.group(1)) for m in quad]
            box = tuple(int((b + 0.5) * (side / 1000)) for b, side in zip(bins, (w, h, w, h)))  # as dequantize
            windows.setdefault(box, []).append(float(torch.exp(logp[[keep[a + k] for k in range(4)]].mean())))
    for box, score in zip(found.xyxy.tolist(), found.scores.tolist()):
        candidates = windows[tuple(int(v) for v in box)]
        assert min(abs(score - c) for c in candidates) < 1e-4 * max(candidates), (box, score, candidates)


def test_no_captioner_on_disk_is_answered_without_importing_torch(isolated_models):
    code = ("import sys; from editanything.caption import captioner_on_disk; "
            "print(captioner_on_disk(), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "EDITANYTHING_DEVICE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stdout.split() == ["None", "False"], result.stderr


def test_a_background_edit_without_a_prompt_is_written_by_florence(deep, captioner, photos):
    from editanything import Prompt
    from editanything.generate import GenerationParams
    from editanything.pipeline import Editor, EditRequest

    coffee = photos[0]
    editor = Editor(segmenter="grabcut", captioner=captioner)
    box = Prompt(boxes=[(180, 20, 410, 270)])
    params = GenerationParams(steps=2, seed=3, resolution=64)
    result = editor.edit(coffee, EditRequest(mode="background", selection=box, params=params))
    written = result.recipe.parameters["generation"]["prompt"]
    assert written and written == captioner.caption(coffee, mask=~result.mask)
