"""What goes into an output PNG so it can be explained and re-made.

Two text chunks: `parameters`, the Stable Diffusion WebUI format that other tools read, and
`editanything`, the full JSON `Recipe` (selection, mask, thresholds, models and their hashes,
library versions) that `editanything replay` runs again.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .imageio import read_png_text
from .types import Recipe

RECIPE_KEY = "editanything"
PARAMETERS_KEY = "parameters"


def webui_parameters(recipe: Recipe, image_index: int = 0) -> str:
    """The WebUI `parameters` text: prompt, `Negative prompt:` line, then `Key: value, …`."""
    p = recipe.parameters.get("generation", {})
    size = recipe.inputs.get("size") or [0, 0]
    model = recipe.models.get("generator", {})
    seed = (recipe.seed if recipe.seed is not None else p.get("seed", -1)) + image_index
    fields = {
        "Steps": p.get("steps"),
        "Sampler": p.get("sampler"),
        "CFG scale": p.get("cfg_scale"),
        "Seed": seed,
        "Size": f"{size[0]}x{size[1]}",
        "Model hash": (model.get("sha256") or "")[:10] or None,
        "Model": model.get("name"),
        "Denoising strength": p.get("strength"),
        "Mask blur": recipe.parameters.get("feather"),
        "Version": f"editanything {recipe.versions.get('editanything', '')}".strip(),
    }
    if model.get("remote"):  # a hosted service took none of the sampler settings: don't claim them
        for name in ("Steps", "Sampler", "CFG scale", "Denoising strength"):
            fields.pop(name)
        fields["Model"] = f"{model.get('name')} {model.get('endpoint')}"
    tail = ", ".join(f"{k}: {_webui_value(v)}" for k, v in fields.items() if v not in (None, ""))
    lines = [p.get("prompt", "")]
    if p.get("negative_prompt"):
        lines.append(f"Negative prompt: {p['negative_prompt']}")
    lines.append(tail)
    return "\n".join(lines)


def _webui_value(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    # The WebUI quotes values holding its separators so parsers keep them whole.
    return f'"{text}"' if any(c in text for c in ",:\n") else text


def png_text(recipe: Recipe, image_index: int = 0) -> dict[str, str]:
    """The PNG text chunks for image `image_index` of an edit."""
    one = Recipe(**{**recipe.__dict__, "seed": None if recipe.seed is None else recipe.seed + image_index})
    return {PARAMETERS_KEY: webui_parameters(recipe, image_index), RECIPE_KEY: one.to_json()}


def read_recipe(path: str | Path) -> Recipe:
    """The recipe stored in an output PNG, or InvalidInputError saying it has none."""
    text = read_png_text(path)
    if RECIPE_KEY not in text:
        raise InvalidInputError(f"{path}: no editanything recipe in this image (was it made by editanything, as PNG?)")
    return Recipe.from_json(text[RECIPE_KEY])


def library_versions() -> dict[str, str]:
    versions = {}
    for dist in ("editanything", "torch", "diffusers", "transformers", "segment-anything", "groundingdino-py",
                 "opencv-python", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def array_sha256(image: np.ndarray) -> str:
    """A hash of the pixels (not of the file), so a re-encoded copy of an input still matches."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Run-length encoding of a bool mask (row-major, runs alternate False/True, first run False)."""
    flat = np.asarray(mask, bool).ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": list(mask.shape), "runs": runs}


def decode_mask(data: dict[str, Any]) -> np.ndarray:
    try:
        h, w = data["size"]
        runs = np.asarray(data["runs"], np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"broken mask in recipe ({exc})") from None
    if runs.sum() != h * w:
        raise InvalidInputError(f"broken mask in recipe: runs cover {runs.sum()} pixels, expected {h * w}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(h, w)
