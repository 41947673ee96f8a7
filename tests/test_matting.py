"""Soft edges (`--matte`): the alpha against a known ground truth, exact pixels outside the band, RGBA
cut-outs, a crop-only solve on a big photo, and replay of a matted edit."""

import numpy as np
import pytest
from PIL import Image

from conftest import edit_output
from editanything import masks
from editanything.cli import main
from editanything.errors import InvalidInputError
from editanything.generate import Generated
from editanything.imageio import read_image, write_image
from editanything.matte import auto_band, compute_matte, get_matter, trimap
from editanything.pipeline import EditRequest, Editor
from editanything.recipe import read_recipe
from editanything.types import GenerationParams
from synthetic_mattes import BACKGROUNDS, composite, feathered_alpha, segmenter_mask


@pytest.fixture
def pymatting():
    """The solver; the trimap and the option checks need none."""
    return pytest.importorskip("pymatting")


class FlatGenerator:
    """Paints one colour everywhere it is asked to: the new background of a --background edit."""

    name = "flat"
    works_at_any_size = True

    def __init__(self, color=(0, 200, 0)):
        self.color = np.array(color, np.uint8)

    def inpaint(self, image, mask, params):
        return Generated([np.broadcast_to(self.color, image.shape).copy()], model=self.model_info())

    def model_info(self):
        return {"name": self.name}


@pytest.mark.parametrize("backend", ["pymatting-fast", "pymatting"])
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_matte_error_is_well_below_the_feathered_masks(pymatting, background, backend):
    image, alpha, _ = composite((192, 192), seed=3, background=background)
    mask = segmenter_mask(alpha)
    matte = compute_matte(image, mask, get_matter(backend))
    assert matte.backend == backend
    ours = matte.alpha_image(image.shape) / 255.0
    feathered = feathered_alpha(mask)
    sad, sad_feathered = np.abs(ours - alpha).sum(), np.abs(feathered - alpha).sum()
    assert sad < 0.6 * sad_feathered
    assert ((ours - alpha) ** 2).mean() < ((feathered - alpha) ** 2).mean()


def test_the_band_scales_with_the_object_and_a_thin_object_keeps_a_core():
    small, big = np.zeros((600, 600), bool), np.zeros((600, 600), bool)
    small[100:140, 100:140] = True
    big[50:550, 50:550] = True
    assert auto_band(small) < auto_band(big) <= 64 and auto_band(small) >= 3
    thin = np.zeros((60, 60), bool)
    thin[10:50, 28:32] = True  # 4 px wide: a band of 10 would leave no sure foreground
    tri, inner = trimap(thin, 10)
    assert set(np.unique(tri)) == {0, 128, 255} and inner <= 2
    assert (tri[thin] > 0).all() and (tri[~masks.grow(thin, 10)] == 0).all()


def test_background_edit_keeps_the_subject_exactly_and_has_no_halo_of_the_old_background(pymatting):
    image, alpha, fg = composite((160, 160), seed=5, background="stripes")
    mask = segmenter_mask(alpha)
    green = np.array([0, 200, 0], np.float32)
    truth = alpha[..., None] * fg + (1 - alpha[..., None]) * green
    params = GenerationParams(prompt="a lawn", seed=1)
    editor = Editor(generator=FlatGenerator(), segmenter="grabcut")
    soft = editor.edit(image, EditRequest(mode="background", mask=mask, params=params, matte=True))
    hard = editor.edit(image, EditRequest(mode="background", mask=mask, params=params))
    matte = soft.matte
    kept = matte.sure_foreground(image.shape)
    out = soft.images[0]
    assert kept.any() and np.array_equal(out[kept], image[kept])  # the subject, bit-exact
    outside = ~matte.reach(image.shape)
    assert (out[outside] == [0, 200, 0]).all()  # beyond the band: the new background only
    band = ~kept & ~outside
    err_soft = np.abs(out[band].astype(np.float32) - truth[band]).mean()
    err_hard = np.abs(hard.images[0][band].astype(np.float32) - truth[band]).mean()
    assert err_soft < 0.7 * err_hard
    recorded = soft.recipe.parameters["matte"]
    assert recorded == {"backend": "pymatting-fast", "band": matte.band, "box": list(matte.box)}


def test_recolor_with_a_matte_changes_nothing_outside_the_band(pymatting):
    image, alpha, _ = composite((128, 128), seed=2, background="noise")
    mask = segmenter_mask(alpha)
    result = Editor().edit(image, EditRequest(mode="recolor", color="red", mask=mask, matte=True, matte_band=6))
    reach = result.matte.reach(image.shape)
    assert result.matte.band == 6 and np.array_equal(reach, masks.grow(mask, 6))
    assert np.array_equal(result.images[0][~reach], image[~reach])
    assert not np.array_equal(result.images[0][reach], image[reach])


def test_a_tiny_object_in_a_40_megapixel_photo_is_solved_on_its_crop_only(pymatting):
    shapes = []
    solver = get_matter("pymatting-fast")

    class Recording:
        name = "pymatting-fast"

        def estimate(self, image, tri):
            shapes.append(image.shape)
            return solver.estimate(image, tri)

    photo = np.zeros((5400, 7500, 3), np.uint8)  # 40.5 MP
    photo[2000:2040, 3000:3040] = 200
    mask = np.zeros(photo.shape[:2], bool)
    mask[2000:2040, 3000:3040] = True
    matte = compute_matte(photo, mask, Recording())
    (h, w, _), = shapes
    side = 40 + 2 * (matte.band + 8)
    assert h <= side and w <= side and matte.alpha.shape == (h, w)


def test_matte_is_refused_where_it_means_nothing():
    mask = np.ones((8, 8), bool)
    with pytest.raises(InvalidInputError, match="--background or --recolor"):
        EditRequest(mode="remove", mask=mask, matte=True)
    with pytest.raises(InvalidInputError, match="add --matte"):
        EditRequest(mode="background", mask=mask, matte_band=4)
    with pytest.raises(InvalidInputError, match="1..512"):
        EditRequest(mode="background", mask=mask, matte=True, matte_band=0)


@pytest.fixture
def photo_and_mask(tmp_path):
    image, alpha, _ = composite((160, 128), seed=7, background="gradient")
    write_image(tmp_path / "subject.png", image)
    write_image(tmp_path / "mask.png", segmenter_mask(alpha).astype(np.uint8) * 255)
    return tmp_path / "subject.png", tmp_path / "mask.png", image


def test_segment_matte_writes_an_rgba_cutout_and_its_alpha(pymatting, isolated_models, photo_and_mask, tmp_path,
                                                           capsys):
    photo, _, image = photo_and_mask
    out = tmp_path / "seg"
    assert main(["segment", str(photo), "--segmenter", "grabcut", "--box", "30,20,130,110", "--matte",
                 "-o", str(out)]) == 0
    assert "alpha.png, cutout.png" in capsys.readouterr().out
    with Image.open(out / "cutout.png") as cut, Image.open(out / "alpha.png") as a:
        assert cut.mode == "RGBA" and a.mode == "L" and cut.size == a.size == (160, 128)
        rgba, alpha = np.asarray(cut), np.asarray(a)
    assert np.array_equal(rgba[..., 3], alpha)
    assert ((alpha > 0) & (alpha < 255)).any()  # soft, not a binary mask
    inside = masks.shrink(alpha == 255, 8)  # the subject's core: the photo's own pixels
    assert inside.any() and np.array_equal(rgba[..., :3][inside], image[inside])


def test_a_matted_edit_replays_exactly(pymatting, isolated_models, photo_and_mask, tmp_path, capsys):
    photo, mask, image = photo_and_mask
    out = tmp_path / "out"
    assert main(["edit", str(photo), "--mask", str(mask), "--recolor", "#3050ff", "--matte", "--matte-band", "5",
                 "-q", "-o", str(out)]) == 0
    result = edit_output(out, "subject")
    assert read_recipe(result).parameters["matte"]["band"] == 5
    capsys.readouterr()
    assert main(["replay", str(result), "--beside", "-q"]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert np.array_equal(read_image(result.with_name(result.stem + ".replay.png")), read_image(result))


def test_a_recipe_naming_the_exact_solve_replays_with_it(pymatting, isolated_models, photo_and_mask, tmp_path,
                                                         capsys):
    """Recipes written before pymatting-fast became the default say "pymatting": they must keep their bytes."""
    photo, mask, _ = photo_and_mask
    outputs = {}
    for backend in ("pymatting", "pymatting-fast"):
        out = tmp_path / backend
        assert main(["edit", str(photo), "--mask", str(mask), "--recolor", "#3050ff", "--matte", "--matte-band", "6",
                     "--matte-backend", backend, "-q", "-o", str(out)]) == 0
        outputs[backend] = edit_output(out, "subject")
        assert read_recipe(outputs[backend]).parameters["matte"]["backend"] == backend
    exact = outputs["pymatting"]
    assert not np.array_equal(read_image(exact), read_image(outputs["pymatting-fast"]))  # replay can tell them apart
    capsys.readouterr()
    assert main(["replay", str(exact), "--beside", "-q"]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert np.array_equal(read_image(exact.with_name(exact.stem + ".replay.png")), read_image(exact))
