"""Models added through $EDITANYTHING_MANIFEST are usable by name, not only listed.

The manifest says which backend each model is for and that backend's options; the tiny
random-weight models stand in for a user's fine-tunes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from editanything.models import MODELS

DEMOS = Path(__file__).resolve().parents[1] / "demos"
torch = pytest.importorskip("torch")


def _file(root: Path, path: str) -> dict:
    data = (root / path).read_bytes()
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "sources": [{"url": "https://example.invalid/" + path}]}


@pytest.fixture
def user_models(tiny_checkpoints, tmp_path, monkeypatch):
    """A models root holding the user's own SAM, Grounding DINO and SD, and the manifest naming them."""
    from tiny_models import TINY_SAM, register_tiny_sam

    tiny_root, gdino_config = tiny_checkpoints
    register_tiny_sam()
    root = tmp_path / "models"
    (root / "mine").mkdir(parents=True)
    shutil.copy(tiny_root / "sam_vit_b_01ec64.pth", root / "mine" / "sam.pth")
    shutil.copy(tiny_root / "groundingdino_swint_ogc.pth", root / "mine" / "dino.pth")
    shutil.copytree(tiny_root / "bert-base-uncased", root / "bert-base-uncased")
    shutil.copytree(tiny_root / "sd15-inpainting", root / "my-sd")
    shutil.copy(gdino_config, tmp_path / "dino_config.py")
    sd_files = sorted(p.relative_to(root).as_posix() for p in (root / "my-sd").rglob("*") if p.is_file())
    manifest = tmp_path / "mine.json"
    manifest.write_text(json.dumps([
        {"name": "my-sam", "license": "Apache-2.0", "loader": {"backend": "sam", "sam_type": TINY_SAM},
         "files": [_file(root, "mine/sam.pth")]},
        {"name": "my-dino", "license": "Apache-2.0", "requires": ["bert-base-uncased"],
         "loader": {"backend": "groundingdino", "config": "./dino_config.py"},
         "files": [_file(root, "mine/dino.pth")]},
        {"name": "my-sd", "license": "CreativeML-OpenRAIL-M", "loader": {"backend": "diffusion", "variant": "fp16"},
         "files": [_file(root, p) for p in sd_files]},
    ]))
    monkeypatch.setenv("EDITANYTHING_MANIFEST", str(manifest))
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(root))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    yield root
    for name in ("my-sam", "my-dino", "my-sd"):
        MODELS.pop(name, None)


def test_a_user_sam_is_a_segmenter_by_name(user_models):
    from editanything.pipeline import Editor
    from editanything.segment import SamSegmenter, get_segmenter
    from editanything.types import Prompt

    seg = get_segmenter("my-sam", device="cpu")
    assert isinstance(seg, SamSegmenter) and seg.name == "my-sam" and "sam.pth" in seg.describe()
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = 200
    editor = Editor(segmenter="my-sam", detector=None, generator="classical", segmenter_options={"device": "cpu"})
    found = editor.segmenter.segment(image, Prompt(boxes=[(16, 16, 48, 48)]))
    assert found.masks.shape == (1, 64, 64)


def test_a_user_detector_is_usable_from_the_cli(user_models, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "editanything", "segment", str(DEMOS / "coffee.jpg"), "-o", str(out),
         "--select", "cup", "--detector", "my-dino", "--segmenter", "grabcut", "--box-threshold", "0"],
        capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    found = json.loads((out / "detections.json").read_text())
    instances = found["instances"] if isinstance(found, dict) else found
    assert instances and all("cup" in d["phrase"] for d in instances)  # random weights: any box, but of "cup"


def test_a_user_diffusers_model_is_a_generator_by_name(user_models):
    from tiny_sd import image_and_mask

    from editanything.generate import GenerationParams, get_generator

    gen = get_generator("my-sd", device="cpu")
    assert gen.name == "my-sd"
    image, mask = image_and_mask(64)
    out = gen.inpaint(image, mask, GenerationParams(prompt="a cat", sampler="DDIM", steps=2, seed=1, resolution=64))
    assert out.images[0].shape == image.shape and gen.load().unet.dtype == torch.float32


def test_an_unknown_backend_is_a_one_line_error(tmp_path, monkeypatch):
    from editanything.errors import InvalidInputError
    from editanything.segment import get_segmenter

    manifest = tmp_path / "bad.json"
    manifest.write_text(json.dumps([{"name": "my-yolo", "loader": {"backend": "yolo"},
                                     "files": [{"path": "y.pt", "sources": [{"url": "https://example.invalid/y"}]}]}]))
    monkeypatch.setenv("EDITANYTHING_MANIFEST", str(manifest))
    with pytest.raises(InvalidInputError, match="unknown backend 'yolo'"):
        get_segmenter("my-yolo")
