"""LaMa and MI-GAN removal on ONNX Runtime, with tiny random networks of the real exports' contracts.

The tiny graphs (tests/tiny_removers.py) take and give the same names, shapes, dtypes and value
ranges as `lama_fp32.onnx` and `migan_pipeline_v2.onnx`, and sit where `editanything models
download` puts the real files, so the same loader, pre- and post-processing run.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DEMOS, edit_output
from editanything import Prompt, masks, read_image
from editanything.cli import main
from editanything.errors import ModelNotFound
from editanything.generate import GenerationParams, get_generator
from editanything.generate.removal import LamaRemover, MiganRemover, best_remover
from editanything.pipeline import Editor, EditRequest
from editanything.recipe import decode_mask, read_recipe
from model_pins import pin_to_files
from tiny_removers import save_tiny_lama, save_tiny_migan

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SPOON = dict(points=[(365, 290, 1), (395, 150, 1)], boxes=[(318, 62, 428, 330)])


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("removers")
    return save_tiny_lama(root / "lama" / "lama_fp32.onnx"), save_tiny_migan(root / "migan" / "migan_pipeline_v2.onnx")


@pytest.fixture
def removers(isolated_models, tiny_files, monkeypatch):
    """The tiny exports in an empty checkpoints folder under the manifest's paths, pinned as the real ones are."""
    lama, migan = tiny_files
    for src in (lama, migan):
        dest = isolated_models / src.parent.name / src.name
        dest.parent.mkdir()
        dest.symlink_to(src)
    pin_to_files(monkeypatch, isolated_models, "lama", "migan")
    return isolated_models


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _hole(shape, box):
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_lama_matches_onnxruntime_called_directly_at_its_size(tiny_files):
    image = read_image(DEMOS / "astronaut.jpg")
    assert image.shape == (512, 512, 3)
    mask = _hole((512, 512), (200, 150, 330, 300))
    out = LamaRemover(tiny_files[0]).inpaint(image, mask).images[0]

    session = ort.InferenceSession(str(tiny_files[0]), providers=["CPUExecutionProvider"])
    raw = session.run(None, {"image": (image.astype(np.float32) / 255).transpose(2, 0, 1)[None],
                             "mask": mask.astype(np.float32)[None, None]})[0][0].transpose(1, 2, 0)
    expected = np.clip(np.round(raw), 0, 255).astype(np.uint8)
    assert np.array_equal(out[mask], expected[mask])
    assert np.array_equal(out[~mask], image[~mask])
    assert np.abs(out[mask].astype(int) - image[mask]).mean() > 5  # the hole really changed


def test_lama_fits_any_crop_into_its_square_and_back(tiny_files, coffee):
    image = np.ascontiguousarray(coffee[100:300, 50:450])  # 400x200: scaled to 512x256, reflect-padded
    mask = _hole(image.shape[:2], (150, 60, 260, 150))
    out = LamaRemover(tiny_files[0]).inpaint(image, mask, GenerationParams(batch_size=2)).images
    assert len(out) == 2 and np.array_equal(out[0], out[1])
    assert out[0].shape == image.shape and out[0].dtype == np.uint8
    assert np.array_equal(out[0][~mask], image[~mask])
    assert not np.array_equal(out[0][mask], image[mask])


def test_migan_matches_onnxruntime_called_directly(tiny_files, coffee):
    image = np.ascontiguousarray(coffee[:300, :250])
    mask = _hole(image.shape[:2], (60, 80, 150, 220))
    out = MiganRemover(tiny_files[1]).inpaint(image, mask).images[0]

    session = ort.InferenceSession(str(tiny_files[1]), providers=["CPUExecutionProvider"])
    raw = session.run(None, {"image": image.transpose(2, 0, 1)[None].copy(),
                             "mask": np.where(mask, 0, 255).astype(np.uint8)[None, None]})[0][0].transpose(1, 2, 0)
    assert np.array_equal(out, raw)  # its own blend keeps the known pixels too
    assert np.array_equal(out[~mask], image[~mask]) and not np.array_equal(out[mask], image[mask])


def test_a_file_with_other_inputs_is_refused_in_one_line(tiny_files, tmp_path):
    with pytest.raises(ModelNotFound, match="not a lama export.*expected image"):
        LamaRemover(tiny_files[1]).load()  # MI-GAN's uint8 graph is not LaMa's
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    with pytest.raises(ModelNotFound, match="not a loadable ONNX model"):
        MiganRemover(broken).load()


def test_best_remover_prefers_lama_then_migan_then_none(isolated_models, tiny_files):
    assert best_remover() is None
    (isolated_models / "migan").mkdir()
    (isolated_models / "migan" / "migan_pipeline_v2.onnx").symlink_to(tiny_files[1])
    assert best_remover() == "migan"
    (isolated_models / "lama").mkdir()
    (isolated_models / "lama" / "lama_fp32.onnx").symlink_to(tiny_files[0])
    assert best_remover() == "lama"


def test_editor_removes_with_lama_when_present_and_keeps_outside_pixels(removers, coffee):
    editor = Editor(segmenter="grabcut")
    assert editor.describe()["remover"].startswith("lama")
    result = editor.edit(coffee, EditRequest(mode="remove", selection=Prompt(**SPOON), grow=6, feather=4))
    assert result.recipe.models["generator"]["name"] == "lama"
    assert result.recipe.models["generator"]["sha256"]
    out = result.images[0]
    outside = ~masks.grow(result.mask, 7)
    assert np.array_equal(out[outside], coffee[outside])
    assert not np.array_equal(out[result.mask], coffee[result.mask])


def test_a_chosen_model_is_used_for_remove_too(removers, coffee):
    editor = Editor(segmenter="grabcut", generator="classical")
    assert editor.remover is editor.generator
    result = editor.edit(coffee, EditRequest(mode="remove", selection=Prompt(**SPOON)))
    assert result.recipe.models["generator"]["name"] == "classical-telea"


def test_without_removers_remove_uses_telea_and_says_what_to_fetch(isolated_models):
    editor = Editor(segmenter="grabcut")
    assert editor.remover.name == "classical-telea"
    assert "editanything models download lama" in editor.describe()["remover"]


def test_remove_uses_telea_not_stable_diffusion_when_no_remover_is_present(deep, coffee):
    editor = Editor(segmenter="grabcut")
    assert editor.generator.name == "sd15-inpainting"  # replace and background still paint with SD
    result = editor.edit(coffee, EditRequest(mode="remove", selection=Prompt(**SPOON)))
    assert result.recipe.models["generator"]["name"] == "classical-telea"
    assert not np.array_equal(result.images[0][result.mask], coffee[result.mask])


def test_cli_remove_picks_migan_says_so_and_replays_bit_exactly(isolated_models, tiny_files, tmp_path, capsys,
                                                                monkeypatch):
    (isolated_models / "migan").mkdir()
    (isolated_models / "migan" / "migan_pipeline_v2.onnx").symlink_to(tiny_files[1])
    pin_to_files(monkeypatch, isolated_models, "migan")
    out = tmp_path / "out"
    assert main(["edit", str(DEMOS / "coffee.jpg"), "--box", "318,62,428,330", "--remove",
                 "--segmenter", "grabcut", "-o", str(out), "-q"]) == 0
    assert "remover: migan (migan_pipeline_v2.onnx on ONNX Runtime)" in capsys.readouterr().err
    result = edit_output(out, "coffee")
    recipe = read_recipe(result)
    assert recipe.models["generator"]["name"] == "migan" and recipe.models["generator"]["format"] == "onnx"
    before, after = read_image(DEMOS / "coffee.jpg"), read_image(result)
    mask = decode_mask(recipe.parameters["mask"])
    assert np.array_equal(before[~masks.grow(mask, recipe.parameters["grow"] + 1)],
                          after[~masks.grow(mask, recipe.parameters["grow"] + 1)])
    assert main(["replay", str(result)]) == 0
    assert "identical to the original" in capsys.readouterr().out


def test_get_generator_takes_an_onnx_file_as_lama(tiny_files, coffee):
    remover = get_generator(str(tiny_files[0]))
    assert isinstance(remover, LamaRemover) and remover.name == "lama"
    mask = _hole(coffee.shape[:2], (300, 100, 400, 300))
    assert not np.array_equal(remover.inpaint(coffee, mask).images[0][mask], coffee[mask])


def test_an_onnx_file_is_told_lama_or_migan_by_its_inputs(tiny_files, coffee, tmp_path):
    mask = _hole(coffee.shape[:2], (300, 100, 400, 300))
    for path, cls, name in ((tiny_files[0], LamaRemover, "lama"), (tiny_files[1], MiganRemover, "migan")):
        # a user's file, named as they like: only its graph says what it is
        mine = tmp_path / f"my-remover-{name}.onnx"
        mine.symlink_to(path)
        remover = get_generator(str(mine))
        assert type(remover) is cls and remover.name == name and remover.model_info()["file"] == str(mine)
        ours, theirs = remover.inpaint(coffee, mask), cls(path).inpaint(coffee, mask)
        np.testing.assert_array_equal(ours.images[0], theirs.images[0])
    onnx = pytest.importorskip("onnx")
    other = tmp_path / "doubler.onnx"
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Add", ["x", "x"], ["y"])], "doubler", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)], ir_version=8), other)
    with pytest.raises(ModelNotFound, match=r"doubler.onnx is not a remover export .* takes x \(tensor\(float\)\); "
                                            r"expected lama: image"):
        get_generator(str(other))


@pytest.mark.parametrize("cls, index", [(LamaRemover, 0), (MiganRemover, 1)], ids=["lama", "migan"])
def test_remover_contract(cls, index, tiny_files, coffee):
    from editanything.errors import InvalidInputError
    from editanything.generate import Generator

    remover = cls(tiny_files[index])
    assert isinstance(remover, Generator)
    mask = _hole(coffee.shape[:2], (100, 100, 180, 160))
    out = remover.inpaint(coffee, mask, GenerationParams(seed=4, batch_size=2))
    assert len(out.images) == 2 and all(o.shape == coffee.shape and o.dtype == np.uint8 for o in out.images)
    assert out.model["name"] == remover.name and out.seeds == []
    with pytest.raises(InvalidInputError):
        remover.inpaint(coffee, mask[:10])
    remover.release()
