"""Compositing: crop around the mask, generate, paste back; outside the grown mask nothing changes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from editanything import compose, masks, read_image
from editanything.errors import InvalidInputError, NothingFound
from editanything.generate import ClassicalGenerator, Generated, GenerationParams

DEMOS = Path(__file__).resolve().parents[1] / "demos"


class NoiseGenerator:
    """Returns random pixels everywhere (the worst case for leaks) and records what it was handed."""

    works_at_any_size = False
    name = "noise"

    def __init__(self):
        self.calls = []

    def inpaint(self, image, mask, params, control=None):
        self.calls.append((image.shape, mask.copy(), None if control is None else dict(control)))
        rng = np.random.default_rng(params.seed)
        return Generated([rng.integers(0, 256, image.shape, dtype=np.uint8) for _ in range(params.n_images)],
                         params.image_seeds(), model=self.model_info())

    def model_info(self):
        return {"name": self.name}

    def release(self):
        pass


def _blob(shape, center, radius):
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, center, (radius, int(radius * 0.7)), 20, 0, 360, 1, -1)
    return m.astype(bool)


@pytest.fixture(scope="module")
def big_photo():
    """A real photo upscaled to 3000x2000."""
    return cv2.resize(read_image(DEMOS / "rocket.jpg"), (3000, 2000), interpolation=cv2.INTER_CUBIC)


PARAMS = GenerationParams(prompt="x", seed=3, resolution=128)


@pytest.mark.parametrize("mode", ["crop", "full"])
@pytest.mark.parametrize("grow_px, feather_px", [(0, 0), (8, 8), (3, 12)])
def test_outside_the_grown_mask_is_bit_identical(big_photo, mode, grow_px, feather_px):
    mask = _blob(big_photo.shape[:2], (1700, 800), 140)
    gen = NoiseGenerator()
    params = GenerationParams(prompt="x", seed=3, batch_size=2, resolution=128)
    outs = compose.edit_region(big_photo, mask, gen, params, grow_px=grow_px, feather_px=feather_px,
                               mode=mode).images
    grown = masks.grow(mask, grow_px)
    assert len(outs) == 2
    for out in outs:
        assert out.shape == big_photo.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[~grown], big_photo[~grown])
        # deep inside the mask the generated pixels replace the photo
        core = masks.shrink(mask, feather_px + 2)
        assert (out[core] != big_photo[core]).any(axis=-1).mean() > 0.9


def test_alpha_is_one_inside_the_feather_and_blends_at_the_edge():
    image = np.full((96, 96, 3), 200, np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[30:66, 30:66] = True

    class Black(NoiseGenerator):
        works_at_any_size = True

        def inpaint(self, image, mask, params, control=None):
            return Generated([np.zeros_like(image)])

    out = compose.edit_region(image, mask, Black(), PARAMS, grow_px=4, feather_px=6).images[0]
    alpha = masks.feather(masks.grow(mask, 4), 6)
    expected = np.rint(200 * (1 - alpha)).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    assert out[48, 48, 0] == 0 and out[0, 0, 0] == 200 and 0 < out[27, 48, 0] < 200


def test_crop_work_is_flat_as_the_photo_grows():
    sizes = [(512, 512), (1024, 1024), (2048, 2048), (3000, 4000)]
    seen = []
    for h, w in sizes:
        image = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), bool)
        mask[200:300, 220:330] = True
        gen = NoiseGenerator()
        compose.edit_region(image, mask, gen, GenerationParams(seed=1, resolution=256))
        seen.append(gen.calls[0][0])
    assert len(set(seen)) == 1
    assert max(seen[0][:2]) == 256


def test_plan_geometry():
    mask = np.zeros((1000, 1500), bool)
    mask[400:500, 600:900] = True
    p = compose.plan(mask.shape, mask, GenerationParams(resolution=512), grow_px=8, pad=20)
    x0, y0, x1, y1 = p.box
    gx0, gy0, gx1, gy1 = masks.bbox(masks.grow(mask, 8))
    assert x0 < gx0 and y0 < gy0 and x1 > gx1 and y1 > gy1  # the grown mask keeps a margin inside the crop
    assert 0 <= x0 and 0 <= y0 and x1 <= 1500 and y1 <= 1000
    assert max(p.size) == 512 and all(s % 8 == 0 for s in p.size)
    bw, bh = p.box_size
    assert abs(p.size[0] / p.size[1] - bw / bh) < 0.05
    full = compose.plan(mask.shape, mask, GenerationParams(resolution=512), mode="full")
    assert full.box == (0, 0, 1500, 1000) and full.size == (512, 344)
    forced = compose.plan(mask.shape, mask, GenerationParams(width=640, height=384))
    assert forced.size == (640, 384)
    thin = np.zeros((2000, 2000), bool)
    thin[1000:1002, 0:2000] = True
    assert min(compose.plan(thin.shape, thin, GenerationParams(resolution=512), pad=0, grow_px=0).size) == 64
    anysize = compose.plan(mask.shape, mask, GenerationParams(resolution=512), pad=20, any_size=True)
    assert anysize.size == anysize.box_size


def test_mask_handed_to_the_generator_covers_the_grown_mask():
    image = np.zeros((800, 800, 3), np.uint8)
    mask = _blob((800, 800), (400, 400), 90)
    gen = NoiseGenerator()
    compose.edit_region(image, mask, gen, GenerationParams(seed=1, resolution=64), grow_px=8, pad=10)
    shape, handed, _ = gen.calls[0]
    p = compose.plan(image.shape, mask, GenerationParams(resolution=64), grow_px=8, pad=10)
    grown = masks.crop(masks.grow(mask, 8), p.box).astype(np.float32)
    up = cv2.resize(handed.astype(np.uint8), p.box_size, interpolation=cv2.INTER_NEAREST).astype(bool)
    assert shape[:2] == handed.shape and up[grown > 0].mean() > 0.99


def test_control_maps_are_cropped_with_the_image():
    image = np.zeros((400, 600, 3), np.uint8)
    seg = np.zeros_like(image)
    seg[:, 300:] = (10, 20, 30)
    mask = np.zeros((400, 600), bool)
    mask[150:250, 250:350] = True
    gen = NoiseGenerator()
    compose.edit_region(image, mask, gen, GenerationParams(seed=1, resolution=64), control={"seg": seg}, pad=0)
    shape, _, control = gen.calls[0]
    assert control["seg"].shape == shape
    assert set(map(tuple, control["seg"].reshape(-1, 3))) == {(0, 0, 0), (10, 20, 30)}  # labels, not blends


def test_errors():
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(NothingFound):
        compose.edit_region(image, np.zeros((64, 64), bool), NoiseGenerator(), PARAMS)
    mask = np.zeros((64, 64), bool)
    mask[10:20, 10:20] = True
    with pytest.raises(InvalidInputError, match="mode"):
        compose.edit_region(image, mask, NoiseGenerator(), PARAMS, mode="tile")
    with pytest.raises(InvalidInputError, match="uint8"):
        compose.edit_region(image.astype(np.float32), mask, NoiseGenerator(), PARAMS)
    with pytest.raises(InvalidInputError, match="shape"):
        compose.edit_region(image, mask[:32], NoiseGenerator(), PARAMS)


def test_random_seed_is_resolved_once():
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[10:20, 10:20] = True
    gen = NoiseGenerator()
    edited = compose.edit_region(image, mask, gen, GenerationParams(seed=-1, batch_count=2, resolution=64))
    a, b = edited.generated.seeds
    assert b == a + 1 and a >= 0


# ---- real generators on a real photo at 3000x2000 -------------------------------------------------

@pytest.mark.parametrize("mode", ["crop", "full"])
def test_classical_remove_on_a_real_photo(big_photo, mode):
    # the bright lightning-rod pole right of the rocket, against the evening sky
    gray = cv2.cvtColor(big_photo, cv2.COLOR_RGB2GRAY)
    window = (slice(560, 880), slice(2030, 2140))
    mask = np.zeros(gray.shape, bool)
    mask[window] = gray[window] > gray[window].min() + 40
    mask = masks.grow(mask, 3)
    out = compose.edit_region(big_photo, mask, ClassicalGenerator(), PARAMS, mode=mode).images[0]
    grown = masks.grow(mask, 8)
    np.testing.assert_array_equal(out[~grown], big_photo[~grown])
    ring = masks.grow(mask, 40) & ~grown
    around = big_photo[ring].astype(float).mean(axis=0)
    before = big_photo[mask].astype(float).mean(axis=0)
    after = out[mask].astype(float).mean(axis=0)
    assert np.abs(before - around).max() > 30  # the pole stood out from the sky
    assert np.abs(after - around).max() < 8  # the fill continues the sky around it


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    pytest.importorskip("diffusers")
    import tiny_sd

    from editanything.generate import get_generator

    return get_generator(str(tiny_sd.save_diffusers(tmp_path_factory.mktemp("sd") / "tiny")))


@pytest.mark.parametrize("mode", ["crop", "full"])
def test_diffusion_edit_on_a_real_photo_keeps_the_outside(big_photo, tiny_generator, mode):
    mask = _blob(big_photo.shape[:2], (1500, 1000), 200)
    params = GenerationParams(prompt="a red balloon", sampler="Euler a", steps=2, seed=9, resolution=64)
    edited = compose.edit_region(big_photo, mask, tiny_generator, params, mode=mode)
    out = edited.images[0]
    grown = masks.grow(mask, 8)
    np.testing.assert_array_equal(out[~grown], big_photo[~grown])
    assert (out[mask] != big_photo[mask]).any(axis=-1).mean() > 0.5
    assert edited.generated.seeds == [9]


def _imports(module_file):
    import ast

    tree = ast.parse(module_file.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_compose_and_diffusion_take_no_validator_from_the_classical_backend():
    import editanything

    root = Path(editanything.__file__).parent
    assert not {".generate.classical"} & _imports(root / "compose.py")
    assert not {".classical"} & _imports(root / "generate" / "diffusion.py")


def test_every_stage_checks_images_with_one_check():
    from editanything.sketch import sketch

    bad = np.zeros((8, 8, 4), np.uint8)
    mask = np.ones((8, 8), bool)
    calls = [lambda: sketch(bad), lambda: ClassicalGenerator().inpaint(bad, mask),
             lambda: compose.edit_region(bad, mask, ClassicalGenerator(), GenerationParams())]
    for call in calls:
        with pytest.raises(InvalidInputError, match=r"^image must be an RGB \(H, W, 3\).* uint8 array; got uint8 \(8, 8, 4\)$"):
            call()
    with pytest.raises(InvalidInputError, match=r"^mask must have shape \(8, 8\) like the image"):
        compose.edit_region(bad[..., :3], mask[:4], ClassicalGenerator(), GenerationParams())
