"""What goes into an output PNG so it can be explained and re-made.

Two text chunks: `parameters`, the Stable Diffusion WebUI format that other tools read, and
`editanything`, the full JSON `Recipe` (selection, mask, thresholds, models and their hashes,
library versions) that `editanything replay` runs again. Every kind of output (`edit:<mode>`,
`sketch:<style>`) writes the same `Recipe`; its `operation` says which kind.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .imageio import read_png_text
from .models import model_files
from .types import Recipe, wrap_seed

RECIPE_KEY = "editanything"
PARAMETERS_KEY = "parameters"


def webui_parameters(recipe: Recipe, image_index: int = 0) -> str:
    """The WebUI `parameters` text: prompt, `Negative prompt:` line, then `Key: value, …`.

    Add-ons are written as the AUTOMATIC1111 WebUI writes them: `<lora:name:weight>` in the prompt
    and `Lora hashes: "name: hash"` (its networks extension), `TI hashes: "token: hash"`
    (modules/sd_hijack_clip.py), `ControlNet 0: "Module: …, Model: name [hash], Weight: …"` (the
    sd-webui-controlnet extension); values holding `,` `:` or a newline are JSON-quoted as its
    `quote()` does. Steps, sampler, CFG and seed appear only when a sampler ran (not for OpenCV's
    fill or a recolor); `Size` is the size the generator worked at.
    """
    p = recipe.parameters.get("generation", {})
    size = recipe.parameters.get("generation_size") or recipe.inputs.get("size") or [0, 0]
    model = recipe.models.get("generator", {})
    sampled = recipe.parameters.get("sampled", True) and recipe.seed is not None
    loras = model.get("loras") or []
    embeddings = model.get("embeddings") or []
    fields = {
        "Steps": p.get("steps") if sampled else None,
        "Sampler": p.get("sampler") if sampled else None,
        "CFG scale": p.get("cfg_scale") if sampled else None,
        "Seed": wrap_seed(recipe.seed + image_index) if sampled else None,
        "Size": f"{size[0]}x{size[1]}",
        "Model hash": (model.get("sha256") or "")[:10] or None,
        "Model": model.get("name"),
        # txt2img starts from noise: the WebUI writes no denoising strength for it
        "Denoising strength": p.get("strength") if sampled and recipe.operation != "generate:txt2img" else None,
        "Mask blur": recipe.parameters.get("feather"),
        "Lora hashes": ", ".join(f"{_network_name(x['path'])}: {_short(x)}" for x in loras) or None,
        "TI hashes": ", ".join(f"{_network_name(e['token'])}: {_short(e)}" for e in embeddings) or None,
        **{f"ControlNet {i}": _controlnet_text(c) for i, c in enumerate(model.get("controlnets") or [])},
        **_expansion_fields(recipe.parameters.get("prompt_expansion")),
        "Instance prompts": "; ".join(f"{k}: {v}" for k, v in (recipe.parameters.get("prompt_for") or {}).items())
                            or None,
        "Version": f"editanything {recipe.versions.get('editanything', '')}".strip(),
    }
    if model.get("remote"):  # a hosted service took none of the sampler settings: don't claim them
        for name in ("Steps", "Sampler", "CFG scale", "Denoising strength"):
            fields.pop(name)
        fields["Model"] = f"{model.get('name')} {model.get('endpoint')}"
    tail = ", ".join(f"{k}: {_webui_value(v)}" for k, v in fields.items() if v not in (None, ""))
    prompt = " ".join([p.get("prompt", ""), *(f"<lora:{_network_name(x['path'])}:{x['scale']:g}>" for x in loras)])
    lines = [prompt.strip()]
    if p.get("negative_prompt"):
        lines.append(f"Negative prompt: {p['negative_prompt']}")
    lines.append(tail)
    return "\n".join(lines)


def _expansion_fields(expansion: Any) -> dict[str, str]:
    """How the prompt was written, when it was expanded: the expander (with its model's short hash) and the
    user's own words; the prompt line above holds the expansion that generated."""
    if not isinstance(expansion, dict):
        return {}
    digest = str(expansion.get("model_sha256") or "")[:10]
    model = expansion.get("model") if expansion.get("model") != expansion.get("expander") else None
    options = expansion.get("options") if isinstance(expansion.get("options"), dict) else {}
    name = " ".join(str(x) for x in (expansion.get("expander"), model, options.get("precision")) if x)
    return {"Prompt expander": f"{name} [{digest}]" if digest else name, "Prompt words": expansion.get("words")}


def _network_name(path_or_token: str) -> str:
    # The WebUI names a LoRA by its file stem and drops the separators of its own format.
    return Path(str(path_or_token)).stem.replace(":", "").replace(",", "")


def _short(entry: dict[str, Any]) -> str:
    return (entry.get("sha256") or "")[:12]  # the WebUI's short hash of LoRAs and embeddings


# What each of our ControlNet kinds derives its control image with, in sd-webui-controlnet's words.
_CONTROL_MODULES = {"inpaint": "inpaint_only", "canny": "canny", "lines": "editanything_hed_lines", "seg": "none"}


def _controlnet_text(entry: dict[str, Any]) -> str:
    kind = entry.get("kind", "")
    digest = (entry.get("sha256") or "")[:8]
    model = Path(str(entry.get("path", kind))).name + (f" [{digest}]" if digest else "")
    return f"Module: {_CONTROL_MODULES.get(kind, kind)}, Model: {model}, Weight: {float(entry.get('scale', 1.0)):g}"


def _webui_value(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    # The WebUI quotes values holding its separators so parsers keep them whole.
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def png_text(recipe: Recipe, image_index: int = 0) -> dict[str, str]:
    """The PNG text chunks for image `image_index` of an edit."""
    seed = None if recipe.seed is None else wrap_seed(recipe.seed + image_index)
    one = Recipe(**{**recipe.__dict__, "seed": seed})
    return {PARAMETERS_KEY: webui_parameters(recipe, image_index), RECIPE_KEY: one.to_json()}


def read_recipe(path: str | Path) -> Recipe:
    """The recipe stored in an output PNG, or InvalidInputError saying it has none."""
    text = read_png_text(path)
    if RECIPE_KEY not in text:
        raise InvalidInputError(f"{path}: no editanything recipe in this image (was it made by editanything, as PNG?)")
    try:
        recipe = Recipe.from_json(text[RECIPE_KEY])
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}; it was not written by editanything, or was edited since") from None
    return _from_old_sketch(json.loads(text[RECIPE_KEY])) if recipe.operation == "sketch" else recipe


def _from_old_sketch(data: dict[str, Any]) -> Recipe:
    """A sketch recipe as written before sketches were Recipes (style, max_side and prompt_expansion beside
    the fields, the style's settings as `parameters`), in today's form: users keep such PNGs on disk."""
    style = data.get("style")
    return Recipe(operation=f"sketch:{style}" if isinstance(style, str) else "sketch",
                  inputs=data.get("inputs", {}), models=data.get("models", {}), seed=data.get("seed"),
                  versions=data.get("versions", {}),
                  parameters={"sketch": data.get("parameters"), "max_side": data.get("max_side"),
                              "prompt_expansion": data.get("prompt_expansion")})


# Settings of detectors and segmenters that change which pixels get selected.
SELECTION_SETTINGS = ("box_threshold", "text_threshold", "threshold", "mask_threshold", "nms_iou", "top_k",
                      "image_size", "max_size", "decoder", "iterations", "work_size", "context", "click_margin",
                      "seed")


def backend_info(backend: Any) -> dict[str, Any]:
    """A detector's or segmenter's name, its thresholds and settings, and its model files with their sha256."""
    name = getattr(backend, "name", type(backend).__name__)
    info: dict[str, Any] = {"name": name}
    for key in SELECTION_SETTINGS:
        value = getattr(backend, key, None)
        if hasattr(backend, key) and (value is None or isinstance(value, (bool, int, float, str))):
            info[key] = value
    files = model_files(name)
    if files:
        info["files"] = files
    return info


def library_versions() -> dict[str, str]:
    """The versions of the libraries an output depends on (a fresh dict: callers may change theirs)."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str]:
    # Reading package metadata costs a few ms a call; what is installed does not change under a running process.
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
