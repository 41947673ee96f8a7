"""Masks → words: the Captioner protocol and its registry (Florence-2, BLIP-2).

`get_captioner("auto")` builds the first captioner of `auto_candidates()` whose files are on disk,
else raises ModelNotFound with the `editanything models download …` command of the first. On a CPU
Florence-2 base (0.23 B parameters, 0.46 GB) comes first, BLIP-2 (3.7 B, 15 GB) second; on CUDA,
BLIP-2 first. Importing this package loads neither torch nor transformers.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..registry import Registry, for_model
from .blip2 import DEFAULT_PROMPT, Blip2Captioner
from .florence2 import CAPTION_TASKS, Florence2Captioner
from .regions import region_box, region_crop


@runtime_checkable
class Captioner(Protocol):
    """An image, or the region a mask selects, → a caption (or the answer to `prompt`)."""

    name: str

    def caption(self, image: np.ndarray, mask: np.ndarray | None = None, prompt: str | None = None) -> str: ...

    def caption_regions(self, image: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray,
                        prompt: str | None = None) -> list[str]: ...

    def describe(self) -> str: ...


BLIP2_MODELS = ("blip2-opt-2.7b",)
FLORENCE2_MODELS = ("florence-2-base",)
CAPTIONER_MODELS = (*FLORENCE2_MODELS, *BLIP2_MODELS)  # "auto"'s order on a CPU


def auto_order(device: str) -> tuple[str, ...]:
    """The captioners "auto" tries on `device`: the light Florence-2 first on a CPU, BLIP-2 first on CUDA."""
    return (*BLIP2_MODELS, *FLORENCE2_MODELS) if str(device).startswith("cuda") else CAPTIONER_MODELS


def auto_candidates(device: str | None = None) -> tuple[str, ...]:
    """`auto_order` for `device`, by default the device the captioner would run on."""
    from ..models import pick_device

    return auto_order(device or (pick_device() if importlib.util.find_spec("torch") else "cpu"))


_blip2, _florence2 = for_model(Blip2Captioner.from_model), for_model(Florence2Captioner.from_model)
CAPTIONERS: Registry[Captioner] = Registry(
    "captioner", {**{m: _florence2(m) for m in FLORENCE2_MODELS}, **{m: _blip2(m) for m in BLIP2_MODELS}},
    backends={"blip2": _blip2, "florence2": _florence2}, order=auto_candidates)
"""Captioner name → builder taking the backend's keyword settings; manifest backend → builder factory."""
CAPTIONER_BACKENDS = CAPTIONERS.backends
register_captioner = CAPTIONERS.register


def get_captioner(name: str = "auto", **kwargs: Any) -> Captioner:
    """Build a captioner by name; "auto" is the first of `auto_candidates()` whose files are on disk."""
    return CAPTIONERS.get(name, **kwargs)


def captioner_on_disk(device: str | None = None) -> str | None:
    """The captioner "auto" would build (its files are on disk), or None: no captioner can write a prompt."""
    if not any(CAPTIONERS.usable(m) for m in CAPTIONER_MODELS):
        return None  # without asking torch for the device: a weight-free job never imports it
    return CAPTIONERS.pick(device)


def captioner_download(device: str | None = None) -> str:
    """The command that fetches the captioner "auto" would try first."""
    from ..models import download_command

    return download_command(auto_candidates(device)[0])


__all__ = [
    "CAPTIONERS", "CAPTIONER_BACKENDS", "CAPTIONER_MODELS", "CAPTION_TASKS", "DEFAULT_PROMPT", "Blip2Captioner",
    "Captioner", "Florence2Captioner", "auto_candidates", "auto_order", "captioner_download", "captioner_on_disk",
    "get_captioner", "region_box", "region_crop", "register_captioner",
]
