"""Generators: fill a masked region of an image.

Every backend implements the `Generator` protocol; `get_generator(name)` builds one by name:
"classical" (OpenCV Telea, no weights), "classical-ns", "sd15-inpainting", "sd2-inpainting", a path
to a diffusers folder or a single-file checkpoint, "auto" (the best model present for the device,
see auto.py; classical without Stable Diffusion weights), or the hosted "stability" and "openai"
(remote/: the crop leaves the machine). torch and diffusers load only when a diffusion generator runs.
"sdxl-inpainting" (or an SDXL diffusers folder) runs SDXL inpainting (sdxl.py).
"flux2-klein-4b" (or a FLUX.2 [klein] diffusers folder) runs FLUX.2 [klein] inpainting (flux2.py).
"lama" and "migan" are removers (no prompt, ONNX Runtime; see removal.py): `best_remover()` names
the best one on disk, which the Editor uses for *remove*.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..registry import Registry, for_model
from ..types import GenerationParams
from .classical import ClassicalGenerator
from .generated import Generated
from .params import WEBUI_DEFAULTS, model_defaults
from .prompts import Style, apply_styles, load_styles, parse_prompt_attention, pick_styles
from .samplers import canonical_name, make_scheduler, sampler_names


@runtime_checkable
class Generator(Protocol):
    """Fills `mask` in `image` at the size given; compose.py does the cropping and resizing.

    Optional: `default_params() -> dict` with the "sampler", "steps" and "cfg_scale" the model
    recommends, used where the caller left them None (FLUX.2 klein: Euler, 4 steps, CFG 1). Without
    it a generator gets the WebUI's defaults (`WEBUI_DEFAULTS`, what Stable Diffusion uses); see
    `model_defaults`. `takes_prompt = False` (removers, OpenCV's fill, recolor): it never reads the
    prompts, so the Editor hands it none and the recipe records none.

    A generator keeps nothing of a call on itself: `inpaint` returns the images with the seed of each,
    the threads and the model info it ran with (`Generated`), so one generator may serve several
    threads at once; image i of a batch equals what its seed gives alone, and an output that is NaN or
    its input unchanged is `BadOutput`. tests/test_generator_contract.py holds every registered one to this.
    """

    name: str
    works_at_any_size: bool  # False: needs sides that are multiples of 8 and works best near its resolution

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams) -> Generated:
        """batch_size × batch_count RGB uint8 images the size of `image`, and what made them."""

    def model_info(self) -> dict[str, Any]:
        """Model name, file and sha256 when known (what `Generated.model` holds before a call's own parts)."""

    def release(self) -> None:
        """Free the model's memory."""


_diffusion = for_model(f"{__name__}.diffusion:DiffusionGenerator")
_sdxl = for_model(f"{__name__}.sdxl:SDXLGenerator")
_flux2 = for_model(f"{__name__}.flux2:Flux2Generator")
_remover = for_model(f"{__name__}.removal:get_remover")


def _remote(name: str) -> Callable[..., Generator]:
    def build(**kwargs: Any) -> Generator:
        from .remote import REMOTE_GENERATORS

        return REMOTE_GENERATORS[name](**kwargs)

    return build


def _is_flux2_folder(path: Path) -> bool:
    from .flux2 import is_flux2_folder

    return is_flux2_folder(path)


def _is_sdxl_folder(path: Path) -> bool:
    index = path / "model_index.json"
    return index.is_file() and '"StableDiffusionXL' in index.read_text(encoding="utf-8", errors="replace")


def _checkpoint(name: str | os.PathLike) -> Callable[..., Generator] | None:
    """The builder for a path: an `.onnx` remover, a FLUX.2 or SDXL diffusers folder, else Stable Diffusion."""
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".onnx":
        return _remover(str(path))
    if path.is_dir() and _is_flux2_folder(path):
        return _flux2(str(path))
    if path.is_dir() and _is_sdxl_folder(path):
        return _sdxl(str(path))
    return _diffusion(str(path)) if path.exists() else None


def _auto(settings: dict[str, Any]) -> tuple[str, str]:
    from .auto import pick

    return pick(with_options=bool(settings))


GENERATORS: Registry[Generator] = Registry(
    "generator",
    {
        "classical": lambda **kw: ClassicalGenerator("telea", **kw),
        "classical-telea": lambda **kw: ClassicalGenerator("telea", **kw),
        "classical-ns": lambda **kw: ClassicalGenerator("ns", **kw),
        "sd15-inpainting": _diffusion("sd15-inpainting"),
        "sd2-inpainting": _diffusion("sd2-inpainting"),
        # hosted services: the crop around the mask is uploaded (generate/remote/)
        "stability": _remote("stability"),
        "openai": _remote("openai"),
        "sdxl-inpainting": _sdxl("sdxl-inpainting"),
        "flux2-klein-4b": _flux2("flux2-klein-4b"),
        "lama": _remover("lama"),
        "migan": _remover("migan"),
    },
    backends={"diffusion": _diffusion, "sdxl": _sdxl}, choose=_auto, fallback=_checkpoint,
)
"""Generator name → builder; manifest backend → builder factory; a path → the builder of what it holds."""
GENERATOR_BACKENDS = GENERATORS.backends
register_generator = GENERATORS.register
list_generators = GENERATORS.names


def best_remover() -> str | None:
    """The best remover (LaMa, then MI-GAN) whose weights are on disk, or None."""
    from .removal import best_remover as best

    return best()


# What a remove that failed its check tries next: the learned removers, Stable Diffusion, OpenCV's fill.
REMOVAL_CHAIN = ("lama", "migan", "sd15-inpainting", "classical")


def next_remover(current: str) -> str | None:
    """The first remover after `current` in REMOVAL_CHAIN whose weights are on disk, or None (also for a
    generator outside the chain: the caller chose it)."""
    from ..registry import on_disk

    current = "classical" if current.startswith("classical") else current
    if current not in REMOVAL_CHAIN:
        return None
    later = REMOVAL_CHAIN[REMOVAL_CHAIN.index(current) + 1:]
    return next((n for n in later if n == "classical" or on_disk(n)), None)


def get_generator(name: str | os.PathLike = "auto", **kwargs: Any) -> Generator:
    """A generator by registry name, manifest model or checkpoint path; "auto" falls back to classical
    without SD weights.

    Keyword arguments go to the backend's constructor (e.g. `loras=`, `controlnets=` for diffusion).
    "auto" with such arguments insists on Stable Diffusion (ModelNotFound says how to fetch it).
    """
    return GENERATORS.get(name, **kwargs)


__all__ = [
    "ClassicalGenerator", "GENERATORS", "GENERATOR_BACKENDS", "Generated", "GenerationParams", "Generator", "Style",
    "apply_styles", "REMOVAL_CHAIN", "WEBUI_DEFAULTS", "best_remover", "next_remover", "canonical_name",
    "get_generator", "list_generators", "load_styles",
    "make_scheduler", "model_defaults", "parse_prompt_attention", "pick_styles", "register_generator", "sampler_names",
]
