"""ViTMatte on transformers as `--matte`'s backend: a tiny random-weight `VitMatteForImageMatting` saved as the hub
repo is, loaded by name through the manifest; its alpha is transformers' own on the same crop and trimap, it
changes nothing outside the band, `segment` writes its RGBA cut-out, an edit records it and replays, and "auto"
takes it only when its weights are on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import edit_output
from editanything import masks
from editanything.cli import main
from editanything.errors import ChecksumMismatch, InvalidInputError, ModelNotFound
from editanything.imageio import read_image, write_image
from editanything.matte import MATTERS, compute_matte, get_matter
from editanything.models import MODELS, get_spec
from editanything.pipeline import EditRequest, Editor
from editanything.recipe import read_recipe
from editanything.types import GenerationParams
from model_pins import pin_to_files
from synthetic_mattes import composite, segmenter_mask
from tiny_hf_models import build_tiny_vitmatte, install_declared

torch = pytest.importorskip("torch")
pytest.importorskip("pymatting")  # the foreground colours
NAME = "my-vitmatte"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_vitmatte(tmp_path_factory.mktemp("vitmatte") / NAME)


@pytest.fixture
def manifest_model(tiny_folder, tmp_path, monkeypatch):
    """A models root holding the tiny folder under a manifest entry of the vitmatte-hf backend."""
    yield install_declared(tiny_folder, tmp_path, monkeypatch, NAME, "vitmatte-hf", "matte")
    MODELS.pop(NAME, None)


@pytest.fixture(scope="module")
def subject():
    image, alpha, _ = composite((120, 104), seed=4, background="stripes")
    return image, segmenter_mask(alpha)


def _transformers_alpha(folder, crop, trimap):
    from transformers import VitMatteForImageMatting, VitMatteImageProcessor

    processor = VitMatteImageProcessor.from_pretrained(str(folder))
    model = VitMatteForImageMatting.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        alphas = model(**processor(images=crop, trimaps=trimap, return_tensors="pt")).alphas
    return alphas[0, 0, : trimap.shape[0], : trimap.shape[1]].numpy()


def test_the_band_is_transformers_alpha_and_nothing_else_changes(manifest_model, subject):
    image, mask = subject
    matter = get_matter(NAME)
    assert matter.name == NAME and matter.describe().startswith(f"ViTMatte {NAME}")
    matte = compute_matte(image, mask, matter, band=5)
    assert matte.backend == NAME
    crop = masks.crop(image, matte.box)
    band = matte.unknown
    expected = _transformers_alpha(manifest_model, crop, matte.trimap)
    np.testing.assert_array_equal(matte.alpha[band], np.clip(expected, 0, 1)[band])
    assert matte.alpha[band].std() > 0.02  # a real matte, not one value everywhere
    assert (matte.alpha[matte.trimap == 255] == 1).all() and (matte.alpha[matte.trimap == 0] == 0).all()
    # the subject's colours: pymatting's foreground estimation under this alpha, as the pymatting backend does
    import pymatting

    full = np.where(matte.trimap == 255, 1.0, np.where(matte.trimap == 0, 0.0, expected.astype(np.float32)))
    fg = np.clip(np.rint(pymatting.estimate_foreground_ml(crop / 255.0, full.astype(np.float64)) * 255), 0, 255)
    np.testing.assert_array_equal(matte.foreground[band], fg.astype(np.uint8)[band])


def test_a_background_edit_with_vitmatte_changes_only_the_band(manifest_model, subject, tiny_folder):
    from test_matting import FlatGenerator

    image, mask = subject
    params = GenerationParams(prompt="a lawn", seed=1)
    editor = Editor(generator=FlatGenerator(), segmenter="grabcut", matter=NAME)
    result = editor.edit(image, EditRequest(mode="background", mask=mask, params=params, matte=True, matte_band=5))
    out, matte = result.images[0], result.matte
    kept, outside = matte.sure_foreground(image.shape), ~matte.reach(image.shape)
    assert np.array_equal(out[kept], image[kept])  # the subject, bit-exact
    assert (out[outside] == [0, 200, 0]).all()  # beyond the band: the new background only
    assert result.recipe.parameters["matte"] == {"backend": NAME, "band": 5.0, "box": list(matte.box)}
    # what ran: the weights' hash of the file on disk
    weights = {Path(f["path"]).name: f["sha256"] for f in result.recipe.models["matter"]["files"]}
    assert result.recipe.models["matter"]["name"] == NAME
    assert weights["model.safetensors"] == hashlib.sha256((tiny_folder / "model.safetensors").read_bytes()).hexdigest()
    pym = Editor(generator=FlatGenerator(), segmenter="grabcut", matter="pymatting").edit(
        image, EditRequest(mode="background", mask=mask, params=params, matte=True, matte_band=5))
    band = ~kept & ~outside
    assert not np.array_equal(out[band], pym.images[0][band])  # the band is ViTMatte's, not pymatting's


def test_a_big_crop_is_matted_at_a_reduced_size_and_comes_back_full_size(manifest_model, subject):
    image, mask = subject
    seen = []
    matter = get_matter(NAME, max_pixels=40 * 40)
    forward = matter.model.forward
    matter.model.forward = lambda pixel_values, **kw: seen.append(pixel_values.shape) or forward(pixel_values, **kw)
    matte = compute_matte(image, mask, matter, band=5)
    h, w = matte.alpha.shape
    (_, channels, ph, pw), = seen
    assert channels == 4 and ph * pw <= 64 * 64 < h * w  # padded to 32s around a crop of at most 40x40 pixels
    assert matte.alpha[matte.unknown].std() > 0.02


def test_segment_writes_the_vitmatte_cutout(manifest_model, subject, tmp_path, capsys):
    image, mask = subject
    write_image(tmp_path / "subject.png", image)
    write_image(tmp_path / "mask.png", mask.astype(np.uint8) * 255)
    out = tmp_path / "seg"
    assert main(["segment", str(tmp_path / "subject.png"), "--segmenter", "grabcut", "--box", "20,15,90,95",
                 "--matte", "--matte-backend", NAME, "--matte-band", "5", "-o", str(out)]) == 0
    with Image.open(out / "cutout.png") as cut, Image.open(out / "alpha.png") as a:
        assert cut.mode == "RGBA" and a.mode == "L" and cut.size == a.size == (image.shape[1], image.shape[0])
        rgba, alpha = np.asarray(cut), np.asarray(a)
    assert np.array_equal(rgba[..., 3], alpha) and ((alpha > 0) & (alpha < 255)).any()
    union = np.asarray(Image.open(out / "mask.png")) > 127
    expected = compute_matte(image, union, get_matter(NAME), band=5)
    assert np.array_equal(alpha, expected.alpha_image(image.shape))


def test_a_vitmatte_edit_replays_exactly(manifest_model, subject, tmp_path, capsys):
    image, mask = subject
    write_image(tmp_path / "subject.png", image)
    write_image(tmp_path / "mask.png", mask.astype(np.uint8) * 255)
    out = tmp_path / "out"
    assert main(["edit", str(tmp_path / "subject.png"), "--mask", str(tmp_path / "mask.png"), "--recolor", "#3050ff",
                 "--matte", "--matte-backend", NAME, "-q", "-o", str(out)]) == 0
    assert f"matte: ViTMatte {NAME}" in capsys.readouterr().err
    result = edit_output(out, "subject")
    assert read_recipe(result).parameters["matte"]["backend"] == NAME
    assert main(["replay", str(result), "--beside", "-q"]) == 0
    assert "identical to the original" in capsys.readouterr().out
    assert np.array_equal(read_image(result.with_name(result.stem + ".replay.png")), read_image(result))


def test_matte_backend_is_checked_before_anything_loads(isolated_models, tmp_path):
    image, alpha, _ = composite((48, 48), seed=1)
    write_image(tmp_path / "p.png", image)
    for extra, says in ((["--matte-backend", "pymatting"], "add --matte"),
                        (["--matte", "--matte-backend", "vitmatte-large"], "unknown matting backend 'vitmatte-large'")):
        result = subprocess.run([sys.executable, "-m", "editanything", "segment", str(tmp_path / "p.png"),
                                 "--segmenter", "grabcut", "--box", "5,5,40,40", "-o", str(tmp_path / "o"), *extra],
                                capture_output=True, text=True, env=os.environ.copy())
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and says in lines[0], result.stderr
    with pytest.raises(InvalidInputError, match="unknown matting backend"):
        get_matter("vitmatte-large")


def test_the_catalogue_entry_is_pinned_and_auto_takes_it_only_when_present(isolated_models, tiny_folder, monkeypatch):
    spec = get_spec("vitmatte-small")
    assert (spec.kind, spec.license, spec.backend) == ("matter", "Apache-2.0", "vitmatte-hf")
    assert all(f.pinned and f.size and all(s.pinned for s in f.sources) for f in spec.files)
    assert MATTERS.pick() == "pymatting-fast"  # nothing on disk: the weight-free backend
    assert get_matter().name == "pymatting-fast"
    with pytest.raises(ModelNotFound, match="editanything models download vitmatte-small"):
        get_matter("vitmatte-small")
    (isolated_models / "vitmatte-small").symlink_to(tiny_folder, target_is_directory=True)
    assert MATTERS.pick() == "vitmatte-small"
    # the tiny stand-in is not the published file: auto tries ViTMatte, and its size check refuses it
    with pytest.raises(ChecksumMismatch, match="vitmatte-small/config.json"):
        get_matter()
    pin_to_files(monkeypatch, isolated_models, "vitmatte-small")
    chosen = get_matter()
    assert chosen.name == "vitmatte-small" and chosen.describe().startswith("ViTMatte vitmatte-small")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_vitmatte_stops_the_edit_once_naming_the_download(isolated_models, tmp_path, capsys, workers):
    image, alpha, _ = composite((48, 48), seed=1)
    write_image(tmp_path / "p.png", image)
    write_image(tmp_path / "m.png", segmenter_mask(alpha).astype(np.uint8) * 255)
    status = main(["edit", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"), "--recolor", "red", "--matte",
                   "--matte-backend", "vitmatte-small", "--workers", workers, "-q", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "editanything models download vitmatte-small" in err
    assert not any((tmp_path / "out").glob("*.png"))
