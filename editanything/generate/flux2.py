"""FLUX.2 [klein] inpainting (black-forest-labs/FLUX.2-klein-4B) through diffusers' `Flux2KleinInpaintPipeline`.

A rectified-flow transformer with a Qwen3 text encoder. The manifest's `flux2-klein-4b` is the
step-distilled 4B model (Apache-2.0): 4 steps, and no classifier-free guidance, so it takes no
negative prompt and its CFG scale is not used. An undistilled FLUX.2 [klein] folder (`is_distilled`
false in its model_index.json, e.g. klein base 4B) runs CFG with the negative prompt.

What the WebUI parameters mean here:
- sampler: flow matching samples with Euler (`FlowMatchEulerDiscreteScheduler`, the model's own
  schedule); any other WebUI sampler name is refused, not silently swapped.
- prompt weights such as `(word:1.3)` are refused: the Qwen3 text encoder has no CLIP-style
  weighting, and dropping them quietly would make a different picture than the one asked for.
- sampler, steps and CFG left unset take the model's defaults (`default_params`): Euler, 4 steps,
  CFG 1 for the distilled model; Euler, 50 steps, CFG 4 for an undistilled one.
- seed, steps, strength, batch size and count work as for Stable Diffusion: one call per image with
  its own seed, so image i of a batch replays alone.
The pipeline works at sides that are multiples of 16 and scales anything above 1024×1024 pixels
down; a crop whose sides are not multiples of 16 is padded (edge pixels, outside the mask) and the
padding cut off again, and a crop above 1 MP is refused (use --resolution 1024 or less). CUDA runs
bf16 (what FLUX is trained in; fp16 where the GPU has no bf16), a CPU fp32.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, require
from ..models.store import cached_sha256
from ..types import GenerationParams
from .base import DiffusersGenerator, loading, place
from .params import describe_defaults
from .prompts import has_weights

log = logging.getLogger(__name__)

MODEL = "flux2-klein-4b"
# What each kind recommends, from the diffusers examples of the Hub model cards (seen as copied in
# public code): FLUX.2-klein-4B guidance_scale=1.0, num_inference_steps=4; klein base 4.0 and 50.
DISTILLED_DEFAULTS = {"sampler": "Euler", "steps": 4, "cfg_scale": 1.0}
BASE_DEFAULTS = {"sampler": "Euler", "steps": 50, "cfg_scale": 4.0}
SAMPLERS = ("Euler",)  # flow matching: FlowMatchEulerDiscreteScheduler with the model's own schedule
PIPELINES = ("Flux2KleinPipeline", "Flux2KleinInpaintPipeline")  # model_index.json classes this loads
MAX_PIXELS = 1024 * 1024  # above this the pipeline scales the image down; refused so sizes stay exact
TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"


def is_flux2_folder(path: Path) -> bool:
    """Whether `path` is a diffusers FLUX.2 [klein] pipeline folder (text-to-image or inpainting)."""
    return _index(path).get("_class_name") in PIPELINES


def _index(path: Path) -> dict:
    try:
        data = json.loads((Path(path) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _multiple(folder: Path) -> int:
    """The side multiple the pipeline needs: the VAE's downscale × the 2×2 latent patches."""
    try:
        blocks = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))["block_out_channels"]
        return 2 ** len(blocks)
    except (OSError, ValueError, KeyError, TypeError):
        return 16  # the FLUX.2 VAE's 4 blocks


def _pad_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class Flux2Generator(DiffusersGenerator):
    """FLUX.2 [klein] inpainting at the size it is given (compose.py crops and resizes).

    model:       "flux2-klein-4b" (resolved by `editanything.models`) or a diffusers FLUX.2 [klein] folder.
    cpu_offload: on CUDA, keep each component on the CPU until it runs (less VRAM, slower).
    threads:     torch's CPU threads while generating; the recipe records it, as for Stable Diffusion.
    """

    family = "flux2-klein"
    native_size = 1024
    # img2img is the inpainting pipeline with nothing masked out: the picture noised to `strength`, all repainted
    pipelines = {"txt2img": "Flux2KleinPipeline", "img2img": "Flux2KleinInpaintPipeline"}

    def __init__(self, model: str | os.PathLike = MODEL, *, device: str | None = None, dtype: Any = None,
                 cpu_offload: bool = False, threads: int | None = None):
        super().__init__(threads=threads)
        self.folder, self.model_name = _resolve(model)
        self.sha256: str | None = None  # of the transformer on disk, hashed when a recipe first asks
        index = _index(self.folder)
        self.distilled = bool(index.get("is_distilled", False))
        self.multiple = self.size_multiple = _multiple(self.folder)
        self._device, self._dtype, self.cpu_offload = device, dtype, cpu_offload
        self._warned_cfg = False

    @property
    def name(self) -> str:
        return self.model_name

    @property
    def takes_negative_prompt(self) -> bool:
        """Only an undistilled model runs CFG, which is where a negative prompt acts."""
        return not self.distilled

    def default_params(self) -> dict[str, Any]:
        """The sampler, steps and CFG scale this model is made for (used where the caller gave none)."""
        return dict(DISTILLED_DEFAULTS if self.distilled else BASE_DEFAULTS)

    def describe(self) -> str:
        defaults = describe_defaults(self.default_params())
        how = (f"FLUX.2 [klein], step-distilled: {defaults} by default, no negative prompt" if self.distilled
               else f"FLUX.2 [klein] base: {defaults} by default; CFG and negative prompt work")
        return f"{self.name} ({how}; up to 1024x1024{'; ' + self.note if self.note else ''})"

    def build(self):
        require("torch", "diffusion")
        diffusers = require("diffusers", "diffusion")
        from ..models import pick_device

        device = pick_device(self._device)
        dtype = self._dtype or _pick_dtype(device)
        with loading("FLUX.2 [klein] model", self.name, self.folder):
            pipe = diffusers.Flux2KleinInpaintPipeline.from_pretrained(str(self.folder), dtype=dtype,
                                                                       local_files_only=True)
        place(pipe, device, self.cpu_offload)
        return pipe

    def check_params(self, params: GenerationParams) -> None:
        """Refuse the parameters this model cannot honour, before anything loads (the CLI calls it once).

        Unset sampler, steps and CFG (None) are fine: they take the model's defaults.
        """
        if params.sampler is not None and params.sampler not in SAMPLERS:
            raise InvalidInputError(
                f"FLUX.2 [klein] samples by flow matching: the sampler must be {' or '.join(SAMPLERS)}; got "
                f"{params.sampler!r} (use --sampler Euler, or leave --sampler out: Euler is its default)")
        if has_weights(params.prompt) or has_weights(params.negative_prompt):
            raise InvalidInputError("prompt weights such as (word:1.3) do not work with FLUX.2 [klein] (its Qwen3 "
                                    "text encoder has no weighting); write the prompt without them")
        if self.distilled and params.negative_prompt.strip():
            raise InvalidInputError(f"{self.name} is step-distilled: it has no classifier-free guidance, so a "
                                    "negative prompt would be ignored; leave it empty")

    def check_size(self, width: int, height: int) -> None:
        if _pad_to(width, self.multiple) * _pad_to(height, self.multiple) > MAX_PIXELS:
            raise InvalidInputError(f"FLUX.2 [klein] works at up to 1024x1024 pixels; this crop is {width}x{height} "
                                    "(use --resolution 1024 or less)")

    def set_sampler(self, pipe: Any, params: GenerationParams) -> None:
        """Nothing to switch: flow matching samples with the model's own Euler schedule (check_params)."""

    def prepare(self, params: GenerationParams) -> GenerationParams:
        params = super().prepare(params)
        if self.distilled and params.cfg_scale != 1.0 and not self._warned_cfg:
            log.warning("%s is step-distilled: CFG is not used (cfg_scale %g has no effect; leave --cfg out)",
                        self.name, params.cfg_scale)
            self._warned_cfg = True
        return params

    def encode(self, pipe: Any, params: GenerationParams) -> dict[str, Any]:
        import torch

        with torch.no_grad():  # the text encoder once for the whole batch
            negative = pipe.encode_prompt(params.negative_prompt)[0] if params.negative_prompt.strip() else None
            return {"prompt_embeds": pipe.encode_prompt(params.prompt)[0], "negative_prompt_embeds": negative}

    def inpaint_inputs(self, pipe: Any, image: np.ndarray, mask: np.ndarray, params: GenerationParams,
                       control: Any) -> dict[str, Any]:
        # Edge pixels pad the crop to the sides the pipeline needs; the padding is never repainted (finish cuts it).
        h, w = image.shape[:2]
        ph, pw = _pad_to(h, self.multiple), _pad_to(w, self.multiple)
        padded = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        return super().inpaint_inputs(pipe, padded, np.pad(mask, ((0, ph - h), (0, pw - w))), params, control)

    def img2img_inputs(self, pipe: Any, image: np.ndarray, params: GenerationParams) -> dict[str, Any]:
        return self.inpaint_inputs(pipe, image, np.ones(image.shape[:2], bool), params, None)

    def finish(self, image: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        return image if source is None else image[:source.shape[0], :source.shape[1]]

    def model_info(self) -> dict[str, Any]:
        """What the recipe records: model name, folder, the transformer's sha256."""
        if self.sha256 is None and (self.folder / TRANSFORMER).is_file():
            self.sha256 = cached_sha256(self.folder / TRANSFORMER)
        sha = self.sha256
        return {"name": self.name, "file": str(self.folder), "format": "diffusers", "family": self.family,
                "distilled": self.distilled, "sha256": sha, "hash": sha[:10] if sha else None,
                "loras": [], "embeddings": [], "controlnets": []}


def _pick_dtype(device: str):
    """bf16 on CUDA (FLUX's own precision; fp16 overflows in it) where the GPU has it, else fp16; fp32 on a CPU."""
    import torch

    if not str(device).startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _resolve(model: str | os.PathLike) -> tuple[Path, str]:
    """The diffusers folder and the name the recipe records."""
    from ..models import MODELS, resolve

    if isinstance(model, str) and model in MODELS:
        return resolve(model).folder, model
    path = Path(model).expanduser()
    if path.is_dir() and is_flux2_folder(path):
        # A folder named like a registry model records its full path, so replay finds this folder.
        return path, str(path) if path.name in MODELS else path.name
    raise ModelNotFound(f"no FLUX.2 [klein] model {str(model)!r}: not a known model name nor a diffusers "
                        f"folder whose model_index.json names {' or '.join(PIPELINES)}")
