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

import importlib
import os
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from .classical import ClassicalGenerator
from .params import WEBUI_DEFAULTS, GenerationParams, model_defaults
from .prompts import Style, apply_styles, load_styles, parse_prompt_attention, pick_styles
from .samplers import canonical_name, make_scheduler, sampler_names


@runtime_checkable
class Generator(Protocol):
    """Fills `mask` in `image` at the size given; compose.py does the cropping and resizing.

    Optional: `default_params() -> dict` with the "sampler", "steps" and "cfg_scale" the model
    recommends, used where the caller left them None (FLUX.2 klein: Euler, 4 steps, CFG 1). Without
    it a generator gets the WebUI's defaults (`WEBUI_DEFAULTS`, what Stable Diffusion uses); see
    `model_defaults`.
    """

    name: str
    works_at_any_size: bool  # False: needs sides that are multiples of 8 and works best near its resolution
    last_seeds: list[int]

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams) -> list[np.ndarray]:
        """batch_size × batch_count RGB uint8 images the size of `image`."""

    def model_info(self) -> dict[str, Any]:
        """Model name, file and sha256 when known, for the recipe."""

    def release(self) -> None:
        """Free the model's memory."""


def _lazy(module: str, factory: str) -> Callable[[str], Callable[..., Generator]]:
    """`model -> builder`: the builder imports `.module` (torch, diffusers, onnxruntime…) only when it runs."""
    def for_model(model: str) -> Callable[..., Generator]:
        def build(**kwargs: Any) -> Generator:
            return getattr(importlib.import_module(f".{module}", __name__), factory)(model, **kwargs)

        return build

    return for_model


_diffusion = _lazy("diffusion", "DiffusionGenerator")
_sdxl = _lazy("sdxl", "SDXLGenerator")
_flux2 = _lazy("flux2", "Flux2Generator")
_remover = _lazy("removal", "get_remover")


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


GENERATORS: dict[str, Callable[..., Generator]] = {
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
}


GENERATOR_BACKENDS: dict[str, Callable[[str], Callable[..., Generator]]] = {"diffusion": _diffusion}
"""Manifest backend → builder factory, so a model added through the manifest is a generator by its name."""


def register_generator(name: str, builder: Callable[..., Generator]) -> None:
    """Add a backend: `builder(**kwargs)` returns a Generator."""
    GENERATORS[name] = builder


def best_remover() -> str | None:
    """The best remover (LaMa, then MI-GAN) whose weights are on disk, or None."""
    from .removal import best_remover as best

    return best()


def list_generators() -> list[str]:
    return ["auto", *GENERATORS]


def get_generator(name: str | os.PathLike = "auto", **kwargs: Any) -> Generator:
    """A generator by registry name or checkpoint path; "auto" falls back to classical without SD weights.

    Keyword arguments go to the backend's constructor (e.g. `loras=`, `controlnets=` for diffusion).
    "auto" with such arguments insists on Stable Diffusion (ModelNotFound says how to fetch it).
    """
    if name == "auto":
        from .auto import pick

        chosen, why = pick(with_options=bool(kwargs))
        generator = GENERATORS[chosen](**kwargs)
        generator.note = why
        return generator
    if isinstance(name, str) and name in GENERATORS:
        return GENERATORS[name](**kwargs)
    if isinstance(name, str):
        from ..models import find_spec

        spec = find_spec(name)
        factory = GENERATOR_BACKENDS.get(spec.backend) if spec is not None else None
        if factory is not None:
            return factory(name)(**kwargs)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".onnx":
        return _remover(str(path))(**kwargs)
    if path.is_dir() and _is_flux2_folder(path):
        return _flux2(str(path))(**kwargs)
    if path.is_dir() and _is_sdxl_folder(path):
        return _sdxl(str(path))(**kwargs)
    if path.exists():
        return _diffusion(str(path))(**kwargs)
    raise InvalidInputError(
        f"unknown generator {str(name)!r}: not a file or folder; known generators: {', '.join(list_generators())}"
    )


__all__ = [
    "ClassicalGenerator", "GENERATORS", "GENERATOR_BACKENDS", "GenerationParams", "Generator", "Style", "apply_styles",
    "WEBUI_DEFAULTS", "best_remover", "canonical_name", "get_generator", "list_generators", "load_styles",
    "make_scheduler", "model_defaults", "parse_prompt_attention", "pick_styles", "register_generator", "sampler_names",
]
