"""The recipe records the sha256 of the model file that ran, hashed from disk, not the manifest's pin.

Each model is a tiny one under its official name, pinned as the released one is; then one byte of its
weights is changed (same size, so it still resolves): `models verify` reports the mismatch, and the
recipe must name the damaged file's real digest, never the digest the manifest expected.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from model_pins import pin_to_files  # noqa: E402

from editanything.models.store import verify_model  # noqa: E402
from editanything.models import model_files  # noqa: E402


def _damage(path: Path) -> str:
    """Flip the last byte (inside the weights, the size unchanged); the file's new sha256."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    return hashlib.sha256(data).hexdigest()


def _damaged_copy(monkeypatch, root: Path, name: str, source: Path, weights: str) -> str:
    """`source` copied to root/<its name>, pinned as the real model is, then `weights` damaged."""
    dest = root / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, dest)
    pin_to_files(monkeypatch, root, name)
    digest = _damage(root / weights)
    assert any(c.status == "mismatch" for c in verify_model(name))
    return digest


def test_a_remover_records_the_hash_of_its_damaged_file(isolated_models, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from tiny_removers import save_tiny_lama

    from editanything.generate.removal import LamaRemover

    (isolated_models / "lama").mkdir()
    src = save_tiny_lama(tmp_path / "src" / "lama_fp32.onnx")
    shutil.copy(src, isolated_models / "lama" / src.name)
    pin_to_files(monkeypatch, isolated_models, "lama")
    digest = _damage(isolated_models / "lama" / src.name)
    assert verify_model("lama")[0].status == "mismatch"
    info = LamaRemover("lama").model_info()
    assert info["sha256"] == digest and info["hash"] == digest[:10]
    assert model_files("lama") == [{"path": str(isolated_models / "lama" / src.name), "sha256": digest}]


def test_stable_diffusion_records_the_hash_of_its_damaged_unet(isolated_models, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    import tiny_sd

    from editanything.generate import get_generator

    released = tiny_sd.save_diffusers(tmp_path / "src" / "sd15-inpainting", variant="fp16")
    digest = _damaged_copy(monkeypatch, isolated_models, "sd15-inpainting", released,
                           "sd15-inpainting/unet/diffusion_pytorch_model.fp16.safetensors")
    assert get_generator("sd15-inpainting").model_info()["sha256"] == digest


def test_sdxl_records_the_hash_of_its_damaged_unet(isolated_models, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    import tiny_sdxl

    from editanything.generate import get_generator

    folder = tiny_sdxl.save_sdxl(tmp_path / "src" / "sdxl-inpainting")
    digest = _damaged_copy(monkeypatch, isolated_models, "sdxl-inpainting", folder,
                           "sdxl-inpainting/unet/diffusion_pytorch_model.fp16.safetensors")
    assert get_generator("sdxl-inpainting").model_info()["sha256"] == digest


def test_flux2_records_the_hash_of_its_damaged_transformer(isolated_models, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    import tiny_flux2

    from editanything.generate import get_generator

    folder = tiny_flux2.save_klein(tmp_path / "src" / "flux2-klein-4b")
    digest = _damaged_copy(monkeypatch, isolated_models, "flux2-klein-4b", folder,
                           "flux2-klein-4b/transformer/diffusion_pytorch_model.safetensors")
    assert get_generator("flux2-klein-4b").model_info()["sha256"] == digest
