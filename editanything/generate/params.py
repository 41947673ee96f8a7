"""The defaults generators fill into `GenerationParams` (which lives in `types`, the currency between stages)."""

from __future__ import annotations

from typing import Any

from ..types import MODEL_DEFAULTS

WEBUI_DEFAULTS: dict[str, Any] = {"sampler": "DPM++ 2M Karras", "steps": 25, "cfg_scale": 7.0}
"""The Stable Diffusion WebUI's defaults: what SD 1.5, SDXL and generators without `default_params` get."""


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
