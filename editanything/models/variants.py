"""Which weight files of a diffusers repository or folder to use, chosen as diffusers chooses them.

diffusers loads `<component>/<stem>.safetensors`; when a repository publishes only
`<stem>.fp16.safetensors` for a component (as `stable-diffusion-v1-5/stable-diffusion-inpainting`
does), the pipeline must be loaded with `variant="fp16"`, and on a CPU upcast to float32.
Pickled `.bin` files are never chosen.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from ..errors import InvalidInputError

COMPONENTS = ("text_encoder", "unet", "vae")  # the SD components with weights (no safety checker)
_WEIGHT = re.compile(r"^(?P<component>[^/]+)/(?P<stem>diffusion_pytorch_model|model)(?:\.(?P<variant>[a-z0-9]+))?"
                     r"\.safetensors$")


def pick_weights(listing: Iterable[str], components: tuple[str, ...] = COMPONENTS) -> tuple[tuple[str, ...], str | None]:
    """The weight files to fetch from a repository listing, and the variant to load them with.

    Each component takes its full-precision `.safetensors`; when any component has only an fp16
    one, the pipeline variant is "fp16" and every component takes its fp16 file where one exists
    (diffusers falls back to the plain file for the others). InvalidInputError names a component
    without safetensors weights.
    """
    found: dict[str, dict[str | None, str]] = {}
    for name in listing:
        m = _WEIGHT.match(name)
        if m and m["component"] in components:
            found.setdefault(m["component"], {})[m["variant"]] = name
    missing = [c for c in components if not found.get(c, {}).keys() & {None, "fp16"}]
    if missing:
        raise InvalidInputError(f"no safetensors weights for {', '.join(missing)} (only pickled .bin files or none); "
                                f"convert them to safetensors first")
    variant = None if all(None in found[c] for c in components) else "fp16"
    chosen = tuple(found[c].get(variant) or found[c][None] for c in components)
    return chosen, variant


def model_variant(folder: Path) -> str | None:
    """The variant of a single-model diffusers folder (a ControlNet): "fp16" when only that file is there."""
    folder = Path(folder)
    plain = any((folder / f"{stem}.safetensors").is_file() for stem in ("diffusion_pytorch_model", "model"))
    half = any((folder / f"{stem}.fp16.safetensors").is_file() for stem in ("diffusion_pytorch_model", "model"))
    return "fp16" if half and not plain else None


def folder_variant(folder: Path) -> str | None:
    """The variant a local diffusers folder must be loaded with (None: full-precision files are there)."""
    folder = Path(folder)
    components = tuple(c for c in (*COMPONENTS, "text_encoder_2") if (folder / c).is_dir())  # SDXL has two
    listing = [p.relative_to(folder).as_posix() for c in components for p in (folder / c).iterdir()]
    try:
        return pick_weights(listing, components)[1]
    except InvalidInputError:
        return None  # let diffusers report what it cannot load (e.g. a .bin-only folder)
