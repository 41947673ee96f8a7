"""Test-wide settings: no network, no telemetry, and paths to the real demo photos."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Editor() would otherwise pick the low-memory path by the memory free at that moment (memory.py):
# the suite must not depend on what else runs on the machine.
os.environ["EDITANYTHING_LOW_MEMORY"] = "0"

from pathlib import Path  # noqa: E402

import dataclasses  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ["skip_policy"]  # under `make test`, a skip for a missing dependency or browser fails

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "demos"


@pytest.fixture(scope="session", autouse=True)
def shared_derived_cache(tmp_path_factory):
    """One cache of graphs derived from weights (SAM's ONNX decoder) for the whole run.

    They are keyed by a hash of the weights, so tests with their own model folders can share
    them (each would otherwise export the same tiny decoder again); a fresh folder per run.
    """
    os.environ["EDITANYTHING_CACHE"] = str(tmp_path_factory.mktemp("derived-cache"))
    yield
    os.environ.pop("EDITANYTHING_CACHE", None)


@pytest.fixture
def demo_photo() -> Path:
    return DEMOS / "astronaut.jpg"


@pytest.fixture
def isolated_models(tmp_path, monkeypatch) -> Path:
    """Empty model roots, so tests see exactly the model files they create."""
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(ckpt))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return ckpt


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """A checkpoints folder with tiny Grounding DINO (+ BERT), SAM and SD 1.5 inpainting under official names."""
    from tiny_detect_models import build_tiny_grounding_dino
    from tiny_models import save_tiny_sam_checkpoint
    from tiny_sd import save_diffusers, write_tokenizer_files

    root = tmp_path_factory.mktemp("checkpoints")
    gdino = build_tiny_grounding_dino(root)
    save_tiny_sam_checkpoint(root / "sam_vit_b_01ec64.pth")
    # transformers 5 saves only tokenizer.json; the official folder also has the slow tokenizer's files
    # fp16 safetensors only, as the released stable-diffusion-v1-5/stable-diffusion-inpainting has
    write_tokenizer_files(save_diffusers(root / "sd15-inpainting", variant="fp16") / "tokenizer")
    return root, gdino.config


@pytest.fixture
def deep(tiny_checkpoints, monkeypatch, tmp_path):
    """The models layer sees the tiny deep models exactly as it would see real downloaded weights."""
    from model_pins import pin_to_files
    from tiny_detect_models import use_tiny_config
    from tiny_models import register_tiny_sam

    from editanything.models import MODELS

    root, config = tiny_checkpoints
    monkeypatch.setenv("EDITANYTHING_CHECKPOINTS", str(root))
    monkeypatch.setenv("EDITANYTHING_HOME", str(tmp_path / "home"))
    use_tiny_config(monkeypatch, config)
    pin_to_files(monkeypatch, root, "sam-vit-b", "groundingdino-swint-ogc", "bert-base-uncased", "sd15-inpainting")
    spec = MODELS["sam-vit-b"]
    monkeypatch.setitem(MODELS, "sam-vit-b", dataclasses.replace(spec, loader={**spec.loader,
                                                                               "sam_type": register_tiny_sam()}))
    return root


def edit_output(folder, stem: str, index: int = 0) -> Path:
    """The one output of an edit of photo `stem` in `folder`: `STEM.MODE-HASH.png` (`-INDEX` for image INDEX)."""
    import re

    tail = f"-{index}" if index else ""
    pattern = re.compile(rf"{re.escape(stem)}\.[a-z]+-[0-9a-f]{{6}}{tail}\.png")
    hits = [p for p in Path(folder).iterdir() if pattern.fullmatch(p.name)]
    assert len(hits) == 1, f"expected one edit output of {stem} in {folder}; found {sorted(p.name for p in hits)}"
    return hits[0]


def run_cli(*args: str):
    """`python -m editanything ARGS` in a fresh process, as a user runs it, in this process's environment."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "editanything", *args], capture_output=True, text=True,
                          env=os.environ.copy())


def models_list_row(name: str) -> str:
    """The row of model `name` in `editanything models list`."""
    result = run_cli("models", "list")
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith(name))


def assert_segment_names_download(detector: str, out: Path) -> None:
    """`segment --select cup --detector DETECTOR` stops with one line: the command that downloads it."""
    result = run_cli("segment", str(DEMOS / "coffee.jpg"), "-o", str(out), "--select", "cup", "--detector", detector,
                     "--segmenter", "grabcut")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"editanything models download {detector}" in lines[0], result.stderr
