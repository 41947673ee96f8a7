"""Generation parameters in the Stable Diffusion WebUI vocabulary."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .samplers import canonical_name

MAX_SEED = 2**32 - 1
MODEL_DEFAULTS = ("sampler", "steps", "cfg_scale")
"""The fields a generator may choose when the caller leaves them None (`Generator.default_params`)."""
WEBUI_DEFAULTS: dict[str, Any] = {"sampler": "DPM++ 2M Karras", "steps": 25, "cfg_scale": 7.0}
"""The Stable Diffusion WebUI's defaults: what SD 1.5, SDXL and generators without `default_params` get."""


def wrap_seed(seed: int) -> int:
    """A seed past MAX_SEED wraps to 0, so a batch started near the top keeps counting (…, 2**32 - 1, 0, 1)."""
    return seed % (MAX_SEED + 1)


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise InvalidInputError(f"{name} must be an int {bound}; got {value!r}")
    return value


def _check_float(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number; got {value!r}") from None
    if not (lo < v <= hi if lo_open else lo <= v <= hi):
        raise InvalidInputError(f"{name} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]; got {value!r}")
    return v


@dataclass
class GenerationParams:
    """What to generate and how, named as in the WebUI.

    `seed=-1` picks a random seed; `resolve_seed()` gives the real one, and image `i` of a run
    uses `seed + i` (as the WebUI does, wrapping past 2**32 - 1 to 0), so any single image can be
    re-made on its own.
    `resolution` is the long side the crop around the mask is resized to before generating;
    `width` and `height` (both or neither) force an exact generation size instead.
    `sampler`, `steps` and `cfg_scale` left None mean "the model's default": the Editor (and each
    diffusion generator) fills them from the generator's `default_params()` with `with_defaults`
    before generating, so the recipe records the values used (Euler, 4 steps, CFG 1 for the
    step-distilled FLUX.2 klein; the WebUI's DPM++ 2M Karras, 25 steps, CFG 7 for Stable Diffusion).
    """

    prompt: str = ""
    negative_prompt: str = ""
    sampler: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    strength: float = 1.0
    seed: int = -1
    batch_size: int = 1
    batch_count: int = 1
    resolution: int = 512
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise InvalidInputError("prompt and negative_prompt must be strings")
        if self.sampler is not None:
            self.sampler = canonical_name(self.sampler)
        if self.steps is not None:
            _check_int("steps", self.steps, 1, 1000)
        if self.cfg_scale is not None:
            self.cfg_scale = _check_float("cfg_scale", self.cfg_scale, 0.0, 100.0)
        self.strength = _check_float("strength (denoising strength)", self.strength, 0.0, 1.0, lo_open=True)
        _check_int("seed", self.seed, -1, MAX_SEED)
        _check_int("batch_size", self.batch_size, 1, 64)
        _check_int("batch_count", self.batch_count, 1, 10_000)
        _check_int("resolution", self.resolution, 8, 8192)
        if self.resolution % 8:
            raise InvalidInputError(f"resolution must be a multiple of 8; got {self.resolution}")
        if (self.width is None) != (self.height is None):
            raise InvalidInputError("give both width and height, or neither (then resolution sets the size)")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (_check_int(name, value, 8, 8192) % 8):
                raise InvalidInputError(f"{name} must be a multiple of 8; got {value}")

    def unset(self) -> list[str]:
        """The fields left to the model (None), of sampler, steps and cfg_scale."""
        return [name for name in MODEL_DEFAULTS if getattr(self, name) is None]

    def with_defaults(self, defaults: dict[str, Any]) -> "GenerationParams":
        """A copy whose unset sampler, steps and cfg_scale come from `defaults` (see `model_defaults`)."""
        missing = self.unset()
        return dataclasses.replace(self, **{n: defaults[n] for n in missing}) if missing else self

    @property
    def n_images(self) -> int:
        return self.batch_size * self.batch_count

    def resolve_seed(self) -> int:
        """The seed to use: `seed` itself, or a fresh random one when it is -1."""
        return self.seed if self.seed != -1 else random.SystemRandom().randrange(MAX_SEED)

    def with_seed(self) -> "GenerationParams":
        """A copy whose seed is resolved, so every later step (and the recipe) sees the real one."""
        return self if self.seed != -1 else dataclasses.replace(self, seed=self.resolve_seed())

    def image_seeds(self) -> list[int]:
        """The seed of every image, batch by batch: seed, seed + 1, … (wrapping past MAX_SEED to 0)."""
        if self.seed == -1:
            raise InvalidInputError("the seed is -1 (random): call with_seed() first")
        return [wrap_seed(self.seed + i) for i in range(self.n_images)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationParams":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def model_defaults(generator: Any) -> dict[str, Any]:
    """The sampler, steps and CFG scale `generator` recommends: its `default_params()`, else the WebUI's.

    Generators that don't sample (OpenCV's fill, removers, recolor) and hosted services, which take
    none of these settings, have no `default_params` and get the WebUI's defaults.
    """
    return {**WEBUI_DEFAULTS, **(generator.default_params() if hasattr(generator, "default_params") else {})}


def describe_defaults(values: dict[str, Any]) -> str:
    """"sampler Euler, 4 steps, CFG 1" for the fields present in `values`."""
    words = {"sampler": "sampler {}", "steps": "{} steps", "cfg_scale": "CFG {:g}"}
    return ", ".join(words[n].format(values[n]) for n in MODEL_DEFAULTS if n in values)
