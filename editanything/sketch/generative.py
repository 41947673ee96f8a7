"""The sd-lineart sketch style: Stable Diffusion 1.5 redraws the photo, held to the photo's own lines.

img2img starts from the photo at `strength`; the line-art ControlNet (ControlNet 1.1 lineart) is
conditioned on the photo's HED lines, drawn white on black as that ControlNet was trained on; the
prompt (a preset's, or the user's) says what kind of drawing to make. The result is turned grey
and scaled back to the photo's size, like every other style's.

It goes through the project's Stable Diffusion loader (`generate.diffusion`: model lookup, fp16
variants, device and dtype, samplers, prompt weights, seeds, CPU threads); only the diffusers
pipeline differs (`StableDiffusionControlNetImg2ImgPipeline`). The model loads once per process.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from ..errors import BadOutput, InvalidInputError, ModelNotFound
from ..generate.diffusion import DiffusionGenerator
from ..generate.generated import Generated
from ..generate.lcm import LORA_MODELS, SAMPLER as LCM_SAMPLER
from ..types import GenerationParams, check_rgb

STYLE = "sd-lineart"
BASE_MODEL = "sd15"
CONTROLNET_MODEL = "controlnet-lineart"
EDGE_MODEL = "hed"
# (prompt, negative prompt) of each preset; a prompt or negative prompt given replaces the preset's.
PRESETS: dict[str, tuple[str, str]] = {
    "pencil": ("pencil drawing, graphite sketch, cross-hatching, black and white, white paper",
               "color, photo, photorealistic, painting, blurry, noise, watermark, text"),
    "anime": ("anime line art, clean lineart, manga style, monochrome, white background",
              "color, photo, photorealistic, 3d render, shading, blurry, noise, watermark, text"),
}


def sd_lineart(rgb: np.ndarray, *, prompt: str = "", negative_prompt: str = "", preset: str = "pencil",
               sampler: str = "DPM++ 2M Karras", steps: int = 20, cfg_scale: float = 7.0, strength: float = 0.75,
               control_scale: float = 1.0, seed: int = -1, resolution: int = 512, threads: int = 0) -> Generated:
    """Stable Diffusion 1.5 redraws the photo as a drawing, held to its HED lines by the line-art ControlNet.

    prompt / negative_prompt: what kind of drawing (empty: the preset's). preset: pencil or anime.
    sampler, steps, cfg_scale, seed: as in the WebUI (seed -1: random; batches record the one used).
    strength: how far img2img may move from the photo (0..1]. control_scale: weight of the lines.
    resolution: the longer side Stable Diffusion works at (a multiple of 8); the drawing comes back at
    the photo's size. threads: CPU threads (0: the process's); the last bits of a CPU result depend on it.
    Needs `editanything models download sd15 controlnet-lineart hed`.
    Returns the grey drawing (`images[0]`) with its seed, threads and models (`model`: the generator's, and
    the edge detector's files under "edges").
    """
    params = generation_params(prompt=prompt, negative_prompt=negative_prompt, preset=preset, sampler=sampler,
                               steps=steps, cfg_scale=cfg_scale, strength=strength, seed=seed, resolution=resolution)
    if not np.isfinite(control_scale) or not 0 <= control_scale <= 5:
        raise InvalidInputError(f"sketch parameter control_scale={control_scale} must be in [0, 5]")
    if threads < 0:
        raise InvalidInputError(f"sketch parameter threads={threads} must be >= 0 (0: the process's count)")
    rgb = check_rgb(rgb)
    h, w = rgb.shape[:2]
    gw, gh = generation_size(w, h, resolution)
    small = cv2.resize(rgb, (gw, gh), interpolation=cv2.INTER_AREA if gw * gh < w * h else cv2.INTER_CUBIC)
    sketcher = get_sketcher()
    drawn = sketcher.draw(small, params.with_seed(), control_scale, threads or None)
    gray = cv2.cvtColor(drawn.images[0], cv2.COLOR_RGB2GRAY)
    if gray.min() == gray.max():  # a blank page is a failed drawing, not a finished one
        raise BadOutput(f"Stable Diffusion drew a blank page (all {gray.min()}); try another seed, prompt or "
                        f"a lower cfg_scale")
    if (gw, gh) != (w, h):
        gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_CUBIC if gw * gh < w * h else cv2.INTER_AREA)
    from ..models import model_files

    edges = {"name": EDGE_MODEL, "files": model_files(EDGE_MODEL)}
    return Generated([gray], drawn.seeds, drawn.threads, {"generator": drawn.recipe_model(), "edges": edges})


def generation_params(*, prompt: str, negative_prompt: str, preset: str, **settings: Any) -> GenerationParams:
    """The WebUI parameters a run uses: the preset's prompts unless given, the settings checked."""
    if preset not in PRESETS:
        raise InvalidInputError(f"unknown sd-lineart preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    preset_prompt, preset_negative = PRESETS[preset]
    return GenerationParams(prompt=prompt or preset_prompt, negative_prompt=negative_prompt or preset_negative,
                            **settings)


def generation_size(w: int, h: int, resolution: int) -> tuple[int, int]:
    """(width, height) with the longer side at `resolution`, both multiples of 8 (Stable Diffusion's latent grid)."""
    f = resolution / max(w, h)
    return max(8, round(w * f / 8) * 8), max(8, round(h * f / 8) * 8)


def needed_models(params: dict[str, Any]) -> list[str]:
    """The manifest models a run with these parameters loads (the LCM sampler adds its LoRA)."""
    names = [BASE_MODEL, CONTROLNET_MODEL, EDGE_MODEL]
    sampler = str(params.get("sampler", ""))
    if sampler.strip().lower() == LCM_SAMPLER.lower():
        names.append(LORA_MODELS["sd15"])
    return names


def check_ready(params: dict[str, Any]) -> None:
    """Before any photo: the settings' values (InvalidInputError), then every model the run needs
    (ModelNotFound naming each missing one and the one command that fetches them all)."""
    from ..models import find_model, resolve
    from . import check_params, style_params

    settings = {**style_params(STYLE), **check_params(STYLE, params)}
    for name in ("control_scale", "threads"):
        settings.pop(name)
    generation_params(**settings)
    names = needed_models(params)
    missing = [n for n in names if find_model(n) is None]
    if missing:
        raise ModelNotFound(f"the {STYLE} sketch style needs {', '.join(missing)} (not found); fetch "
                            f"{'it' if len(missing) == 1 else 'them'} with: editanything models download "
                            f"{' '.join(missing)}")
    for name in names:
        resolve(name)  # a file of the wrong size stops here too, with its own command


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Every parameter (defaults filled in), with the random seed (-1) and the thread count (0) made
    concrete: what the recipe records, so a replay runs the same even if defaults change."""
    from . import check_params, style_params

    out = {**style_params(STYLE), **check_params(STYLE, params)}
    used = generation_params(**{k: v for k, v in out.items() if k not in ("control_scale", "threads")})
    out["prompt"], out["negative_prompt"] = used.prompt, used.negative_prompt  # the preset's words, as run
    if int(out.get("seed", -1)) == -1:
        out["seed"] = GenerationParams(seed=-1).resolve_seed()
    if not int(out.get("threads", 0)):
        import torch

        out["threads"] = torch.get_num_threads()
    return out


class LineartSketcher(DiffusionGenerator):
    """SD 1.5 img2img with the line-art ControlNet fed the photo's HED lines (the "lines" ControlNet kind).

    Its loaded pipeline is an img2img one, run as the "img2img" mode (there is no "inpaint" here).
    """

    primary_mode = "img2img"
    pipeline_class = "StableDiffusionImg2ImgPipeline"
    controlnet_pipeline_class = "StableDiffusionControlNetImg2ImgPipeline"

    def __init__(self, model: str = BASE_MODEL, controlnet: str | None = None, **options: Any) -> None:
        super().__init__(model, controlnets=[("lines", controlnet) if controlnet else "lines"], **options)

    def draw(self, image: np.ndarray, params: GenerationParams, control_scale: float = 1.0,
             threads: int | None = None) -> Generated:
        """One RGB drawing of `image` (sides multiples of 8) at `params`' seed, with what ran."""
        image = check_rgb(image)
        h, w = image.shape[:2]
        self.check_size(w, h)
        params = self.prepare(params)

        def inputs(pipe: Any) -> dict[str, Any]:
            from PIL import Image

            # HED inside the pinned region too: its lines decide the control image, bit for bit
            lines = self.control_inputs(image, np.zeros((h, w), bool), None, [float(control_scale)])
            return {"image": Image.fromarray(image), "height": h, "width": w, "strength": params.strength, **lines}

        return self.run("img2img", params, inputs, source=image, threads=threads)


_sketcher: tuple[tuple, LineartSketcher] | None = None
_lock = threading.Lock()


def get_sketcher() -> LineartSketcher:
    """The process's sketcher (one model per worker process), rebuilt when the model files found change."""
    global _sketcher
    from ..models import resolve

    key = (resolve(BASE_MODEL).folder, resolve(CONTROLNET_MODEL).folder)
    with _lock:
        if _sketcher is None or _sketcher[0] != key:
            if _sketcher is not None:
                _sketcher[1].release()
            _sketcher = (key, LineartSketcher(BASE_MODEL, str(key[1])))
        return _sketcher[1]


def release() -> None:
    """Drop the process's model (the next drawing loads it again)."""
    global _sketcher
    with _lock:
        if _sketcher is not None:
            _sketcher[1].release()
        _sketcher = None
