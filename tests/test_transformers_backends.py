"""Grounding DINO, SAM 2.1 and EdgeTAM on transformers: parity with transformers called directly, the
embedding cache, and which backend `auto` picks for each combination of weights on disk."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import DEMOS, edit_output
from model_pins import pin_to_files
from tiny_hf_models import (build_tiny_edgetam, build_tiny_grounding_dino_hf, build_tiny_sam2,
                            reference_grounded_detect)

from editanything import read_image
from editanything.detect import GroundingDinoDetector, GroundingDinoHFDetector, get_detector
from editanything.errors import InvalidInputError, MissingDependency, ModelNotFound, NothingFound
from editanything.segment import GrabCutSegmenter, SamSegmenter, auto_order, get_segmenter
from editanything.segment.sam2_hf import Sam2Segmenter
from editanything.types import Prompt


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """Tiny transformers models in folders named as the manifest expects them."""
    root = tmp_path_factory.mktemp("hf-models")
    return {"grounding-dino-tiny": build_tiny_grounding_dino_hf(root / "grounding-dino-tiny"),
            "sam2.1-hiera-tiny": build_tiny_sam2(root / "sam2.1-hiera-tiny"),
            "edgetam": build_tiny_edgetam(root / "edgetam")}


@pytest.fixture(scope="session")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _link_models(checkpoints, hf_models, names):
    for name in names:
        (checkpoints / name).symlink_to(hf_models[name], target_is_directory=True)


# --- Grounding DINO -------------------------------------------------------------------------


@pytest.mark.parametrize("text,caption", [("cup", "cup ."), ("Cup. Red  Car", "cup . red car .")])
def test_grounding_dino_matches_transformers(hf_models, coffee, text, caption):
    folder = hf_models["grounding-dino-tiny"]
    detector = GroundingDinoHFDetector.from_folder(folder, box_threshold=0.5, text_threshold=0.3, nms_iou=None,
                                                   device="cpu")
    found = detector.detect(coffee, text)
    boxes, scores, phrases = reference_grounded_detect(folder, "GroundingDinoForObjectDetection", coffee, caption,
                                                       0.5, 0.3)
    assert 0 < len(found) < 20  # the threshold kept some of the 20 queries, not all
    np.testing.assert_array_equal(found.xyxy, boxes)
    np.testing.assert_array_equal(found.scores, scores)
    assert found.phrases == phrases
    assert (found.xyxy[:, 2] <= coffee.shape[1]).all() and (found.xyxy[:, 3] <= coffee.shape[0]).all()


def test_grounding_dino_nms_top_k_and_nothing_found(hf_models, coffee):
    folder = hf_models["grounding-dino-tiny"]
    every = GroundingDinoHFDetector.from_folder(folder, box_threshold=0.0, nms_iou=None, device="cpu").detect(coffee, "cup")
    kept = GroundingDinoHFDetector.from_folder(folder, box_threshold=0.0, nms_iou=0.3, top_k=3,
                                               device="cpu").detect(coffee, "cup")
    assert len(kept) == 3 and len(every) == 20
    assert list(kept.scores) == sorted(kept.scores, reverse=True) and kept.scores[0] == every.scores[0]
    with pytest.raises(NothingFound, match=r"no 'cup' above box_threshold 1; best score \d\.\d\d"):
        GroundingDinoHFDetector.from_folder(folder, box_threshold=1.0, device="cpu").detect(coffee, "cup")


# --- SAM 2.1 and EdgeTAM (the same Sam2Segmenter) ----------------------------------------------


PROMPTS = [
    Prompt(points=[(200, 150, 1)]),
    Prompt(points=[(200, 150, 1), (350, 300, 0)]),
    Prompt(boxes=[(180, 20, 410, 270)]),
    Prompt(boxes=[(180, 20, 410, 270)], points=[(300, 100, 1)]),
    Prompt(boxes=[(180, 20, 410, 270), (320, 200, 410, 330)]),
]


def _reference_segment(model, processor, image, prompt, multimask, input_masks=None):
    """SAM 2.1 as transformers' docs call it: processor(images, prompts) → model(**inputs) → post_process_masks."""
    kwargs = {}
    if len(prompt.boxes) > 1:
        kwargs["input_boxes"] = [[list(b) for b in prompt.boxes]]
    else:
        if prompt.points:
            kwargs["input_points"] = [[[[x, y] for x, y, _ in prompt.points]]]
            kwargs["input_labels"] = [[[label for _, _, label in prompt.points]]]
        if prompt.boxes:
            kwargs["input_boxes"] = [[list(prompt.boxes[0])]]
    inputs = processor(images=image, return_tensors="pt", **kwargs)
    with torch.no_grad():
        out = model(**inputs, input_masks=input_masks, multimask_output=multimask)
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0].numpy()
    return masks, out.iou_scores[0].numpy(), out.pred_masks[0]


SAM2_FAMILY = ["sam2.1-hiera-tiny", "edgetam"]


@pytest.fixture(scope="module", params=SAM2_FAMILY)
def sam2_folder(hf_models, request):
    return hf_models[request.param]


@pytest.fixture(scope="module")
def sam2(sam2_folder):
    return Sam2Segmenter.from_folder(sam2_folder, device="cpu")


@pytest.fixture(scope="module")
def reference(sam2_folder):
    """The same weights loaded afresh by transformers (our segmenter lays some of them out channels-last)."""
    from transformers import AutoModel, Sam2Processor

    return AutoModel.from_pretrained(sam2_folder).eval(), Sam2Processor.from_pretrained(sam2_folder)


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("prompt", PROMPTS, ids=["click", "clicks", "box", "box+click", "boxes"])
def test_sam2_matches_transformers(sam2, reference, coffee, prompt, multimask):
    masks, scores, _ = _reference_segment(*reference, coffee, prompt, multimask)
    found = sam2.segment(coffee, prompt, multimask=multimask)
    expected_masks, expected_scores = [], []
    for b in range(len(scores)):
        order = np.argsort(-scores[b], kind="stable") if multimask else range(scores.shape[1])
        expected_masks += [masks[b, c] for c in order]
        expected_scores += [scores[b, c] for c in order]
    assert found.masks.shape == (len(expected_masks), *coffee.shape[:2]) and found.masks.dtype == bool
    np.testing.assert_array_equal(found.masks, np.stack(expected_masks))
    np.testing.assert_array_equal(found.scores, np.asarray(expected_scores, np.float32))


def test_sam2_refinement_seed_is_the_callers(sam2, reference, coffee):
    first, second = Prompt(points=[(200, 150, 1)]), Prompt(points=[(200, 150, 1), (260, 90, 0)])
    found = sam2.segment(coffee, first)
    _, _, logits = _reference_segment(*reference, coffee, first, False)
    masks, _, _ = _reference_segment(*reference, coffee, second, False, input_masks=logits[0, :1][None])
    # Another caller's click in between changes nothing: the seed travels with the result, not the segmenter.
    other = sam2.segment(coffee, Prompt(boxes=[(180, 20, 410, 270)]))
    refined = sam2.segment(coffee, second, refine=found.refine_seed)
    np.testing.assert_array_equal(refined.masks[0], masks[0, 0])
    assert not np.array_equal(sam2.segment(coffee, second).masks[0], refined.masks[0])
    assert other.refine_seed is not None and sam2.segment(coffee, Prompt(boxes=PROMPTS[4].boxes)).refine_seed is None
    with pytest.raises(InvalidInputError, match="another image"):
        sam2.segment(coffee[::-1].copy(), second, refine=found.refine_seed)


def test_sam2_second_click_does_not_rerun_the_encoder(sam2_folder, coffee, monkeypatch):
    seg = Sam2Segmenter.from_folder(sam2_folder, device="cpu", cache_size=2)
    calls = []
    encode = seg.model.get_image_embeddings
    monkeypatch.setattr(seg.model, "get_image_embeddings", lambda *a, **k: calls.append(1) or encode(*a, **k))
    other = coffee[::-1].copy()
    seg.segment(coffee, Prompt(points=[(200, 150, 1)]))
    seg.segment(coffee, Prompt(points=[(200, 150, 1), (300, 80, 0)]))
    seg.segment(coffee, Prompt(boxes=[(180, 20, 410, 270), (320, 200, 410, 330)]))
    assert len(calls) == 1
    seg.prepare(other)
    seg.segment(other, Prompt(points=[(10, 10, 1)]))
    seg.segment(coffee, Prompt(points=[(20, 20, 1)]))
    assert len(calls) == 2
    changed = coffee.copy()
    changed[0, 0, 0] ^= 1  # one changed value is another image
    seg.segment(changed, Prompt(points=[(20, 20, 1)]))
    assert len(calls) == 3


# --- auto and the models layer ---------------------------------------------------------------


def test_auto_segmenter_for_each_combination_of_weights(isolated_models, hf_models, tiny_checkpoints, monkeypatch):
    from tiny_models import register_tiny_sam

    from editanything.models import MODELS

    spec = MODELS["sam-vit-b"]
    monkeypatch.setitem(MODELS, "sam-vit-b", dataclasses.replace(spec, loader={"sam_type": register_tiny_sam()}))
    assert isinstance(get_segmenter("auto", device="cpu"), GrabCutSegmenter)
    (isolated_models / "sam_vit_b_01ec64.pth").symlink_to(tiny_checkpoints[0] / "sam_vit_b_01ec64.pth")
    pin_to_files(monkeypatch, isolated_models, "sam-vit-b")
    only_sam = get_segmenter("auto", device="cpu")
    assert isinstance(only_sam, SamSegmenter) and only_sam.name == "sam-vit-b"
    _link_models(isolated_models, hf_models, ["sam2.1-hiera-tiny"])
    both = get_segmenter("auto", device="cpu")
    assert isinstance(both, Sam2Segmenter) and both.name == "sam2.1-hiera-tiny"
    assert "sam2.1-hiera-tiny" in both.describe()
    # On a GPU the most accurate model on disk comes first; EdgeTAM, then Hiera-Tiny, are the fast ones for CPUs.
    assert auto_order("cuda")[0] == "sam2.1-hiera-large" and auto_order("cuda")[-1] == "edgetam"
    assert auto_order("cpu")[:3] == ("edgetam", "sam2.1-hiera-tiny", "sam2.1-hiera-large")
    assert sorted(auto_order("cpu")) == sorted(auto_order("cuda"))
    (isolated_models / "sam2.1-hiera-large").symlink_to(hf_models["sam2.1-hiera-tiny"], target_is_directory=True)
    assert get_segmenter("auto", device="cpu").name == "sam2.1-hiera-tiny"
    _link_models(isolated_models, hf_models, ["edgetam"])
    fast = get_segmenter("auto", device="cpu")
    assert fast.name == "edgetam" and type(fast.model).__name__ == "EdgeTamModel" and "edgetam" in fast.describe()
    (isolated_models / "sam2.1-hiera-tiny").unlink()
    assert get_segmenter("auto", device="cpu").name == "edgetam"
    (isolated_models / "edgetam").unlink()
    assert get_segmenter("auto", device="cpu").name == "sam2.1-hiera-large"


def test_edgetam_without_timm_names_the_extra(isolated_models, hf_models, monkeypatch):
    import sys

    _link_models(isolated_models, hf_models, ["edgetam", "sam2.1-hiera-tiny"])
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(MissingDependency, match=r"timm is not installed .*pip install 'editanything\[sam2\]'"):
        get_segmenter("edgetam", device="cpu")
    assert get_segmenter("auto", device="cpu").name == "sam2.1-hiera-tiny"  # the next one auto can run
    (isolated_models / "sam2.1-hiera-tiny").unlink()
    fallback = get_segmenter("auto", device="cpu")
    assert isinstance(fallback, GrabCutSegmenter)
    assert "edgetam is on disk but its library is not installed — pip install 'editanything[sam2]'" in fallback.describe()


def test_options_of_another_family_are_dropped_by_auto_and_refused_by_name(isolated_models, hf_models, caplog):
    _link_models(isolated_models, hf_models, ["edgetam"])
    with caplog.at_level("WARNING", logger="editanything.segment"):
        seg = get_segmenter("auto", device="cpu", cache_size=3, variant="vit_b", decoder="onnx")
    assert seg.name == "edgetam" and seg.cache_size == 3
    assert "segmenter auto took edgetam, which has no option decoder, variant: ignored" in caplog.text
    with pytest.raises(InvalidInputError, match="segmenter edgetam has no option decoder .*it takes device, cache_size") as err:
        get_segmenter("edgetam", device="cpu", decoder="onnx")
    assert "\n" not in str(err.value)
    with pytest.raises(InvalidInputError, match="segmenter auto: unknown option devcie"):
        get_segmenter("auto", devcie="cpu")


def test_auto_detector_for_each_combination_of_weights(isolated_models, hf_models, tiny_checkpoints, monkeypatch):
    from tiny_detect_models import use_tiny_config

    root, config = tiny_checkpoints
    use_tiny_config(monkeypatch, config)
    with pytest.raises(ModelNotFound, match="editanything models download grounding-dino-tiny"):
        get_detector("auto")
    for name in ("groundingdino_swint_ogc.pth", "bert-base-uncased"):
        (isolated_models / name).symlink_to(root / name)
    pin_to_files(monkeypatch, isolated_models, "groundingdino-swint-ogc")
    assert isinstance(get_detector("auto", device="cpu"), GroundingDinoDetector)
    _link_models(isolated_models, hf_models, ["grounding-dino-tiny"])
    both = get_detector("auto", device="cpu")
    assert isinstance(both, GroundingDinoHFDetector) and both.name == "grounding-dino-tiny"
    (isolated_models / "groundingdino_swint_ogc.pth").unlink()
    assert isinstance(get_detector("auto", device="cpu"), GroundingDinoHFDetector)


def test_missing_transformers_models_name_the_download_command(isolated_models):
    for name in ("grounding-dino-tiny", "grounding-dino-base"):
        with pytest.raises(ModelNotFound, match=f"editanything models download {name}"):
            get_detector(name)
    for name in ("edgetam", "sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam2.1-hiera-base-plus", "sam2.1-hiera-large"):
        with pytest.raises(ModelNotFound, match=f"editanything models download {name}"):
            get_segmenter(name)
    assert "editanything models download edgetam" in get_segmenter("auto", device="cpu").describe()
    from editanything.detect.sam3 import Sam3Detector

    with pytest.raises(InvalidInputError, match="'sam-vit-b' is a segmenter, not a transformers Grounding DINO"):
        GroundingDinoHFDetector.from_model("sam-vit-b")
    with pytest.raises(InvalidInputError, match="'grounding-dino-tiny' is a detector, not SAM 3"):
        Sam3Detector.from_model("grounding-dino-tiny")


# --- end to end through the CLI --------------------------------------------------------------


@pytest.fixture
def hf_checkpoints(isolated_models, hf_models):
    _link_models(isolated_models, hf_models, ["grounding-dino-tiny", "sam2.1-hiera-tiny"])
    return isolated_models


def test_cli_segment_select_with_transformers_detector_and_sam2(hf_checkpoints, tmp_path, coffee):
    from editanything.cli import main
    from editanything.pipeline import Editor

    out = tmp_path / "seg"
    assert main(["segment", str(DEMOS / "coffee.jpg"), "--select", "cup", "-o", str(out)]) == 0
    data = json.loads((out / "detections.json").read_text())
    expected = Editor().select(coffee, Prompt(text="cup"))
    assert [d["phrase"] for d in data["instances"]] == expected.phrases and "cup" in expected.phrases
    first = np.asarray(Image.open(out / "mask_00.png")) > 127
    np.testing.assert_array_equal(first, expected.masks[0])


def test_cli_edit_select_remove_with_transformers_detector_and_sam2(hf_checkpoints, tmp_path):
    from editanything.cli import main
    from editanything.recipe import decode_mask, read_recipe

    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--select", "cup", "--keep", "0", "--remove", "--no-check", "-o", str(out), "-q"]) == 0
    recipe = read_recipe(edit_output(out, "coffee"))
    assert recipe.models["detector"]["name"] == "grounding-dino-tiny"
    assert recipe.models["segmenter"]["name"] == "sam2.1-hiera-tiny"
    before, after = read_image(DEMOS / "coffee.jpg"), read_image(edit_output(out, "coffee"))
    mask = decode_mask(recipe.parameters["mask"])
    assert 0 < mask.mean() < 1, mask.mean()
    assert not np.array_equal(before[mask], after[mask])


# --- SAM 3 -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sam3_checkpoints(tmp_path_factory):
    from tiny_hf_models import build_tiny_sam3

    root = tmp_path_factory.mktemp("sam3-checkpoints")
    build_tiny_sam3(root / "sam3")
    return root


@pytest.fixture
def sam3_models(sam3_checkpoints, monkeypatch, tmp_path):
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(sam3_checkpoints))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    return sam3_checkpoints / "sam3"


def test_sam3_text_matches_transformers(sam3_models, coffee):
    from transformers import Sam3Model, Sam3Processor

    from editanything.detect.sam3 import Sam3Detector

    every = get_detector("sam3", box_threshold=0.0, device="cpu").detect(coffee, "cup")
    threshold = float(np.median(every.scores))  # random weights: keep about half of the queries
    detector = get_detector("sam3", box_threshold=threshold, device="cpu")
    assert isinstance(detector, Sam3Detector) and "SAM 3" in detector.describe()
    found = detector.detect(coffee, "Cup")
    model, processor = Sam3Model.from_pretrained(sam3_models).eval(), Sam3Processor.from_pretrained(sam3_models)
    inputs = processor(images=coffee, text="cup", return_tensors="pt")
    with torch.no_grad():
        expected = processor.post_process_instance_segmentation(
            model(**inputs), threshold=threshold, mask_threshold=0.5, target_sizes=[coffee.shape[:2]])[0]
    order = np.argsort(-expected["scores"].numpy(), kind="stable")
    assert 0 < len(found) < len(every) and found.phrases == ["cup"] * len(found)
    np.testing.assert_allclose(found.scores, expected["scores"].numpy()[order], rtol=0, atol=1e-6)
    boxes = expected["boxes"].numpy()[order]
    boxes[:, 0::2], boxes[:, 1::2] = boxes[:, 0::2].clip(0, 600), boxes[:, 1::2].clip(0, 400)
    np.testing.assert_allclose(found.xyxy, boxes, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(found.masks, expected["masks"].numpy().astype(bool)[order])


def test_sam3_phrases_share_one_image_encoding(sam3_models, coffee, monkeypatch):
    detector = get_detector("sam3", box_threshold=0.0, device="cpu")
    calls = []
    encode = detector.model.get_vision_features
    monkeypatch.setattr(detector.model, "get_vision_features", lambda *a, **k: calls.append(1) or encode(*a, **k))
    both = detector.detect(coffee, "cup . red car")
    cup = detector.detect(coffee, "cup")
    assert len(calls) == 1
    assert set(both.phrases) <= {"cup", "red car"} and both.phrases.count("cup") == len(cup)
    assert list(both.scores) == sorted(both.scores, reverse=True)
    with pytest.raises(NothingFound, match="no 'cup' above threshold 1"):
        get_detector("sam3", box_threshold=1.0, device="cpu").detect(coffee, "cup")


def test_sam3_clicks_go_through_its_tracker(sam3_models, coffee, monkeypatch):
    from transformers import Sam3TrackerModel, Sam3TrackerProcessor

    seg = get_segmenter("sam3", device="cpu")
    assert type(seg.model).__name__ == "Sam3TrackerModel"
    model = Sam3TrackerModel.from_pretrained(sam3_models).eval()
    processor = Sam3TrackerProcessor(seg.processor.image_processor)
    for prompt in (PROMPTS[1], PROMPTS[4]):
        masks, scores, _ = _reference_segment(model, processor, coffee, prompt, False)
        found = seg.segment(coffee, prompt)
        np.testing.assert_array_equal(found.masks, masks[:, 0])
        np.testing.assert_array_equal(found.scores, scores[:, 0])
    calls = []
    encode = seg.model.get_image_embeddings
    monkeypatch.setattr(seg.model, "get_image_embeddings", lambda *a, **k: calls.append(1) or encode(*a, **k))
    first = seg.segment(coffee, PROMPTS[0])
    seg.segment(coffee, PROMPTS[1], refine=first.refine_seed)
    assert calls == []  # the parity clicks above already encoded this photo


def test_segmenter_sam3_answers_text_with_its_own_masks(sam3_models, coffee):
    from editanything.detect.sam3 import Sam3Detector
    from editanything.pipeline import Editor

    editor = Editor(segmenter="sam3", detector_options={"box_threshold": 0.0})
    found = editor.select(coffee, Prompt(text="cup"))
    assert isinstance(editor.detector, Sam3Detector)
    expected = editor.detector.detect(coffee, "cup")
    np.testing.assert_array_equal(found.masks, expected.masks)
    assert found.phrases == expected.phrases


def test_weights_that_do_not_fit_the_config_are_one_line(hf_models, tmp_path, capfd):
    import shutil

    folder = tmp_path / "grounding-dino-tiny"
    shutil.copytree(hf_models["grounding-dino-tiny"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["d_model"] *= 2  # a config of a wider model beside these weights
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="its weights do not fit .*config.json") as err:
        GroundingDinoHFDetector.from_folder(folder, device="cpu")
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
    assert "LOAD REPORT" not in capfd.readouterr().err
