"""Mask algebra: properties on random masks, checked against brute-force definitions."""

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from editanything import masks as M
from editanything.errors import InvalidInputError

# deadline: the 2-core CI box is shared; derandomize: CI must not meet a new example each run
fast = settings(deadline=None, max_examples=60, derandomize=True)

shapes = st.tuples(st.integers(1, 20), st.integers(1, 20))
masks = shapes.flatmap(lambda s: arrays(bool, s))
radii = st.floats(0, 7, allow_nan=False)


@st.composite
def mask_pairs(draw):
    shape = draw(shapes)
    return draw(arrays(bool, shape)), draw(arrays(bool, shape))


def distance_to(mask, targets):
    """Euclidean distance from every pixel to the nearest True pixel of `targets` (inf if none)."""
    ys, xs = np.nonzero(targets)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    if not len(ys):
        return np.full(mask.shape, np.inf)
    return np.sqrt((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).min(-1)


def components(mask, neighbours):
    """Connected pieces of the mask by breadth-first search: a list of pixel sets."""
    seen, pieces = np.zeros_like(mask), []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        piece, queue = set(), deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            piece.add((y, x))
            for dy, dx in neighbours:
                n = (y + dy, x + dx)
                if 0 <= n[0] < mask.shape[0] and 0 <= n[1] < mask.shape[1] and mask[n] and not seen[n]:
                    seen[n] = True
                    queue.append(n)
        pieces.append(piece)
    return pieces


FOUR = [(0, 1), (1, 0), (0, -1), (-1, 0)]
EIGHT = FOUR + [(1, 1), (1, -1), (-1, 1), (-1, -1)]


@fast
@given(masks, radii)
def test_grow_adds_exactly_the_pixels_within_px(mask, px):
    expected = distance_to(mask, mask) <= px if mask.any() else mask
    np.testing.assert_array_equal(M.grow(mask, px), expected)


@fast
@given(masks, radii)
def test_shrink_is_grow_of_the_outside(mask, px):
    np.testing.assert_array_equal(M.shrink(mask, px), ~M.grow(~mask, px))
    np.testing.assert_array_equal(M.grow(mask, -px), M.shrink(mask, px))


@fast
@given(masks, radii, radii)
def test_grow_and_shrink_order_laws(mask, a, b):
    small, large = sorted((a, b))
    assert (M.grow(mask, large) >= M.grow(mask, small)).all()
    assert (M.shrink(mask, large) <= M.shrink(mask, small)).all()
    assert (M.shrink(M.grow(mask, a), a) >= mask).all()  # closing never loses a pixel
    assert (M.grow(M.shrink(mask, a), a) <= mask).all()  # opening never adds one


@fast
@given(masks, st.floats(0.5, 7))
def test_feather_is_a_soft_alpha_inside_the_mask(mask, px):
    alpha = M.feather(mask, px)
    assert alpha.dtype == np.float32 and alpha.shape == mask.shape
    assert ((alpha >= 0) & (alpha <= 1)).all()
    assert (alpha[~mask] == 0).all()
    depth = distance_to(mask, ~mask)  # inf when the mask fills the image
    assert (alpha[mask & (depth >= px)] == 1).all()
    assert (alpha[mask & (depth < px - 0.01)] < 1).all()  # float32 rounds the last 0.01 px up to 1
    # Deeper pixels are never more transparent.
    order = np.argsort(depth[mask], kind="stable")
    assert (np.diff(alpha[mask][order]) >= 0).all()


def test_feather_on_a_disk_ramps_over_px():
    yy, xx = np.mgrid[:101, :101]
    disk = (yy - 50) ** 2 + (xx - 50) ** 2 <= 40**2
    alpha = M.feather(disk, 10)
    assert alpha[50, 50] == 1 and alpha[50, 50 + 29] == 1  # 11 px deep
    assert 0 < alpha[50, 50 + 36] < 1 and alpha[50, 50 + 41] == 0
    np.testing.assert_array_equal(M.feather(disk, 0), disk.astype(np.float32))


@fast
@given(masks)
def test_invert_twice_is_identity(mask):
    np.testing.assert_array_equal(M.invert(M.invert(mask)), mask)
    assert not (M.invert(mask) & mask).any()


@fast
@given(mask_pairs())
def test_set_laws(pair):
    a, b = pair
    np.testing.assert_array_equal(M.union(a, b), M.union(b, a))
    np.testing.assert_array_equal(M.invert(M.union(a, b)), M.intersect(M.invert(a), M.invert(b)))
    np.testing.assert_array_equal(M.subtract(a, b), M.intersect(a, M.invert(b)))
    np.testing.assert_array_equal(M.union(M.subtract(a, b), M.intersect(a, b)), a)
    assert not (M.subtract(a, b) & b).any()
    np.testing.assert_array_equal(M.union(a), a)
    np.testing.assert_array_equal(M.union(a, b, ~a), np.ones_like(a))
    np.testing.assert_array_equal(M.intersect(a, b, ~a), np.zeros_like(a))


@fast
@given(masks)
def test_fill_holes_fills_exactly_what_the_border_cannot_reach(mask):
    filled = M.fill_holes(mask)
    outside = np.zeros_like(mask)
    for piece in components(~mask, FOUR):
        if any(y in (0, mask.shape[0] - 1) or x in (0, mask.shape[1] - 1) for y, x in piece):
            outside[tuple(np.array(list(piece)).T)] = True
    np.testing.assert_array_equal(filled, ~outside)


def test_fill_holes_closes_a_ring():
    yy, xx = np.mgrid[:30, :30]
    r2 = (yy - 15) ** 2 + (xx - 15) ** 2
    ring = (r2 <= 100) & (r2 >= 36)
    np.testing.assert_array_equal(M.fill_holes(ring), r2 <= 100)


@fast
@given(masks, st.integers(0, 12))
def test_drop_islands_keeps_the_pieces_of_at_least_min_px(mask, min_px):
    expected = np.zeros_like(mask)
    for piece in components(mask, EIGHT):
        if len(piece) >= min_px:
            expected[tuple(np.array(list(piece)).T)] = True
    np.testing.assert_array_equal(M.drop_islands(mask, min_px), expected)


@fast
@given(masks)
def test_bbox_is_tight(mask):
    box = M.bbox(mask)
    if not mask.any():
        assert box is None
        return
    x0, y0, x1, y1 = box
    inside = np.zeros_like(mask)
    inside[y0:y1, x0:x1] = True
    assert not (mask & ~inside).any()
    assert mask[y0].any() and mask[y1 - 1].any() and mask[:, x0].any() and mask[:, x1 - 1].any()


@fast
@given(masks, st.integers(0, 10), st.integers(1, 9))
def test_crop_around_pads_rounds_and_stays_inside(mask, pad, multiple):
    if not mask.any():
        with pytest.raises(InvalidInputError, match="empty"):
            M.crop_around(mask, pad, multiple)
        return
    h, w = mask.shape
    x0, y0, x1, y1 = M.crop_around(mask, pad, multiple)
    bx0, by0, bx1, by1 = M.bbox(mask)
    assert 0 <= x0 <= max(0, bx0 - pad) and min(w, bx1 + pad) <= x1 <= w
    assert 0 <= y0 <= max(0, by0 - pad) and min(h, by1 + pad) <= y1 <= h
    for size, full, needed in ((x1 - x0, w, min(w, bx1 + pad) - max(0, bx0 - pad)),
                               (y1 - y0, h, min(h, by1 + pad) - max(0, by0 - pad))):
        assert size == full or size % multiple == 0
        assert size < needed + multiple  # rounded up, not more


def test_crop_around_uses_the_image_shape():
    mask = np.zeros((100, 100), bool)
    mask[40:50, 40:50] = True
    assert M.crop_around(mask, 5) == (35, 35, 55, 55)
    assert M.crop_around(mask, 5, multiple=8) == (33, 33, 57, 57)
    assert M.crop_around(mask, 45, image_shape=(100, 100, 3)) == (0, 0, 95, 95)
    assert M.crop_around(mask, 45, multiple=64, image_shape=(100, 100, 3)) == (0, 0, 100, 100)


@st.composite
def canvas_and_box(draw):
    h, w = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    channels = draw(st.sampled_from([(), (3,)]))
    canvas = draw(arrays(np.uint8, (h, w, *channels)))
    x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
    x1, y1 = draw(st.integers(x0 + 1, w)), draw(st.integers(y0 + 1, h))
    patch = draw(arrays(np.uint8, (y1 - y0, x1 - x0, *channels)))
    return canvas, (x0, y0, x1, y1), patch


@fast
@given(canvas_and_box(), st.floats(0, 1))
def test_crop_and_paste_round_trip(case, a):
    canvas, box, patch = case
    x0, y0, x1, y1 = box
    np.testing.assert_array_equal(M.paste(canvas, M.crop(canvas, box), box), canvas)
    pasted = M.paste(canvas, patch, box)
    np.testing.assert_array_equal(M.crop(pasted, box), patch)
    outside = np.ones(canvas.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(pasted[outside], canvas[outside])

    zeros = np.zeros(patch.shape[:2], np.float32)
    np.testing.assert_array_equal(M.paste(canvas, patch, box, alpha=zeros), canvas)
    np.testing.assert_array_equal(M.paste(canvas, patch, box, alpha=zeros + 1), pasted)
    full = np.zeros(canvas.shape[:2], np.float32)
    full[y0:y1, x0:x1] = a
    blended = M.paste(canvas, patch, box, alpha=full)
    np.testing.assert_array_equal(blended, M.paste(canvas, patch, box, alpha=zeros + a))
    expected = np.rint(canvas[y0:y1, x0:x1] * (1 - np.float32(a)) + patch * np.float32(a))
    assert np.abs(blended[y0:y1, x0:x1].astype(int) - expected).max() <= 1


def test_paste_bool_masks_and_float_images():
    canvas = np.zeros((6, 8), bool)
    out = M.paste(canvas, np.ones((2, 3), bool), (1, 2, 4, 4))
    assert out.sum() == 6 and out[2:4, 1:4].all() and not canvas.any()
    image = np.zeros((4, 4, 3), np.float32)
    out = M.paste(image, np.ones((2, 2, 3), np.float32), (0, 0, 2, 2), alpha=np.full((2, 2), 0.25))
    np.testing.assert_allclose(out[:2, :2], 0.25)


def test_errors_name_the_expected_shape():
    with pytest.raises(InvalidInputError, match=r"\(H, W\) bool array; got shape \(4, 4, 3\)"):
        M.grow(np.zeros((4, 4, 3), bool), 2)
    with pytest.raises(InvalidInputError, match=r"mask 1 has shape \(3, 4\), expected \(4, 4\)"):
        M.union(np.zeros((4, 4), bool), np.zeros((3, 4), bool))
    with pytest.raises(InvalidInputError, match="at least one"):
        M.intersect()
    with pytest.raises(InvalidInputError, match=r"patch must have shape \(2, 2, 3\)"):
        M.paste(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 3, 3), np.uint8), (0, 0, 2, 2))
    with pytest.raises(InvalidInputError, match="inside the 4x4 image"):
        M.crop(np.zeros((4, 4, 3), np.uint8), (2, 2, 6, 3))
    with pytest.raises(InvalidInputError, match=r"alpha must have shape \(2, 2\)"):
        M.paste(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), (0, 0, 2, 2), alpha=np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="feather width"):
        M.feather(np.ones((3, 3), bool), -1)
    with pytest.raises(InvalidInputError, match="finite"):
        M.grow(np.ones((3, 3), bool), float("nan"))
