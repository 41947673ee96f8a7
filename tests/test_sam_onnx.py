"""SAM's mask decoder on ONNX Runtime: exported once per weights, cached, and a stand-in for the stock one.

Parity of masks and scores with the stock SamPredictor is in test_sam.py (every parity test runs
with both decoders); here: when the graph is used, exported, reused and given up on.
"""

import copy
import logging

import numpy as np
import pytest
import torch

from editanything.errors import InvalidInputError
from editanything.imageio import read_image
from editanything.segment import SamSegmenter, sam_onnx
from editanything.types import Prompt
from conftest import DEMOS
from tiny_models import build_tiny_sam

CLICKS = Prompt(points=[(220, 120, 1), (60, 40, 0)])


@pytest.fixture(scope="module")
def cat():
    return read_image(DEMOS / "chelsea.jpg")


@pytest.fixture
def derived(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDITANYTHING_CACHE", str(folder))
    return folder


@pytest.fixture
def exports(monkeypatch) -> list:
    calls = []
    export = sam_onnx._export
    monkeypatch.setattr(sam_onnx, "_export", lambda *a: calls.append(1) or export(*a))
    return calls


@pytest.fixture
def stock_calls(monkeypatch) -> list:
    """Calls of the stock `MaskDecoder.predict_masks` (patched before any segmenter binds it)."""
    from segment_anything.modeling.mask_decoder import MaskDecoder

    calls = []
    method = MaskDecoder.predict_masks
    monkeypatch.setattr(MaskDecoder, "predict_masks", lambda self, *a, **k: calls.append(1) or method(self, *a, **k))
    return calls


def test_clicks_run_the_graph_and_a_batch_of_boxes_the_stock_decoder(derived, stock_calls, cat):
    seg = SamSegmenter(build_tiny_sam(seed=1), decoder="onnx")
    assert seg.decoder == "onnx" and "ONNX Runtime" in seg.describe()
    stock_calls.clear()  # the export traced the stock method
    det = seg.segment(cat, CLICKS)
    det = seg.segment(cat, Prompt(points=[*CLICKS.points, (300, 200, 1)]), refine=det.refine_seed)
    assert det.masks.shape == (1, *cat.shape[:2]) and det.masks.any()
    assert stock_calls == []
    seg.segment(cat, Prompt(boxes=[(90, 20, 380, 290), (0, 0, 150, 120)]))
    assert stock_calls == [1]  # the graph was exported for one prompt at a time


def test_the_graph_is_exported_once_per_weights_and_then_loaded(derived, exports, cat):
    first = SamSegmenter(build_tiny_sam(seed=1))
    assert first.decoder == "onnx" and len(exports) == 1
    files = sorted(derived.glob("sam-decoder-*.onnx"))
    assert len(files) == 1

    again = SamSegmenter(build_tiny_sam(seed=1))  # same weights, another process would see the same
    assert again.decoder == "onnx" and len(exports) == 1
    np.testing.assert_array_equal(again.segment(cat, CLICKS).masks, first.segment(cat, CLICKS).masks)

    SamSegmenter(build_tiny_sam(seed=2))  # other weights: another graph
    assert len(exports) == 2 and len(list(derived.glob("sam-decoder-*.onnx"))) == 2


def test_a_damaged_cache_file_is_exported_again(derived, exports, cat, caplog):
    SamSegmenter(build_tiny_sam(seed=1))
    (path,) = derived.glob("sam-decoder-*.onnx")
    path.write_bytes(path.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger=sam_onnx.__name__):
        seg = SamSegmenter(build_tiny_sam(seed=1))
    assert seg.decoder == "onnx" and len(exports) == 2
    assert "does not load" in caplog.text
    assert path.stat().st_size > 100_000  # replaced by a whole graph
    assert seg.segment(cat, CLICKS).masks.any()


def test_the_model_is_untouched_outside_a_call(derived, cat):
    model = build_tiny_sam(seed=1)
    seg = SamSegmenter(model)
    seg.segment(cat, CLICKS)
    assert "predict_masks" not in vars(model.mask_decoder)
    copy.deepcopy(model)  # an ONNX Runtime session inside the model could not be copied
    # The stock decoder on the same model object still gives what the graph gives.
    other = SamSegmenter(model, decoder="torch")
    a, b = seg.segment(cat, CLICKS), other.segment(cat, CLICKS)
    assert (a.masks != b.masks).mean() < 1e-4
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_auto_keeps_the_stock_decoder_when_onnx_is_missing_or_fails(derived, monkeypatch, caplog):
    monkeypatch.setattr(sam_onnx, "onnx_available", lambda: False)
    seg = SamSegmenter(build_tiny_sam(seed=1))
    assert seg.decoder == "torch" and "ONNX" not in seg.describe()
    with pytest.raises(InvalidInputError, match=r"pip install 'editanything\[sam\]'"):
        SamSegmenter(build_tiny_sam(seed=1), decoder="onnx")
    monkeypatch.undo()

    def broken(*args):
        raise RuntimeError("exporter exploded\nsecond line")

    monkeypatch.setattr(sam_onnx, "_export", broken)
    with caplog.at_level(logging.WARNING, logger=sam_onnx.__name__):
        assert SamSegmenter(build_tiny_sam(seed=4)).decoder == "torch"
    assert "exporter exploded" in caplog.text and "second line" not in caplog.text
    with pytest.raises(InvalidInputError, match="export failed"):
        SamSegmenter(build_tiny_sam(seed=4), decoder="onnx")


def test_decoder_choices_are_checked(derived):
    model = build_tiny_sam(seed=1)
    with pytest.raises(InvalidInputError, match="decoder must be one of auto, onnx, torch"):
        SamSegmenter(model, decoder="tensorrt")
    with pytest.raises(InvalidInputError, match="CPU in float32 only"):
        SamSegmenter(model, decoder="onnx", dtype=torch.float16)
    # Half precision under autocast keeps the stock decoder rather than failing.
    assert SamSegmenter(model, dtype=torch.float16).decoder == "torch"
