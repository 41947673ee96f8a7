"""SamSegmenter against the stock SamPredictor on the same tiny random weights.

With the stock PyTorch decoder parity is exact (same masks, same scores): our segmenter only
prepares prompts, caches the image embedding and reorders outputs. With the decoder on ONNX
Runtime the same function runs as another float program: scores agree to float rounding and
masks pixel for pixel but for logits within rounding of the threshold. Checkpoints go through torch.save/torch.load in the
official state-dict format and the models layer, as real files do.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from editanything.errors import InvalidInputError, ModelNotFound
from editanything.imageio import read_image
from editanything.segment import GrabCutSegmenter, SamSegmenter, get_segmenter
from editanything.segment.sam import register_sam_variant
from editanything.types import Prompt
from model_pins import pin_to_files
from tiny_models import TINY_SAM, build_tiny_sam, register_tiny_sam, save_tiny_sam_checkpoint

DEMOS = Path(__file__).resolve().parents[1] / "demos"

register_tiny_sam()


@pytest.fixture(scope="module")
def cat():
    return read_image(DEMOS / "chelsea.jpg")


@pytest.fixture(scope="module")
def cup():
    return read_image(DEMOS / "coffee.jpg")


@pytest.fixture
def model():
    return build_tiny_sam(seed=0)


@pytest.fixture
def stock(model, cat):
    predictor = SamPredictor(model)
    predictor.set_image(cat)
    return predictor


@pytest.fixture(params=["torch", "onnx"])
def decoder(request) -> str:
    return request.param


def assert_same(det, masks, scores, decoder: str) -> None:
    """`det` holds `masks` and `scores`: exactly with the stock decoder, to rounding with ONNX Runtime."""
    if decoder == "torch":
        np.testing.assert_array_equal(det.masks, masks)
        np.testing.assert_array_equal(det.scores, np.asarray(scores, np.float32))
    else:
        assert det.masks.shape == masks.shape and (det.masks != masks).mean() < 1e-4
        np.testing.assert_allclose(det.scores, scores, rtol=0, atol=1e-5)


def count_encoder_calls(model, monkeypatch) -> list:
    calls = []
    forward = model.image_encoder.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.image_encoder, "forward", counted)
    return calls


def best_first(masks, scores):
    order = np.argsort(-scores, kind="stable")
    return masks[order], scores[order]


def assert_nontrivial(masks):
    """Parity on all-empty or all-full masks would prove nothing."""
    assert masks.any() and not masks.all()


@pytest.mark.parametrize("multimask", [False, True])
def test_points_match_predictor(model, stock, cat, multimask, decoder):
    points = [(220, 120, 1), (300, 200, 1), (60, 40, 0)]
    det = SamSegmenter(model, decoder=decoder).segment(cat, Prompt(points=points), multimask=multimask)
    masks, scores, _ = stock.predict(np.array([p[:2] for p in points]), np.array([p[2] for p in points]),
                                     multimask_output=multimask)
    masks, scores = best_first(masks, scores) if multimask else (masks, scores)
    assert_nontrivial(masks)
    assert_same(det, masks, scores, decoder)
    assert det.phrases == (["points #0", "points #1", "points #2"] if multimask else ["points"])
    for box, mask in zip(det.xyxy, det.masks):
        ys, xs = np.nonzero(mask)
        assert tuple(box) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_box_and_box_with_points_match_predictor(model, stock, cat, decoder):
    seg = SamSegmenter(model, decoder=decoder)
    box = (90, 20, 380, 290)
    det = seg.segment(cat, Prompt(boxes=[box]))
    masks, scores, _ = stock.predict(box=np.array(box), multimask_output=False)
    assert_nontrivial(masks)
    assert_same(det, masks, scores, decoder)
    assert det.phrases == ["box 0"]

    det = seg.segment(cat, Prompt(points=[(200, 150, 1), (120, 260, 0)], boxes=[box]))
    masks, scores, _ = stock.predict(np.array([[200, 150], [120, 260]]), np.array([1, 0]), np.array(box),
                                     multimask_output=False)
    assert_same(det, masks, scores, decoder)
    assert det.phrases == ["box 0 + points"]


@pytest.mark.parametrize("multimask", [False, True])
def test_many_boxes_in_one_batched_call(model, stock, cat, multimask, monkeypatch):
    boxes = [(90, 20, 380, 290), (0, 0, 150, 120), (300, 150, 451, 300)]
    seg = SamSegmenter(model)  # a batch of boxes runs the stock decoder even where clicks run ONNX
    calls = []
    decoder = model.mask_decoder.forward
    monkeypatch.setattr(model.mask_decoder, "forward", lambda *a, **k: calls.append(1) or decoder(*a, **k))
    det = seg.segment(cat, Prompt(boxes=boxes), multimask=multimask)
    monkeypatch.undo()
    assert len(calls) == 1  # one decoder pass for all boxes

    # The batched recipe from segment-anything's README, run by hand on a fresh predictor.
    boxes_t = stock.transform.apply_boxes_torch(torch.tensor(boxes, dtype=torch.float), cat.shape[:2])
    masks, scores, _ = stock.predict_torch(None, None, boxes=boxes_t, multimask_output=multimask)
    masks, scores = masks.numpy(), scores.numpy()
    assert_nontrivial(masks)
    per_mask = 3 if multimask else 1
    assert len(det) == len(boxes) * per_mask
    for b in range(len(boxes)):
        expected_masks, expected_scores = best_first(masks[b], scores[b]) if multimask else (masks[b], scores[b])
        np.testing.assert_array_equal(det.masks[b * per_mask:(b + 1) * per_mask], expected_masks)
        np.testing.assert_array_equal(det.scores[b * per_mask:(b + 1) * per_mask], expected_scores)
        # One by one through predict() gives the same answer as the batch.
        single_masks, single_scores, _ = stock.predict(box=np.array(boxes[b]), multimask_output=multimask)
        np.testing.assert_allclose(np.sort(single_scores), np.sort(scores[b]), atol=1e-6)
        assert (single_masks != masks[b]).mean() < 1e-3
    assert [p.split(" #")[0] for p in det.phrases] == [f"box {b}" for b in range(len(boxes)) for _ in range(per_mask)]


def test_refinement_feeds_previous_low_res_logits(model, stock, cat, decoder):
    seg = SamSegmenter(model, decoder=decoder)
    first = [(220, 120, 1)]
    more = [(220, 120, 1), (100, 250, 0), (330, 160, 1)]
    seed = seg.segment(cat, Prompt(points=first), multimask=True).refine_seed
    refined = seg.segment(cat, Prompt(points=more), refine=seed)

    # SAM's interactive loop: the best mask's logits of the first click go in as the mask prompt.
    _, scores, logits = stock.predict(np.array([[220, 120]]), np.array([1]), multimask_output=True)
    mask_input = logits[np.argmax(scores)][None]
    coords, labels = np.array([p[:2] for p in more]), np.array([p[2] for p in more])
    masks, scores, _ = stock.predict(coords, labels, mask_input=mask_input, multimask_output=False)
    assert_nontrivial(masks)
    assert_same(refined, masks, scores, decoder)

    # Without refine the same clicks give the plain prediction, which differs.
    plain_masks, plain_scores, _ = stock.predict(coords, labels, multimask_output=False)
    assert (plain_masks != masks).mean() > 1e-3
    plain = seg.segment(cat, Prompt(points=more))
    assert_same(plain, plain_masks, plain_scores, decoder)


def test_image_encoder_runs_once_per_image(model, cat, cup, monkeypatch):
    calls = count_encoder_calls(model, monkeypatch)
    seg = SamSegmenter(model, cache_size=2)
    seg.segment(cat, Prompt(points=[(200, 150, 1)]))
    seg.segment(cat, Prompt(points=[(200, 150, 1), (50, 50, 0)]))
    seg.segment(cat.copy(), Prompt(boxes=[(10, 10, 200, 200), (100, 100, 300, 250)]))
    assert len(calls) == 1  # same content, new array: still cached

    edited = cat.copy()
    edited[5, 5] ^= 1
    seg.segment(edited, Prompt(points=[(200, 150, 1)]))
    assert len(calls) == 2  # one changed pixel is another image

    seg.segment(cat, Prompt(points=[(200, 150, 1)]))
    assert len(calls) == 2  # switched back: from the cache
    seg.segment(cup, Prompt(points=[(300, 200, 1)]))
    assert len(calls) == 3  # cache of 2 now holds cup and cat; edited was least recently used
    seg.segment(edited, Prompt(points=[(200, 150, 1)]))
    assert len(calls) == 4
    seg.clear_cache()
    seg.segment(edited, Prompt(points=[(200, 150, 1)]))
    assert len(calls) == 5


def test_switching_back_to_a_cached_image_gives_its_own_masks(model, stock, cat, cup, decoder):
    seg = SamSegmenter(model, decoder=decoder)
    prompt = Prompt(points=[(220, 120, 1)])
    seg.segment(cat, prompt)
    seg.segment(cup, Prompt(points=[(300, 200, 1)]))
    det = seg.segment(cat, prompt, multimask=True)
    masks, scores, _ = stock.predict(np.array([[220, 120]]), np.array([1]), multimask_output=True)
    masks, scores = best_first(masks, scores)
    assert_same(det, masks, scores, decoder)


def test_a_seed_refines_only_its_own_image(model, stock, cat, cup, decoder):
    seg = SamSegmenter(model, decoder=decoder)
    cat_seed = seg.segment(cat, Prompt(points=[(220, 120, 1)])).refine_seed
    cup_seed = seg.segment(cup, Prompt(points=[(300, 200, 1)])).refine_seed
    # Back on the cat, the cat's seed refines it; the cup's is refused.
    det = seg.segment(cat, Prompt(points=[(220, 120, 1), (330, 160, 1)]), refine=cat_seed)
    _, _, logits = stock.predict(np.array([[220, 120]]), np.array([1]), multimask_output=False)
    np.testing.assert_allclose(cat_seed.data, logits, atol=1e-4)
    masks, scores, _ = stock.predict(np.array([[220, 120], [330, 160]]), np.array([1, 1]), mask_input=logits,
                                     multimask_output=False)
    assert_same(det, masks, scores, decoder)
    with pytest.raises(InvalidInputError, match="another image"):
        seg.segment(cat, Prompt(points=[(220, 120, 1)]), refine=cup_seed)
    grabcut_seed = GrabCutSegmenter().segment(cat, Prompt(points=[(220, 120, 1)])).refine_seed
    with pytest.raises(InvalidInputError, match="made by grabcut"):
        seg.segment(cat, Prompt(points=[(220, 120, 1)]), refine=grabcut_seed)
    assert seg.segment(cat, Prompt(boxes=[(90, 20, 380, 290), (0, 0, 150, 120)])).refine_seed is None


def test_two_callers_interleaving_each_get_what_they_get_alone(model, cat, decoder):
    """The segmenter keeps no caller's state: A's refinement never starts from B's logits."""
    a_steps = [Prompt(boxes=[(90, 20, 380, 290)]), Prompt(points=[(200, 150, 1)]),
               Prompt(points=[(200, 150, 1), (120, 260, 0)])]
    b_steps = [Prompt(points=[(60, 40, 1)]), Prompt(points=[(60, 40, 1), (300, 200, 1)]),
               Prompt(points=[(60, 40, 1), (300, 200, 1), (400, 50, 0)])]

    def alone(steps):
        seg, seed, out = SamSegmenter(model, decoder=decoder), None, []
        for prompt in steps:
            det = seg.segment(cat, prompt, refine=seed)
            seed = det.refine_seed
            out.append((det.masks, det.scores))
        return out

    a_alone, b_alone = alone(a_steps), alone(b_steps)
    shared = SamSegmenter(model, decoder=decoder)
    seeds = {"a": None, "b": None}
    got = {"a": [], "b": []}
    for a, b in zip(a_steps, b_steps):
        for who, prompt in (("a", a), ("b", b)):
            det = shared.segment(cat, prompt, refine=seeds[who])
            seeds[who] = det.refine_seed
            got[who].append((det.masks, det.scores))
    for mine, theirs in ((got["a"], a_alone), (got["b"], b_alone)):
        for (masks, scores), (want_masks, want_scores) in zip(mine, theirs):
            np.testing.assert_array_equal(masks, want_masks)
            np.testing.assert_array_equal(scores, want_scores)
    assert not np.array_equal(a_alone[-1][0], b_alone[-1][0])  # the two callers did select different things


def test_half_precision_runs_under_autocast_and_stays_close(model, cat):
    prompts = [Prompt(points=[(220, 120, 1), (60, 40, 0)]), Prompt(boxes=[(90, 20, 380, 290), (0, 0, 150, 120)])]
    full, half = SamSegmenter(model), SamSegmenter(model, dtype=torch.float16)
    for prompt in prompts:
        a, b = full.segment(cat, prompt, multimask=True), half.segment(cat, prompt, multimask=True)
        np.testing.assert_allclose(b.scores, a.scores, atol=5e-3)
        assert (a.masks == b.masks).mean() > 0.99
    seed = half.segment(cat, Prompt(points=[(220, 120, 1)])).refine_seed
    refined = half.segment(cat, Prompt(points=[(220, 120, 1), (330, 160, 1)]), refine=seed)
    assert refined.masks.dtype == bool and refined.masks.shape == (1, *cat.shape[:2])
    with pytest.raises(InvalidInputError, match="float32 or float16"):
        SamSegmenter(model, dtype=torch.bfloat16)


def test_official_state_dict_loads_through_the_models_layer(isolated_models, cat, monkeypatch):
    saved = save_tiny_sam_checkpoint(isolated_models / "sam_vit_b_01ec64.pth", seed=3)
    pin_to_files(monkeypatch, isolated_models, "sam-vit-b")
    seg = SamSegmenter.from_model("sam-vit-b", variant=TINY_SAM, device="cpu")
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(seg.model.state_dict()[name], value, rtol=0, atol=0)
    assert "sam_vit_b_01ec64.pth" in seg.describe() and seg.name == "sam-vit-b"

    stock = SamPredictor(saved)
    stock.set_image(cat)
    box = np.array([90, 20, 380, 290])
    masks, scores, _ = stock.predict(box=box, multimask_output=False)
    det = seg.segment(cat, Prompt(boxes=[tuple(box)]))
    assert_same(det, masks, scores, seg.decoder)

    auto = get_segmenter("auto", variant=TINY_SAM)
    assert isinstance(auto, SamSegmenter) and auto.name == "sam-vit-b"


def test_missing_weights_fall_back_to_grabcut_with_the_download_command(isolated_models):
    with pytest.raises(ModelNotFound, match="editanything models download sam-vit-b"):
        SamSegmenter.from_model("sam-vit-b")
    auto = get_segmenter()
    assert isinstance(auto, GrabCutSegmenter)
    assert "SAM weights not found" in auto.describe()
    assert "editanything models download edgetam" in auto.describe()
    assert isinstance(get_segmenter("grabcut"), GrabCutSegmenter)
    with pytest.raises(InvalidInputError, match="unknown segmenter 'sam'"):
        get_segmenter("sam")


def test_checkpoints_are_loaded_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": InvalidInputError("arbitrary object")}, path)
    with pytest.raises(InvalidInputError, match="not a readable SAM checkpoint"):
        SamSegmenter.from_checkpoint(path, TINY_SAM)


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    register_sam_variant("tiny-wide", lambda: _wider_tiny_sam())
    path = tmp_path / "tiny.pth"
    save_tiny_sam_checkpoint(path)
    with pytest.raises(InvalidInputError, match="does not fit SAM tiny-wide"):
        SamSegmenter.from_checkpoint(path, "tiny-wide")
    with pytest.raises(InvalidInputError, match="unknown SAM variant 'vit_x'"):
        SamSegmenter.from_checkpoint(path, "vit_x")
    with pytest.raises(ModelNotFound, match="does not exist"):
        SamSegmenter.from_checkpoint(tmp_path / "missing.pth", TINY_SAM)


def _wider_tiny_sam():
    from segment_anything.modeling import ImageEncoderViT

    sam = build_tiny_sam()
    sam.image_encoder = ImageEncoderViT(img_size=256, patch_size=16, embed_dim=48, depth=1, num_heads=1,
                                        out_chans=32, use_rel_pos=True, window_size=0, global_attn_indexes=())
    return sam


@pytest.mark.parametrize("prompt, message", [
    (Prompt(points=[(500, 10, 1)]), "outside the 451x300 image"),
    (Prompt(boxes=[(460, 0, 500, 50)]), "outside the 451x300 image"),
    (Prompt(points=[(10, 10, 1)], boxes=[(0, 0, 50, 50), (60, 60, 90, 90)]), "clicks can refine one box"),
    (Prompt(text="cat"), "text goes through a detector"),
    (Prompt(), "the prompt is empty"),
])
def test_bad_prompts_are_refused(model, cat, prompt, message):
    with pytest.raises(InvalidInputError, match=message):
        SamSegmenter(model).segment(cat, prompt)


def test_bad_images_are_refused(model, cat):
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        SamSegmenter(model).segment(cat[..., 0], Prompt(points=[(1, 1, 1)]))
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        SamSegmenter(model).segment(cat.astype(np.float32), Prompt(points=[(1, 1, 1)]))


def test_prepare_computes_the_embedding_before_the_first_click(model, cat, monkeypatch):
    calls = count_encoder_calls(model, monkeypatch)
    seg = SamSegmenter(model)
    seg.prepare(cat)
    assert len(calls) == 1
    seg.segment(cat, Prompt(points=[(200, 150, 1)]))
    assert len(calls) == 1  # the click found the embedding ready
