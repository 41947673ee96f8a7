"""Text to image and image to image: prompt → (expand) → generate → output + recipe.

    result = Editor(generator="sd15").generate(GenerateRequest(GenerationParams(prompt="a tiger", seed=7)))
    result.save("tiger.png")                         # PNG with WebUI parameters + JSON recipe

The generator does the work (`txt2img` / `img2img` of the shared diffusers loop, or a hosted
service); this module picks the size, checks the request before anything loads, and builds the
recipe from what the generator returned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InvalidInputError
from .generate.params import model_defaults
from .types import GenerationParams
from .imageio import write_image
from .recipe import array_sha256, library_versions, png_text
from .storage import location
from .types import Recipe, check_rgb

MODES = ("txt2img", "img2img")
IMG2IMG_STRENGTH = 0.75  # the WebUI's img2img denoising strength


@dataclass
class GenerateRequest:
    """One generation. `params` holds the prompt and the WebUI settings; `params.width`/`height` the size
    (None: the model's native size, or for img2img the image scaled to it). `image` makes it img2img
    from that picture at `params.strength`. `expansion`: how the prompt was written from the user's words
    (`prompting.Expansion.to_dict()`), kept in the recipe."""

    params: GenerationParams = field(default_factory=GenerationParams)
    image: np.ndarray | None = None
    expansion: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.params.prompt.strip():
            raise InvalidInputError("generate needs a prompt: say what the picture shows")
        if self.image is not None:
            self.image = check_rgb(self.image)

    @property
    def mode(self) -> str:
        return "img2img" if self.image is not None else "txt2img"


@dataclass
class GenerateResult:
    """The generated images and the recipe that makes each of them again."""

    images: list[np.ndarray]
    recipe: Recipe

    def png_text(self, index: int = 0) -> dict[str, str]:
        return png_text(self.recipe, index)

    def save(self, path: str | Path, index: int = 0, *, inputs: tuple[str | Path, ...] = ()) -> Path:
        """Write image `index` as PNG with its WebUI parameters and recipe, atomically (`path` may be a URI)."""
        path = location(path)
        if path.suffix.lower() != ".png":
            raise InvalidInputError(f"{path}: generated images are saved as .png so the recipe travels with them")
        return write_image(path, self.images[index], text=self.png_text(index), inputs=inputs, fast=False)


def check_generator(generator: Any, mode: str) -> None:
    """Refuse, before anything loads, a generator that cannot make pictures from a prompt in `mode`."""
    if hasattr(generator, "check_mode"):  # a hosted one: some endpoints make images from text only
        generator.check_mode(mode)
    if not hasattr(generator, mode) or getattr(generator, "text_to_image", True) is False:
        name = getattr(generator, "name", type(generator).__name__)
        raise InvalidInputError(
            f"{name} cannot {'generate from a prompt' if mode == 'txt2img' else 'redraw an image from a prompt'}; "
            "use --model sd15, sdxl-base or flux2-klein-4b (editanything models download sd15), "
            "or a diffusers text-to-image folder or checkpoint")


def native_size(generator: Any) -> int:
    return int(getattr(generator, "native_size", 512))


def size_multiple(generator: Any) -> int:
    return int(getattr(generator, "size_multiple", 8))


def check_size(generator: Any, width: int, height: int) -> None:
    """One line for a size the model cannot take (before any model loads)."""
    m = size_multiple(generator)
    if width % m or height % m:
        raise InvalidInputError(f"{getattr(generator, 'name', 'this model')} needs a width and height that are "
                                f"multiples of {m}; got {width}x{height}")


def generation_size(generator: Any, params: GenerationParams, image: np.ndarray | None) -> tuple[int, int]:
    """(width, height): the ones asked for; else for img2img the image with its long side at the model's native
    size; else the native size, square."""
    if params.width is not None and params.height is not None:
        return params.width, params.height
    side, m = native_size(generator), size_multiple(generator)
    if image is None:
        return side, side
    h, w = image.shape[:2]
    f = side / max(w, h)
    return max(m, round(w * f / m) * m), max(m, round(h * f / m) * m)


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` resized to the generation size (area averaging when shrinking), as replay does it again."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width * height < w * h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def prepare(generator: Any, request: GenerateRequest) -> tuple[GenerationParams, tuple[int, int]]:
    """The request's params with the model's defaults, a concrete seed and the size, all checked."""
    check_generator(generator, request.mode)
    width, height = generation_size(generator, request.params, request.image)
    check_size(generator, width, height)
    params = request.params.with_defaults(model_defaults(generator)).with_seed()
    params = dataclasses.replace(params, width=width, height=height)
    check_params(generator, params, request.mode)
    return params, (width, height)


def check_params(generator: Any, params: GenerationParams, mode: str) -> None:
    """The generator's own refusals of settings it cannot honour (a hosted one checks them for its generation
    endpoint in `mode`, not for its edit endpoint)."""
    if hasattr(generator, "check_generation"):
        generator.check_generation(params, mode)
    elif hasattr(generator, "check_params"):
        generator.check_params(params)


def generate(generator: Any, request: GenerateRequest, *, origin: dict[str, Any] | None = None) -> GenerateResult:
    """Run one generation; `origin` is the recipe's record of where an img2img picture is."""
    params, (width, height) = prepare(generator, request)
    if request.image is None:
        out = generator.txt2img(params, width, height)
    else:
        out = generator.img2img(fit(request.image, width, height), params)
    inputs: dict[str, Any] = {}
    if request.image is not None:
        image = request.image
        inputs = {**(origin or {"image": None}), "sha256": array_sha256(image), "size": [image.shape[1], image.shape[0]]}
    recipe = Recipe(
        operation=f"generate:{request.mode}",
        inputs=inputs,
        parameters={"generation": params.to_dict(), "generation_size": [width, height], "sampled": bool(out.seeds),
                    **({"prompt_expansion": request.expansion} if request.expansion else {})},
        models={"generator": out.recipe_model()},
        seed=out.seeds[0] if out.seeds else None,
        versions=library_versions(),
    )
    return GenerateResult(list(out.images), recipe)
