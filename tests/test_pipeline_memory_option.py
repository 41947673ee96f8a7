"""Editor(low_memory=True): the detector and segmenter are freed before generation, results unchanged.

Runs on tiny random-weight Grounding DINO, SAM and SD 1.5 inpainting files found by the models layer
under their official names, so the backends are built by name exactly as with real weights.
"""

import gc
import weakref

import numpy as np
import pytest

from conftest import DEMOS
from editanything import Prompt, read_image
from editanything.generate import GenerationParams
from editanything.pipeline import Editor, EditRequest

# A small detector input keeps the (full-size) Swin-T backbone of the tiny Grounding DINO quick.
DETECT = {"box_threshold": 0.05, "text_threshold": 0.05, "top_k": 2, "image_size": 320, "max_size": 480}


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _request(text: str = "cup") -> EditRequest:
    return EditRequest(selection=Prompt(text=text),
                       params=GenerationParams(prompt="a mug", steps=2, seed=0, resolution=64))


def _loaded_selection_models(editor: Editor) -> tuple[weakref.ref, ...]:
    """Weak references to the detector, segmenter and their torch modules, built now by the editor."""
    detector, segmenter = editor.detector, editor.segmenter
    return tuple(weakref.ref(x) for x in (detector, detector.model, segmenter, segmenter.model))


def test_low_memory_frees_detector_and_segmenter_and_keeps_the_result(deep, coffee):
    lean, full = Editor(detector_options=DETECT, low_memory=True), Editor(detector_options=DETECT)
    lean_refs, full_refs = _loaded_selection_models(lean), _loaded_selection_models(full)

    lean_result = lean.edit(coffee, _request())
    full_result = full.edit(coffee, _request())
    gc.collect()

    assert all(ref() is None for ref in lean_refs)  # nothing else kept them alive: their memory is back
    assert all(ref() is not None for ref in full_refs)  # the default editor keeps them for the next edit
    assert lean.generator.loaded  # the generator stays loaded: it is what the next edit needs first
    assert np.array_equal(lean_result.mask, full_result.mask)
    assert len(lean_result.images) == len(full_result.images) == 1
    assert np.array_equal(lean_result.images[0], full_result.images[0])
    assert lean_result.recipe.models == full_result.recipe.models
    assert {"detector", "segmenter", "generator"} <= set(lean_result.recipe.models)

    again = lean.edit(coffee, _request())  # builds them again from the files on disk
    assert np.array_equal(again.images[0], lean_result.images[0])

