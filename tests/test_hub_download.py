"""The real huggingface_hub download path against a fake hub on 127.0.0.1 (no network).

Full, resumed, truncated and wrong-hash downloads, and a diffusers repo that only has fp16
safetensors: chosen from the hub's own listing, downloaded, loaded with variant="fp16" and
upcast to float32 on the CPU.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from editanything.errors import ChecksumMismatch
from editanything.models import MODELS, ModelFile, ModelSpec, find_model, register_model, resolve, verify_model
from editanything.models.download import DownloadError, download_model
from editanything.models.manifest import HfSource, diffusers_spec
from fake_hub import FakeHub, HubFile

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "someone/tiny-weights"


@pytest.fixture
def hub(isolated_models, monkeypatch):
    """The fake hub as HF_ENDPOINT, with huggingface_hub's offline switch (read at import) turned off."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        yield fake
    for name in [n for n in MODELS if n.startswith("hub-")]:
        del MODELS[name]


def _spec(name: str, files: dict[str, HubFile], *, pin: bool = True, revision: str = COMMIT) -> ModelSpec:
    return register_model(ModelSpec(
        name=name, kind="test", description="test model", license="MIT",
        files=tuple(ModelFile(f"{name}/{n}", (HfSource(REPO, n, revision),), f.sha256 if pin else None, len(f.data))
                    for n, f in files.items())))


def _leftovers(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != "README.md")


def test_full_download_from_the_pinned_commit(hub, isolated_models):
    files = {"config.json": HubFile(b'{"hidden": 4}', lfs=False), "weights.bin": HubFile(os.urandom(200_000))}
    hub.add(REPO, COMMIT, files)
    _spec("hub-full", files)
    download_model("hub-full", log=lambda _: None)
    assert resolve("hub-full").path("hub-full/weights.bin").read_bytes() == files["weights.bin"].data
    assert [c.status for c in verify_model("hub-full")] == ["ok", "ok"]
    assert _leftovers(isolated_models) == ["hub-full", "hub-full/config.json", "hub-full/weights.bin"]
    resolves = [path for method, path, _ in hub.requests if "/resolve/" in path]
    assert resolves and all(f"/resolve/{COMMIT}/" in path for path in resolves)


def test_a_dropped_connection_resumes_with_range(hub, isolated_models):
    data = os.urandom(300_000)
    files = {"weights.bin": HubFile(data, drop_first=100_000)}
    hub.add(REPO, COMMIT, files)
    _spec("hub-resume", files)
    download_model("hub-resume", log=lambda _: None)
    assert resolve("hub-resume").path().read_bytes() == data
    ranges = [rng for method, path, rng in hub.requests if path.startswith("/cdn/") and method == "GET"]
    assert ranges == [None, "bytes=100000-"]


def _cdn_ranges(hub) -> list[str | None]:
    return [rng for method, path, rng in hub.requests if path.startswith("/cdn/") and method == "GET"]


def test_an_interrupted_download_resumes_in_the_next_run_and_is_checked_before_it_takes_its_name(
        hub, isolated_models):
    data = os.urandom(500_000)
    files = {"weights.bin": HubFile(data, drop_first=100_000, drops=4)}  # one more drop than a run's tries
    hub.add(REPO, COMMIT, files)
    _spec("hub-later", files)
    with pytest.raises(DownloadError, match="run the download again to resume"):
        download_model("hub-later", log=lambda _: None)
    partial = isolated_models / "hub-later" / "weights.bin.download"
    assert partial.read_bytes() == data[:300_000] and find_model("hub-later") is None
    download_model("hub-later", log=lambda _: None)
    assert resolve("hub-later").path().read_bytes() == data
    assert _cdn_ranges(hub) == [None, "bytes=100000-", "bytes=200000-", "bytes=300000-", "bytes=400000-"]
    assert _leftovers(isolated_models) == ["hub-later", "hub-later/weights.bin"]  # nothing fetched twice


def test_a_kept_partial_with_wrong_bytes_is_deleted_and_the_next_run_starts_afresh(hub, isolated_models):
    data = os.urandom(200_000)
    files = {"weights.bin": HubFile(data)}
    hub.add(REPO, COMMIT, files)
    _spec("hub-stale", files)
    (isolated_models / "hub-stale").mkdir()
    (isolated_models / "hub-stale" / "weights.bin.download").write_bytes(os.urandom(50_000))  # not this file's
    with pytest.raises(ChecksumMismatch, match="deleted"):
        download_model("hub-stale", log=lambda _: None)
    assert _cdn_ranges(hub) == ["bytes=50000-"] and find_model("hub-stale") is None
    download_model("hub-stale", log=lambda _: None)
    assert resolve("hub-stale").path().read_bytes() == data and _cdn_ranges(hub)[1:] == [None]


def test_a_truncated_transfer_is_refused_and_leaves_nothing(hub, isolated_models):
    files = {"weights.bin": HubFile(os.urandom(300_000), short=120_000)}
    hub.add(REPO, COMMIT, files)
    _spec("hub-short", files)
    with pytest.raises(DownloadError, match="weights.bin"):
        download_model("hub-short", log=lambda _: None)
    assert find_model("hub-short") is None
    assert _leftovers(isolated_models) == []  # no file, no partial, no empty folder


def test_a_file_shorter_than_the_manifest_says_is_deleted(hub, isolated_models):
    data = os.urandom(300_000)
    hub.add(REPO, COMMIT, {"weights.bin": HubFile(data[:200_000])})  # the hub itself serves a cut file
    register_model(ModelSpec(name="hub-cut", kind="test", description="t", license="MIT", files=(
        ModelFile("hub-cut/weights.bin", (HfSource(REPO, "weights.bin", COMMIT),),
                  hashlib.sha256(data).hexdigest(), len(data)),)))
    with pytest.raises(ChecksumMismatch, match="200,000 bytes, expected 300,000"):
        download_model("hub-cut", log=lambda _: None)
    assert _leftovers(isolated_models) == []


@pytest.mark.parametrize("pin", [True, False], ids=["pinned", "hub-published"])
def test_wrong_bytes_are_deleted_before_they_take_the_name(hub, isolated_models, pin):
    data = os.urandom(100_000)
    files = {"weights.bin": HubFile(data, body=os.urandom(100_000))}
    hub.add(REPO, COMMIT, files)
    _spec("hub-wrong", files, pin=pin)
    with pytest.raises(ChecksumMismatch, match="deleted"):
        download_model("hub-wrong", log=lambda _: None)
    assert _leftovers(isolated_models) == []


def test_an_unpinned_file_stays_unverified(hub, isolated_models, capsys):
    files = {"weights.bin": HubFile(os.urandom(10_000))}
    hub.add(REPO, COMMIT, files)
    _spec("hub-loose", files, pin=False)
    logs: list[str] = []
    download_model("hub-loose", log=logs.append)
    assert any("unverified" in line for line in logs)
    assert [c.status for c in verify_model("hub-loose")] == ["unverified"]
    assert not any(p.suffix == ".json" for p in isolated_models.iterdir())  # no first-seen hash recorded


def test_fp16_only_repo_downloads_the_variant_and_loads_upcast(hub, isolated_models, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from huggingface_hub import HfApi
    from tiny_sd import image_and_mask, save_diffusers

    from editanything.generate import GenerationParams, get_generator

    folder = save_diffusers(tmp_path / "fp16-only", variant="fp16")
    files = {p.relative_to(folder).as_posix(): HubFile(p.read_bytes(), lfs=p.suffix == ".safetensors")
             for p in folder.rglob("*") if p.is_file()}
    assert not any(n.endswith("diffusion_pytorch_model.safetensors") for n in files)
    hub.add(REPO, COMMIT, files)

    info = HfApi(endpoint=hub.endpoint).model_info(REPO, revision=COMMIT, files_metadata=True)
    spec = register_model(diffusers_spec("hub-sd", REPO, info.sha, [s.rfilename for s in info.siblings],
                                         description="tiny fp16-only SD", license="MIT"))
    assert spec.loader == {"backend": "diffusion", "variant": "fp16"}
    download_model("hub-sd", log=lambda _: None)

    generator = get_generator("hub-sd", device="cpu")
    pipe = generator.load()
    assert pipe.unet.dtype == torch.float32 and pipe.text_encoder.dtype == torch.float32
    from safetensors.torch import load_file

    half = load_file(str(folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    assert all(t.dtype == torch.float16 for t in half.values())
    loaded = pipe.unet.state_dict()
    for key, value in half.items():
        assert torch.equal(loaded[key], value.float()), key
    image, mask = image_and_mask(64)
    out = generator.inpaint(image, mask, GenerationParams(prompt="a cat", steps=2, seed=1, resolution=64))
    assert out.images[0].shape == image.shape
