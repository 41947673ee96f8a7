"""The recipe of a generative sketch (sd-lineart) in its PNG.

A generative sketch depends on more than its style and parameters: the seed, the CPU threads, the
models and the exact input. Its PNG carries the WebUI `parameters` text and, under `editanything`, the
same `Recipe` an edit writes: `operation` `sketch:<style>`, `inputs` (path, pixel sha256, size),
`parameters` `{"sketch": the style's settings (seed and threads made concrete), "max_side",
"prompt_expansion"}`, `models`, `seed`, `versions`. `replay` re-draws it (see `replay.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .generate.generated import Generated
from .recipe import PARAMETERS_KEY, RECIPE_KEY, array_sha256, library_versions, webui_parameters
from .sketch.generative import generation_params, generation_size
from .types import Recipe

__all__ = ["generative_text", "sketch_recipe"]


def sketch_recipe(style: str, params: dict[str, Any], *, source: Path, photo: np.ndarray, drawn: Generated,
                  max_side: int | None, expansion: dict[str, Any] | None = None) -> Recipe:
    """The recipe of a generative sketch: `photo` is the image as read (before `max_side`), `params` the
    resolved parameters it ran with, `drawn` what the style returned, `expansion` how its prompt was expanded."""
    h, w = photo.shape[:2]
    return Recipe(operation=f"sketch:{style}", inputs={"image": str(source), "sha256": array_sha256(photo),
                                                        "size": [w, h]},
                  parameters={"sketch": params, "max_side": max_side, "prompt_expansion": expansion},
                  models=drawn.model, seed=params["seed"], versions=library_versions())


def generative_text(recipe: Recipe, drawing: np.ndarray) -> dict[str, str]:
    """The PNG text chunks of a generative sketch: WebUI `parameters` and the full JSON recipe."""
    params, models = recipe.parameters["sketch"], recipe.models
    settings = {k: v for k, v in params.items() if k not in ("control_scale", "threads")}
    generation = generation_params(**settings)
    dh, dw = drawing.shape[:2]
    controlnets = [{**c, "scale": float(params["control_scale"])} for c in models["generator"].get("controlnets", [])]
    webui = Recipe(operation=recipe.operation, inputs={"size": [dw, dh]}, seed=recipe.seed, versions=recipe.versions,
                   parameters={"generation": generation.to_dict(),
                               "generation_size": list(generation_size(dw, dh, generation.resolution)),
                               "prompt_expansion": recipe.parameters.get("prompt_expansion")},
                   models={"generator": {**models["generator"], "controlnets": controlnets}})
    return {"Software": "editanything", PARAMETERS_KEY: webui_parameters(webui), RECIPE_KEY: recipe.to_json()}
