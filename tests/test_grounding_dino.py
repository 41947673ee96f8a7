"""Grounding DINO: parity with groundingdino's own `predict`, the transformers-5 BERT fix, loading.

A tiny random Grounding DINO (full Swin-T backbone, 1 encoder / 1 decoder layer, tiny BERT) is
built once per module and saved as an official-style checkpoint.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from model_pins import pin_to_files
from PIL import Image

from editanything import InvalidInputError, ModelNotFound, NothingFound, read_image
from editanything.detect import Detector, GroundingDinoDetector, get_detector, normalize_caption

FIXTURE = Path(__file__).parent / "fixtures" / "bertwarper_tf4_reference.safetensors"
DEMOS = Path(__file__).resolve().parents[1] / "demos"
SIZE = 224  # short side fed to the model: the tiny model's backbone is full Swin-T, 800 px would be slow
# (photo, text given to groundingdino's predict, the same phrases as a user might type them to us)
CASES = [("coffee.jpg", "cup . red car", "Cup. Red  Car"),
         ("astronaut.jpg", "the astronaut . face", "The astronaut . face .")]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, torch):
    pytest.importorskip("groundingdino")
    from tiny_detect_models import build_tiny_grounding_dino

    return build_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


@pytest.fixture(scope="module")
def checkpoint(tiny, torch):
    return torch.load(tiny.checkpoint, weights_only=True)


@pytest.fixture(scope="module")
def upstream_model(tiny):
    """The model as groundingdino's own loader builds it (our BERT warper is needed under transformers 5)."""
    from groundingdino.util.inference import load_model

    from editanything.detect.bert_compat import patched_bert_warper

    with patched_bert_warper():
        model = load_model(str(tiny.config), str(tiny.checkpoint), device="cpu")
    yield model
    upstream_predict.cache_clear()  # it holds the model


@pytest.fixture(scope="module")
def ours(tiny):
    return GroundingDinoDetector.from_files(tiny.config, tiny.checkpoint, tiny.bert_dir, device="cpu",
                                            image_size=SIZE, nms_iou=None)


@functools.lru_cache(maxsize=None)
def upstream_predict(model, photo: str, text: str, box_threshold: float, text_threshold: float):
    """groundingdino's `load_image` transforms (at SIZE) + `predict`, boxes in pixel xyxy clipped, best first.

    Cached: every forward pass of the tiny model costs a Swin-T backbone.
    """
    import groundingdino.datasets.transforms as T
    import torch
    from groundingdino.util.inference import predict
    from torchvision.ops import box_convert

    transform = T.Compose([T.RandomResize([SIZE], max_size=1333), T.ToTensor(),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    image = read_image(DEMOS / photo)
    tensor, _ = transform(Image.fromarray(image), None)
    boxes, scores, phrases = predict(model, tensor, text, box_threshold, text_threshold, device="cpu")
    h, w = image.shape[:2]
    xyxy = box_convert(boxes * torch.tensor([w, h, w, h]), in_fmt="cxcywh", out_fmt="xyxy").numpy()
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
    order = np.argsort(-scores.numpy(), kind="stable")
    return xyxy[order], scores.numpy()[order], [phrases[i].strip() for i in order]


def thresholds(model, photo: str, text: str) -> tuple[float, float]:
    """A box threshold keeping about half the queries and a text threshold splitting the tokens."""
    _, scores, _ = upstream_predict(model, photo, text, 0.0, 0.25)
    return float(np.median(scores)), float(np.quantile(scores, 0.3))


# --- transformers-5 fix ------------------------------------------------------------------------

def _reference():
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
    return meta, load_file(str(FIXTURE))


@pytest.mark.parametrize("attn", ["reference", "eager"])
def test_bert_warper_matches_original_under_transformers4(attn, torch):
    from transformers import BertConfig, BertModel

    from editanything.detect.bert_compat import BertWarper

    meta, t = _reference()
    bert = BertModel(BertConfig(**json.loads(meta["config"]))).eval()
    bert.config._attn_implementation = meta["attn_implementation"] if attn == "reference" else "eager"
    result = bert.load_state_dict({k[len("weights."):]: v for k, v in t.items() if k.startswith("weights.")},
                                  strict=False)
    assert not result.missing_keys
    warper = BertWarper(bert).eval()
    with torch.no_grad():
        sub = warper(input_ids=t["input_ids"], attention_mask=t["attention_mask_3d"],
                     token_type_ids=t["token_type_ids"], position_ids=t["position_ids"])
        plain = warper(input_ids=t["input_ids"], attention_mask=t["padding_mask"], token_type_ids=t["token_type_ids"])
    # The reference ran with the recorded attention kernel; eager attention sums in another order.
    tol = 1e-6 if attn == "reference" else 1e-5
    for name, out in (("sub_sentence", sub), ("padding", plain)):
        for field in ("last_hidden_state", "pooler_output"):
            diff = (getattr(out, field) - t[f"{name}.{field}"]).abs().max().item()
            assert diff <= tol, (name, field, diff)


def test_bert_warper_is_installed_only_while_building(checkpoint, ours, torch):
    from groundingdino.models.GroundingDINO import groundingdino as gd_module

    from editanything.detect.bert_compat import BertWarper, patched_bert_warper

    original = gd_module.BertModelWarper
    assert original is not BertWarper
    with patched_bert_warper():
        assert gd_module.BertModelWarper is BertWarper
    assert gd_module.BertModelWarper is original
    assert isinstance(ours.model.bert, BertWarper)
    # The text encoder is the tiny local BERT, its weights those of the checkpoint.
    state = checkpoint["model"]
    for key, value in ours.model.bert.state_dict().items():
        assert torch.equal(value, state[f"bert.{key}"]), key


# --- parity with groundingdino.util.inference.predict -----------------------------------------

@pytest.mark.parametrize("photo,text,typed", CASES)
def test_detect_matches_upstream_predict(ours, upstream_model, photo, text, typed):
    box_t, text_t = thresholds(upstream_model, photo, text)
    ref_xyxy, ref_scores, ref_phrases = upstream_predict(upstream_model, photo, text, box_t, text_t)
    assert 0 < len(ref_scores) < upstream_model.num_queries

    image = read_image(DEMOS / photo)
    det = GroundingDinoDetector(ours.model, device="cpu", box_threshold=box_t, text_threshold=text_t,
                                nms_iou=None, image_size=SIZE).detect(image, typed)
    assert det.phrases == ref_phrases
    np.testing.assert_allclose(det.scores, ref_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(det.xyxy, ref_xyxy, rtol=0, atol=1e-3)
    assert len(set(det.phrases)) > 1, "the text threshold should give varied phrases"


def test_nms_across_phrases_and_top_k(ours, upstream_model, torch):
    from torchvision.ops import box_iou

    image = read_image(DEMOS / "coffee.jpg")
    text = "cup . red car"
    box_t, text_t = thresholds(upstream_model, "coffee.jpg", text)
    settings = {"device": "cpu", "box_threshold": box_t, "text_threshold": text_t, "image_size": SIZE}
    everything = GroundingDinoDetector(ours.model, nms_iou=None, **settings).detect(image, text)
    kept = GroundingDinoDetector(ours.model, nms_iou=0.5, **settings).detect(image, text)
    assert 0 < len(kept) < len(everything)
    assert list(kept.scores) == sorted(kept.scores, reverse=True)

    kept_boxes = torch.from_numpy(kept.xyxy)
    iou_kept = box_iou(kept_boxes, kept_boxes).fill_diagonal_(0)
    assert iou_kept.max() <= 0.5
    kept_set = {tuple(b) for b in kept.xyxy.tolist()}
    for box, score in zip(everything.xyxy, everything.scores):
        if tuple(box.tolist()) in kept_set:
            continue
        # A suppressed box overlaps a kept box at least as confident, whatever the phrases.
        overlaps = box_iou(torch.from_numpy(box[None]), kept_boxes)[0]
        assert any(o > 0.5 and s >= score for o, s in zip(overlaps.tolist(), kept.scores)), box

    top = GroundingDinoDetector(ours.model, nms_iou=0.5, top_k=2, **settings).detect(image, text)
    np.testing.assert_array_equal(top.xyxy, kept.xyxy[:2])
    assert top.phrases == kept.phrases[:2]


# --- captions, errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("the dog", "the dog ."),
    ("dog . red car", "dog . red car ."),
    ("Dog. Red  Car.", "dog . red car ."),
    ("  dog ..  car . ", "dog . car ."),
])
def test_normalize_caption(text, expected):
    assert normalize_caption(text) == expected


@pytest.mark.parametrize("text", ["", "  . . ", None])
def test_empty_text_is_rejected(ours, text):
    with pytest.raises(InvalidInputError):
        ours.detect(np.zeros((32, 32, 3), np.uint8), text)


def test_nothing_found_names_the_phrase_threshold_and_best_score(ours, upstream_model):
    image = read_image(DEMOS / "chelsea.jpg")
    _, scores, _ = upstream_predict(upstream_model, "chelsea.jpg", "dog", 0.0, 0.25)
    best = float(scores.max())
    threshold = round(min(best + 0.005, 0.999), 3)
    detector = GroundingDinoDetector(ours.model, device="cpu", box_threshold=threshold, image_size=SIZE)
    with pytest.raises(NothingFound) as info:
        detector.detect(image, "Dog")
    assert str(info.value) == f"no 'dog' above box_threshold {threshold:g}; best score {best:.2f}"


def test_bad_image_is_rejected(ours):
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        ours.detect(np.zeros((32, 32), np.uint8), "dog")


@pytest.mark.parametrize("setting", [{"box_threshold": 1.5}, {"text_threshold": -0.1}, {"top_k": 0},
                                     {"nms_iou": 0.0}, {"image_size": 8}])
def test_bad_settings_are_rejected(ours, setting):
    with pytest.raises(InvalidInputError):
        GroundingDinoDetector(ours.model, device="cpu", **setting)


# --- checkpoint format and the models layer ----------------------------------------------------

def test_official_layout_loads_through_models_layer(tiny, checkpoint, ours, upstream_model, monkeypatch, tmp_path,
                                                    torch):
    from tiny_detect_models import use_tiny_config

    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(tiny.checkpoint.parent))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    use_tiny_config(monkeypatch, tiny.config)
    pin_to_files(monkeypatch, tiny.checkpoint.parent, "groundingdino-swint-ogc")
    assert list(checkpoint) == ["model"]

    detector = get_detector("auto", device="cpu", image_size=SIZE, box_threshold=0.0, text_threshold=0.25,
                            nms_iou=None)
    assert isinstance(detector, Detector)
    assert detector.name == "groundingdino-swint-ogc"
    assert detector.model.tokenizer.vocab == ours.model.tokenizer.vocab
    loaded = detector.model.state_dict()
    for key, value in checkpoint["model"].items():
        assert torch.equal(loaded[key], value), key

    photo, text = CASES[0][:2]
    ref_xyxy, ref_scores, ref_phrases = upstream_predict(upstream_model, photo, text, 0.0, 0.25)
    got = detector.detect(read_image(DEMOS / photo), text)
    np.testing.assert_allclose(got.xyxy, ref_xyxy, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got.scores, ref_scores, rtol=0, atol=1e-6)
    assert got.phrases == ref_phrases


def test_checkpoint_of_another_config_is_rejected(tiny, checkpoint, tmp_path, torch):
    # Text encoder only (small to write): the detector's other weights are missing.
    partial = {k: v for k, v in checkpoint["model"].items() if k.startswith(("bert.", "feat_map."))}
    path = tmp_path / "groundingdino_swint_ogc.pth"
    torch.save({"model": partial}, path)
    with pytest.raises(InvalidInputError, match="does not fit config"):
        GroundingDinoDetector.from_files(tiny.config, path, tiny.bert_dir, device="cpu")


def test_tensors_of_another_shape_are_one_line_naming_the_file(tiny, checkpoint, tmp_path, torch):
    state = dict(checkpoint["model"])
    key = "transformer.decoder.norm.weight"
    state[key] = torch.cat([state[key], state[key]])
    path = tmp_path / "groundingdino_swinb_cogcoor.pth"
    torch.save({"model": state}, path)
    with pytest.raises(InvalidInputError, match="groundingdino_swinb_cogcoor.pth does not fit config") as err:
        GroundingDinoDetector.from_files(tiny.config, path, tiny.bert_dir, device="cpu")
    message = str(err.value)
    assert "\n" not in message and f"size mismatch for {key}" in message and "Swin-T vs Swin-B" in message


def test_unreadable_checkpoint_is_rejected(tiny, tmp_path):
    path = tmp_path / "groundingdino_swint_ogc.pth"
    path.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(InvalidInputError, match="is not a Grounding DINO checkpoint: not a file torch.save wrote"):
        GroundingDinoDetector.from_files(tiny.config, path, tiny.bert_dir, device="cpu")


def test_auto_without_weights_names_the_download_command(isolated_models, monkeypatch):
    with pytest.raises(ModelNotFound, match="editanything models download grounding-dino-tiny"):
        get_detector("auto")
    # The checkpoint alone is not enough: its text encoder is a model of its own.
    (isolated_models / "groundingdino_swint_ogc.pth").write_bytes(b"")
    pin_to_files(monkeypatch, isolated_models, "groundingdino-swint-ogc")
    with pytest.raises(ModelNotFound, match="editanything models download bert-base-uncased"):
        get_detector("auto")


def test_unknown_detector_name(isolated_models):
    with pytest.raises(InvalidInputError, match="unknown detector"):
        get_detector("yolo")
