"""Test-wide settings: no network, no telemetry, and paths to the real demo photos."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "demos"


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
