"""MM-Grounding-DINO / LLMDet on transformers (`MMGroundingDinoForObjectDetection`): a model of the manifest with
the `mm-grounding-dino-hf` backend is a detector by its name, and detects exactly what transformers' own
post-processing gives on the same tiny random weights (saved with `save_pretrained`, as the hub repos are)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import DEMOS, assert_segment_names_download, models_list_row
from tiny_hf_models import build_tiny_grounding_dino_hf, declare_folder, install_declared, reference_grounded_detect

from editanything import read_image
from editanything.detect import MMGroundingDinoDetector, get_detector
from editanything.errors import InvalidInputError, ModelNotFound, NothingFound
from editanything.models import MODELS

torch = pytest.importorskip("torch")
NAME = "my-mm-gdino"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_grounding_dino_hf(tmp_path_factory.mktemp("mm") / NAME, family="MMGroundingDino")


@pytest.fixture(scope="module")
def coffee():
    return read_image(DEMOS / "coffee.jpg")


def _declare(root, manifest):
    declare_folder(root, NAME, "mm-grounding-dino-hf", manifest, "detect")


@pytest.fixture
def manifest_model(tiny_folder, tmp_path, monkeypatch):
    """A models root holding the tiny folder and a manifest entry naming it (as a user, or a future
    package entry, adds one): its files as `models download` would lay them out."""
    yield install_declared(tiny_folder, tmp_path, monkeypatch, NAME, "mm-grounding-dino-hf", "detect")
    MODELS.pop(NAME, None)


@pytest.mark.parametrize("text,caption", [("cup", "cup ."), ("Cup. Red  Car", "cup . red car .")])
def test_detect_by_name_matches_transformers(manifest_model, coffee, text, caption):
    detector = get_detector(NAME, box_threshold=0.5, text_threshold=0.3, nms_iou=None, device="cpu")
    assert isinstance(detector, MMGroundingDinoDetector)
    assert detector.describe().startswith(f"MM-Grounding-DINO {NAME}")
    found = detector.detect(coffee, text)
    boxes, scores, phrases = reference_grounded_detect(manifest_model, "MMGroundingDinoForObjectDetection", coffee,
                                                       caption, 0.5, 0.3)
    assert 0 < len(found) < 20  # the threshold kept some of the 20 queries, not all
    np.testing.assert_array_equal(found.xyxy, boxes)
    np.testing.assert_array_equal(found.scores, scores)
    assert found.phrases == phrases


def test_nms_top_k_and_nothing_found(manifest_model, coffee):
    every = get_detector(NAME, box_threshold=0.0, nms_iou=None, device="cpu").detect(coffee, "cup")
    kept = get_detector(NAME, box_threshold=0.0, nms_iou=0.3, top_k=3, device="cpu").detect(coffee, "cup")
    assert len(every) == 20 and len(kept) == 3
    assert list(kept.scores) == sorted(kept.scores, reverse=True) and kept.scores[0] == every.scores[0]
    with pytest.raises(NothingFound, match=r"no 'cup' above box_threshold 1; best score \d\.\d\d"):
        get_detector(NAME, box_threshold=1.0, device="cpu").detect(coffee, "cup")


def test_missing_weights_name_the_download_command(manifest_model):
    (manifest_model / "model.safetensors").unlink()
    with pytest.raises(ModelNotFound, match=f"editanything models download {NAME}"):
        get_detector(NAME, device="cpu")
    assert_segment_names_download(NAME, manifest_model.parent / "out")


def test_a_grounding_dino_folder_is_refused_as_mm_grounding_dino(manifest_model, tmp_path):
    # The classic model has shared decoder heads and no contrastive bias: its folder lacks weights of this class.
    shutil.rmtree(manifest_model)
    build_tiny_grounding_dino_hf(manifest_model)
    _declare(manifest_model.parent, tmp_path / "mine.json")
    with pytest.raises(InvalidInputError, match="MMGroundingDinoForObjectDetection"):
        get_detector(NAME, device="cpu")


def test_models_list_shows_its_backend_licence(manifest_model):
    line = models_list_row(NAME)
    assert "detector" in line and "Apache-2.0" in line


def test_llmdet_tiny_is_a_catalogue_detector_and_auto_takes_it_first(tiny_folder, isolated_models, coffee):
    from editanything.detect import DETECTOR_MODELS
    from editanything.models import get_spec

    spec = get_spec("llmdet-tiny")
    assert (spec.kind, spec.license, spec.loader["backend"]) == ("detector", "Apache-2.0", "mm-grounding-dino-hf")
    assert DETECTOR_MODELS[0] == "llmdet-tiny"  # the best published LVIS AP of the catalogue's pinned detectors
    with pytest.raises(ModelNotFound, match="editanything models download llmdet-tiny"):
        get_detector("llmdet-tiny", device="cpu")
    # none on disk: the download named is the detector whose pins were read on the hub itself
    with pytest.raises(ModelNotFound, match="editanything models download grounding-dino-tiny"):
        get_detector("auto", device="cpu")
    (isolated_models / "llmdet-tiny").symlink_to(tiny_folder, target_is_directory=True)
    detector = get_detector("llmdet-tiny", box_threshold=0.5, nms_iou=None, device="cpu")
    assert isinstance(detector, MMGroundingDinoDetector) and detector.name == "llmdet-tiny"
    assert len(detector.detect(coffee, "cup")) > 0
    chosen = get_detector("auto", box_threshold=0.5, nms_iou=None, device="cpu")
    assert isinstance(chosen, MMGroundingDinoDetector) and chosen.name == "llmdet-tiny"
    assert chosen.detect(coffee, "cup").phrases == detector.detect(coffee, "cup").phrases
