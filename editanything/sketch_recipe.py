"""The recipe of a generative sketch (sd-lineart) in its PNG, and `editanything replay` of it.

A generative sketch depends on more than its style and parameters: the seed, the CPU threads, the
models and the exact input. Its PNG carries the WebUI `parameters` text and, under `editanything`,
`{"operation": "sketch", "style", "parameters" (seed and threads made concrete), "inputs"
(path, pixel sha256, size), "max_side", "models", "versions"}`. Replay reads the photo again,
checks its pixels, and draws it with the same settings: on the same models and device the drawing
is the same, bit for bit. The recipe is untrusted: every field replay uses is checked first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .generate.generated import Generated
from .imageio import limit_size, read_image, read_png_text, write_image
from .prompting.types import Expansion
from .recipe import PARAMETERS_KEY, RECIPE_KEY, array_sha256, library_versions, webui_parameters
from .sketch import GENERATIVE_STYLES, check_params, needs_color, sketch_generated
from .sketch.generative import generation_params, generation_size
from .types import MAX_SEED, Recipe

__all__ = ["SketchReplay", "generative_text", "prepare_sketch_replay", "read_sketch_recipe"]
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_THREADS = 4096


def generative_text(style: str, params: dict[str, Any], *, source: Path, photo: np.ndarray, drawn: Generated,
                    max_side: int | None, expansion: dict[str, Any] | None = None) -> dict[str, str]:
    """The PNG text chunks of a generative sketch: WebUI `parameters` and the full JSON recipe.

    `photo` is the image as read (before `max_side`), `params` the resolved parameters it ran with,
    `drawn` what the style returned (the drawing, and the models it ran with), `expansion` how its
    prompt was expanded (`prompt_expansion` in the recipe; replay reuses the prompt).
    """
    h, w = photo.shape[:2]
    drawing, models = drawn.images[0], drawn.model
    data = {"operation": "sketch", "style": style, "parameters": params,
            "inputs": {"image": str(source), "sha256": array_sha256(photo), "size": [w, h]},
            "max_side": max_side, "models": models, "seed": params["seed"], "versions": library_versions(),
            **({"prompt_expansion": expansion} if expansion else {})}
    settings = {k: v for k, v in params.items() if k not in ("control_scale", "threads")}
    generation = generation_params(**settings)
    dh, dw = drawing.shape[:2]
    controlnets = [{**c, "scale": float(params["control_scale"])} for c in models["generator"].get("controlnets", [])]
    webui = Recipe(operation="sketch", inputs={"size": [dw, dh]}, seed=params["seed"], versions=data["versions"],
                   parameters={"generation": generation.to_dict(),
                               "generation_size": list(generation_size(dw, dh, generation.resolution)),
                               "prompt_expansion": expansion},
                   models={"generator": {**models["generator"], "controlnets": controlnets}})
    return {"Software": "editanything", PARAMETERS_KEY: webui_parameters(webui),
            RECIPE_KEY: json.dumps(data, sort_keys=True, default=str)}


def read_sketch_recipe(path: str | Path) -> dict[str, Any] | None:
    """The sketch recipe in a PNG (checked), or None when the PNG holds another kind of recipe (an edit's)."""
    text = read_png_text(path).get(RECIPE_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON: read_recipe says how, naming the file
        return None
    if not isinstance(data, dict) or data.get("operation") != "sketch":
        return None
    return _checked(data, path)


def _bad(path: str | Path, field: str, expected: str, value: Any) -> InvalidInputError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return InvalidInputError(f"{path}: broken or foreign sketch recipe: {field} must be {expected}; got {shown}")


def _checked(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    style = data.get("style")
    if style not in GENERATIVE_STYLES:
        raise InvalidInputError(f"{path}: a {style!r} sketch records only its style and parameters, not a seed or "
                                f"its input; run `editanything sketch --style {style}` on the photo again instead")
    params = data.get("parameters")
    if not isinstance(params, dict):
        raise _bad(path, "parameters", "a JSON object", params)
    params = check_params(style, params)  # unknown names and wrong types are refused here
    inputs = data.get("inputs")
    if not isinstance(inputs, dict):
        raise _bad(path, "inputs", "a JSON object", inputs)
    if not isinstance(inputs.get("image"), str) or not inputs["image"]:
        raise _bad(path, "inputs.image", "a file path", inputs.get("image"))
    if not isinstance(inputs.get("sha256"), str) or not _SHA256.fullmatch(inputs["sha256"]):
        raise _bad(path, "inputs.sha256", "a sha256 (64 hex digits)", inputs.get("sha256"))
    max_side = data.get("max_side")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16):
        raise _bad(path, "max_side", "null or an integer >= 16", max_side)
    if not 0 <= params.get("seed", -1) <= MAX_SEED:
        raise _bad(path, "parameters.seed", f"the seed it ran with (0..{MAX_SEED})", params.get("seed"))
    if not 1 <= params.get("threads", 0) <= MAX_THREADS:
        raise _bad(path, "parameters.threads", f"the CPU threads it ran with (1..{MAX_THREADS})", params.get("threads"))
    expansion = data.get("prompt_expansion")
    if expansion is not None:
        try:
            Expansion.from_dict(expansion)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}: {exc}") from None
    return {"style": style, "parameters": params, "inputs": inputs, "max_side": max_side, "expansion": expansion}


@dataclass
class SketchReplay:
    """What replaying a sketch needs: the style, its parameters, the photo (as read) and where it came from."""

    style: str
    params: dict[str, Any]
    source: Path
    photo: np.ndarray
    max_side: int | None
    expansion: dict[str, Any] | None = None

    def run(self, output: str | Path | None, result: str | Path) -> np.ndarray:
        """Draw again, write `output` if given (with the recipe, never over the photo or `result`); the drawing."""
        drawn = sketch_generated(limit_size(self.photo, self.max_side), self.style, **self.params)
        drawing = drawn.images[0]
        if output is not None:
            text = generative_text(self.style, self.params, source=self.source, photo=self.photo, drawn=drawn,
                                   max_side=self.max_side, expansion=self.expansion)
            write_image(output, drawing, text=text, inputs=(self.source, Path(result)))
        return drawing


def prepare_sketch_replay(result: str | Path, recipe: dict[str, Any], image: str | Path | None = None) -> SketchReplay:
    """The photo of a sketch recipe: `image`, else the recorded path, else a file of that name beside `result`;
    its pixels must hash to the recipe's sha256."""
    style, inputs = recipe["style"], recipe["inputs"]
    recorded = Path(inputs["image"])
    beside = Path(result).parent / recorded.name
    candidates = [Path(image)] if image is not None else list(dict.fromkeys([recorded, beside]))
    for path in candidates:
        if path.is_file():
            photo = read_image(path, gray=not needs_color(style))
            if array_sha256(photo) == inputs["sha256"]:
                return SketchReplay(style, recipe["parameters"], path, photo, recipe["max_side"],
                                    recipe.get("expansion"))
            if image is not None:
                raise InvalidInputError(f"{path}: not the photo this sketch was made from (its pixels differ); "
                                        "pass the right one with --image")
    tried = " or ".join(str(p) for p in candidates)
    raise InvalidInputError(f"the photo of {result} is not at {tried} (or its pixels changed); pass it with --image")
