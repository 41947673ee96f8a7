"""GrabCut on real photos, against regions checked by eye.

The regions are ellipses read off zoomed crops of the demo photos (10-px grids):
the top of the espresso cup in coffee.jpg (white rim and coffee) and the cat's eyes in
chelsea.jpg (iris and dark eyelid margin).
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from editanything.errors import InvalidInputError
from editanything.imageio import read_image
from editanything.segment import GrabCutSegmenter, Segmenter
from editanything.types import Prompt

DEMOS = Path(__file__).resolve().parents[1] / "demos"
CUP_BOX = (168, 10, 416, 214)
LEFT_EYE_BOX = (128, 80, 214, 152)


def ellipse(shape, center, axes, angle=0):
    region = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(region, center, axes, angle, 0, 360, 1, -1)
    return region.astype(bool)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


@pytest.fixture(scope="module")
def cat():
    return read_image(DEMOS / "chelsea.jpg")


@pytest.fixture(scope="module")
def cup_top(coffee):
    return ellipse(coffee.shape, (291, 112), (117, 95))


@pytest.fixture(scope="module")
def eyes(cat):
    return ellipse(cat.shape, (171, 116), (37, 29), 10), ellipse(cat.shape, (319, 137), (23, 27))


def test_box_around_the_cup_gives_the_cup(coffee, cup_top):
    seg = GrabCutSegmenter()
    assert isinstance(seg, Segmenter)
    det = seg.segment(coffee, Prompt(boxes=[CUP_BOX]))
    mask = det.masks[0]
    assert mask.dtype == bool and mask.shape == coffee.shape[:2]
    assert iou(mask, cup_top) > 0.85
    assert (mask & cup_top).sum() / mask.sum() > 0.9  # little else: not the saucer, not the spoon
    x0, y0, x1, y1 = CUP_BOX
    assert not mask[:y0].any() and not mask[y1:].any() and not mask[:, :x0].any() and not mask[:, x1:].any()
    assert det.phrases == ["box 0"] and det.scores.tolist() == [1.0]
    ys, xs = np.nonzero(mask)
    assert det.xyxy[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_box_around_an_eye_gives_the_eye(cat, eyes):
    mask = GrabCutSegmenter().segment(cat, Prompt(boxes=[LEFT_EYE_BOX])).masks[0]
    assert iou(mask, eyes[0]) > 0.7
    assert not (mask & eyes[1]).any()


def test_clicks_alone_select_the_cup_and_respect_negative_seeds(coffee, cup_top):
    points = [(290, 60, 1), (290, 150, 1), (200, 250, 0)]
    mask = GrabCutSegmenter().segment(coffee, Prompt(points=points)).masks[0]
    assert iou(mask, cup_top) > 0.85
    assert mask[60, 290] and mask[150, 290] and not mask[250, 200]


def test_negative_clicks_inside_the_object_stay_out(coffee):
    # A box over cup and saucer: the negative clicks on the saucer must not be filled back as holes.
    negatives = [(110, 250, 0), (470, 250, 0), (300, 370, 0), (200, 330, 0)]
    prompt = Prompt(points=[(290, 60, 1), *negatives], boxes=[(60, 10, 500, 395)])
    mask = GrabCutSegmenter().segment(coffee, prompt).masks[0]
    assert mask[60, 290]
    assert not any(mask[y, x] for x, y, _ in negatives)


def test_several_boxes_give_one_instance_each(coffee, cup_top):
    spoon_box = (320, 210, 410, 330)
    det = GrabCutSegmenter().segment(coffee, Prompt(boxes=[CUP_BOX, spoon_box]))
    assert det.phrases == ["box 0", "box 1"] and det.masks.shape == (2, *coffee.shape[:2])
    assert iou(det.masks[0], cup_top) > 0.85
    x0, y0, x1, y1 = spoon_box
    spoon = det.masks[1]
    assert spoon.sum() > 500 and spoon[y0:y1, x0:x1].sum() == spoon.sum()
    assert iou(det.masks[0], spoon) < 0.05


def test_refine_adds_to_the_previous_mask(cat, eyes):
    seg = GrabCutSegmenter()
    first = seg.segment(cat, Prompt(boxes=[LEFT_EYE_BOX]))
    left = first.masks[0]
    assert first.refine_seed is not None and np.array_equal(first.refine_seed.data, left)
    both = seg.segment(cat, Prompt(points=[(315, 135, 1)]), refine=first.refine_seed).masks[0]
    assert (both & left).sum() / left.sum() > 0.95
    assert (both & eyes[1]).sum() / eyes[1].sum() > 0.8
    assert (both & (eyes[0] | eyes[1])).sum() / both.sum() > 0.7


def test_a_seed_refines_only_its_own_image(cat, coffee):
    seg = GrabCutSegmenter()
    cup = seg.segment(coffee, Prompt(boxes=[CUP_BOX]))
    with pytest.raises(InvalidInputError, match="another image"):
        seg.segment(cat, Prompt(points=[(20, 20, 0)]), refine=cup.refine_seed)
    # Without a seed, negative clicks alone define nothing.
    with pytest.raises(InvalidInputError, match="positive click"):
        seg.segment(cat, Prompt(points=[(20, 20, 0)]))
    kept = seg.segment(cat, Prompt(boxes=[LEFT_EYE_BOX]))
    again = seg.segment(cat, Prompt(points=[(440, 10, 0)]), refine=kept.refine_seed).masks[0]
    assert iou(again, kept.masks[0]) > 0.9
    with pytest.raises(InvalidInputError, match="refine_seed of a previous result"):
        seg.segment(cat, Prompt(points=[(440, 10, 0)]), refine=True)
    assert seg.segment(coffee, Prompt(boxes=[CUP_BOX, (320, 210, 410, 330)])).refine_seed is None


def test_two_callers_interleaving_each_get_what_they_get_alone(cat):
    """The segmenter keeps no caller's state: A's refinement never starts from B's mask."""
    a_steps = [Prompt(boxes=[LEFT_EYE_BOX]), Prompt(points=[(315, 135, 1)])]
    b_steps = [Prompt(points=[(230, 250, 1)]), Prompt(points=[(230, 250, 1), (120, 40, 0)])]

    def alone(steps):
        seg, seed, out = GrabCutSegmenter(), None, []
        for prompt in steps:
            det = seg.segment(cat, prompt, refine=seed)
            seed = det.refine_seed
            out.append(det.masks[0])
        return out

    a_alone, b_alone = alone(a_steps), alone(b_steps)
    shared = GrabCutSegmenter()
    seeds = {"a": None, "b": None}
    got = {"a": [], "b": []}
    for a, b in zip(a_steps, b_steps):
        for who, prompt in (("a", a), ("b", b)):
            det = shared.segment(cat, prompt, refine=seeds[who])
            seeds[who] = det.refine_seed
            got[who].append(det.masks[0])
    for mine, theirs in ((got["a"], a_alone), (got["b"], b_alone)):
        for m, t in zip(mine, theirs):
            np.testing.assert_array_equal(m, t)
    assert not np.array_equal(a_alone[-1], b_alone[-1])  # the two callers did select different things


def test_same_input_gives_the_same_mask(coffee):
    prompt = Prompt(points=[(290, 60, 1)], boxes=[CUP_BOX])
    first = GrabCutSegmenter().segment(coffee, prompt).masks
    np.testing.assert_array_equal(GrabCutSegmenter().segment(coffee, prompt).masks, first)


def test_box_over_the_whole_image_still_cuts(coffee):
    h, w = coffee.shape[:2]
    mask = GrabCutSegmenter().segment(coffee, Prompt(boxes=[(0, 0, w, h)])).masks[0]
    assert 0 < mask.sum() < mask.size


def test_large_images_are_cut_at_work_size(coffee, cup_top):
    big = cv2.resize(coffee, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    box = tuple(4 * v for v in CUP_BOX)
    mask = GrabCutSegmenter(work_size=256).segment(big, Prompt(boxes=[box])).masks[0]
    small = cv2.resize(mask.astype(np.uint8), coffee.shape[1::-1], interpolation=cv2.INTER_AREA) > 0
    assert iou(small, cup_top) > 0.85


def test_describe_and_bad_settings():
    assert GrabCutSegmenter().describe() == "GrabCut (weight-free)"
    assert "SAM weights not found" in GrabCutSegmenter(note="SAM weights not found").describe()
    with pytest.raises(InvalidInputError, match="iterations"):
        GrabCutSegmenter(iterations=0)
