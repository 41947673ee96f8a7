"""BLIP-2 captions: parity with transformers on a tiny random model, region crop geometry, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from editanything import InvalidInputError, ModelNotFound, read_image
from editanything.caption import DEFAULT_PROMPT, Blip2Captioner, Captioner, get_captioner, region_box, region_crop

DEMOS = Path(__file__).resolve().parents[1] / "demos"
MAX_NEW = 12


@pytest.fixture(scope="module")
def blip2_folder(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_detect_models import build_tiny_blip2

    return build_tiny_blip2(tmp_path_factory.mktemp("models") / "blip2-opt-2.7b")


@pytest.fixture(scope="module")
def captioner(blip2_folder):
    return Blip2Captioner.from_pretrained(blip2_folder, device="cpu", max_new_tokens=MAX_NEW)


@pytest.fixture(scope="module")
def reference(blip2_folder):
    """The model and processor straight from transformers, as its docs use them."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    model = Blip2ForConditionalGeneration.from_pretrained(str(blip2_folder), local_files_only=True).eval()
    return model, Blip2Processor.from_pretrained(str(blip2_folder), local_files_only=True)


def reference_captions(reference, images: list[np.ndarray], prompt: str | None = None) -> list[str]:
    import torch
    from PIL import Image

    model, processor = reference
    text = None if prompt is None else [prompt] * len(images)
    inputs = processor(images=[Image.fromarray(im) for im in images], text=text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    if prompt is not None:
        out = out[:, inputs["input_ids"].shape[1]:]
    return [t.strip() for t in processor.batch_decode(out, skip_special_tokens=True)]


def expected_crop(image: np.ndarray, mask: np.ndarray, padding: float, fill) -> np.ndarray:
    """The region as the docs describe it, computed here from scratch."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    pad = int(round(padding * max(x1 - x0, y1 - y0)))
    h, w = mask.shape
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    crop = image[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = fill
    return crop


def ellipse(shape, center, axes) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - center[0]) / axes[0]) ** 2 + ((yy - center[1]) / axes[1]) ** 2 <= 1


# --- parity with transformers ---------------------------------------------------------------------

def test_whole_image_caption_matches_transformers(captioner, reference):
    images = [read_image(DEMOS / "coffee.jpg"), read_image(DEMOS / "rocket.jpg")]
    ours = [captioner.caption(im) for im in images]
    assert ours == [reference_captions(reference, [im])[0] for im in images]
    assert ours[0] != ours[1], "the tiny model should read the image"
    assert all(ours)


def test_prompted_caption_is_the_answer_only(captioner, reference):
    image = read_image(DEMOS / "chelsea.jpg")
    answer = captioner.caption(image, prompt=DEFAULT_PROMPT)
    assert answer == reference_captions(reference, [image], DEFAULT_PROMPT)[0]
    assert answer != captioner.caption(image)


@pytest.mark.parametrize("prompt", [None, DEFAULT_PROMPT])
def test_region_caption_is_the_caption_of_the_neutralised_crop(captioner, reference, prompt):
    image = read_image(DEMOS / "coffee.jpg")
    mask = ellipse(image.shape[:2], (300, 200), (120, 80))
    crop = expected_crop(image, mask, captioner.padding, captioner.fill)
    assert captioner.caption(image, mask, prompt=prompt) == reference_captions(reference, [crop], prompt)[0]


def test_caption_regions_is_one_batched_generate(captioner, reference):
    image = read_image(DEMOS / "astronaut.jpg")
    masks = np.stack([ellipse(image.shape[:2], (256, 150), (90, 100)),
                      ellipse(image.shape[:2], (100, 400), (60, 60)),
                      ellipse(image.shape[:2], (480, 20), (50, 40))])  # clipped by the border
    crops = [expected_crop(image, m, captioner.padding, captioner.fill) for m in masks]
    for prompt in (None, DEFAULT_PROMPT):
        ours = captioner.caption_regions(image, masks, prompt=prompt)
        assert ours == reference_captions(reference, crops, prompt)
    assert len(set(captioner.caption_regions(image, masks))) > 1


# --- region geometry ------------------------------------------------------------------------------

def test_crop_box_is_the_mask_box_padded():
    mask = np.zeros((100, 120), bool)
    mask[30:50, 40:80] = True  # 40 wide, 20 high
    assert region_box(mask, padding=0.0) == (40, 30, 80, 50)
    assert region_box(mask, padding=0.1) == (36, 26, 84, 54)  # 0.1 x 40 = 4 px a side
    assert region_box(mask, padding=0.5) == (20, 10, 100, 70)


def test_crop_padding_is_clamped_at_the_borders():
    mask = np.zeros((100, 120), bool)
    mask[0:10, 0:20] = True
    assert region_box(mask, padding=0.5) == (0, 0, 30, 20)
    mask = np.zeros((100, 120), bool)
    mask[95:100, 100:120] = True
    assert region_box(mask, padding=1.0) == (80, 75, 120, 100)
    mask = np.ones((100, 120), bool)
    assert region_box(mask, padding=0.3) == (0, 0, 120, 100)


def test_outside_mask_pixels_are_replaced_inside_kept():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 110, 3), dtype=np.uint8)
    original = image.copy()
    mask = ellipse(image.shape[:2], (60, 40), (25, 15))
    crop, (x0, y0, x1, y1) = region_crop(image, mask, padding=0.2, fill=(1, 2, 3))
    assert crop.shape == (y1 - y0, x1 - x0, 3)
    inside = mask[y0:y1, x0:x1]
    np.testing.assert_array_equal(crop[inside], image[y0:y1, x0:x1][inside])
    assert (crop[~inside] == (1, 2, 3)).all()
    assert (~inside).any() and inside.any()
    np.testing.assert_array_equal(image, original)  # the caller's image is untouched


def test_fill_is_the_processor_mean(captioner):
    mean = captioner.processor.image_processor.image_mean
    assert captioner.fill == tuple(int(round(255 * m)) for m in mean)


# --- errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask,match", [
    (np.zeros((40, 50), bool), "empty"),
    (np.ones((40, 51), bool), "shape"),
])
def test_bad_masks_are_rejected(mask, match):
    with pytest.raises(InvalidInputError, match=match):
        region_crop(np.zeros((40, 50, 3), np.uint8), mask)


def test_bad_inputs_are_rejected(captioner):
    image = np.zeros((40, 50, 3), np.uint8)
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        captioner.caption(np.zeros((40, 50), np.uint8))
    with pytest.raises(InvalidInputError, match="prompt"):
        captioner.caption(image, prompt="  ")
    with pytest.raises(InvalidInputError, match="padding"):
        region_box(np.ones((4, 4), bool), padding=-1)


# --- loading ------------------------------------------------------------------------------------------

def test_official_layout_loads_through_models_layer(blip2_folder, captioner, monkeypatch, tmp_path):
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(blip2_folder.parent))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    loaded = get_captioner("auto", device="cpu", max_new_tokens=MAX_NEW)
    assert isinstance(loaded, Captioner)
    assert loaded.name == "blip2-opt-2.7b"
    image = read_image(DEMOS / "rocket.jpg")
    assert loaded.caption(image) == captioner.caption(image)


def test_auto_without_weights_names_the_download_command(isolated_models):
    # On CUDA BLIP-2 is auto's first choice (on a CPU Florence-2 is: tests/test_florence2.py)
    with pytest.raises(ModelNotFound, match="editanything models download blip2-opt-2.7b"):
        get_captioner("auto", device="cuda")


def test_weights_that_do_not_fit_the_config_are_one_line(blip2_folder, tmp_path, capfd):
    import json
    import shutil

    folder = tmp_path / "blip2-opt-2.7b"
    shutil.copytree(blip2_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["ffn_dim"] += 8  # the OPT layers of a bigger model than the weights
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="its tensors do not fit .*config.json") as err:
        Blip2Captioner.from_pretrained(folder, device="cpu")
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' many-line table stays quiet
