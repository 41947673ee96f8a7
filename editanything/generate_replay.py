"""Re-making a generated image from the recipe in its PNG (`editanything replay` of a `generate:*` recipe).

The recipe is untrusted, as for edits (see replay.py): every field used is checked before anything
loads. Each PNG holds its own seed, so replay makes that one image, whichever of a batch it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .types import MAX_SEED, GenerationParams
from .generation import MODES, GenerateRequest
from .prompting.types import Expansion
from .replay import _bad, _check_generator, _dict, _sha, _size, _str, find_input, generator_from_recipe
from .types import Recipe


@dataclass
class GenerateReplay:
    """What replay runs: the request (with the picture for img2img), where that picture is, and the generator."""

    request: GenerateRequest
    source: Path | None
    generator: Any


def check_generate_recipe(recipe: Recipe) -> str:
    """The recipe's mode ("txt2img" or "img2img"), or InvalidInputError naming the first bad field."""
    kind, _, mode = _str(recipe.operation, "operation").partition(":")
    if kind != "generate" or mode not in MODES:
        raise _bad("operation", f"generate:<{'|'.join(MODES)}>", recipe.operation)
    p = _dict(recipe.parameters, "parameters")
    generation = _dict(p.get("generation"), "parameters.generation")
    _str(generation.get("prompt"), "parameters.generation.prompt")
    _size(p.get("generation_size"), "parameters.generation_size")
    if p.get("prompt_expansion") is not None:
        Expansion.from_dict(p["prompt_expansion"])
    _check_generator(_dict(_dict(recipe.models, "models").get("generator", {}), "models.generator"))
    if recipe.seed is not None and (isinstance(recipe.seed, bool) or not isinstance(recipe.seed, int)
                                    or not 0 <= recipe.seed <= MAX_SEED):
        raise _bad("seed", f"an integer in 0..{MAX_SEED}", recipe.seed)
    if mode == "img2img":
        inputs = _dict(recipe.inputs, "inputs")
        _str(inputs.get("image"), "inputs.image", optional=True)
        _sha(inputs.get("sha256"), "inputs.sha256")
        _size(inputs.get("size"), "inputs.size")
    return mode


def request_from_recipe(recipe: Recipe, image: np.ndarray | None) -> GenerateRequest:
    """The request that made this one image: its own seed, a batch of one, the recorded size."""
    p = recipe.parameters
    width, height = p["generation_size"]
    generation = {**p["generation"], "seed": -1 if recipe.seed is None else recipe.seed, "batch_size": 1,
                  "batch_count": 1, "width": width, "height": height}
    try:
        params = GenerationParams.from_dict(generation)
    except TypeError as exc:
        raise InvalidInputError(f"broken or foreign recipe: parameters.generation ({exc})") from None
    return GenerateRequest(params, image=image, expansion=p.get("prompt_expansion"))


def prepare_generate_replay(result: str | Path, recipe: Recipe, *, image: str | Path | None = None) -> GenerateReplay:
    """Everything needed to make the image in `result` again, checked before any model loads."""
    mode = check_generate_recipe(recipe)
    if mode == "txt2img" and image is not None:
        raise InvalidInputError(f"{result} was generated from its prompt alone: it takes no --image")
    source, pixels = find_input(recipe, result, image) if mode == "img2img" else (None, None)
    return GenerateReplay(request_from_recipe(recipe, pixels), source, generator_from_recipe(recipe))
